"""Integrity on the node: size + sha256 from the manifest, once per cached copy."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from cluster_pack import builder, launch, publish, runner
from cluster_pack.errors import IntegrityError
from cluster_pack.manifest import manifest_path
from tests.reliability.conftest import make_pex


@pytest.fixture
def published(tmp_path):
    url = str(tmp_path / "store" / "node.pex")
    publish.publish_zip(str(make_pex(tmp_path / "src" / "node.pex", 2 << 20)), url)
    return url


@pytest.fixture
def hash_counter(monkeypatch):
    calls = []
    real = builder.file_sha256

    def counting(path):
        calls.append(str(path))
        return real(path)

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
    data = bytearray(Path(published).read_bytes())
    if damage == "tampered":
        data[len(data) // 2] ^= 0xFF
    elif damage == "truncated":
        data = data[: len(data) - 1000]
    else:
        data += b"#!/bin/sh\nevil\n"
    Path(published).write_bytes(bytes(data))
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
            from cluster_pack.manifest import Manifest
            Manifest.from_json(mpath.read_bytes(), str(mpath))
        assert str(mpath) in str(err.value)
        # a launcher reading it falls back to "no manifest" (rebuild) but never follows it
        from cluster_pack.store import Store
        store, path = Store.for_url(published)
        assert publish.read_manifest(store, path) is None


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
