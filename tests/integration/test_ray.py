"""Ray clusters (head + 2 workers) from the packed environment: locally and on the harness
MiniYARNCluster. A task and an actor call ``tomli_w``, present only in the packed env
(and in the driver's REAL uv venv, as Ray needs the driver's code importable)."""

from __future__ import annotations

import getpass
import os
import sys

import pytest

from tests.integration.dask_ray_drivers import DRIVER_HELPERS, clean_env, run_driver, still_alive
from tests.venvs import REPO, build_venv, remove_at_teardown

pytestmark = [pytest.mark.ray, pytest.mark.slow, pytest.mark.timeout(900)]

PRELUDE = """
import json, os, signal, sys, time, logging
import psutil
logging.basicConfig(level=logging.INFO)
import ray
import cluster_pack
from cluster_pack.launch import ray as cp_ray

""" + DRIVER_HELPERS + """

@ray.remote
def to_toml(i):
    import tomli_w
    return tomli_w.dumps({"part": i, "square": i * i})

@ray.remote
class Counter:
    def __init__(self):
        self.total = 0

    def add(self, i):
        import tomli_w
        self.total += i
        return tomli_w.dumps({"total": self.total}), sys.executable
"""

EXPECTED = [f"part = {i}\nsquare = {i * i}\n" for i in range(6)]


# Module-scoped (only this module uses them): the venv and the environments published from
# it are removed once the module's tests ran, not at the end of the session.
@pytest.fixture(scope="module")
def ray_python(tmp_path_factory):
    root = tmp_path_factory.mktemp("ray_venv")
    venv = build_venv(root / "venv", ["ray[default]", "tomli_w", "skein", "hdfs-native",
                                      "psutil"], editables=[REPO])
    yield venv / "bin" / "python"
    remove_at_teardown(root)


@pytest.fixture(scope="module")
def ray_workdir(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("ray_work")
    yield workdir
    remove_at_teardown(workdir)


@pytest.fixture(scope="module")
def local_ray_pex(ray_python, ray_workdir):
    store = ray_workdir / "store"
    result = run_driver(ray_python, PRELUDE + f"""
t0 = time.monotonic()
path, _ = cluster_pack.upload_env(package_path={str(store / 'ray.pex')!r})
from cluster_pack.store import publish
from cluster_pack.store.storage import Store
layout = publish.read_manifest(*Store.for_url(path)).layout
done(path=path, seconds=time.monotonic() - t0, layout=layout)
""", ray_workdir, clean_env({"C_PACK_CACHE_DIR": str(ray_workdir / "cache")}))
    print(f"[ray] local publish {result['seconds']:.1f}s -> {result['path']}", file=sys.stderr)
    assert result["layout"] == "parts"  # the default layout, no flag (ray is large)
    return result["path"]


@pytest.fixture
def drive(ray_python, ray_workdir):
    def go(body, env=None, **kw):
        return run_driver(ray_python, PRELUDE + body, ray_workdir,
                          clean_env({"C_PACK_CACHE_DIR": str(ray_workdir / "cache"),
                                     **(env or {})}), **kw)
    return go


BODY = """
    started = time.monotonic() - t0
    values = ray.get([to_toml.remote(i) for i in range(6)])
    counter = Counter.remote()
    actor = [ray.get(counter.add.remote(i)) for i in (1, 2, 3)]
    nodes = len([n for n in ray.nodes() if n["Alive"]])
"""


def test_local_ray_task_actor_two_workers_and_clean_shutdown(drive, local_ray_pex):
    result = drive(f"""
t0 = time.monotonic()
with cp_ray.local_cluster(n_workers=2, package_path={local_ray_pex!r}) as cluster:
{BODY}
    pids = tree(cluster.pids)
    temp_dir = cluster.temp_dir
time.sleep(1)
done(values=values, actor=actor, nodes=nodes, pids=pids, started=started,
     total=time.monotonic() - t0, temp_dir_left=os.path.exists(temp_dir))
""")
    print(f"\n[ray local] head+2 up in {result['started']:.1f}s, total {result['total']:.1f}s,"
          f" {len(result['pids'])} processes", file=sys.stderr)
    assert result["values"] == EXPECTED
    assert [a[0] for a in result["actor"]] == ["total = 1\n", "total = 3\n", "total = 6\n"]
    assert "/pex_root/" in result["actor"][0][1]
    assert result["nodes"] == 3
    assert still_alive(result["pids"]) == []
    assert not result["temp_dir_left"]


def test_local_ray_worker_death_is_reported(drive, local_ray_pex):
    result = drive(f"""
cluster = cp_ray.local_cluster(n_workers=2, package_path={local_ray_pex!r})
pids = tree(cluster.pids)
os.killpg(cluster.workers[1].pid, signal.SIGKILL)
time.sleep(3)
error = None
try:
    with cluster:
        pass
except cp_ray.ClusterError as exc:
    error = str(exc)
done(error=error, pids=pids)
""")
    assert result["error"] and "ray-worker-1" in result["error"], result
    assert still_alive(result["pids"]) == []


def test_runtime_env_for_an_existing_cluster_runs_the_fetched_parts(drive, local_ray_pex,
                                                                   ray_workdir):
    """runtime_env_for(fetch_to=...): the parts are fetched (verified) into a directory
    every node reads, assembled as the packed pex, and Ray starts this job's workers with
    its __main__.py (py_executable) on a cluster it did not start."""
    shared = ray_workdir / "shared envs"
    result = drive(f"""
runtime_env = cp_ray.runtime_env_for({local_ray_pex!r}, fetch_to={str(shared)!r},
                                     env_vars={{"CPACK_RAY_MARK": "from runtime_env"}})

@ray.remote
def where():
    import tomli_w
    return [sys.executable, os.environ.get("CPACK_RAY_MARK"),
            os.environ.get("C_PACK_PACKAGE_PATH"), tomli_w.dumps({{"ok": 1}})]

with cp_ray.local_cluster(n_workers=1, package_path={local_ray_pex!r},
                          runtime_env=runtime_env) as cluster:
    seen = ray.get(where.remote())
done(py_executable=runtime_env["py_executable"], seen=seen)
""")
    main = shared / "ray.pex" / "__main__.py"
    assert result["py_executable"] == f"'{main}'"
    executable, mark, package_path, toml = result["seen"]
    assert mark == "from runtime_env" and package_path == local_ray_pex
    assert toml == "ok = 1\n"
    # the pex runtime re-executes its venv (under PEX_ROOT), not the driver's interpreter
    assert "/venvs/" in executable and "ray_venv" not in executable, executable


@pytest.fixture(scope="module")
def hdfs_ray_pex(ray_python, ray_workdir, hadoop_cluster):
    user = os.environ.get("C_PACK_USER") or getpass.getuser()
    target = f"{hadoop_cluster.default_fs}/user/{user}/envs/ray-test.pex"
    result = run_driver(ray_python, PRELUDE + f"""
path, _ = cluster_pack.upload_env(package_path={target!r})
done(path=path)
""", ray_workdir, clean_env({"C_PACK_CACHE_DIR": str(ray_workdir / "cache"),
                             **hadoop_cluster.env}))
    return result["path"]


@pytest.mark.yarn
def test_yarn_ray_task_actor_and_shutdown(drive, hdfs_ray_pex, hadoop_cluster):
    result = drive(f"""
import skein
# Ray wants the same Python (patch version included) in the driver and the cluster
PATH = os.path.dirname(sys._base_executable) + ":/usr/local/bin:/usr/bin:/bin"
t0 = time.monotonic()
# a worker that fails is replaced (and reported as a warning), as on a real cluster
with cp_ray.yarn_cluster({hdfs_ray_pex!r}, n_workers=2, worker_memory="1 GiB",
                         head_memory="1 GiB", host="127.0.0.1", worker_max_restarts=2,
                         env_vars={{"PATH": PATH}}) as cluster:
{BODY}
    where = ray.get(counter.add.remote(0))
    app_id = cluster.app_id
time.sleep(1)
with skein.Client() as c:
    state = str(c.application_report(app_id).state)
    running = [a.id for a in c.get_applications(states=["RUNNING", "ACCEPTED"])]
done(values=values, actor=actor, nodes=nodes, state=state, running=running, app_id=app_id,
     started=started, total=time.monotonic() - t0)
""", env=hadoop_cluster.env)
    print(f"\n[ray yarn] head+2 up in {result['started']:.1f}s, total {result['total']:.1f}s",
          file=sys.stderr)
    assert result["values"] == EXPECTED
    assert [a[0] for a in result["actor"]] == ["total = 1\n", "total = 3\n", "total = 6\n"]
    assert result["nodes"] == 3
    assert result["state"] == "FINISHED"
    assert result["app_id"] not in result["running"]


@pytest.mark.yarn
@pytest.mark.hdfs
@pytest.mark.kerberos
def test_secure_yarn_ray_task_with_tokens_only_and_shutdown(drive, secure_hadoop_cluster,
                                                           tmp_path):
    """The ray env published to the SECURE HDFS as alice (with a ticket), a Ray cluster on
    secure YARN (head + 1 worker) localizing it with the app's HDFS delegation token, a task,
    a clean shutdown. The containers have tokens only (no ticket is shipped to Ray's
    services). The outputs, the containers' logs (read while the app runs: the harness
    deletes them when it ends) and the cluster's log are scanned for keytab and ticket
    content."""
    from tests.integration.kerberos_secrets import assert_no_secrets, cluster_texts, secrets_of

    cluster = secure_hadoop_cluster
    cache = tmp_path / "alice-cc"
    env = {**cluster.env, **cluster.kinit("alice", cache)}
    target = f"{cluster.default_fs}/user/alice/envs/ray-test.pex"
    result = drive(f"""
import skein
from cluster_pack.launch import yarn
# Ray wants the same Python (patch version included) in the driver and the cluster
PATH = os.path.dirname(sys._base_executable) + ":/usr/local/bin:/usr/bin:/bin"

@ray.remote
def where():
    return {{k: os.environ.get(k) for k in ("KRB5CCNAME", "HADOOP_TOKEN_FILE_LOCATION")}}

t0 = time.monotonic()
path, _ = cluster_pack.upload_env(package_path={target!r})
published = time.monotonic() - t0
skein_client = skein.Client()  # one Java driver for the whole test
with cp_ray.yarn_cluster(path, n_workers=1, worker_memory="1 GiB", head_memory="1 GiB",
                         host="127.0.0.1", skein_client=skein_client,
                         env_vars={{"PATH": PATH}}) as rc:
    started = time.monotonic() - t0 - published
    values = ray.get([to_toml.remote(i) for i in range(6)])
    seen = ray.get(where.remote())
    nodes = len([n for n in ray.nodes() if n["Alive"]])
    app_id = rc.app_id
    logs = yarn.local_node_logs(app_id) or {{}}
state = str(skein_client.application_report(app_id).state)
running = [a.id for a in skein_client.get_applications(states=["RUNNING", "ACCEPTED"])]
skein_client.close()
done(values=values, seen=seen, nodes=nodes, app_id=app_id, state=state, running=running,
     logs=logs, published=published, started=started, total=time.monotonic() - t0)
""", env=env)
    print(f"\n[ray secure yarn] publish {result['published']:.1f}s, head+1 up in "
          f"{result['started']:.1f}s, total {result['total']:.1f}s", file=sys.stderr)
    assert result["values"] == EXPECTED
    assert result["nodes"] == 2
    seen = result["seen"]
    assert seen["KRB5CCNAME"] is None and seen["HADOOP_TOKEN_FILE_LOCATION"], seen
    assert result["state"] == "FINISHED" and result["app_id"] not in result["running"]
    assert len(result["logs"]) >= 3, list(result["logs"])  # the AM's, the head's, the worker's
    assert any("ray head at" in text for text in result["logs"].values())
    import json

    assert_no_secrets(secrets_of(cluster, [cache]), [json.dumps(result), *cluster_texts(cluster)])


def test_examples_ray_runs_locally(ray_python, ray_workdir):
    """examples/ray (CI runs it here, local engine)."""
    import subprocess
    from pathlib import Path

    example = Path(__file__).resolve().parents[2] / "examples" / "ray" / "ray_example.py"
    out = subprocess.run([str(ray_python), str(example), "--package-path",
                          str(ray_workdir / "store" / "ray-example.pex")],
                         cwd=ray_workdir, capture_output=True, text=True, timeout=600,
                         env=clean_env({"C_PACK_CACHE_DIR": str(ray_workdir / "cache")}))
    assert out.returncode == 0, out.stdout + out.stderr[-5000:]
    assert "running total: 285" in out.stdout and "nodes: 3" in out.stdout
