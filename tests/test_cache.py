"""cache and atomic: the cache directory map, the JSON index files, atomic writes."""

from __future__ import annotations

import json
import os

import pytest

from cluster_pack import settings
from cluster_pack.atomic import atomic_write, write_bytes
from cluster_pack.cache import CacheDir, JsonIndex


def test_every_cache_dir_is_under_the_cache_root(tmp_path, monkeypatch):
    monkeypatch.setenv("C_PACK_CACHE_DIR", str(tmp_path / "root"))
    relpaths = [d.relpath for d in CacheDir]
    assert len(set(relpaths)) == len(relpaths) and all(d.purpose for d in CacheDir)
    assert CacheDir.DIST_ZIPS.path() == tmp_path / "root" / "dist-zips"
    node = CacheDir.NODE.ensure()
    assert node == settings.get_cache_dir() / "node" and node.stat().st_mode & 0o777 == 0o700


def test_json_index_round_trip_and_damage(tmp_path):
    path = tmp_path / "sub" / "index.json"
    index: JsonIndex[int] = JsonIndex(path, lambda raw: raw if isinstance(raw, int) else None)
    index.save()
    assert not path.exists()  # nothing changed, nothing written
    for i in range(5):
        index.put(f"k{i}", i)
    index.save(keep_last=3)
    assert json.loads(path.read_text()) == {"k2": 2, "k3": 3, "k4": 4}
    assert [p.name for p in path.parent.iterdir()] == ["index.json"]  # no temporary left
    path.write_text(json.dumps({"good": 1, "bad": "x"}))
    assert JsonIndex(path, lambda raw: raw if isinstance(raw, int) else None).entries == \
        {"good": 1}
    path.write_text("{not json")
    assert JsonIndex(path, int).entries == {}


def test_atomic_write_replaces_only_on_success(tmp_path):
    target = tmp_path / "file"
    write_bytes(target, b"old", mode=0o640)
    assert target.read_bytes() == b"old" and target.stat().st_mode & 0o777 == 0o640
    with pytest.raises(RuntimeError):
        with atomic_write(target) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("killed")
    assert target.read_bytes() == b"old" and os.listdir(tmp_path) == ["file"]
    with atomic_write(target, marker=".cpack-tmp-") as tmp:
        assert ".cpack-tmp-" in tmp.name and tmp.parent == tmp_path
        tmp.write_bytes(b"new")
    assert target.read_bytes() == b"new" and os.listdir(tmp_path) == ["file"]
