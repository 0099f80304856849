"""Real HDFS (harness minicluster): atomic publishing, default FS, failures."""

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
import zipfile

import pytest

from cluster_pack.errors import StorageError
from cluster_pack.store import parts_pool, publish
from cluster_pack.store.manifest import manifest_path
from cluster_pack.store.storage import TMP_MARKER, Store
from tests.venvs import remove_remote_dir

pytestmark = pytest.mark.hdfs


def make_pex(path, payload=b""):
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("PEX-INFO", json.dumps({"distributions": {"six-1.16.0-py2.py3-none-any.whl": "x"}}))
        zf.writestr("__main__.py", "print('hello from pex')\n")
        if payload:
            zf.writestr("payload.bin", payload)
    return path


@pytest.fixture
def base(hadoop_cluster, hadoop_env, request):
    url = f"{hadoop_cluster.default_fs}/tmp/cpack-{request.node.name[:40]}-{os.getpid()}"
    yield url
    remove_remote_dir(url)  # the harness HDFS lives until the end of the session


def _manifest(url):
    store, path = Store.for_url(url)
    return json.loads(store.read_bytes(manifest_path(path), 1 << 20)), store, path


def test_upload_zip_explicit_url_then_skip_then_force(hadoop_env, base, tmp_path):
    local = make_pex(tmp_path / "e.pex")
    url = f"{base}/e.pex"
    first = publish.publish_zip(str(local), url)
    assert first.built and first.path == url
    manifest, store, path = _manifest(url)
    assert manifest["sha256"] == hashlib.sha256(local.read_bytes()).hexdigest()
    info = store.fs.info(path)
    assert info["size"] == local.stat().st_size and info["permission"] == 0o750
    assert store.fs.info(manifest_path(path))["permission"] == 0o640
    mtime = info["modification_time"]

    again = publish.publish_zip(str(local), url)
    assert not again.built and again.uploaded_bytes == 0
    assert store.fs.info(path)["modification_time"] == mtime

    time.sleep(0.01)
    forced = publish.publish_zip(str(local), url, force_upload=True)
    assert forced.built
    assert not [e for e in store.ls(path.rsplit("/", 1)[0]) if TMP_MARKER in e["name"]]


def test_default_fs_and_c_pack_user(hadoop_env, hadoop_cluster, monkeypatch, tmp_path):
    monkeypatch.setenv("C_PACK_USER", "cpackuser")
    target = publish.default_package_path("myenv")
    assert target == f"{hadoop_cluster.default_fs}/user/cpackuser/envs/myenv.pex"
    result = publish.publish_zip(str(make_pex(tmp_path / "myenv.pex")), target, force_upload=True)
    assert "/user/cpackuser/envs/" in result.path
    # hdfs:/// means the default FS of HADOOP_CONF_DIR
    store, path = Store.for_url("hdfs:///user/cpackuser/envs/myenv.pex")
    assert store.exists(path) and store.exists(manifest_path(path))


def test_downloaded_artifact_runs_through_the_local_runner(hadoop_env, base, tmp_path):
    local = make_pex(tmp_path / "run.pex")
    url = publish.publish_zip(str(local), f"{base}/run.pex").path
    store, path = Store.for_url(url)
    back = tmp_path / "back.pex"
    store.download(path, back)
    assert back.read_bytes() == local.read_bytes()
    out = subprocess.run([sys.executable, str(back)], capture_output=True, text=True)
    assert out.stdout.strip() == "hello from pex"


CONCURRENT = """
import sys
from cluster_pack.store import publish
publish.publish_zip(sys.argv[1], sys.argv[2], force_upload=True)
"""


def test_concurrent_uploads_end_with_one_valid_artifact(hadoop_env, base, tmp_path):
    url = f"{base}/c.pex"
    locals_ = [make_pex(tmp_path / f"c{i}" / "c.pex", os.urandom(200_000))
               for i in range(4) if (tmp_path / f"c{i}").mkdir() is None]
    procs = [subprocess.Popen([sys.executable, "-c", CONCURRENT, str(p), url],
                              stderr=subprocess.PIPE, text=True) for p in locals_]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    manifest, store, path = _manifest(url)
    data = store.fs.cat_file(path)
    assert hashlib.sha256(data).hexdigest() == manifest["sha256"]
    assert manifest["size"] == len(data)
    assert not [e for e in store.ls(path.rsplit("/", 1)[0]) if TMP_MARKER in e["name"]]


SLOW_PUBLISH = """
import sys, time
from cluster_pack.store.storage import Store
store, path = Store.for_url(sys.argv[2])
def slow(n):
    print("progress", flush=True)
    time.sleep(0.5)
store.publish_file(sys.argv[1], path, progress=slow)
"""


def test_sigkill_mid_upload_leaves_nothing_visible_and_rerun_works(hadoop_env, base, tmp_path):
    url = f"{base}/k.pex"
    old = make_pex(tmp_path / "old.pex")
    publish.publish_zip(str(old), url)
    big = tmp_path / "big" / "k.pex"
    big.parent.mkdir()
    make_pex(big, os.urandom(40 * 1024 * 1024))  # several 8 MB chunks
    proc = subprocess.Popen([sys.executable, "-c", SLOW_PUBLISH, str(big), url],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "progress"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    # readers still see the old artifact, matching its manifest
    manifest, store, path = _manifest(url)
    assert hashlib.sha256(store.fs.cat_file(path)).hexdigest() == manifest["sha256"]
    assert manifest["sha256"] == hashlib.sha256(old.read_bytes()).hexdigest()
    # the temporary is hidden (dot name) and swept once stale
    directory = path.rsplit("/", 1)[0]
    assert store.remove_stale_temporaries(directory, older_than=0) >= 0
    result = publish.publish_zip(str(big), url)
    assert result.built
    manifest, store, path = _manifest(url)
    assert hashlib.sha256(store.fs.cat_file(path)).hexdigest() == manifest["sha256"]
    assert not [e for e in store.ls(directory) if TMP_MARKER in e["name"]]


def test_namenode_down_fails_fast_with_the_url(hadoop_env, tmp_path):
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"hdfs://127.0.0.1:{port}/user/x/envs/e.pex"
    t0 = time.monotonic()
    with pytest.raises(StorageError) as err:
        publish.publish_zip(str(make_pex(tmp_path / "e.pex")), url)
    elapsed = time.monotonic() - t0
    print(f"namenode down: failed in {elapsed:.2f}s: {err.value}")
    assert elapsed < 10
    assert f"127.0.0.1:{port}" in str(err.value)


def test_cli_info_and_ls(hadoop_env, base, tmp_path):
    url = publish.publish_zip(str(make_pex(tmp_path / "cli.pex")), f"{base}/cli.pex").path
    info = subprocess.run([sys.executable, "-m", "cluster_pack", "info", url, "--json"],
                          capture_output=True, text=True)
    if info.returncode != 0:  # older CLI without --json
        info = subprocess.run([sys.executable, "-m", "cluster_pack", "info", url],
                              capture_output=True, text=True)
    assert info.returncode == 0, info.stderr
    assert "cli.pex" in info.stdout
    ls = subprocess.run([sys.executable, "-m", "cluster_pack", "ls", base],
                        capture_output=True, text=True)
    assert ls.returncode == 0, ls.stderr
    assert "cli" in ls.stdout


UPLOAD_ENV = """
import json, time
from cluster_pack.store import publish
t0 = time.monotonic()
r = publish.publish_env({kwargs})
print(json.dumps({{"path": r.path, "built": r.built, "seconds": time.monotonic() - t0}}))
"""

RUN = """
import json
from cluster_pack.launch import spec as launch
from cluster_pack.launch import local as runner
spec = launch.module_launch_spec("six", package_path={path!r})
res = runner.run(spec)
print(json.dumps({{"rc": res.returncode, "err": res.stderr}}))
"""


@pytest.fixture(scope="module")
def hdfs_venv(tmp_path_factory, hadoop_cluster):
    """A real venv (six + cluster-pack editable + hdfs-native) to pack and publish to HDFS
    (as the user ``envuser``, whose HDFS home is removed after the module)."""
    from tests.venvs import REPO, TestVenv, build_venv, remove_at_teardown

    root = tmp_path_factory.mktemp("hdfs_venv")
    yield TestVenv(build_venv(root / "venv", ["six", "hdfs-native"], editables=[REPO]), root)
    remove_at_teardown(root)
    remove_remote_dir(f"{hadoop_cluster.default_fs}/user/envuser")


def test_upload_env_to_default_fs_noop_force_and_run(hdfs_venv, hadoop_cluster, tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    env = {**hadoop_cluster.env, "C_PACK_USER": "envuser"}

    def upload(**kwargs):
        args = ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
        return hdfs_venv.json(UPLOAD_ENV.format(kwargs=args), cache, env=env)

    first = upload(force_upload=True)
    assert first["built"]
    assert first["path"].startswith(f"{hadoop_cluster.default_fs}/user/envuser/envs/")
    store, path = Store.for_url(first["path"])
    # the default layout: a manifest listing content-addressed parts in the directory's
    # pool, and the original's single file at the .pex path itself
    manifest = json.loads(store.read_bytes(manifest_path(path), 1 << 24))
    assert manifest["layout"] == "parts"
    assert store.fs.info(path)["size"] == manifest["file_size"]
    pool = {e["name"].rsplit("/", 1)[-1]: e for e in store.ls(parts_pool.pool_dir(path))}
    for part in manifest["parts"]:
        assert pool[part["sha256"]]["size"] == part["size"], part
    stamps = {name: e["modification_time"] for name, e in pool.items()}
    mtime = store.fs.info(manifest_path(path))["modification_time"]
    again = upload()
    print(f"no-op upload_env against HDFS (subprocess-measured): {again['seconds']:.3f}s")
    assert not again["built"] and again["path"] == first["path"]
    assert store.fs.info(manifest_path(path))["modification_time"] == mtime
    assert store.fs.info(path)["size"] == manifest["file_size"]
    forced = upload(force_upload=True)  # rebuilt, but every part is already there
    assert forced["built"]
    assert {e["name"].rsplit("/", 1)[-1]: e["modification_time"]
            for e in store.ls(parts_pool.pool_dir(path))} == stamps  # no part rewritten
    ran = hdfs_venv.json(RUN.format(path=first["path"]), cache, env=env)
    assert ran["rc"] == 0, ran["err"]


def test_upload_env_with_the_single_file_layout(hdfs_venv, hadoop_cluster, tmp_path):
    """C_PACK_LAYOUT=pex: the former single-file .pex, still published and run."""
    cache = tmp_path / "cache"
    cache.mkdir()
    env = {**hadoop_cluster.env, "C_PACK_USER": "envuser", "C_PACK_LAYOUT": "pex"}
    target = f"{hadoop_cluster.default_fs}/user/envuser/single/one.pex"
    first = hdfs_venv.json(UPLOAD_ENV.format(kwargs=f"package_path={target!r}"), cache,
                           env=env)
    assert first["built"] and first["path"] == target
    manifest, store, path = _manifest(target)
    assert manifest["layout"] == "pex"
    assert store.fs.info(path)["size"] == manifest["size"]
    assert not store.exists(parts_pool.pool_dir(path))
    ran = hdfs_venv.json(RUN.format(path=target), cache, env=env)
    assert ran["rc"] == 0, ran["err"]
