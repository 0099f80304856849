"""Real virtualenvs for the tests: the one helper that builds them, and the shared venvs.

Every test that needs a real venv builds it with :func:`build_venv` (uv, from the test
runner's base interpreter): a venv of regular packages (linked from uv's cache, not copied),
editable projects and, with ``from_runner``, distributions of the test runner's own env made
importable without installing them again (pyspark: an sdist of 400 MB that uv would download
and build again for each venv). :func:`clean_env` is the environment of a subprocess run with
such a venv's python: the runner's own venv and packed-environment variables removed.

The venvs several test modules share are session fixtures, built once, removed at the end
of the session:

* ``packed_venv``: numpy (compiled), six (pure), cluster-pack (editable, from this checkout)
  and ``toyproj``, an editable project the tests edit.
* ``spark_venv``: pyspark (the runner's), cluster-pack (editable), ``cowsay``, hdfs-native,
  s3fs and ``toy-pkg``, an editable project, with a ``SPARK_HOME`` of its own.

A fixture that builds something big removes its directory at teardown: the base temp
directory of a session is only removed at its end, when every test passed.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, Optional, Sequence

import pytest

REPO = Path(__file__).resolve().parents[1]

JAVA_HOME = os.environ.get("JAVA_HOME") or "/usr/lib/jvm/java-17-openjdk-amd64"

# Variables of the test runner's process that would make a test venv's python act as the
# runner's venv or as a packed environment
RUNNER_VARIABLES = ("VIRTUAL_ENV", "PYTHONPATH", "PEX", "C_PACK_PACKAGE_PATH",
                    "C_PACK_LOCAL_ARTIFACT", "C_PACK_EDITABLE_DIRS")


def uv() -> str:
    """The uv binary (``$C_PACK_UV``, next to this interpreter, the uv package, PATH)."""
    explicit = os.environ.get("C_PACK_UV", "").strip()
    candidates = [explicit] if explicit else [str(Path(sys.executable).parent / "uv")]
    if not explicit:
        try:
            import uv as uv_package  # the test extra installs it

            candidates.append(uv_package.find_uv_bin())
        except Exception:
            pass
        candidates.append(shutil.which("uv") or "")
    for candidate in candidates:
        if candidate and os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    pytest.fail("uv is needed to build test virtualenvs (pip install uv)")


def base_python() -> str:
    """The interpreter the test runner's venv was made from (no site-packages of ours)."""
    return getattr(sys, "_base_executable", sys.executable)


def clean_env(extra: Optional[Dict[str, str]] = None, drop: Iterable[str] = ()) -> Dict[str, str]:
    """``os.environ`` without :data:`RUNNER_VARIABLES` (and ``drop``), updated with ``extra``."""
    removed = set(RUNNER_VARIABLES) | set(drop)
    env = {k: v for k, v in os.environ.items() if k not in removed}
    env.update(extra or {})
    return env


def site_packages(venv: Path) -> Path:
    return next((Path(venv) / "lib").glob("python3*/site-packages"))


def link_from_runner(venv: Path, names: Iterable[str]) -> None:
    """Make the test runner's own installs of the distributions ``names`` importable in
    ``venv`` (a ``.pth`` file naming a directory of symlinks to their top-level packages and
    metadata): nothing is copied, downloaded or built, and the venv's site-packages has no
    file of them (cluster-pack does not pack them; Spark's executors use pyspark.zip)."""
    linked = Path(venv) / "runner-packages"
    linked.mkdir(exist_ok=True)
    for name in names:
        try:
            dist = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            pytest.skip(f"{name} is not installed in the test runner's environment")
        location = Path(str(dist.locate_file("")))
        tops = {Path(str(f)).parts[0] for f in dist.files or []}
        for top in sorted(tops):
            if top in ("..", "__pycache__") or top.endswith(".data"):
                continue  # scripts and data installed outside site-packages
            if not (linked / top).exists():
                (linked / top).symlink_to(location / top)
    (site_packages(venv) / "_test_runner_packages.pth").write_text(f"{linked}\n")


def build_venv(root: Path, packages: Sequence[str], editables: Sequence[Path] = (),
               python: Optional[str] = None, from_runner: Sequence[str] = ()) -> Path:
    """A venv at ``root`` (returned) made with uv from ``python`` (default: the runner's base
    interpreter) holding ``packages`` (requirement strings or local paths), ``editables``
    (installed with ``-e``) and the runner's ``from_runner`` (see :func:`link_from_runner`)."""
    root = Path(root)
    t0 = time.monotonic()
    subprocess.run([uv(), "venv", "--quiet", "--python", python or base_python(), str(root)],
                   check=True)
    install(root, packages, editables)
    if from_runner:
        link_from_runner(root, from_runner)
    print(f"[tests] venv {root} built in {time.monotonic() - t0:.1f}s", file=sys.stderr)
    return root


def install(venv: Path, packages: Sequence[str], editables: Sequence[Path] = (),
            options: Sequence[str] = ()) -> None:
    """``uv pip install [options]`` into an existing venv (a failure fails the test with
    uv's output)."""
    if not packages and not editables:
        return
    cmd = [uv(), "pip", "install", "--quiet", *options,
           "--python", str(Path(venv) / "bin" / "python"), *map(str, packages)]
    for path in editables:
        cmd += ["-e", str(path)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.fail(f"cannot install {packages} {list(map(str, editables))} in the test venv "
                    f"{venv}:\n{proc.stderr[-3000:]}")


def remove_at_teardown(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def remove_remote_dir(url: str, fs_args: Optional[dict] = None) -> None:
    """Remove a test's own directory on the harness HDFS or S3 (they live for the whole
    session), quietly."""
    from cluster_pack.store.storage import Store

    try:
        store, path = Store.for_url(url, fs_args)
        store.fs.rm(path, recursive=True)
    except Exception:
        pass


@dataclass
class TestVenv:
    __test__ = False  # not a test class

    root: Path
    toyproj: Path

    @property
    def python(self) -> str:
        return str(self.root / "bin" / "python")

    @property
    def base_python(self) -> str:
        """The bare interpreter the venv was made from (no site-packages of ours)."""
        return os.path.realpath(base_python())

    @property
    def cli(self) -> str:
        return str(self.root / "bin" / "cluster-pack")

    def run(self, code: str, cache_dir: Path, env: Optional[Dict[str, str]] = None,
            check: bool = True) -> subprocess.CompletedProcess:
        """Run Python code with this venv's interpreter (its own cache/store dir)."""
        # the venvs under test do not install uv
        full_env = clean_env({"C_PACK_CACHE_DIR": str(cache_dir), "C_PACK_UV": uv(),
                              **(env or {})})
        proc = subprocess.run([self.python, "-c", textwrap.dedent(code)], env=full_env,
                              capture_output=True, text=True, cwd=cache_dir.parent)
        if check and proc.returncode != 0:
            raise AssertionError(f"exit {proc.returncode}\nstdout:\n{proc.stdout}\n"
                                 f"stderr:\n{proc.stderr}")
        return proc

    def json(self, code: str, cache_dir: Path, **kwargs) -> object:
        """Run code whose last stdout line is JSON; return it parsed."""
        out = self.run(code, cache_dir, **kwargs).stdout.strip().splitlines()
        return json.loads(out[-1])

    def set_toy_value(self, value: str) -> None:
        (self.toyproj / "src" / "toyproj" / "__init__.py").write_text(f"VALUE = {value!r}\n")


def make_toy_project(root: Path, name: str = "toyproj", value: str = "v1") -> Path:
    """``root/<name>``: a src-layout project whose package ``<name>`` holds ``VALUE``."""
    project = root / name
    (project / "src" / name).mkdir(parents=True)
    (project / "pyproject.toml").write_text(textwrap.dedent(f"""
        [build-system]
        requires = ["setuptools>=64"]
        build-backend = "setuptools.build_meta"
        [project]
        name = "{name}"
        version = "0.1"
        """))
    (project / "src" / name / "__init__.py").write_text(f"VALUE = {value!r}\n")
    return project


@pytest.fixture(scope="session")
def packed_venv(tmp_path_factory):
    root = tmp_path_factory.mktemp("venvs")
    toy = make_toy_project(root)
    venv = build_venv(root / "venv", ["numpy<3", "six"], editables=[REPO, toy])
    yield TestVenv(venv, toy)
    remove_at_teardown(root)


# -- Spark ---------------------------------------------------------------------------------

SPARK_PACKAGES = ("cowsay", "hdfs-native", "s3fs")


def make_spark_venv(base: Path, extra_packages: Sequence[str] = ()) -> Dict[str, Path]:
    """In ``base``: a venv with pyspark (the test runner's: the driver's SparkSession and
    ``spark-submit``; executors use Spark's pyspark.zip), cluster-pack (editable),
    :data:`SPARK_PACKAGES`, ``extra_packages`` and the editable project ``toy-pkg``
    (``toy_pkg.VALUE == "v1"``), and a ``SPARK_HOME`` of its own (``spark_home``: local-cluster
    writes the executors' directories into ``$SPARK_HOME/work``, kept out of the runner's
    pyspark). Skips without pyspark or a JDK."""
    pyspark = pytest.importorskip("pyspark")
    if not Path(JAVA_HOME, "bin", "java").exists():
        pytest.skip(f"no JDK at {JAVA_HOME}")
    toy = base / "toy"
    (toy / "src" / "toy_pkg").mkdir(parents=True)
    (toy / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools>=64"]\nbuild-backend = "setuptools.build_meta"\n'
        '[project]\nname = "toy-pkg"\nversion = "0.1"\n'
        '[tool.setuptools.packages.find]\nwhere = ["src"]\n')
    (toy / "src" / "toy_pkg" / "__init__.py").write_text('VALUE = "v1"\n')
    venv = build_venv(base / "venv", [*SPARK_PACKAGES, *extra_packages], editables=[REPO, toy],
                      from_runner=["pyspark", "py4j"])
    spark_home = base / "spark_home"
    spark_home.mkdir()
    for name in ("bin", "jars", "python", "sbin"):
        (spark_home / name).symlink_to(Path(pyspark.__file__).parent / name)
    # On YARN, Spark's jars are read from this machine (the harness's NodeManager runs
    # here): without it, each application zips them (400 MB) into its HDFS staging
    # directory, and the NodeManager keeps a copy of that zip for each application
    (spark_home / "conf").mkdir()
    (spark_home / "conf" / "spark-defaults.conf").write_text(
        f"spark.yarn.jars local:{spark_home / 'jars'}/*\n")
    return {"base": base, "python": venv / "bin" / "python", "toy": toy,
            "spark_home": spark_home}


@pytest.fixture(scope="session")
def spark_venv(tmp_path_factory):
    """:func:`make_spark_venv`, shared by the Spark integration tests (they publish it with
    ``ignored_packages=["pyspark", "py4j"]``); a test that edits ``toy-pkg`` restores it."""
    base = tmp_path_factory.mktemp("spark")
    yield make_spark_venv(base)
    remove_at_teardown(base)


@pytest.fixture(autouse=True)
def _spark_work_removed(request):
    """After a test that used a Spark venv (:func:`make_spark_venv`): the executors'
    directories local-cluster left in its ``$SPARK_HOME/work`` (each holds the packed
    environment installed once more) are removed."""
    yield
    for value in list((getattr(request.node, "funcargs", None) or {}).values()):
        if isinstance(value, dict) and "spark_home" in value:
            shutil.rmtree(Path(value["spark_home"]) / "work", ignore_errors=True)


@pytest.fixture
def store_dir(tmp_path) -> Path:
    """A per-test cache and local store directory."""
    path = tmp_path / "cache"
    path.mkdir()
    return path
