"""Hostile and odd input: paths, file names, symlinks, archives, argument/env values."""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
import zipfile
from pathlib import Path

import pytest

from cluster_pack.errors import ClusterPackError
from cluster_pack.launch import local as runner
from cluster_pack.launch import spec as launch
from cluster_pack.pack import editables
from cluster_pack.store import publish
from tests.reliability.conftest import make_packed_dir, make_pex, publish_parts, tmp_entries

HOSTILE_VALUES = [
    "$HOME", "${PATH}", "`touch pwned_backtick`", "$(touch pwned_subshell)",
    "a; touch pwned_semicolon", "a && touch pwned_and", "a | cat", "line1\nline2\n",
    "'single' \"double\" \\back", "*", "~", "-e", "", " lead and trail ", "ü ☃ 日本",
    "%s %d {0}", "!!", "#comment", "\t tab",
]
ECHO_MAIN = ("import json, os, sys\n"
             "print(json.dumps({'argv': sys.argv[1:], "
             "'env': {k: v for k, v in os.environ.items() if k.startswith('HOSTILE_')}}))\n")


def _check_echo(result, workdir: Path, summary):
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen["argv"] == HOSTILE_VALUES
    assert seen["env"] == {f"HOSTILE_{i}": v for i, v in enumerate(HOSTILE_VALUES)}
    assert not list(workdir.glob("pwned*")) and not list(Path.cwd().glob("pwned*"))
    summary.add("hostile_inputs", 2 * len(HOSTILE_VALUES))


def test_args_and_env_arrive_unchanged_through_the_local_launcher(tmp_path, summary):
    url = str(tmp_path / "store" / "echo.pex")
    publish.publish_zip(str(make_pex(tmp_path / "src" / "echo.pex", main=ECHO_MAIN)), url)
    spec = launch.build_launch_spec(
        HOSTILE_VALUES, package_path=url, include_editables=False,
        env_vars={f"HOSTILE_{i}": v for i, v in enumerate(HOSTILE_VALUES)})
    workdir = tmp_path / "work"
    _check_echo(runner.run(spec, workdir=workdir, node_dir=tmp_path / "node"), workdir, summary)
    summary.add("runs")


def test_args_and_env_arrive_unchanged_through_the_yarn_container_script(tmp_path, summary):
    """The exact script a YARN container runs (yarn.container_script), run by bash."""
    pytest.importorskip("skein")
    from cluster_pack.launch import yarn

    url = str(tmp_path / "store" / "echo.pex")
    publish.publish_zip(str(make_pex(tmp_path / "src" / "echo.pex", main=ECHO_MAIN)), url)
    spec = launch.build_launch_spec(
        HOSTILE_VALUES, package_path=url, include_editables=False,
        env_vars={f"HOSTILE_{i}": v for i, v in enumerate(HOSTILE_VALUES)})
    workdir = tmp_path / "container"
    workdir.mkdir()
    os.symlink(runner.localize(spec.resources[0], tmp_path / "node"), workdir / "echo.pex")
    script = yarn.container_script(spec)
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path)}
    proc = subprocess.run(["bash", "-c", script], cwd=workdir, env=env, capture_output=True,
                          text=True)
    _check_echo(proc, workdir, summary)
    summary.add("runs")


ODD_NAME = "odd 'name\" $x;`id` ü.pex"  # an environment name is part of the script


@pytest.mark.parametrize("through", ["runner", "yarn"])
def test_parts_env_with_an_odd_name_and_hostile_args_runs_unchanged(tmp_path, through,
                                                                    summary):
    """The parts layout: the assembly lines (directories, links, copies) and the run
    command quote the environment's name; args and env arrive unchanged."""
    url = str(tmp_path / "store" / ODD_NAME)
    publish_parts(make_packed_dir(tmp_path / "src" / ODD_NAME, main=ECHO_MAIN), url)
    spec = launch.build_launch_spec(
        HOSTILE_VALUES, package_path=url, include_editables=False,
        env_vars={f"HOSTILE_{i}": v for i, v in enumerate(HOSTILE_VALUES)})
    assert spec.setup and spec.argv[0] == f"./{ODD_NAME}/__main__.py"
    workdir = tmp_path / "container"
    if through == "runner":
        result = runner.run(spec, workdir=workdir, node_dir=tmp_path / "node")
    else:
        pytest.importorskip("skein")
        from cluster_pack.launch import yarn

        workdir.mkdir()
        for resource in spec.resources:  # what YARN's localization does
            os.symlink(runner.localize(resource, tmp_path / "node"), workdir / resource.name)
        result = subprocess.run(["bash", "-c", yarn.container_script(spec)], cwd=workdir,
                                env={"PATH": os.environ["PATH"], "HOME": str(tmp_path)},
                                capture_output=True, text=True)
    _check_echo(result, workdir, summary)
    assert (workdir / ODD_NAME / "PEX-INFO").is_file()
    assert [p.name for p in workdir.iterdir() if ".cpack-tmp-" in p.name] == []
    summary.add("runs")


def _hostile_parts_manifest(tmp_path, field, value):
    """A parts manifest with one hostile field, whose own sha256 is recomputed (so only
    the check of that field can refuse it)."""
    from cluster_pack.pack import parts as parts_module

    url = str(tmp_path / "store" / "evil.pex")
    publish_parts(make_packed_dir(tmp_path / "src" / "evil.pex"), url)
    mpath = Path(url).with_suffix(".json")
    data = json.loads(mpath.read_text())
    victim = next(p for p in data["parts"] if p["path"].endswith(".whl"))
    victim[field] = value
    try:
        data["sha256"] = parts_module.tree_sha256(
            [parts_module.Part(str(p["path"]), str(p["sha256"]), p["size"],
                               bool(p.get("executable"))) for p in data["parts"]])
    except TypeError:
        pass
    mpath.write_text(json.dumps(data))
    return url, mpath


HOSTILE_PART_FIELDS = [
    ("path", v) for v in ("../escape.whl", "../../../../tmp/escape", "/etc/passwd",
                          ".deps/../../escape", "./PEX-INFO", ".deps/./x.whl", "..", "",
                          ".deps//x.whl", ".deps/x.whl/", "$(touch pwned_subshell)",
                          "`touch pwned_backtick`", "a;touch pwned_semicolon", "x\ny",
                          "sp ace.whl", "q'uote.whl", "d\"q.whl", "star*.whl",
                          "C:\\x.whl", "ü.whl")
] + [
    ("sha256", v) for v in ("../../../etc/passwd", "A" * 64, "g" * 64, "a" * 63,
                            "a" * 64 + "/x", "$(touch pwned)" + "a" * 50, "")
] + [("size", v) for v in (-1, "12", 1.5, None)]


@pytest.mark.parametrize("field,value", HOSTILE_PART_FIELDS)
def test_hostile_parts_manifest_is_refused(tmp_path, field, value, summary):
    from cluster_pack.errors import IntegrityError
    from cluster_pack.store.manifest import Manifest
    from cluster_pack.store.storage import Store

    url, mpath = _hostile_parts_manifest(tmp_path, field, value)
    summary.add("hostile_inputs")
    with pytest.raises(IntegrityError) as err:
        Manifest.from_json(mpath.read_bytes(), str(mpath))
    assert str(mpath) in str(err.value)
    store, path = Store.for_url(url)
    assert publish.read_manifest(store, path) is None  # a publisher ignores it (rebuilds)
    # a launcher refuses it, naming it: no resource, no script, nothing run
    with pytest.raises(IntegrityError) as err:
        launch.build_launch_spec([], package_path=url, include_editables=False)
    assert str(mpath) in str(err.value)
    assert not list(tmp_path.rglob("pwned*")) and not list(Path.cwd().glob("pwned*"))
    assert not (tmp_path / "escape").exists() and not (tmp_path / "escape.whl").exists()


def test_parts_manifest_without_pex_info_is_refused(tmp_path, summary):
    from cluster_pack.errors import IntegrityError
    from cluster_pack.store.manifest import Manifest

    url, mpath = _hostile_parts_manifest(tmp_path, "path", "PEX-INFO")  # now twice...
    data = json.loads(mpath.read_text())
    data["parts"] = [p for p in data["parts"] if p["path"] != "PEX-INFO"]
    mpath.write_text(json.dumps(data))
    summary.add("hostile_inputs")
    with pytest.raises(IntegrityError, match="PEX-INFO"):
        Manifest.from_json(mpath.read_bytes(), str(mpath))


def test_invalid_env_names_refused(summary):
    for name in ("A B", "A;B", "1A", "", "A=B", "A$(x)"):
        summary.add("hostile_inputs")
        with pytest.raises(ClusterPackError):
            launch.build_launch_spec([], package_path="/x/e.pex", include_editables=False,
                                     env_vars={name: "v"}, manifest=None) \
                if False else launch._check_env_vars({name: "v"})


@pytest.mark.parametrize("entry", ["../../escape.py", "/abs/escape.py", "a/../../escape.py",
                                   "C:/escape.py"])
def test_zip_slip_refused_by_upload_zip(tmp_path, entry, summary):
    evil = make_pex(tmp_path / "evil.pex")
    with zipfile.ZipFile(evil, "a") as zf:
        zf.writestr(entry, "print('owned')")
    target = tmp_path / "store" / "out.pex"
    summary.add("hostile_inputs")
    with pytest.raises(ClusterPackError) as err:
        publish.publish_zip(str(evil), str(target))
    assert "outside the directory" in str(err.value) and str(evil) in str(err.value)
    assert not target.exists() and not target.with_suffix(".json").exists()
    assert tmp_entries(target.parent) == []


def test_zip_slip_refused_by_the_node_even_without_upload_zip(tmp_path, summary):
    """An archive resource crafted by hand (never went through upload_zip)."""
    from cluster_pack.errors import IntegrityError

    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as zf:
        zf.writestr("ok.py", "")
        zf.writestr("../../../escape.py", "print('owned')")
    resource = launch.Resource(str(evil), "pyenv", "archive")
    summary.add("hostile_inputs")
    with pytest.raises(IntegrityError):
        runner.localize(resource, tmp_path / "node")
    assert not list(tmp_path.rglob("escape.py"))


def test_editable_odd_names_and_outside_symlinks(tmp_path, summary):
    project = tmp_path / "proj dir ü 'q\""
    pkg = project / "oddpkg"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    odd = ["sp ace.py", "ünï.py", "q'uote.txt", "d\"q.txt", "semi;colon.txt",
           "dollar$x.txt", "back`tick`.txt", "new\nline.txt"]
    for name in odd:
        (pkg / name).write_text("x = 1\n")
    secret = tmp_path / "outside" / "id_rsa"
    secret.parent.mkdir()
    secret.write_text("PRIVATE KEY")
    (pkg / "link_to_secret").symlink_to(secret)
    (pkg / "link_to_dir").symlink_to(secret.parent, target_is_directory=True)
    (pkg / "inside_link.py").symlink_to(pkg / "sp ace.py")
    for excluded in (".git", "__pycache__", "build"):
        (pkg / excluded).mkdir()
        (pkg / excluded / "junk").write_text("junk")
    zipped = editables.zip_project(
        editables.EditableProject("oddpkg", (("oddpkg", pkg),)), tmp_path / "out")
    names = zipfile.ZipFile(zipped.path).namelist()
    summary.add("hostile_inputs", len(odd) + 5)
    for name in odd:
        assert any(n.endswith(name) for n in names), (name, names)
    assert not any("link_to_secret" in n or "link_to_dir" in n or "id_rsa" in n for n in names)
    assert not any(p in n.split("/") for n in names for p in (".git", "__pycache__", "build"))
    assert all(b"PRIVATE KEY" not in zipfile.ZipFile(zipped.path).read(n) for n in names)


HOSTILE_VENV_JOB = """
import json, os, sys
os.environ.pop("HADOOP_CONF_DIR", None)  # publish to the local store
from cluster_pack.launch import spec as launch
from cluster_pack.store import publish
from cluster_pack.launch import local as runner
r = publish.publish_env()
spec = launch.module_launch_spec("hostile_job", ["$HOME", "`id`", "a;b", "x\\ny"],
                                 package_path=r.path)
res = runner.run(spec)
print(json.dumps({"rc": res.returncode, "out": res.stdout, "err": res.stderr[-3000:],
                  "path": r.path}))
"""


@pytest.mark.slow
def test_real_venv_at_a_hostile_path_publishes_and_runs(tmp_path, summary):
    """A uv venv under spaces/unicode/quotes, with a namespace package, a .pth file, a
    distribution without RECORD and an editable project: publish_env + local run."""
    from tests.venvs import REPO, TestVenv, build_venv

    root = tmp_path / "dir with space ü 'q\" $x"
    root.mkdir()
    projects = []
    for part in ("a", "b"):  # ns.a and ns.b: one namespace package from two distributions
        proj = root / f"ns-{part}"
        (proj / "ns" / part).mkdir(parents=True)
        (proj / "ns" / part / "__init__.py").write_text(f"NAME = {part!r}\n")
        (proj / "pyproject.toml").write_text(textwrap.dedent(f"""
            [build-system]
            requires = ["setuptools>=64"]
            build-backend = "setuptools.build_meta"
            [project]
            name = "ns-{part}"
            version = "0.1"
            [tool.setuptools.packages.find]
            include = ["ns*"]
            namespaces = true
            """))
        projects.append(str(proj))
    edit = root / "edit proj"
    (edit / "src").mkdir(parents=True)
    (edit / "src" / "hostile_job.py").write_text(textwrap.dedent("""
        import json, sys, six, ns.a, ns.b
        print(json.dumps({"argv": sys.argv[1:], "ns": [ns.a.NAME, ns.b.NAME]}))
        """))
    (edit / "pyproject.toml").write_text(textwrap.dedent("""
        [build-system]
        requires = ["setuptools>=64"]
        build-backend = "setuptools.build_meta"
        [project]
        name = "hostile-job"
        version = "0.1"
        [tool.setuptools]
        package-dir = {"" = "src"}
        py-modules = ["hostile_job"]
        """))
    venv = build_venv(root / "venv ü 'q\"", ["six", *projects], editables=[REPO, edit])
    site = next((venv / "lib").glob("python*/site-packages"))
    (site / "zz_extra.pth").write_text("# a comment\n")
    summary.add("hostile_inputs", 4)
    cache = tmp_path / "cache"
    cache.mkdir()
    tv = TestVenv(venv, edit)
    result = tv.json(HOSTILE_VENV_JOB, cache)
    summary.add("runs")
    assert result["rc"] == 0, result["err"]
    seen = json.loads(result["out"].strip().splitlines()[-1])
    assert seen == {"argv": ["$HOME", "`id`", "a;b", "x\ny"], "ns": ["a", "b"]}

    # a distribution installed without RECORD: refused with a clear error naming it,
    # and nothing half-written is published
    for record in site.glob("six-*.dist-info/RECORD"):
        record.unlink()
    summary.add("hostile_inputs")
    proc = tv.run("import os\nos.environ.pop('HADOOP_CONF_DIR', None)\n"
                  "from cluster_pack.store import publish\npublish.publish_env(force_upload=True)\n",
                  cache, check=False)
    assert proc.returncode != 0
    assert "BuildError" in proc.stderr and "six" in proc.stderr and "RECORD" in proc.stderr
    assert tmp_entries(cache / "envs") == []


def test_args_and_env_arrive_unchanged_through_the_dask_and_ray_background_launcher(
        tmp_path, summary):
    # cluster_pack.launch.dask and cluster_pack.launch.ray start their local nodes with this function
    from cluster_pack.launch.processes import start_local_process

    url = str(tmp_path / "store" / "echo.pex")
    publish.publish_zip(str(make_pex(tmp_path / "src" / "echo.pex", main=ECHO_MAIN)), url)
    spec = launch.build_launch_spec(
        HOSTILE_VALUES, package_path=url, include_editables=False,
        env_vars={f"HOSTILE_{i}": v for i, v in enumerate(HOSTILE_VALUES)})
    workdir = tmp_path / "work"
    process = start_local_process(spec, "echo", workdir=workdir, node_dir=tmp_path / "node")
    returncode = process.popen.wait(timeout=120)
    output = (workdir / "output.log").read_text()
    result = subprocess.CompletedProcess([], returncode, output, output)
    _check_echo(result, workdir, summary)
    summary.add("runs")


def test_args_arrive_unchanged_through_the_spark_python_launcher(tmp_path, summary):
    # PYSPARK_PYTHON points at this launcher; Spark passes the worker's arguments to it
    from cluster_pack.launch import spark as spark_conf

    pex = make_pex(tmp_path / "echo.pex", main=ECHO_MAIN)
    launcher = spark_conf.write_launcher("./echo.pex", tmp_path)  # as interpreter_cmd gives it
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path),
           **{f"HOSTILE_{i}": v for i, v in enumerate(HOSTILE_VALUES)}}
    result = subprocess.run([str(launcher), *HOSTILE_VALUES], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=120)
    assert pex.exists()
    _check_echo(result, tmp_path, summary)
    summary.add("runs")
