"""Turn a :class:`~cluster_pack.pack.packspec.PackSpec` into a local artifact.

The artifact is a standard PEX, run by the standard pex runtime (``python env.pex -m mod``)
in pex's ``--venv`` execution mode: on a node the first start installs the environment
once in ``PEX_ROOT`` and every later start re-executes that venv directly (as fast as a
plain venv). Nothing is compressed by default: storing costs close to copying the bytes.

First, always, a directory in pex's ``packed`` layout, one zip per distribution: what is
published as content-addressed parts (:mod:`cluster_pack.pack.parts`). The distribution zips are
written by :mod:`cluster_pack.pack.distzip` straight from the venv's installed files, cached per
distribution, so a rebuild after a change zips only what changed. The pex runtime around
them (``.bootstrap``, ``__main__.py``, ``PEX-INFO``) comes from a pex with no distribution,
built by the ``pex`` tool once per machine and pex version.

Then, unless ``C_PACK_LAYOUT=parts``, the original's single file is written from that
directory by :mod:`cluster_pack.pack.singlefile` (entries copied, never recompressed): a
``.pex`` zipapp, or for environments too large for a zipapp (CPython < 3.13 cannot run a
ZIP64 zipapp) and with ``allow_large_pex`` the ``<name>.pex.zip`` a node unpacks and runs
as ``pyenv/__main__.py``.

The ``pex`` tool builds the packed directory itself when :mod:`~cluster_pack.pack.distzip`
declines a distribution and when ``additional_packages`` are not installed. It then reads
the files installed in the venv (``--venv-repository --intransitive``: no resolve, no wheel
builds, no network).
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.metadata
import json
import logging
import os
import shutil
import sys
import tempfile
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, List, Optional, Sequence

from cluster_pack import settings
from cluster_pack.atomic import atomic_write
from cluster_pack.cache import CacheDir
from cluster_pack.errors import BuildError, PackageSelectionError
from cluster_pack.pack import distzip, singlefile
from cluster_pack.pack import parts as parts_module
from cluster_pack.pack import pex as pex_tool
from cluster_pack.pack.environment import inspect_site_packages
from cluster_pack.pack.layout import LARGE_PEX_SUFFIX, PEX_SUFFIX
from cluster_pack.pack.packspec import PackSpec, Requirement

_logger = logging.getLogger(__name__)

# next to the cached runtime template: the sha256 of its .bootstrap (4 MB, never re-hashed)
RUNTIME_SHA256 = ".bootstrap.sha256"

ProgressCallback = Callable[[str], None]

@dataclass(frozen=True)
class BuiltArtifact:
    """A local artifact ready to publish."""

    path: Path
    large: bool
    size: int
    sha256: str
    requirements: Sequence[str]
    # layout "parts": (part, local file) for every file of the packed directory ``path``
    parts: Sequence[tuple] = ()
    # the single-file artifact written beside the parts (or alone: then it is ``path``)
    single: Optional[singlefile.SingleFile] = None

    @property
    def suffix(self) -> str:
        return LARGE_PEX_SUFFIX if self.large else PEX_SUFFIX


file_sha256 = parts_module.file_sha256


class PexBuilder:
    """Builds a PEX from a PackSpec with the pex tool."""

    def __init__(self, progress: Optional[ProgressCallback] = None):
        self._progress = progress or (lambda message: None)

    def build_parts(self, spec: PackSpec, workdir: Path, name: str,
                    rebuild: bool = False) -> BuiltArtifact:
        """Build the packed pex directory ``workdir/<name>.pex`` and list its parts.

        The distributions are zipped by :mod:`cluster_pack.pack.distzip` (one pass, cached per
        distribution) around a pex runtime built once per machine; distributions it cannot
        handle make the whole build go through the ``pex`` tool instead. The caller removes
        the directory once published (its files are hard links to the caches).
        ``rebuild`` zips every distribution again instead of reusing the cached zips.
        """
        if spec.to_resolve or spec.resolve_from_index:
            return self._build_parts_with_pex(spec, workdir, name)
        if not spec.requirements:
            raise BuildError("there is nothing to pack: the package selection is empty")
        dists = [r.installed for r in spec.requirements if r.installed is not None]
        template = self._runtime_template_path(spec)

        def zip_all(workers: Optional[int]) -> List[tuple]:
            return distzip.zip_distributions(dists, spec.environment.prefix, spec.compress,
                                             progress=self._progress, refresh=rebuild,
                                             workers=workers)
        try:
            if (template / "PEX-INFO").is_file():
                zips = zip_all(None)
            else:
                # The first time, a pex subprocess builds the runtime while this process
                # zips, leaving it a core: threads fighting it for the cores (and for the
                # GIL) take longer than the two jobs one after the other.
                with ThreadPoolExecutor(1) as background:
                    built = background.submit(self._runtime_template, spec)
                    zips = zip_all(max(1, (os.cpu_count() or 1) - 1))
                    template = built.result()
            return self._assemble_parts(spec, template, zips, workdir, name)
        except distzip.Unsupported as exc:
            _logger.info("packing with the pex tool: %s", exc)
        return self._build_parts_with_pex(spec, workdir, name)

    def _build_parts_with_pex(self, spec: PackSpec, workdir: Path, name: str) -> BuiltArtifact:
        output = workdir / f"{name}{PEX_SUFFIX}"
        with tempfile.TemporaryDirectory(dir=workdir, prefix=f"{name}-dir-") as tmp:
            tmp_path = Path(tmp)
            venv, requirements = self._source(spec, tmp_path)
            built = tmp_path / f"out{PEX_SUFFIX}"
            self._pex(spec, venv, requirements, built, "packed")
            os.replace(built, output)
        self._progress("hashing the parts")
        listed = parts_module.list_parts(output)
        return _parts_artifact(output, listed, requirements)

    def _runtime_template(self, spec: PackSpec) -> Path:
        """A packed pex with no distribution, built with the same options, cached per
        pex version and interpreter: its runtime (``.bootstrap``), ``__main__.py`` and
        ``PEX-INFO`` are what every environment's own files are made from."""
        template = self._runtime_template_path(spec)
        if (template / "PEX-INFO").is_file():
            return template
        settings.ensure_private_dir(template.parent)
        with tempfile.TemporaryDirectory(dir=template.parent, prefix=".building-") as tmp:
            built = Path(tmp) / "out.pex"
            self._pex(spec, None, [], built, "packed")
            # pex hard-links .bootstrap out of its own cache and touches that file when it
            # reuses it: a copy of our own keeps the parts' mtime still (YARN checks it)
            with atomic_write(built / ".bootstrap") as private:
                shutil.copyfile(built / ".bootstrap", private)
            (built / RUNTIME_SHA256).write_text(file_sha256(built / ".bootstrap"))
            try:
                os.rename(built, template)
            except OSError:
                if not (template / "PEX-INFO").is_file():  # not a concurrent builder's
                    raise
        return template

    @staticmethod
    def _runtime_template_path(spec: PackSpec) -> Path:
        key = hashlib.sha256(json.dumps([
            distzip.FORMAT, importlib.metadata.version("pex"), sys.executable,
            sys.version, spec.compress, spec.include_pex_tools,
            pex_tool.PEX_TOOL_OPTIONS]).encode()).hexdigest()[:24]
        return CacheDir.PEX_RUNTIMES.path() / key

    def _assemble_parts(self, spec: PackSpec, template: Path, zips: Sequence[tuple],
                        workdir: Path, name: str) -> BuiltArtifact:
        """The packed directory: the template's runtime, the distribution zips (hard
        links) and this environment's ``PEX-INFO`` (its ``pex_hash`` written into
        ``__main__.py`` and ``__pex__/__init__.py``, where the runtime reads it)."""
        info = json.loads((template / "PEX-INFO").read_text())
        old_hash = info.pop("pex_hash", None)
        info["distributions"] = {z.wheel_name: z.fingerprint for z, _ in zips}
        info["requirements"] = sorted(str(r) for r in spec.requirements)
        info.update(pex_tool.PEX_INFO_OPTIONS)
        new_hash = hashlib.sha1(_json_dump(info).encode()).hexdigest()
        info["pex_hash"] = new_hash
        output = workdir / f"{name}{PEX_SUFFIX}"
        with tempfile.TemporaryDirectory(dir=workdir, prefix=f"{name}-dir-") as tmp:
            out = Path(tmp) / "out.pex"
            (out / ".deps").mkdir(parents=True)
            (out / "__pex__").mkdir()
            _link_or_copy(template / ".bootstrap", out / ".bootstrap")
            (out / "PEX-INFO").write_text(_json_dump(info))
            for relpath in ("__main__.py", "__pex__/__init__.py"):
                text = (template / relpath).read_text()
                needle = f"pex_hash={old_hash!r}"
                if old_hash is None or text.count(needle) != 1:
                    raise distzip.Unsupported(
                        f"this pex version's {relpath} does not name its pex_hash once")
                (out / relpath).write_text(text.replace(needle, f"pex_hash={new_hash!r}"))
                os.chmod(out / relpath, (template / relpath).stat().st_mode & 0o777)
            for written, path in zips:
                _link_or_copy(path, out / ".deps" / written.wheel_name)
            os.replace(out, output)
        known = {f".deps/{z.wheel_name}": z.sha256 for z, _ in zips}
        try:
            known[".bootstrap"] = (template / RUNTIME_SHA256).read_text().strip()
        except OSError:
            pass  # a template from an older cluster-pack: hashed below
        listed = parts_module.list_parts(output, known=known)
        return _parts_artifact(output, listed, spec.requirements)

    def build(self, spec: PackSpec, workdir: Path, name: str,
              rebuild: bool = False) -> BuiltArtifact:
        """Build what ``spec`` asks for in ``workdir``: the packed directory
        ``<name>.pex`` with its parts (``spec.parts``) and/or the single-file artifact
        ``<name>.single.pex`` (``.pex.zip`` when large; ``spec.single_file``), written from
        the packed directory by :mod:`cluster_pack.pack.singlefile`.

        ``rebuild``: reuse no cached distribution zip. With a single file only, the packed
        directory is removed and the artifact's ``path`` is the file.
        """
        packed = self.build_parts(spec, workdir, name, rebuild)
        if not spec.single_file:
            return packed
        kind = spec.file_kind
        output = workdir / f"{name}.single{kind.suffix}"
        self._progress(f"writing the single-file artifact ({_mib(packed.size)} MiB, "
                       f"{kind} layout)")
        try:
            single = singlefile.write(
                packed.path, output, kind, spec.environment.python_version,
                sources=[(arcname, Path(path)) for arcname, path in spec.editable_sources])
        except BaseException:
            shutil.rmtree(packed.path, ignore_errors=True)
            raise
        if spec.parts:
            return dataclasses.replace(packed, single=single)
        shutil.rmtree(packed.path, ignore_errors=True)
        return BuiltArtifact(single.path, spec.large, single.size, single.sha256,
                             packed.requirements, single=single)

    def _source(self, spec: PackSpec, tmp_path: Path) -> tuple:
        """(venv, requirements) pex builds from: the environment itself, or a transient
        venv adding the packages that are not installed."""
        if spec.to_resolve and not spec.resolve_from_index:
            self._progress(f"adding {', '.join(map(str, spec.to_resolve))}")
            return self._venv_with_additional(spec, tmp_path / "venv")
        return spec.environment.prefix, list(spec.requirements)

    def _pex(self, spec: PackSpec, venv: Optional[Path], requirements: Sequence[Requirement],
             output: Path, layout: str) -> None:
        """Run the pex tool (``venv=None`` and no requirements: the runtime alone)."""
        if not requirements and venv is not None:
            raise BuildError("there is nothing to pack: the package selection is empty")
        index_urls: List[str] = []
        if spec.resolve_from_index:
            index_urls = [url for url in (settings.get_pypi_index(),) if url]
            index_urls += spec.additional_repo
        self._progress(f"building the pex ({len(requirements)} distributions)" if requirements
                       else "building the pex runtime")
        # no requirements file for the runtime alone: pex would set up a resolver (pip)
        # to read it, which costs more than building the runtime (1.6 s against 0.6 s)
        with tempfile.TemporaryDirectory() as tmp:
            reqs = Path(tmp) / "requirements.txt" if requirements else None
            if reqs is not None:
                reqs.write_text("\n".join(str(r) for r in requirements) + "\n")
            pex_tool.run_pex(
                output, layout=layout, compress=spec.compress, intransitive=True,
                include_tools=spec.include_pex_tools, requirements_file=reqs,
                venv_repository=None if spec.resolve_from_index else venv,
                index_urls=index_urls,
                find_links=spec.additional_indexes if spec.resolve_from_index else ())

    def _venv_with_additional(self, spec: PackSpec, target: Path):
        """A transient venv: the selected installed files (hard links) plus the
        additional packages installed by uv. Returns (venv, requirements)."""
        uv = settings.find_uv()
        if uv is None:
            raise PackageSelectionError(
                "additional_packages names packages that are not installed "
                f"({', '.join(map(str, spec.to_resolve))}) and uv is not available to add "
                "them: install uv (pip install uv) or install those packages in the venv")
        env = spec.environment
        pex_tool.run_tool([uv, "venv", "--quiet", "--python", env.base_executable, str(target)],
                          "creating a transient venv")
        site = _site_packages_of(target)
        for source_site in env.site_packages:
            _hardlink_tree(source_site, site)
        cmd = [uv, "pip", "install", "--quiet", "--python", str(target / "bin" / "python")]
        index = settings.get_pypi_index()
        if index:
            cmd.extend(["--index-url", index])
        for repo in spec.additional_repo:
            cmd.extend(["--extra-index-url", repo])
        for index in spec.additional_indexes:
            cmd.extend(["--find-links", index])
        cmd.extend(str(r) for r in spec.to_resolve)
        try:
            pex_tool.run_tool(cmd, "uv")
        except BuildError as exc:
            raise PackageSelectionError(
                "cannot install additional_packages "
                f"{', '.join(map(str, spec.to_resolve))}: {exc}") from None

        after = inspect_site_packages(target, (site,)).distributions
        wanted = {r.key for r in spec.requirements}
        before = set(env.distributions)
        # the selection, plus whatever uv had to bring in for the additional packages
        keys = sorted(k for k in after if k in wanted or k not in before)
        return target, [Requirement(after[k].name, after[k].version, after[k]) for k in keys]


def _parts_artifact(output: Path, listed: Sequence[tuple],
                    requirements: Sequence[Requirement]) -> BuiltArtifact:
    part_list = [part for part, _ in listed]
    return BuiltArtifact(output, False, sum(p.size for p in part_list),
                         parts_module.tree_sha256(part_list),
                         tuple(sorted(str(r) for r in requirements)), tuple(listed))


def _mib(size: int) -> int:
    return round(size / 1024**2)


def _json_dump(value: dict) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def _site_packages_of(venv: Path) -> Path:
    candidates = sorted((venv / "lib").glob("python*/site-packages"))
    if not candidates:
        raise BuildError(f"no site-packages in the transient venv {venv}")
    return candidates[0]


def _hardlink_tree(source: Path, target: Path) -> None:
    """Copy a tree with hard links (falls back to copies across filesystems)."""
    for root, _dirs, files in os.walk(source):
        rel = Path(root).relative_to(source)
        (target / rel).mkdir(parents=True, exist_ok=True)
        for f in files:
            src, dst = Path(root) / f, target / rel / f
            if dst.exists():
                continue
            try:
                os.link(src, dst)
            except OSError:
                shutil.copy2(src, dst)


def zip_directory(source: Path, output: Path, compress: bool) -> None:
    """Zip a directory's content (streamed; ZIP64 as needed) at the archive root."""
    method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with atomic_write(output) as tmp, zipfile.ZipFile(tmp, "w", method, allowZip64=True) as zf:
        for root, dirs, files in os.walk(source):
            dirs.sort()
            for f in sorted(files):
                path = Path(root) / f
                zf.write(path, path.relative_to(source).as_posix())
