"""Integrity on the node: size + sha256 from the manifest, once per cached copy.

Both layouts: a single-file ``.pex`` (``upload_zip``, ``C_PACK_LAYOUT=pex``) and the
content-addressed parts ``upload_env`` publishes by default, where every part is checked
against the sha256 its manifest names.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from cluster_pack.errors import IntegrityError
from cluster_pack.launch import local as runner
from cluster_pack.launch import spec as launch
from cluster_pack.pack import builder, parts
from cluster_pack.store import parts_pool, publish
from cluster_pack.store.manifest import manifest_path
from tests.reliability.conftest import make_packed_dir, make_pex, publish_parts


@pytest.fixture
def published(tmp_path):
    url = str(tmp_path / "store" / "node.pex")
    publish.publish_zip(str(make_pex(tmp_path / "src" / "node.pex", 2 << 20)), url)
    return url


@pytest.fixture
def hash_counter(monkeypatch):
    calls = []
    real = parts.file_sha256

    def counting(path):
        calls.append(str(path))
        return real(path)

    # the one hashing function (builder re-exports it): the runner's verification uses it
    monkeypatch.setattr(parts, "file_sha256", counting)
    monkeypatch.setattr(builder, "file_sha256", counting)
    return calls


def _spec(url):
    return launch.build_launch_spec([], package_path=url, include_editables=False)


def test_verified_once_per_cached_copy(published, tmp_path, hash_counter, summary):
    node = tmp_path / "node"
    for _ in range(5):
        assert runner.run(_spec(published), node_dir=node).check().stdout.strip() == \
            "hello from pex"
        summary.add("runs")
    assert len(hash_counter) == 1, hash_counter  # 5 containers, one verification
    runner.run(_spec(published), node_dir=tmp_path / "node2").check()
    assert len(hash_counter) == 2  # a second node (cache) verifies its own copy


@pytest.mark.parametrize("damage", ["tampered", "truncated", "appended"])
def test_damaged_artifact_refused_naming_the_path(published, tmp_path, damage, summary):
    spec = _spec(published)  # the manifest is read now, as a launcher does
    _damage(Path(published), damage)
    summary.add("faults_injected")
    with pytest.raises(IntegrityError) as err:
        runner.run(spec, node_dir=tmp_path / "node")
    summary.add("integrity_refusals")
    assert published in str(err.value)
    assert ("sha256" in str(err.value)) if damage == "tampered" else ("size" in str(err.value))
    # nothing half-localized stays in the node cache
    cache = tmp_path / "node" / "filecache"
    assert not [p for p in cache.rglob("*") if p.is_file()] if cache.exists() else True


def test_manifest_edited_to_point_elsewhere_is_refused(published, tmp_path, summary):
    import json

    mpath = Path(manifest_path(published))
    for evil in ("../../etc/passwd", "/etc/passwd", "..", "sub/other.pex"):
        data = json.loads(mpath.read_text())
        data["artifact_name"] = evil
        mpath.write_text(json.dumps(data))
        summary.add("hostile_inputs")
        with pytest.raises(IntegrityError) as err:
            from cluster_pack.store.manifest import Manifest
            Manifest.from_json(mpath.read_bytes(), str(mpath))
        assert str(mpath) in str(err.value)
        # a launcher reading it falls back to "no manifest" (rebuild) but never follows it
        from cluster_pack.store.storage import Store
        store, path = Store.for_url(published)
        assert publish.read_manifest(store, path) is None


# -- the parts layout ----------------------------------------------------------------------

@pytest.fixture
def published_parts(tmp_path):
    url = str(tmp_path / "store" / "node.pex")
    manifest = publish_parts(make_packed_dir(tmp_path / "src" / "node.pex", payload_size=2 << 20),
                             url)
    return url, manifest


def test_parts_verified_once_per_cached_copy(published_parts, tmp_path, hash_counter, summary):
    url, manifest = published_parts
    node = tmp_path / "node"
    distinct = len({p.sha256 for p in manifest.parts})
    for _ in range(5):
        assert runner.run(_spec(url), node_dir=node).check().stdout.strip() == \
            "hello from parts 1"
        summary.add("runs")
    assert len(hash_counter) == distinct, hash_counter  # each part once, not per container
    runner.run(_spec(url), node_dir=tmp_path / "node2").check()
    assert len(hash_counter) == 2 * distinct  # a second node verifies its own copies


def _damage(path: Path, damage: str) -> None:
    """Remove, flip a byte of, cut or extend the file (made writable first: parts are
    read-only)."""
    if damage == "missing":
        path.unlink()
        return
    data = bytearray(path.read_bytes())
    if damage == "tampered":
        data[len(data) // 2] ^= 0xFF
    elif damage == "truncated":
        data = data[: len(data) - 1000]
    else:
        data += b"#!/bin/sh\nevil\n"
    os.chmod(path, 0o640)
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("damage", ["tampered", "truncated", "appended", "missing"])
@pytest.mark.parametrize("which", [".deps/bigdep1-1-py3-none-any.whl", "__main__.py"])
def test_damaged_part_refused_naming_it(published_parts, tmp_path, damage, which, summary):
    url, manifest = published_parts
    spec = _spec(url)  # the manifest is read now, as a launcher does
    part = next(p for p in manifest.parts if p.path == which)
    part_url = parts_pool.part_url(url, part)
    # the pool file is a hard link to the build's file: break the link, damage the copy
    data = Path(part_url).read_bytes()
    os.unlink(part_url)
    Path(part_url).write_bytes(data)
    _damage(Path(part_url), damage)
    summary.add("faults_injected")
    with pytest.raises(IntegrityError) as err:
        runner.run(spec, node_dir=tmp_path / "node")
    summary.add("integrity_refusals")
    assert part.sha256 in str(err.value)  # the pool entry is named
    if damage == "missing":
        assert "missing from the store" in str(err.value)
    else:
        assert part_url in str(err.value)
        assert ("sha256" in str(err.value)) if damage == "tampered" else \
            ("size" in str(err.value))
    # nothing half-localized stays in the node cache: only intact parts, each under the
    # name of its verified sha256
    cache = tmp_path / "node" / "filecache"
    for entry in cache.iterdir() if cache.exists() else []:
        assert not entry.name.startswith("."), entry  # no leftover temporary
        localized = next(entry.iterdir())
        good = next(p for p in manifest.parts if parts.link_name(p) == localized.name)
        assert parts.file_sha256(localized) == good.sha256
    # the fetch (runner.fetch_env: a published environment as local files) refuses it too
    fetch_env = getattr(runner, "fetch_env", None)
    if fetch_env is not None:
        with pytest.raises(IntegrityError) as err:
            fetch_env(url, tmp_path / "fetched")
        assert which in str(err.value)
        assert not (tmp_path / "fetched" / "node.pex").exists()


def test_parts_manifest_is_checked_against_the_parts_it_lists(published_parts, summary):
    """The manifest's own sha256 names the whole set of parts: editing one part's digest
    (to point at another pool entry) without recomputing it is refused."""
    import json

    from cluster_pack.store.manifest import Manifest
    from cluster_pack.store.storage import Store

    url, manifest = published_parts
    mpath = Path(manifest_path(url))
    data = json.loads(mpath.read_text())
    other = next(p for p in data["parts"] if p["path"] == "PEX-INFO")
    victim = next(p for p in data["parts"] if p["path"].endswith(".whl"))
    victim["sha256"], victim["size"] = other["sha256"], other["size"]
    mpath.write_text(json.dumps(data))
    summary.add("hostile_inputs")
    with pytest.raises(IntegrityError, match="does not match the parts it lists"):
        Manifest.from_json(mpath.read_bytes(), str(mpath))
    store, path = Store.for_url(url)
    assert publish.read_manifest(store, path) is None  # a launcher never follows it


def test_sha256_throughput_is_documented(tmp_path, summary):
    path = make_pex(tmp_path / "big.pex", 256 << 20)
    size_mb = path.stat().st_size / 1e6
    builder.file_sha256(path)  # warm the page cache: measure hashing, not the disk
    t0 = time.perf_counter()
    builder.file_sha256(path)
    seconds = time.perf_counter() - t0
    rate = size_mb / seconds
    print(f"sha256 verification: {size_mb:.0f} MB in {seconds:.3f}s = {rate:.0f} MB/s "
          f"(a 2 GB environment costs ~{2000 / rate:.1f}s once per node)")
    summary.figure("sha256 throughput (once per cached copy)", f"{rate:.0f} MB/s")
    os.unlink(path)
    assert rate > 50
