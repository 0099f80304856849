"""Editable sources: zipped on every call and shipped next to the artifact.

(With ``include_editable=True`` they are also baked into the single-file artifact, as
the original did: :func:`source_files`.)

Projects installed in editable mode change all the time, so they are not baked into the
artifact: each one becomes a small zip (its top-level packages and modules at the root)
that a node unpacks and puts on ``PYTHONPATH``. Zips are deterministic (sorted entries,
fixed timestamps) and named by content, so an unchanged project gives the same file.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

from cluster_pack.errors import EditableSourceError
from cluster_pack.pack.environment import Distribution

# Never shipped: VCS data, caches, build outputs, virtualenvs.
DEFAULT_EXCLUDES = (
    ".git", ".hg", ".svn", "__pycache__", "*.pyc", "*.pyo", ".mypy_cache", ".pytest_cache",
    ".tox", ".nox", ".venv", "venv", "build", "dist", "*.egg-info", ".eggs", "node_modules",
    ".ipynb_checkpoints",
)
# Top-level files of a flat-layout project that are not importable code.
_NOT_CODE = {"setup.py", "conftest.py", "noxfile.py", "fabfile.py", "tasks.py"}
_NOT_PACKAGES = {"tests", "test", "docs", "doc", "examples", "benchmarks", "scripts"}
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)


def excludes_from_env() -> Tuple[str, ...]:
    """DEFAULT_EXCLUDES plus ``C_PACK_EDITABLE_EXCLUDES`` (comma-separated globs)."""
    extra = os.environ.get("C_PACK_EDITABLE_EXCLUDES", "")
    return DEFAULT_EXCLUDES + tuple(p.strip() for p in extra.split(",") if p.strip())


@dataclass(frozen=True)
class EditableProject:
    """An editable distribution and the import roots it provides."""

    name: str
    # top-level import name -> source path (a package directory or a module file)
    roots: Tuple[Tuple[str, Path], ...]


@dataclass(frozen=True)
class EditableZip:
    name: str  # distribution name
    path: Path
    sha256: str
    top_level: Tuple[str, ...]

    @property
    def link_name(self) -> str:
        """Name of the unpacked directory on a node."""
        return f"editable_{self.name}"


def _is_excluded(name: str, patterns: Sequence[str]) -> bool:
    return any(fnmatch.fnmatch(name, p) for p in patterns)


def _roots_in(directory: Path, names: Iterable[str]) -> Dict[str, Path]:
    roots = {}
    wanted = list(names)
    if wanted:
        for name in wanted:
            for candidate in (directory / name, directory / f"{name}.py"):
                if candidate.exists():
                    roots[name] = candidate
        return roots
    for child in sorted(directory.iterdir()):
        if child.name.startswith(".") or child.name in _NOT_PACKAGES:
            continue
        if child.is_dir() and (child / "__init__.py").is_file():
            roots[child.name] = child
        elif child.suffix == ".py" and child.name not in _NOT_CODE:
            roots[child.stem] = child
    return roots


def project_of(dist: Distribution) -> EditableProject:
    """The import roots of an editable distribution (raises if its sources are gone)."""
    location = dist.editable_location
    if location is None or not location.exists():
        raise EditableSourceError(
            f"{dist.name} is installed in editable mode from {location}, which does not "
            f"exist any more: reinstall it (pip install -e <project>) or uninstall it")
    roots: Dict[str, Path] = {}
    for name, path in dist.editable_mapping:
        if path.exists():
            roots[name] = path
    top_level = [n for n in dist.top_level_names() if n not in _NOT_PACKAGES]
    for entry in dist.editable_paths:
        if entry.is_dir():
            # the whole directory is on sys.path locally: ship what is importable there,
            # including modules added since the install (top_level.txt is not updated)
            found = {**_roots_in(entry, []), **_roots_in(entry, top_level)}
            for name, path in found.items():
                roots.setdefault(name, path)
    if not roots:
        for candidate in (location / "src", location):
            if candidate.is_dir():
                roots.update(_roots_in(candidate, top_level))
                if roots:
                    break
    if not roots:
        raise EditableSourceError(
            f"{dist.name} is installed in editable mode from {location} but no importable "
            "package was found there")
    return EditableProject(dist.name, tuple(sorted(roots.items())))


def _files(root: Path, excludes: Sequence[str]) -> List[Tuple[Path, str]]:
    if root.is_file():
        return [(root, root.name)]
    found = []
    for current, dirs, files in os.walk(root, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not _is_excluded(d, excludes))
        for f in sorted(files):
            if _is_excluded(f, excludes):
                continue
            path = Path(current) / f
            if path.is_symlink() and not path.resolve().is_relative_to(root.resolve()):
                continue  # never ship files from outside the project by accident
            arcname = f"{root.name}/{path.relative_to(root).as_posix()}"
            found.append((path, arcname))
    return found


def _write_zip(entries: List[Tuple[Path, str]], output_dir: Path, name: str) -> Tuple[Path, str]:
    """A deterministic zip of ``entries`` named ``<name>-<sha256 prefix>.zip``."""
    output_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = output_dir / f".{name}.{os.getpid()}.partial"
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        for path, arcname in sorted(entries, key=lambda e: e[1]):
            info = zipfile.ZipInfo(arcname, _ZIP_DATE)
            info.external_attr = (0o755 if os.access(path, os.X_OK) else 0o644) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            with open(path, "rb") as src, zf.open(info, "w") as dst:
                while True:
                    chunk = src.read(1024 * 1024)
                    if not chunk:
                        break
                    dst.write(chunk)
    digest = hashlib.sha256(tmp.read_bytes()).hexdigest()
    final = output_dir / f"{name}-{digest[:16]}.zip"
    os.replace(tmp, final)
    return final, digest


def source_files(editables: Dict[str, Distribution],
                 excludes: Optional[Sequence[str]] = None) -> List[Tuple[str, str]]:
    """``(arcname, path)`` of every file of the editable projects, top-level packages and
    modules at the root: what ``include_editable=True`` bakes into the single file."""
    excludes = excludes_from_env() if excludes is None else excludes
    found: Dict[str, str] = {}
    for _, dist in sorted(editables.items()):
        for _, root in project_of(dist).roots:
            for path, arcname in _files(root, excludes):
                found.setdefault(arcname, str(path))
    return sorted(found.items())


def zip_project(project: EditableProject, output_dir: Path,
                excludes: Optional[Sequence[str]] = None) -> EditableZip:
    """Zip an editable project's import roots into ``output_dir`` (content-named)."""
    excludes = excludes_from_env() if excludes is None else excludes
    entries: List[Tuple[Path, str]] = []
    for _, root in project.roots:
        entries.extend(_files(root, excludes))
    final, digest = _write_zip(entries, output_dir, project.name)
    return EditableZip(project.name, final, digest, tuple(n for n, _ in project.roots))


def zip_unpacked(directory: Path, name: str, output_dir: Path) -> EditableZip:
    """Zip back a directory a node unpacked (a job launching a job passes it along)."""
    root = directory.resolve()
    entries = [(p, f"{p.relative_to(directory).as_posix()}")
               for p in sorted(directory.rglob("*")) if p.is_file()
               and "__pycache__" not in p.parts
               and p.resolve().is_relative_to(root)]  # never follow links out of it
    final, digest = _write_zip(entries, output_dir, name)
    top = tuple(sorted({e[1].split("/")[0] for e in entries}))
    return EditableZip(name, final, digest, top)


def zip_editables(editables: Dict[str, Distribution], output_dir: Path) -> List[EditableZip]:
    """Zip every editable project of an environment."""
    return [zip_project(project_of(d), output_dir) for _, d in sorted(editables.items())]
