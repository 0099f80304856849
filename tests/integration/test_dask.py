"""Dask clusters from the packed environment: locally and on the harness MiniYARNCluster.

The driver code runs with the python of a REAL uv venv (cluster-pack editable,
``distributed``, ``tomli_w``, skein, hdfs-native, psutil); the mapped function uses
``tomli_w``, which the test runner's env does not have.
"""

from __future__ import annotations

import getpass
import os
import sys

import pytest

from tests.integration.dask_ray_drivers import DRIVER_HELPERS, clean_env, run_driver, still_alive
from tests.venvs import REPO, build_venv, remove_at_teardown

pytestmark = [pytest.mark.dask, pytest.mark.slow, pytest.mark.timeout(900)]

PRELUDE = """
import json, os, signal, sys, time, logging
import psutil
logging.basicConfig(level=logging.INFO)
import cluster_pack
from cluster_pack.launch import dask as cp_dask

""" + DRIVER_HELPERS + """

def to_toml(i):
    import tomli_w
    return tomli_w.dumps({"part": i, "square": i * i})
"""


# Module-scoped (only this module uses them): the venv and the environments published from
# it are removed once the module's tests ran, not at the end of the session.
@pytest.fixture(scope="module")
def dask_python(tmp_path_factory):
    root = tmp_path_factory.mktemp("dask_venv")
    venv = build_venv(root / "venv", ["distributed", "tomli_w", "skein", "hdfs-native",
                                      "psutil"], editables=[REPO])
    yield venv / "bin" / "python"
    remove_at_teardown(root)


@pytest.fixture(scope="module")
def dask_workdir(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("dask_work")
    yield workdir
    remove_at_teardown(workdir)


@pytest.fixture(scope="module")
def local_dask_pex(dask_python, dask_workdir):
    store = dask_workdir / "store"
    result = run_driver(dask_python, PRELUDE + f"""
t0 = time.monotonic()
path, _ = cluster_pack.upload_env(package_path={str(store / 'dask.pex')!r})
done(path=path, seconds=time.monotonic() - t0)
""", dask_workdir, clean_env({"C_PACK_CACHE_DIR": str(dask_workdir / "cache")}))
    print(f"[dask] local publish {result['seconds']:.1f}s", file=sys.stderr)
    return result["path"]


@pytest.fixture
def drive(dask_python, dask_workdir):
    def go(body, env=None, **kw):
        return run_driver(dask_python, PRELUDE + body, dask_workdir,
                          clean_env({"C_PACK_CACHE_DIR": str(dask_workdir / "cache"),
                                     **(env or {})}), **kw)
    return go


EXPECTED = [f"part = {i}\nsquare = {i * i}\n" for i in range(6)]


def test_local_dask_map_two_workers_and_clean_shutdown(drive, local_dask_pex):
    result = drive(f"""
t0 = time.monotonic()
with cp_dask.local_cluster(n_workers=2, package_path={local_dask_pex!r}) as cluster:
    started = time.monotonic() - t0
    client = cluster.client
    futures = client.map(to_toml, range(6))
    values = client.gather(futures)
    workers = sorted(w["name"] for w in client.scheduler_info(n_workers=-1)["workers"].values())
    who = sorted(set(client.run(lambda: __import__("sys").executable).values()))
    pids = tree(cluster.pids)
    cluster.scale(1)
    cluster.scale(2)
    cluster.wait_for_workers(2)
    pids = sorted(set(pids) | set(tree(cluster.pids)))
done(values=values, workers=workers, who=who, pids=pids, started=started,
     total=time.monotonic() - t0)
""")
    print(f"\n[dask local] 2 workers up in {result['started']:.1f}s, total "
          f"{result['total']:.1f}s", file=sys.stderr)
    assert result["values"] == EXPECTED
    assert result["workers"] == ["dask-worker-0", "dask-worker-1"]
    assert all("/pex_root/" in exe for exe in result["who"]), result["who"]
    assert len(result["pids"]) >= 3
    assert still_alive(result["pids"]) == []


def test_local_dask_worker_death_is_reported(drive, local_dask_pex):
    result = drive(f"""
cluster = cp_dask.local_cluster(n_workers=2, package_path={local_dask_pex!r})
pids = tree(cluster.pids)
victim = cluster.workers[0]
os.killpg(victim.pid, signal.SIGKILL)
time.sleep(3)
error = None
try:
    with cluster:
        pass
except cp_dask.ClusterError as exc:
    error = str(exc)
done(error=error, pids=pids, dead=cluster.dead)
""")
    assert result["error"] and "dask-worker-0" in result["error"], result
    assert "exited with status" in result["error"]
    assert still_alive(result["pids"]) == []


@pytest.fixture(scope="module")
def hdfs_dask_pex(dask_python, dask_workdir, hadoop_cluster):
    user = os.environ.get("C_PACK_USER") or getpass.getuser()
    target = f"{hadoop_cluster.default_fs}/user/{user}/envs/dask-test.pex"
    result = run_driver(dask_python, PRELUDE + f"""
path, _ = cluster_pack.upload_env(package_path={target!r})
done(path=path)
""", dask_workdir, clean_env({"C_PACK_CACHE_DIR": str(dask_workdir / "cache"),
                              **hadoop_cluster.env}))
    return result["path"]


YARN_PRELUDE = """
import skein
PATH = os.path.dirname(sys._base_executable) + ":/usr/local/bin:/usr/bin:/bin"

def running_apps():
    with skein.Client() as c:
        return [a.id for a in c.get_applications(states=["RUNNING", "ACCEPTED"])]
"""


@pytest.mark.yarn
def test_yarn_dask_map_scale_and_shutdown(drive, hdfs_dask_pex, hadoop_cluster):
    result = drive(YARN_PRELUDE + f"""
t0 = time.monotonic()
with cp_dask.yarn_cluster({hdfs_dask_pex!r}, n_workers=2, worker_memory="768 MiB",
                          scheduler_memory="512 MiB", host="127.0.0.1",
                          env_vars={{"PATH": PATH}}) as cluster:
    started = time.monotonic() - t0
    client = cluster.client
    values = client.gather(client.map(to_toml, range(6)))
    containers = sorted(set(client.run(lambda: __import__("os").environ["SKEIN_CONTAINER_ID"]).values()))
    app_id = cluster.app_id
    t1 = time.monotonic()
    cluster.scale(1)
    while len(client.scheduler_info(n_workers=-1)["workers"]) != 1:
        time.sleep(0.5)
    scaled_down = time.monotonic() - t1
    cluster.scale(2)
    cluster.wait_for_workers(2)
    scaled_up = time.monotonic() - t1 - scaled_down
    values2 = client.gather(client.map(to_toml, range(6)))
time.sleep(1)
with skein.Client() as c:
    state = str(c.application_report(app_id).state)
done(values=values, values2=values2, containers=containers, app_id=app_id, state=state,
     running=running_apps(), started=started, scaled_down=scaled_down, scaled_up=scaled_up)
""", env=hadoop_cluster.env)
    print(f"\n[dask yarn] up in {result['started']:.1f}s, scale 2->1 "
          f"{result['scaled_down']:.1f}s, 1->2 {result['scaled_up']:.1f}s", file=sys.stderr)
    assert result["values"] == EXPECTED and result["values2"] == EXPECTED
    assert result["containers"] == ["dask.worker_0", "dask.worker_1"]
    assert result["state"] == "FINISHED"
    assert result["app_id"] not in result["running"]


@pytest.mark.yarn
def test_yarn_dask_app_that_cannot_start_gives_diagnostics(drive, hdfs_dask_pex,
                                                           hadoop_cluster):
    result = drive(YARN_PRELUDE + f"""
error = None
t0 = time.monotonic()
try:
    cp_dask.yarn_cluster({hdfs_dask_pex!r}, n_workers=1, worker_memory="512 MiB",
                         scheduler_memory="512 MiB", host="127.0.0.1", timeout=240,
                         scheduler_pre_script_hook="echo SCHEDULER-HOOK-FAILS >&2; exit 3")
except cp_dask.ClusterError as exc:
    error = str(exc)
done(error=error, seconds=time.monotonic() - t0, running=running_apps())
""", env=hadoop_cluster.env)
    print(f"\n[dask yarn] failed start reported in {result['seconds']:.1f}s", file=sys.stderr)
    assert result["error"], result
    assert "application_" in result["error"]
    assert "SCHEDULER-HOOK-FAILS" in result["error"] or "exit code" in result["error"].lower()
    assert result["running"] == []


def test_worker_command_for_an_existing_deployment(drive, local_dask_pex):
    result = drive(f"""
spec = cp_dask.worker_launch_spec({local_dask_pex!r}, "tcp://10.0.0.1:8786", ["--nthreads", "2"])
script = cp_dask.worker_command({local_dask_pex!r}, "tcp://10.0.0.1:8786")
done(argv=spec.argv, resources=[r.name for r in spec.resources], script=script)
""")
    # the default layout: parts, assembled into ./dask.pex/ before the worker starts
    assert result["argv"][:4] == ["./dask.pex/__main__.py", "-m", "distributed.cli.dask_worker",
                                  "tcp://10.0.0.1:8786"]
    assert result["resources"] and all(r.startswith(("cpack-", "editable_"))
                                       for r in result["resources"])
    assert any(r.startswith("cpack-") for r in result["resources"])
    assert "distributed.cli.dask_worker tcp://10.0.0.1:8786" in result["script"]
    assert result["script"].index("PEX-INFO") < result["script"].index("dask_worker")


def test_examples_dask_runs_locally(dask_python, dask_workdir):
    """examples/dask (CI runs it here, local engine)."""
    import subprocess
    from pathlib import Path

    example = Path(__file__).resolve().parents[2] / "examples" / "dask" / "dask_example.py"
    out = subprocess.run([str(dask_python), str(example), "--package-path",
                          str(dask_workdir / "store" / "dask-example.pex")],
                         cwd=dask_workdir, capture_output=True, text=True, timeout=600,
                         env=clean_env({"C_PACK_CACHE_DIR": str(dask_workdir / "cache")}))
    assert out.returncode == 0, out.stdout + out.stderr[-5000:]
    assert "total = 11993001000" in out.stdout


@pytest.mark.yarn
def test_yarn_dask_dead_worker_container_is_reported(drive, hdfs_dask_pex, hadoop_cluster):
    result = drive(YARN_PRELUDE + f"""
error = None
cluster = cp_dask.yarn_cluster({hdfs_dask_pex!r}, n_workers=2, worker_memory="512 MiB",
                               scheduler_memory="512 MiB", host="127.0.0.1",
                               env_vars={{"PATH": PATH}})
app_id = cluster.app_id
victim = sorted(cluster.client.scheduler_info(n_workers=-1)["workers"])[0]
try:
    with cluster:
        # the whole container (script, nanny, worker) dies: the container FAILS
        try:
            cluster.client.run(lambda: os.killpg(0, 9), workers=[victim])
        except Exception:
            pass  # the worker died answering
        deadline = time.monotonic() + 120
        while not cluster.dead and time.monotonic() < deadline:
            time.sleep(1)
except cp_dask.ClusterError as exc:
    error = str(exc)
done(error=error, running=running_apps(), app_id=app_id)
""", env=hadoop_cluster.env)
    assert result["error"], result
    print(f"\n[dask yarn] dead worker reported as: {result['error'][:300]}", file=sys.stderr)
    assert "dask.worker" in result["error"] or result["app_id"] in result["error"]
    assert result["app_id"] not in result["running"]


# ------------------------------------------------------------------- secure (Kerberized) YARN

@pytest.mark.yarn
@pytest.mark.hdfs
@pytest.mark.kerberos
def test_secure_yarn_dask_map_with_tokens_only_and_shutdown(drive, secure_hadoop_cluster,
                                                            tmp_path):
    """The dask env published to the SECURE HDFS as alice (with a ticket), a Dask cluster on
    secure YARN (1 worker) localizing it with the app's HDFS delegation token, a map, a clean
    shutdown. The containers have tokens only (no ticket is shipped to Dask's services). The
    outputs, the containers' logs (read while the app runs: the harness deletes them when it
    ends) and the cluster's log are scanned for keytab and ticket content."""
    from tests.integration.kerberos_secrets import assert_no_secrets, cluster_texts, secrets_of

    cluster = secure_hadoop_cluster
    cache = tmp_path / "alice-cc"
    env = {**cluster.env, **cluster.kinit("alice", cache)}
    target = f"{cluster.default_fs}/user/alice/envs/dask-test.pex"
    result = drive(YARN_PRELUDE + f"""
from cluster_pack.launch import yarn
t0 = time.monotonic()
path, _ = cluster_pack.upload_env(package_path={target!r})
published = time.monotonic() - t0
skein_client = skein.Client()  # one Java driver for the whole test
with cp_dask.yarn_cluster(path, n_workers=1, worker_memory="512 MiB",
                          scheduler_memory="512 MiB", host="127.0.0.1",
                          skein_client=skein_client, env_vars={{"PATH": PATH}}) as dc:
    started = time.monotonic() - t0 - published
    client = dc.client
    values = client.gather(client.map(to_toml, range(6)))
    seen = list(client.run(lambda: {{k: __import__("os").environ.get(k) for k in
                                     ("KRB5CCNAME", "HADOOP_TOKEN_FILE_LOCATION")}}).values())
    app_id = dc.app_id
    logs = yarn.local_node_logs(app_id) or {{}}
state = str(skein_client.application_report(app_id).state)
running = [a.id for a in skein_client.get_applications(states=["RUNNING", "ACCEPTED"])]
skein_client.close()
done(values=values, seen=seen, app_id=app_id, state=state, running=running,
     logs=logs, published=published, started=started, total=time.monotonic() - t0)
""", env=env)
    print(f"\n[dask secure yarn] publish {result['published']:.1f}s, up in "
          f"{result['started']:.1f}s", file=sys.stderr)
    assert result["values"] == EXPECTED
    (seen,) = result["seen"]
    assert seen["KRB5CCNAME"] is None and seen["HADOOP_TOKEN_FILE_LOCATION"], seen
    assert result["state"] == "FINISHED" and result["app_id"] not in result["running"]
    assert len(result["logs"]) >= 2, list(result["logs"])  # the AM's and the services'
    assert any("dask worker" in text for text in result["logs"].values())
    import json

    assert_no_secrets(secrets_of(cluster, [cache]), [json.dumps(result), *cluster_texts(cluster)])
