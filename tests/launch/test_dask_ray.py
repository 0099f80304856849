"""Fast unit tests of cluster_pack.launch.dask / cluster_pack.launch.ray (no cluster started)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cluster_pack.errors import ConfigurationError
from cluster_pack.launch import dask as cp_dask
from cluster_pack.launch import processes
from cluster_pack.launch import ray as cp_ray
from cluster_pack.launch.spec import LaunchSpec

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def artifact(tmp_path):
    """A fake published .pex with its manifest sidecar absent (build_launch_spec copes)."""
    path = tmp_path / "store" / "env.pex"
    path.parent.mkdir()
    path.write_bytes(b"not really a pex")
    return str(path)


def test_module_names_do_not_shadow_the_real_packages():
    code = ("import cluster_pack.launch.dask, cluster_pack.launch.ray, dask, json; "
            "print(json.dumps([dask.__name__, dask.__file__]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=REPO / "src")
    if "No module named 'dask'" in out.stderr:
        pytest.skip("dask is not installed in the test env")
    assert out.returncode == 0, out.stderr
    name, path = json.loads(out.stdout)
    assert name == "dask" and "cluster_pack" not in path


def test_worker_launch_spec_uses_the_engine_neutral_spec(artifact):
    spec = cp_dask.worker_launch_spec(artifact, "tcp://10.1.2.3:8786", ["--nthreads", "4"],
                                      env_vars={"MY_VAR": "x y"}, include_editables=False)
    assert spec.argv == ["./env.pex", "-m", "distributed.cli.dask_worker",
                         "tcp://10.1.2.3:8786", "--nthreads", "4"]
    assert [r.name for r in spec.resources] == ["env.pex"]
    assert spec.env["MY_VAR"] == "x y" and spec.env["C_PACK_PACKAGE_PATH"] == artifact
    script = cp_dask.worker_command(artifact, "tcp://10.1.2.3:8786", include_editables=False)
    assert "export MY_VAR" not in script
    assert script.rstrip().endswith("./env.pex -m distributed.cli.dask_worker tcp://10.1.2.3:8786")


def test_dask_yarn_application_spec(artifact):
    pytest.importorskip("skein")
    app = cp_dask.yarn_application_spec(artifact, n_workers=3, worker_vcores=2,
                                        worker_memory="2 GiB", scheduler_memory="512 MiB",
                                        queue="q", include_editables=False, host="127.0.0.1")
    sched, worker = app.services["dask.scheduler"], app.services["dask.worker"]
    assert sched.instances == 1 and worker.instances == 3
    assert worker.resources.vcores == 2 and worker.resources.memory == 2048
    assert sched.resources.memory == 512
    assert worker.depends == {"dask.scheduler"}
    assert "-m cluster_pack.launch.dask yarn-scheduler --host 127.0.0.1" in sched.script
    assert "-m cluster_pack.launch.dask yarn-worker --host 127.0.0.1 --nthreads 2" in worker.script
    assert f"--memory-limit {int(2048 * 2 ** 20 * 0.9)}" in worker.script
    assert set(worker.files) == {"env.pex"} and app.queue == "q"


def test_ray_yarn_application_spec_and_ports(artifact):
    pytest.importorskip("skein")
    app = cp_ray.yarn_application_spec(artifact, n_workers=2, include_editables=False)
    assert app.services["ray.worker"].instances == 2
    assert app.services["ray.worker"].depends == {"ray.head"}
    assert "-m cluster_pack.launch.ray yarn-head" in app.services["ray.head"].script
    assert "RAY_USAGE_STATS_ENABLED=0" in app.services["ray.head"].script
    a, b = cp_ray.node_args(temp_dir="/tmp/x-a"), cp_ray.node_args(temp_dir="/tmp/x-b")
    ports = lambda args: {x for x in args if x.split("=")[0].endswith("-port")}  # noqa: E731
    assert ports(a) and not ports(a) & ports(b)  # two nodes on one host never collide
    assert "--temp-dir=/tmp/x-a" in a and "--block" in a


def test_picked_ports_are_free_outside_the_ephemeral_range_and_never_handed_out_twice():
    low, _ = cp_ray._ephemeral_ports()
    ports = [cp_ray.free_port() for _ in range(200)]
    assert len(set(ports)) == len(ports)
    assert all(cp_ray._FIRST_PICKED_PORT <= p < low for p in ports)


def test_ray_worker_restarts_reach_the_skein_spec(artifact):
    pytest.importorskip("skein")
    app = cp_ray.yarn_application_spec(artifact, include_editables=False,
                                       worker_max_restarts=3)
    assert app.services["ray.worker"].max_restarts == 3
    assert app.services["ray.head"].max_restarts == 0


class _FakeYarnApp:
    """What failed_containers reads from skein: the report, FAILED containers, the spec."""

    def __init__(self, restarts):
        from types import SimpleNamespace as NS

        self.report = NS(state="RUNNING", final_status="UNDEFINED", diagnostics="")
        self.spec = NS(services={name: NS(max_restarts=n) for name, n in restarts.items()})
        self.failed = [NS(id=f"container_{name}", service_name=name, exit_message="exit 1",
                          yarn_node_http_address="127.0.0.1:8042") for name in restarts]

    def application_report(self, app_id):
        return self.report

    def get_containers(self, services, states):
        assert states == ["FAILED"]
        return [c for c in self.failed if c.service_name in services]

    def get_specification(self):
        return self.spec


def test_a_failed_container_of_a_restartable_service_is_a_warning_not_a_death(caplog):
    from cluster_pack.launch import yarn

    fake = _FakeYarnApp({"ray.head": 0, "ray.worker": 2})
    with caplog.at_level("WARNING"):
        for _ in range(2):  # the watcher asks again and again: one warning per container
            dead = yarn.failed_containers(fake, "app_1", fake, ["ray.head", "ray.worker"])
            assert dead == ["container_ray.head (ray.head) failed on 127.0.0.1:8042: exit 1"]
    warned = [r.getMessage() for r in caplog.records if "container_ray.worker" in r.getMessage()]
    assert len(warned) == 1 and "starts another one" in warned[0]
    fake.report.state = "FINISHED"  # restarts exhausted: skein fails the application
    assert "is FINISHED" in yarn.failed_containers(fake, "app_1", fake, ["ray.worker"])[0]


def test_a_failed_ray_node_prints_why_from_rays_own_logs(tmp_path, capsys):
    logs = tmp_path / "session_latest" / "logs"
    logs.mkdir(parents=True)
    (logs / "raylet.out").write_text("".join(f"line {i}\n" for i in range(100)))
    (logs / "ray_process_exit.log").write_text("dashboard_agent failed to bind port 20001\n")
    status = cp_ray._run_node("worker", [sys.executable, "-c", "raise SystemExit(3)"],
                              str(tmp_path))
    err = capsys.readouterr().err
    assert status == 3 and "ray worker exited with status 3" in err
    assert "failed to bind port 20001" in err
    assert "line 99" in err and "line 69" not in err  # the tail only


def test_runtime_env_for():
    env = cp_ray.runtime_env_for("/shared/envs/me.pex", pip=None)
    assert env["py_executable"] == "/shared/envs/me.pex"
    assert env["env_vars"]["C_PACK_PACKAGE_PATH"] == "/shared/envs/me.pex"
    assert env["env_vars"]["RAY_USAGE_STATS_ENABLED"] == "0"
    big = cp_ray.runtime_env_for("hdfs://nn/envs/me.pex.zip", local_artifact="/nfs/me env")
    assert big["py_executable"].endswith("'/nfs/me env/__main__.py'")
    with pytest.raises(ConfigurationError, match="remote URL"):
        cp_ray.runtime_env_for("hdfs://nn/envs/me.pex")


def test_local_process_stop_kills_the_whole_session_even_orphans(tmp_path):
    # an orphan (double fork, reparented to init) in its own process group: still reaped
    # (a process that starts its own *session* escapes; none of dask/ray's does)
    spec = LaunchSpec(["bash", "-c", "(set -m; sleep 302 &) ; sleep 303"])
    proc = processes.start_local_process(spec, "sleepy", tmp_path / "w", tmp_path / "node")
    deadline = time.monotonic() + 10
    while len(proc.session_pids()) < 3 and time.monotonic() < deadline:
        time.sleep(0.1)
    members = proc.session_pids()
    assert proc.pid in members and len(members) >= 3
    proc.stop(timeout=2)
    assert proc.session_pids() == []
    assert proc.poll() is not None


def test_watcher_reports_a_dead_process(tmp_path):
    spec = LaunchSpec(["bash", "-c", "echo about to die; exit 7"])
    proc = processes.start_local_process(spec, "dask-worker-9", tmp_path / "w", tmp_path / "n")
    proc.popen.wait(10)
    cluster = cp_dask.LocalDaskCluster(proc, "tcp://127.0.0.1:1", lambda i: None)
    with pytest.raises(cp_dask.ClusterError, match="dask-worker-9.*status 7"):
        with cluster:
            pass
    assert "about to die" in cluster.dead[0]


# -- the parts layout (upload_env's default) ---------------------------------------------

@pytest.fixture
def parts_env(tmp_path):
    """A small environment published as parts to a local store (no .pex file at the path)."""
    from tests.reliability.conftest import make_packed_dir, publish_parts

    url = str(tmp_path / "store" / "env.pex")
    manifest = publish_parts(make_packed_dir(tmp_path / "src" / "env.pex"), url)
    return url, manifest


def test_worker_launch_spec_with_parts(parts_env, tmp_path):
    url, manifest = parts_env
    spec = cp_dask.worker_launch_spec(url, "tcp://10.1.2.3:8786", include_editables=False)
    assert spec.argv[:3] == ["./env.pex/__main__.py", "-m", "distributed.cli.dask_worker"]
    assert {r.name for r in spec.resources} == {f"cpack-{p.sha256[:32]}" for p in manifest.parts}
    assert all(r.shared and r.sha256 for r in spec.resources)
    script = cp_dask.worker_command(url, "tcp://10.1.2.3:8786", include_editables=False)
    assert "ln -s" in script and "PEX-INFO" in script  # the directory is assembled first
    assert script.index("PEX-INFO") < script.index("./env.pex/__main__.py -m")


def test_yarn_application_specs_with_parts(parts_env):
    pytest.importorskip("skein")
    url, manifest = parts_env
    names = {f"cpack-{p.sha256[:32]}" for p in manifest.parts}
    dask_app = cp_dask.yarn_application_spec(url, n_workers=1, include_editables=False)
    ray_app = cp_ray.yarn_application_spec(url, n_workers=1, include_editables=False)
    for service in [*dask_app.services.values(), *ray_app.services.values()]:
        assert set(service.files) == names
        assert "./env.pex/__main__.py -m cluster_pack." in service.script
        assert 'export C_PACK_LOCAL_ARTIFACT="$PWD"/env.pex' in service.script


def _run_py_executable(py_executable, code="import toydep; print('ok', toydep.VERSION)"):
    import shlex

    return subprocess.run([*shlex.split(py_executable), "-c", code], capture_output=True,
                          text=True, timeout=60)


def test_runtime_env_for_parts_needs_a_materialized_directory(parts_env, tmp_path):
    url, _ = parts_env
    with pytest.raises(ConfigurationError, match="published as parts.*fetch_to"):
        cp_ray.runtime_env_for(url)
    # fetch_to: fetched (verified) into a directory every node reads, run from there
    shared = tmp_path / "shared dir"
    env = cp_ray.runtime_env_for(url, fetch_to=str(shared))
    main = shared / "env.pex" / "__main__.py"
    assert env["py_executable"] == f"'{main}'"
    assert env["env_vars"]["C_PACK_PACKAGE_PATH"] == url
    assert (shared / "env.pex" / "PEX-INFO").is_file()
    # the packed pex __main__.py runs with the command line Ray gives the interpreter
    out = subprocess.run([str(main), "-c", "print(1)"], capture_output=True, text=True)
    assert out.stdout.strip() == "hello from parts 1", out.stderr
    # local_artifact: where it already is (a directory), with or without a trailing /
    for given in (str(shared / "env.pex"), str(shared / "env.pex") + "/"):
        assert cp_ray.runtime_env_for(url, local_artifact=given)["py_executable"] == \
            f"'{main}'"
    # a path valid on the nodes only: the manifest says parts, so it is a directory
    env = cp_ray.runtime_env_for(url, local_artifact="/nfs/envs/env.pex")
    assert env["py_executable"] == "/nfs/envs/env.pex/__main__.py"
    with pytest.raises(ConfigurationError, match="not both"):
        cp_ray.runtime_env_for(url, local_artifact="/x", fetch_to="/y")


def test_runtime_env_for_fetches_single_file_layouts(tmp_path):
    import zipfile

    from cluster_pack.store import publish
    from tests.reliability.conftest import make_pex

    pex_url = str(tmp_path / "store" / "one.pex")
    publish.publish_zip(str(make_pex(tmp_path / "src" / "one.pex")), pex_url)
    env = cp_ray.runtime_env_for(pex_url, fetch_to=str(tmp_path / "shared"))
    assert env["py_executable"] == str(tmp_path / "shared" / "one.pex")
    assert subprocess.run([sys.executable, env["py_executable"]], capture_output=True,
                          text=True).stdout.strip() == "hello from pex"
    assert cp_ray.runtime_env_for(pex_url)["py_executable"] == pex_url  # run where it is

    big = tmp_path / "src" / "big.pex.zip"
    with zipfile.ZipFile(big, "w") as zf:
        zf.writestr("PEX-INFO", json.dumps({"distributions": {}}))
        zf.writestr("__main__.py", "print('hello from the unpacked layout')\n")
    big_url = str(tmp_path / "store" / "big.pex.zip")
    publish.publish_zip(str(big), big_url)
    env = cp_ray.runtime_env_for(big_url, fetch_to=str(tmp_path / "shared"))
    unpacked = tmp_path / "shared" / "big.pex"
    assert env["py_executable"].endswith(f"{unpacked}/__main__.py")
    assert (unpacked / "PEX-INFO").is_file() and not (tmp_path / "shared" / "big.pex.zip").exists()
    assert _run_py_executable(env["py_executable"], "").stdout.strip() == \
        "hello from the unpacked layout"
