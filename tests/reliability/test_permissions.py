"""Permissions of what cluster-pack creates (local cache/store, node cache, HDFS)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from cluster_pack import settings
from cluster_pack.launch import local as runner
from cluster_pack.launch import spec as launch
from cluster_pack.store import parts_pool, publish
from cluster_pack.store.manifest import manifest_path
from cluster_pack.store.storage import ARTIFACT_MODE, DIR_MODE, FILE_MODE, Store
from tests.reliability.conftest import make_packed_dir, make_pex, publish_parts


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def permissive_umask():
    old = os.umask(0)  # the worst case: nothing masked by the caller's umask
    yield
    os.umask(old)


def test_local_store_and_caches(tmp_path, monkeypatch, permissive_umask, summary):
    cache = tmp_path / "cache"
    monkeypatch.setenv("C_PACK_CACHE_DIR", str(cache))
    url = publish.default_package_path("perm") if not os.environ.get("HADOOP_CONF_DIR") \
        else str(cache / "envs" / "perm.pex")
    publish.publish_zip(str(make_pex(tmp_path / "src" / "perm.pex")), url)
    node = settings.get_cache_dir() / "node"
    runner.run(launch.build_launch_spec([], package_path=url, include_editables=False),
               node_dir=node).check()
    checks = {
        Path(url).parent: DIR_MODE,  # store directory: 0750
        Path(url): ARTIFACT_MODE,  # 0750
        Path(manifest_path(url)): FILE_MODE,  # 0640
        node: 0o700,
        node / "filecache": 0o700,
        Path(url).parent / ".locks": 0o700,
    }
    for path, expected in checks.items():
        summary.add("permission_checks")
        assert _mode(path) == expected, f"{path}: {oct(_mode(path))}, expected {oct(expected)}"
    for path in [p for p in cache.rglob("*")] + [p for p in node.rglob("*")]:
        if path.is_symlink():
            continue
        summary.add("permission_checks")
        assert not _mode(path) & stat.S_IWOTH, f"{path} is world-writable"


def test_parts_pool_and_parts_local(tmp_path, permissive_umask, summary):
    """The parts layout: the pool directory is DIR_MODE, its parts are never writable by
    the group or others (read-only PART_MODE), and the node cache stays private."""
    url = str(tmp_path / "store" / "perm.pex")
    manifest = publish_parts(make_packed_dir(tmp_path / "src" / "perm.pex"), url)
    node = tmp_path / "node"
    runner.run(launch.build_launch_spec([], package_path=url, include_editables=False),
               node_dir=node).check()
    pool = Path(parts_pool.pool_dir(url))
    checks = {pool.parent: DIR_MODE, pool: DIR_MODE, Path(manifest_path(url)): FILE_MODE,
              node / "filecache": 0o700}
    for path, expected in checks.items():
        summary.add("permission_checks")
        assert _mode(path) == expected, f"{path}: {oct(_mode(path))}, expected {oct(expected)}"
    assert {p.name for p in pool.iterdir()} == {p.sha256 for p in manifest.parts}
    for part in pool.iterdir():
        summary.add("permission_checks")
        assert _mode(part) == parts_pool.PART_MODE, f"{part}: {oct(_mode(part))}"
    for path in list(tmp_path.joinpath("store").rglob("*")) + list(node.rglob("*")):
        if path.is_symlink():
            continue
        summary.add("permission_checks")
        assert not _mode(path) & (stat.S_IWOTH | stat.S_IWGRP), f"{path} is writable by others"


def test_private_dir_helper(tmp_path, permissive_umask, summary):
    path = settings.ensure_private_dir(tmp_path / "a" / "b")
    summary.add("permission_checks")
    assert _mode(path) == 0o700


@pytest.mark.hdfs
def test_hdfs_modes_as_documented(hadoop_env, hadoop_cluster, tmp_path, summary):
    base = f"{hadoop_cluster.default_fs}/tmp/cpack-rel-perm-{os.getpid()}/envs"
    url = publish.publish_zip(str(make_pex(tmp_path / "p.pex")), f"{base}/p.pex").path
    store, path = Store.for_url(url)
    for p, expected in ((path, ARTIFACT_MODE), (manifest_path(path), FILE_MODE),
                        (path.rsplit("/", 1)[0], DIR_MODE)):
        summary.add("permission_checks")
        assert store.fs.info(p)["permission"] == expected, (p, oct(store.fs.info(p)["permission"]))


@pytest.mark.hdfs
def test_hdfs_parts_pool_modes(hadoop_env, hadoop_cluster, tmp_path, summary):
    base = f"{hadoop_cluster.default_fs}/tmp/cpack-rel-perm-parts-{os.getpid()}/envs"
    manifest = publish_parts(make_packed_dir(tmp_path / "src" / "p.pex"), f"{base}/p.pex")
    store, path = Store.for_url(f"{base}/p.pex")
    pool = parts_pool.pool_dir(path)
    for p, expected in ((pool, DIR_MODE), (path.rsplit("/", 1)[0], DIR_MODE),
                        (manifest_path(path), FILE_MODE)):
        summary.add("permission_checks")
        assert store.fs.info(p)["permission"] == expected, (p, oct(store.fs.info(p)["permission"]))
    entries = store.ls(pool)
    assert sorted(e["name"].rsplit("/", 1)[-1] for e in entries) == \
        sorted({p.sha256 for p in manifest.parts})
    for entry in entries:
        summary.add("permission_checks")
        assert entry["permission"] == parts_pool.PART_MODE, (entry["name"], oct(entry["permission"]))
