"""YARN through skein, on the harness's real MiniYARNCluster + HDFS.

Every submission runs in a subprocess with the python of a REAL test venv (see
conftest.py), so the environment packed and published to HDFS is that venv: cluster-pack
(editable), skein, hdfs-native, tomli_w (not in the driver env) and the editable toy
project ``cpack_toy``.
"""

from __future__ import annotations

import sys

import pytest

from tests.venvs import REPO, build_venv, install, remove_at_teardown

pytestmark = [pytest.mark.yarn, pytest.mark.hdfs, pytest.mark.timeout(900)]

PRELUDE = """
import json, os, sys, time
import skein
import cluster_pack
from cluster_pack.skein import skein_launcher

PKG = {pkg!r}
DEFAULT_FS = {default_fs!r}

def logs_of(client, app_id, n=None):
    logs = skein_launcher.get_application_logs(client, app_id, wait_for_nb_logs=n, log_tries=10)
    return dict(logs.items()) if logs else {{}}

def done(**kw):
    print("RESULT:" + json.dumps(kw), flush=True)
"""

NASTY = ["two words", "it's", 'say "hi"', "$HOME", "${PATH}", "a;b", "`id`", "$(id)",
         "line1\nline2", "back\\slash", "*", "", "--flag=x y", "&& echo pwned |"]


@pytest.fixture
def drive(run_driver, published_env, hadoop_cluster):
    def go(body: str, **kw):
        code = PRELUDE.format(pkg=published_env, default_fs=hadoop_cluster.default_fs) + body
        return run_driver(code, **kw)
    return go


def _all(logs):
    return "\n".join(logs.values())


def test_published_env_is_parts_localized_privately(drive):
    result = drive("""
from cluster_pack.launch import spec as launch
from cluster_pack.launch import yarn
spec = launch.module_launch_spec("cpack_toy.job", package_path=PKG, include_editables=False)
files = yarn.files_of(spec)
done(layout=spec.manifest.layout, n_parts=len(spec.manifest.parts), argv=spec.argv,
     files={name: [f.source, str(f.visibility), str(f.type)] for name, f in files.items()})
""")
    assert result["layout"] == "parts"
    assert result["argv"][0] == "./test.pex/__main__.py"
    assert len(result["files"]) == result["n_parts"] > 3  # distinct parts (sha256) only
    for name, (source, visibility, kind) in result["files"].items():
        assert name.startswith("cpack-") and "/envs/.cluster-pack-parts/" in source
        assert (visibility, kind) == ("PRIVATE", "FILE"), (name, visibility, kind)


def test_submit_module_args_and_env_arrive_unchanged(drive):
    result = drive(f"""
NASTY = {NASTY!r}
with skein.Client() as client:
    t0 = time.monotonic()
    app_id = skein_launcher.submit(
        client, "cpack_toy.job", args=NASTY, package_path=PKG, memory="512 MiB",
        env_vars={{"CPACK_TEST_VAR": "\\n".join(NASTY)}})
    ok = skein_launcher.wait_for_finished(client, app_id, poll_every_secs=1)
    seconds = time.monotonic() - t0
    done(app_id=app_id, ok=ok, seconds=seconds, logs=logs_of(client, app_id))
""")
    print(f"\n[yarn] submit(module) -> finished in {result['seconds']:.1f}s", file=sys.stderr)
    assert result["ok"], _all(result["logs"])
    text = _all(result["logs"])
    line = next(ln for ln in text.splitlines() if ln.startswith("TOY-JOB "))
    import json

    payload = json.loads(line[len("TOY-JOB "):])
    assert payload["argv"] == NASTY
    assert payload["env"]["CPACK_TEST_VAR"] == "\n".join(NASTY)
    assert payload["greet"] == "hello yarn"
    assert "pwned" not in text.replace("&& echo pwned |", "")


def test_submit_func_return_value_and_pex_root_reuse(drive):
    result = drive("""
import cpack_toy, tomli_w

def compute(a, b):
    return {"sum": a + b, "toml": cpack_toy.as_toml({"x": a}), "python": sys.executable,
            "package_path": os.environ["C_PACK_PACKAGE_PATH"]}

runs = []
with skein.Client() as client:
    for _ in range(2):
        t0 = time.monotonic()
        app_id = skein_launcher.submit_func(client, compute, args=[2, 3], package_path=PKG,
                                            memory="512 MiB")
        ok = skein_launcher.wait_for_finished(client, app_id, poll_every_secs=1)
        runs.append({"app_id": app_id, "ok": ok, "seconds": time.monotonic() - t0,
                     "logs": logs_of(client, app_id)})
done(runs=runs)
""")
    first, second = result["runs"]
    print(f"\n[yarn] submit_func: 1st app {first['seconds']:.1f}s, 2nd app "
          f"{second['seconds']:.1f}s (PEX_ROOT reused)", file=sys.stderr)
    for run in result["runs"]:
        assert run["ok"], _all(run["logs"])
        text = _all(run["logs"])
        assert "compute returned {'sum': 5, 'toml': 'x = 2\\n'" in text
        # the pex venv is installed under the persistent per-user PEX_ROOT, not ./.pex
        assert "/.cache/cluster-pack/pex_root/venvs/" in text
        assert "test.pex'" in text


def test_num_containers_2(drive):
    result = drive("""
def where():
    return "instance " + os.environ["SKEIN_CONTAINER_ID"]

with skein.Client() as client:
    app_id = skein_launcher.submit_func(client, where, package_path=PKG, num_containers=2,
                                        memory="512 MiB")
    ok = skein_launcher.wait_for_finished(client, app_id, poll_every_secs=1)
    done(ok=ok, logs=logs_of(client, app_id, n=3))
""")
    assert result["ok"], _all(result["logs"])
    text = _all(result["logs"])
    assert "where returned 'instance skein_launcher_0'" in text
    assert "where returned 'instance skein_launcher_1'" in text


def test_failing_function_traceback_and_failed_status(drive):
    result = drive("""
def explode(x):
    raise ValueError(f"boom {x} from the container")

with skein.Client() as client:
    app_id = skein_launcher.submit_func(client, explode, args=[7], package_path=PKG,
                                        memory="512 MiB")
    ok = skein_launcher.wait_for_finished(client, app_id, poll_every_secs=1)
    report = client.application_report(app_id)
    done(ok=ok, final_status=str(report.final_status), logs=logs_of(client, app_id))
""")
    assert result["ok"] is False
    assert result["final_status"] == "FAILED"
    text = _all(result["logs"])
    assert "Traceback (most recent call last)" in text
    assert "ValueError: boom 7 from the container" in text


def test_process_logs_and_pre_script_hook(drive):
    result = drive("""
import uuid
target = f"{DEFAULT_FS}/user/{cluster_pack.settings.get_current_user()}/logs/{uuid.uuid4().hex}.log"

def upload(path):
    from cluster_pack.skein import skein_launcher as sl
    print("PROCESS-LOGS got", path)
    sl.upload_logs_to_hdfs(target, path)

hook = 'export CPACK_HOOK_VAR="set by the hook"; echo "HOOK RAN in $(basename "$PWD")"'
with skein.Client() as client:
    app_id = skein_launcher.submit(client, "cpack_toy.job", args=["x"], package_path=PKG,
                                   memory="512 MiB", pre_script_hook=hook, process_logs=upload)
    ok = skein_launcher.wait_for_finished(client, app_id, poll_every_secs=1)
    fs, path = cluster_pack.filesystem.resolve_filesystem_and_path(target)
    uploaded = fs.cat_file(path).decode()
    done(ok=ok, uploaded=uploaded, logs=logs_of(client, app_id))
""")
    assert result["ok"], _all(result["logs"])
    text = _all(result["logs"])
    assert "HOOK RAN in container_" in text
    assert "PROCESS-LOGS got output.log" in text
    # output.log (the job's own output, tee'd) reached HDFS through the process_logs hook
    assert "HOOK RAN in container_" in result["uploaded"]
    assert '"CPACK_HOOK_VAR": "set by the hook"' in result["uploaded"]


def test_job_launches_a_child_job(drive, hadoop_cluster):
    bin_dir = hadoop_cluster.env["CLUSTER_PACK_HARNESS_BIN"]
    result = drive(f"""
def child(n):
    import tomli_w, cpack_toy
    return ("child", n * 2, os.environ["C_PACK_PACKAGE_PATH"], cpack_toy.greet("child"))

def parent():
    import time
    import skein
    import cluster_pack
    from cluster_pack.skein import skein_launcher as sl
    t0 = time.monotonic()
    path, _ = cluster_pack.upload_env()  # inside a container: reuses, never repacks
    reuse_seconds = time.monotonic() - t0
    with skein.Client() as client:
        app_id = sl.submit_func(client, child, args=[21], memory="512 MiB", name="child")
        ok = sl.wait_for_finished(client, app_id, poll_every_secs=1)
        logs = sl.get_application_logs(client, app_id, log_tries=10)
    text = "\\n".join(logs.values()) if logs else ""
    local = os.environ["C_PACK_LOCAL_ARTIFACT"]
    return {{"child_app": app_id, "child_ok": ok, "path": path,
            "local_artifact": [os.path.basename(local), os.path.isdir(local),
                               os.path.isfile(os.path.join(local, "PEX-INFO"))],
            "reuse_seconds": round(reuse_seconds, 2),
            "child_result_logged": "child returned ('child', 42, " + repr(PKG) in text}}

with skein.Client() as client:
    app_id = skein_launcher.submit_func(
        client, parent, package_path=PKG, memory="768 MiB", name="parent",
        env_vars={{"PATH": {bin_dir!r} + ":/usr/local/bin:/usr/bin:/bin"}})
    ok = skein_launcher.wait_for_finished(client, app_id, poll_every_secs=1)
    done(ok=ok, app_id=app_id, logs=logs_of(client, app_id))
""")
    text = _all(result["logs"])
    assert result["ok"], text
    line = next(ln for ln in text.splitlines() if "parent returned" in ln)
    assert "'child_ok': True" in line, text
    assert "'child_result_logged': True" in line, text
    assert f"'path': '{hadoop_cluster.default_fs}" in line and "test.pex'" in line
    # the parent ran from the parts layout: its local artifact is the assembled directory
    assert "'local_artifact': ['test.pex', True, True]" in line, line


def test_skein_project_example(yarn_venv, driver_env):
    """examples/skein-project: installed editable in the venv, ships itself (2 containers)."""
    import subprocess

    project = REPO / "examples" / "skein-project"
    install(yarn_venv.root, [], editables=[project], options=["--no-deps"])
    out = subprocess.run([yarn_venv.python, "-m", "skein_project.client", "--n", "100"],
                         env=driver_env, cwd=yarn_venv.root.parent, capture_output=True,
                         text=True, timeout=600)
    assert out.returncode == 0, out.stdout + out.stderr[-5000:]
    assert out.stdout.count("sum_of_squares(100) = 328350") == 2, out.stdout
    assert "worker skein-project_0" in out.stdout and "worker skein-project_1" in out.stdout


# -- a new version of the environment: only its new parts are localized ----------------------

LEAF_PYPROJECT = """\
[build-system]
requires = ["setuptools>=64"]
build-backend = "setuptools.build_meta"

[project]
name = "cpack-leaf"
version = "{version}"

[tool.setuptools]
py-modules = ["cpack_leaf"]
"""

DELTA_DRIVER = """
import json, os, sys, time
import skein
import cluster_pack
from cluster_pack.skein import skein_launcher

PKG = {pkg!r}

def report():
    import json, os
    import cpack_leaf
    links = {{n: os.path.realpath(n) for n in sorted(os.listdir(".")) if n.startswith("cpack-")}}
    filecache = os.path.dirname(os.path.dirname(next(iter(links.values()))))
    print("DELTA " + json.dumps({{"version": cpack_leaf.VERSION, "links": links,
                                  "filecache": sorted(os.listdir(filecache))}}), flush=True)

t0 = time.monotonic()
path, _ = cluster_pack.upload_env(package_path=PKG)
published = time.monotonic() - t0
from cluster_pack.store import publish
from cluster_pack.store.storage import Store
store, p = Store.for_url(path)
manifest = publish.read_manifest(store, p)
with skein.Client() as client:
    app_id = skein_launcher.submit_func(client, report, package_path=path, memory="512 MiB")
    ok = skein_launcher.wait_for_finished(client, app_id, poll_every_secs=1)
    logs = skein_launcher.get_application_logs(client, app_id, log_tries=10)
text = "\\n".join(logs.values()) if logs else ""
line = next((ln for ln in text.splitlines() if ln.startswith("DELTA ")), "DELTA null")
print("RESULT:" + json.dumps({{
    "ok": ok, "app_id": app_id, "published": published, "logs": text[-6000:],
    "report": json.loads(line[len("DELTA "):]),
    "parts": {{pt.path: pt.sha256 for pt in manifest.parts}}}}), flush=True)
"""


@pytest.fixture(scope="module")
def delta_venv(tmp_path_factory):
    """A venv whose one distribution (``cpack-leaf``, a regular install) gets a new
    version between two publishes."""
    base = tmp_path_factory.mktemp("delta_venv")
    yield build_venv(base / "venv", ["skein", "hdfs-native"], editables=[REPO]), base
    remove_at_teardown(base)


def _install_leaf(venv, base, version):
    project = base / f"leaf-{version}"
    project.mkdir()
    (project / "pyproject.toml").write_text(LEAF_PYPROJECT.format(version=version))
    (project / "cpack_leaf.py").write_text(f"VERSION = {version!r}\n")
    install(venv, [str(project)])


def _delta_run(venv, base, driver_env, pkg):
    import json
    import subprocess

    script = base / "delta_driver.py"
    script.write_text(DELTA_DRIVER.format(pkg=pkg))
    proc = subprocess.run([str(venv / "bin" / "python"), str(script)], cwd=base,
                          env=driver_env, capture_output=True, text=True, timeout=600)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT:")]
    assert proc.returncode == 0 and lines, proc.stdout[-4000:] + proc.stderr[-6000:]
    return json.loads(lines[-1][len("RESULT:"):])


def test_new_version_localizes_only_its_new_parts(delta_venv, driver_env, hadoop_cluster):
    """Two applications of the same user on the node, the second after one distribution
    changed and the environment was republished under the same path: YARN's private
    cache (per node and user) serves every unchanged part from the first application's
    copy, only the new parts are localized, and both versions run."""
    import getpass
    import os

    venv, base = delta_venv
    user = os.environ.get("C_PACK_USER") or getpass.getuser()
    pkg = f"{hadoop_cluster.default_fs}/user/{user}/envs/delta.pex"
    _install_leaf(venv, base, "1.0")
    first = _delta_run(venv, base, driver_env, pkg)
    _install_leaf(venv, base, "2.0")
    second = _delta_run(venv, base, driver_env, pkg)
    print(f"\n[yarn delta] publish v1 {first['published']:.1f}s, v2 {second['published']:.1f}s",
          file=sys.stderr)
    for run, version in ((first, "1.0"), (second, "2.0")):
        assert run["ok"], run["logs"]
        assert run["report"]["version"] == version, run["logs"]

    # the manifests: one distribution changed, so few parts differ
    new_parts = {path: sha for path, sha in second["parts"].items()
                 if sha not in set(first["parts"].values())}
    assert any(path.startswith(".deps/cpack_leaf-2.0-") for path in new_parts), new_parts
    assert all(not path.startswith(".deps/") or "cpack_leaf" in path for path in new_parts)
    assert len(new_parts) < len(second["parts"]) / 2, new_parts

    # the node: unchanged parts are the very files localized for the first application
    links1, links2 = first["report"]["links"], second["report"]["links"]
    shared = {f"cpack-{sha[:32]}" for sha in second["parts"].values()
              if sha in set(first["parts"].values())}
    fresh = {f"cpack-{sha[:32]}" for sha in new_parts.values()}
    assert shared and fresh and set(links2) == shared | fresh
    for name in shared:
        assert links2[name] == links1[name], name  # not localized again
    for name in fresh:
        assert links2[name] not in set(links1.values()), name
        assert "/usercache/" in links2[name] and "/filecache/" in links2[name], links2[name]
    # the per-user cache grew by the new parts only
    added = set(second["report"]["filecache"]) - set(first["report"]["filecache"])
    assert len(added) == len(fresh), (added, fresh)


# -- editable_packages_index: the editable packages are found again inside a job -------------

def test_editable_packages_index_inside_the_container(drive):
    result = drive("""
def probe():
    from cluster_pack import packaging
    with open(packaging.EDITABLE_PACKAGES_INDEX) as f:
        index = f.read().split()
    return {"index": index, "found": packaging.get_editable_requirements()}

with skein.Client() as client:
    app_id = skein_launcher.submit_func(client, probe, package_path=PKG, memory="512 MiB")
    ok = skein_launcher.wait_for_finished(client, app_id, poll_every_secs=1)
    done(ok=ok, logs=logs_of(client, app_id))
""")
    import ast

    text = _all(result["logs"])
    assert result["ok"], text
    line = next(ln for ln in text.splitlines() if "probe returned " in ln)
    returned = ast.literal_eval(line.split("probe returned ", 1)[1])
    # the venv's editable projects: cpack_toy, and cluster-pack itself (src/ packages)
    assert "cpack_toy" in returned["index"] and "cluster_pack" in returned["index"]
    found = returned["found"]
    assert set(found) == set(returned["index"])
    # the unpacked copy of the editable zip, in the container's working directory
    parent, package = found["cpack_toy"].rsplit("/", 2)[-2:]
    assert (package, parent.startswith("editable_")) == ("cpack_toy", True), found
    assert "/container_" in found["cpack_toy"], found


# -- an environment without cluster-pack nor cloudpickle (upload_spec) -----------------------

SPEC_DRIVER = """
import json, os, sys, time
import skein
import cluster_pack
from cluster_pack.skein import skein_launcher

DEFAULT_FS = {default_fs!r}
REQUIREMENTS = {requirements!r}
JOB = {job!r}

def probe(x):
    import importlib.util, cloudpickle, six
    return {{"double": x * 2, "six": six.__version__,
            "cluster_pack_absent": importlib.util.find_spec("cluster_pack") is None,
            "shipped_cloudpickle": "cluster_pack_runner.zip" in cloudpickle.__file__}}

def show_logs(path):
    import importlib.util
    with open(path) as f:
        content = f.read()
    print("PROCESS-LOGS of " + path + ": " + content.replace("\\n", "|"), flush=True)
    print("PROCESS-LOGS cluster_pack absent:", importlib.util.find_spec("cluster_pack") is None)

user = cluster_pack.settings.get_current_user()
target = f"{{DEFAULT_FS}}/user/{{user}}/envs/specs"
path = cluster_pack.upload_spec(REQUIREMENTS, package_path=target)
runs = {{}}
with skein.Client() as client:
    for kind in ("func", "module"):
        if kind == "func":
            app_id = skein_launcher.submit_func(client, lambda: probe(21), package_path=path,
                                                memory="512 MiB")
        else:
            app_id = skein_launcher.submit(client, "spec_job", args=["a b"], package_path=path,
                                           additional_files=[JOB], process_logs=show_logs,
                                           memory="512 MiB")
        ok = skein_launcher.wait_for_finished(client, app_id, poll_every_secs=1)
        logs = skein_launcher.get_application_logs(client, app_id, log_tries=10)
        runs[kind] = {{"ok": ok, "logs": "\\n".join(logs.values()) if logs else ""}}
print("RESULT:" + json.dumps({{"path": path, "runs": runs}}), flush=True)
"""


@pytest.fixture(scope="module")
def spec_venv(tmp_path_factory):
    """A driver venv with cluster-pack installed as a REGULAR package (as users have it):
    nothing editable gets shipped, so the container has only what upload_spec packed."""
    import shutil

    base = tmp_path_factory.mktemp("spec_venv")
    source = base / "cluster-pack-src"  # a copy: building in the checkout would write in it
    shutil.copytree(REPO / "src", source / "src",
                    ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    venv = build_venv(base / "venv", [str(source), "skein", "hdfs-native"])
    project = base / "specproj"
    project.mkdir()
    (project / "requirements.txt").write_text("six==1.16.0\n")  # no cluster-pack, no cloudpickle
    job = base / "spec_job.py"
    job.write_text("import sys, six\n"
                   "print('SPEC-JOB', sys.argv[1:], six.__version__, flush=True)\n")
    yield venv, base, project / "requirements.txt", job
    remove_at_teardown(base)


def test_submit_func_and_process_logs_on_an_upload_spec_environment(spec_venv, driver_env,
                                                                    hadoop_cluster):
    import json
    import subprocess

    venv, base, requirements, job = spec_venv
    script = base / "spec_driver.py"
    script.write_text(SPEC_DRIVER.format(default_fs=hadoop_cluster.default_fs,
                                         requirements=str(requirements), job=str(job)))
    proc = subprocess.run([str(venv / "bin" / "python"), str(script)], cwd=base,
                          env=driver_env, capture_output=True, text=True, timeout=800)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT:")]
    assert proc.returncode == 0 and lines, proc.stdout[-4000:] + proc.stderr[-6000:]
    result = json.loads(lines[-1][len("RESULT:"):])
    assert result["path"].endswith("/envs/specs/cluster_pack_specproj.pex")

    func = result["runs"]["func"]
    assert func["ok"], func["logs"][-6000:]
    assert ("<lambda> returned {'double': 42, 'six': '1.16.0', 'cluster_pack_absent': True, "
            "'shipped_cloudpickle': True}") in func["logs"], func["logs"][-6000:]

    module = result["runs"]["module"]
    assert module["ok"], module["logs"][-6000:]
    # process_logs ran in the container, on output.log holding the job's own output
    assert "PROCESS-LOGS of output.log: SPEC-JOB ['a b'] 1.16.0|" in module["logs"], \
        module["logs"][-6000:]
    assert "PROCESS-LOGS cluster_pack absent: True" in module["logs"]
