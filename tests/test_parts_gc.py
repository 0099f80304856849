"""Garbage collection of the parts pool (local store)."""

import json
import os
import time

import pytest

from cluster_pack import parts
from cluster_pack.errors import StorageError
from cluster_pack.manifest import Manifest, RunInfo
from cluster_pack.store import Store


def _publish_manifest(directory, name, shas):
    part_list = [parts.Part("PEX-INFO", shas[0], 3)] + [
        parts.Part(f".deps/d{i}.whl", sha, 3) for i, sha in enumerate(shas[1:])]
    manifest = Manifest(fingerprint="f", artifact_name=f"{name}.pex",
                        size=sum(p.size for p in part_list), sha256=parts.tree_sha256(part_list),
                        package_installed=[], platform="", python_version="3.11",
                        run=RunInfo(f"{name}.pex", f"./{name}.pex/__main__.py", False),
                        layout="parts", parts=part_list)
    (directory / f"{name}.json").write_bytes(manifest.to_json())


def _pool_file(directory, sha, age_days):
    pool = directory / parts.POOL_DIR
    pool.mkdir(exist_ok=True)
    path = pool / sha
    path.write_bytes(b"abc")
    old = time.time() - age_days * 86400
    os.utime(path, (old, old))
    return path


def test_only_old_unreferenced_parts_are_removed(tmp_path):
    a, b, c, d = ("a" * 64, "b" * 64, "c" * 64, "d" * 64)
    _publish_manifest(tmp_path, "one", [a, b])
    kept = [_pool_file(tmp_path, a, 30), _pool_file(tmp_path, b, 30)]
    old_orphan = _pool_file(tmp_path, c, 30)
    young_orphan = _pool_file(tmp_path, d, 1)
    store, path = Store.for_url(str(tmp_path))

    dry = parts.collect_garbage(store, path, dry_run=True)
    assert sorted(dry.unreferenced) == [c, d] and dry.removed == [c] and dry.kept_young == [d]
    assert old_orphan.exists()

    done = parts.collect_garbage(store, path)
    assert done.removed == [c] and done.freed_bytes == 3
    assert not old_orphan.exists() and young_orphan.exists()
    assert all(p.exists() for p in kept)


def test_an_unreadable_manifest_stops_the_collection(tmp_path):
    orphan = _pool_file(tmp_path, "e" * 64, 30)
    (tmp_path / "broken.json").write_text(json.dumps({"format_version": 2, "run": {}}))
    store, path = Store.for_url(str(tmp_path))
    with pytest.raises(StorageError, match="broken.json"):
        parts.collect_garbage(store, path)
    assert orphan.exists()


def test_cli_gc_dry_run_then_remove(tmp_path, capsys):
    from cluster_pack import cli

    _publish_manifest(tmp_path, "one", ["a" * 64])
    _pool_file(tmp_path, "a" * 64, 30)
    orphan = _pool_file(tmp_path, "c" * 64, 30)
    assert cli.main(["gc", "--json", "--dry-run", str(tmp_path)]) == 0
    assert json.loads(capsys.readouterr().out)["removed"] == ["c" * 64] and orphan.exists()
    assert cli.main(["gc", str(tmp_path), "--min-age-days", "60"]) == 0
    assert "kept 1 younger than 60 days" in capsys.readouterr().out and orphan.exists()
    assert cli.main(["gc", str(tmp_path)]) == 0
    assert "removed 1 unreferenced part(s)" in capsys.readouterr().out and not orphan.exists()


def test_force_repairs_a_damaged_part_of_the_right_size(tmp_path):
    from cluster_pack.progress import Reporter

    src = tmp_path / "src"
    src.mkdir()
    (src / "PEX-INFO").write_bytes(b"{}")
    (src / "dep.whl").write_bytes(b"x" * 1000)
    listed = [(parts.Part(name, parts.file_sha256(src / name), (src / name).stat().st_size),
               src / name) for name in ("PEX-INFO", "dep.whl")]
    store, path = Store.for_url(str(tmp_path / "store" / "env.pex"))
    assert parts.publish(store, path, listed, Reporter()) == 1002
    damaged = tmp_path / "store" / parts.POOL_DIR / listed[1][0].sha256
    assert damaged.stat().st_mode & 0o222 == 0  # parts are read-only
    # replaced by other bytes of the same size (a new file: on the local store a part is a
    # hard link to the build's file, so an in-place edit would damage both alike)
    (damaged.parent / "other").write_bytes(b"y" * 1000)
    os.replace(damaged.parent / "other", damaged)

    assert parts.publish(store, path, listed, Reporter()) == 0  # sizes match: not noticed
    assert parts.damaged(store, path, [p for p, _ in listed]) == [listed[1][0]]
    assert parts.publish(store, path, listed, Reporter(), verify=True) == 1000
    assert damaged.read_bytes() == b"x" * 1000
    assert parts.damaged(store, path, [p for p, _ in listed]) == []
