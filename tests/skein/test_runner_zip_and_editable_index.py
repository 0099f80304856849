"""What a container needs besides the environment: ``editable_packages_index`` next to the
editable zips, and the runner zip that runs a pickled function in ANY environment (one
without cluster-pack or cloudpickle, e.g. published by ``upload_spec``). No cluster: the
container scripts run with local bash (tests/skein/conftest.py)."""

from __future__ import annotations

import ast
import subprocess
import sys
import zipfile
from pathlib import Path

import cloudpickle
import pytest
import skein

from cluster_pack.launch import run_function, yarn
from cluster_pack.launch import spec as launch
from cluster_pack.pack import editables
from cluster_pack.skein import skein_config_builder as scb
from cluster_pack.skein import skein_launcher

# -- editable_packages_index -------------------------------------------------------------

@pytest.fixture
def toy_editable(tmp_path, monkeypatch):
    """One shipped editable project (``toy_pkg``, plus a single module), zipped as
    ``launch.editable_resources`` does."""
    src = tmp_path / "toy" / "src"
    (src / "toy_pkg").mkdir(parents=True)
    (src / "toy_pkg" / "__init__.py").write_text("VALUE = 'toy'\n")
    (src / "toy_module.py").write_text("X = 1\n")
    project = editables.EditableProject(
        "toy", (("toy_pkg", src / "toy_pkg"), ("toy_module", src / "toy_module.py")))
    z = editables.zip_project(project, tmp_path / "zips")
    resource = launch.Resource(str(z.path), z.link_name, "archive", z.path.stat().st_size,
                               z.sha256)
    monkeypatch.setattr(launch, "editable_resources", lambda workdir=None: [resource])
    monkeypatch.setenv("C_PACK_CACHE_DIR", str(tmp_path / "cache"))
    return resource


def _file_text(f: skein.File) -> str:
    return Path(f.source[len("file://"):]).read_text()


def test_skein_config_ships_the_editable_packages_index(fake_artifact, toy_editable):
    for config in (scb.build("m", package_path=str(fake_artifact)),
                   scb.build_with_func(len, ["x"], package_path=str(fake_artifact)),
                   scb.build("m", package_path=str(fake_artifact), process_logs=print)):
        assert "editable_toy" in config.files
        index = config.files[launch.EDITABLE_PACKAGES_INDEX]
        assert str(index.type) == "FILE"
        # packages only, as the original's get_editable_requirements() lists them
        assert _file_text(index) == "toy_pkg\n"


def test_submitted_application_ships_the_editable_packages_index(fake_artifact, toy_editable):
    from tests.skein.test_skein_launcher import FakeClient, _service

    client = FakeClient()
    skein_launcher.submit(client, "m", package_path=str(fake_artifact))
    skein_launcher.submit_func(client, len, args=["x"], package_path=str(fake_artifact))
    for spec in client.specs:
        files = _service(spec).files
        assert _file_text(files[launch.EDITABLE_PACKAGES_INDEX]) == "toy_pkg\n"


def test_no_editable_no_index(fake_artifact):
    config = scb.build_with_func(len, ["x"], package_path=str(fake_artifact))
    assert launch.EDITABLE_PACKAGES_INDEX not in config.files


def test_get_editable_requirements_inside_the_container(fake_artifact, toy_editable,
                                                        container, tmp_path):
    def probe():
        from cluster_pack import packaging
        return packaging.get_editable_requirements()

    config = scb.build_with_func(probe, package_path=str(fake_artifact))
    out = container(config.script, config.files)
    assert out.returncode == 0, out.stderr
    line = next(ln for ln in out.stderr.splitlines() if "probe returned" in ln)
    found = ast.literal_eval(line.split("probe returned ", 1)[1])
    assert found == {"toy_pkg": str(tmp_path / "container" / "editable_toy" / "toy_pkg")}


# -- the runner zip ----------------------------------------------------------------------

@pytest.fixture
def bare_artifact(tmp_path) -> Path:
    """An ``env.pex`` WITHOUT cluster-pack nor cloudpickle: this interpreter with ``-S``
    (no site-packages), like an environment published by upload_spec."""
    pex = tmp_path / "bare" / "env.pex"
    pex.parent.mkdir()
    pex.write_text(f"#!/bin/sh\nexec {sys.executable} -S \"$@\"\n")
    pex.chmod(0o755)
    probe = subprocess.run([str(pex), "-c", "import cloudpickle"], capture_output=True)
    assert probe.returncode != 0  # really bare
    return pex


def test_runner_zip_is_content_named_and_shadows_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("C_PACK_CACHE_DIR", str(tmp_path / "cache"))
    first, second = launch.function_runner_resource(), launch.function_runner_resource()
    assert first == second and first.name == "cluster_pack_runner.zip"
    assert Path(first.source).name == f"cluster_pack_runner-{first.sha256[:16]}.zip"
    with zipfile.ZipFile(first.source) as zf:
        names = zf.namelist()
        assert zf.read("cluster_pack_runner.py") == Path(run_function.__file__).read_bytes()
    # importable at the top level: the runner only (the vendored cloudpickle is not on
    # sys.path unless the runner puts it there)
    assert {n.split("/")[0] for n in names} == {"cluster_pack_runner.py", "cluster_pack_vendor"}
    assert "cluster_pack_vendor/cloudpickle/__init__.py" in names


def test_function_runs_in_an_environment_without_cluster_pack(bare_artifact, container):
    def add(a, b):
        import cloudpickle as cp
        shipped = "cluster_pack_runner.zip" in cp.__file__
        return {"sum": a + b, "cloudpickle_from_runner_zip": shipped}

    config = scb.build_with_func(add, [2, 3], package_path=str(bare_artifact))
    assert f"-m {launch.FUNCTION_RUNNER_STANDALONE_MODULE} function_" in config.script
    out = container(config.script, config.files)
    assert out.returncode == 0, out.stderr
    assert "add returned {'sum': 5, 'cloudpickle_from_runner_zip': True}" in out.stderr


@pytest.mark.parametrize("fails", [False, True])
def test_process_logs_in_an_environment_without_cluster_pack(bare_artifact, container,
                                                             tmp_path, fails):
    job = tmp_path / "bare_job.py"
    job.write_text("import sys\nprint('BARE JOB RAN', flush=True)\n"
                   f"sys.exit({1 if fails else 0})\n")

    def record(path):
        with open(path) as f:
            content = f.read()
        print("PROCESS-LOGS " + content.replace("\n", "|"), flush=True)

    config = scb.build("bare_job", package_path=str(bare_artifact), additional_files=[str(job)],
                       process_logs=record)
    out = container(config.script, config.files)
    assert out.returncode == (1 if fails else 0), out.stderr
    assert "PROCESS-LOGS BARE JOB RAN|" in out.stdout


def test_submit_func_on_a_bare_environment(bare_artifact, tmp_path):
    from tests.skein.conftest import run_container
    from tests.skein.test_skein_launcher import FakeClient, _service

    client = FakeClient()
    skein_launcher.submit_func(client, lambda: 40 + 2, package_path=str(bare_artifact))
    service = _service(client.specs[0])
    assert "cluster_pack_runner.zip" in service.files
    spec = launch.function_launch_spec(lambda: 40 + 2, package_path=str(bare_artifact))
    out = run_container(yarn.container_script(spec), yarn.files_of(spec), tmp_path / "c")
    assert out.returncode == 0, out.stderr
    assert "<lambda> returned 42" in out.stderr


def _chosen_cloudpickle(tmp_path: Path, env_version: str = "", wanted: str = "") -> str:
    """Which cloudpickle the runner zip's runner loads, for an environment holding a
    cloudpickle ``env_version`` (none if empty) and a function pickled by ``wanted``."""
    runner = launch.function_runner_resource().source
    path = [runner]
    if env_version:
        fake = tmp_path / f"env-{env_version}"
        (fake / "cloudpickle").mkdir(parents=True, exist_ok=True)
        (fake / "cloudpickle" / "__init__.py").write_text(f"__version__ = {env_version!r}\n")
        path.insert(0, str(fake))
    code = ("import sys; sys.path[:0] = %r\n"
            "import cluster_pack_runner\n"
            "print(cluster_pack_runner.load_cloudpickle().__file__)") % path
    env = {"PATH": "/usr/bin:/bin"}
    if wanted:
        env[run_function.PICKLER_VERSION_ENV_VAR] = wanted
    out = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True,
                         env=env, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_runner_prefers_the_environments_cloudpickle_of_the_same_major(tmp_path, monkeypatch):
    monkeypatch.setenv("C_PACK_CACHE_DIR", str(tmp_path / "cache"))
    driver = cloudpickle.__version__
    major = driver.split(".")[0]
    vendored = "cluster_pack_runner-"  # <the runner zip>/cluster_pack_vendor/cloudpickle
    # none in the environment: the shipped one
    assert vendored in _chosen_cloudpickle(tmp_path, wanted=driver)
    # same major version: the environment's own
    assert f"env-{major}.0.0" in _chosen_cloudpickle(tmp_path, f"{major}.0.0", driver)
    # another major version (another pickle format): the shipped one
    assert vendored in _chosen_cloudpickle(tmp_path, "1.6.0", driver)
    # an older launcher that did not say: the environment's
    assert "env-1.6.0" in _chosen_cloudpickle(tmp_path, "1.6.0")


def test_original_entry_point_still_runs_with_cluster_pack(tmp_path):
    path = tmp_path / "function.dat"
    path.write_bytes(cloudpickle.dumps({"func": print, "args": ["from cluster_pack"]}))
    for module in ("cluster_pack.skein._execute_fun", "cluster_pack.launch.run_function"):
        out = subprocess.run([sys.executable, "-m", module, str(path)],
                             capture_output=True, text=True, cwd=tmp_path)
        assert out.returncode == 0, out.stderr
        assert "from cluster_pack" in out.stdout
