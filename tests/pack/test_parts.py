"""Content-addressed parts: the assembly script, hashing, the pool, the v2 manifest,
force repair and garbage collection."""

import hashlib
import json
import os
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from cluster_pack.errors import IntegrityError, StorageError
from cluster_pack.launch import script as node_script
from cluster_pack.pack import parts
from cluster_pack.pack.parts import Part
from cluster_pack.progress import Reporter
from cluster_pack.store import parts_pool
from cluster_pack.store.manifest import LAYOUT_PARTS, Manifest, RunInfo, run_info_for
from cluster_pack.store.storage import TMP_MARKER, Store

FILES = {
    "__main__.py": b"#!/usr/bin/env python\nprint('main')\n",
    "PEX-INFO": b'{"distributions": {}}',
    ".bootstrap": b"bootstrap zip",
    "__pex__/__init__.py": b"# pex",
    ".deps/a-1.0-py3-none-any.whl": b"a" * 1000,
    ".deps/b-2.0-py3-none-any.whl": b"b" * 2000,
}


def part_of(path, data, executable=False):
    return Part(path, hashlib.sha256(data).hexdigest(), len(data), executable)


def tree_parts(files=FILES):
    return [part_of(path, data, path == "__main__.py") for path, data in files.items()]


def localize_fakes(workdir, part_list, files=FILES):
    """What an engine leaves in a working directory: each part under its link name."""
    for part in part_list:
        (workdir / parts.link_name(part)).write_bytes(files[part.path])


def assemble(workdir, dest, part_list):
    script = workdir.parent / f"assemble-{uuid.uuid4().hex}.sh"
    script.write_text("set -e\n" + node_script.assembly_script(dest, part_list))
    return subprocess.run(["bash", str(script)], cwd=workdir, capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin"})


def snapshot(directory):
    return {str(p.relative_to(directory)): (p.lstat().st_ino, p.lstat().st_mtime_ns)
            for p in sorted(directory.rglob("*"))}


# -- assembly on the node ------------------------------------------------------------------

def test_assembly_recreates_the_packed_directory_with_relative_links(tmp_path):
    workdir = tmp_path / "container"
    workdir.mkdir()
    part_list = tree_parts()
    localize_fakes(workdir, part_list)
    result = assemble(workdir, "env.pex", part_list)
    assert result.returncode == 0, result.stderr

    env = workdir / "env.pex"
    assert sorted(str(p.relative_to(env)) for p in env.rglob("*") if not p.is_dir()) == \
        sorted(FILES)
    for part in part_list:
        placed = env / part.path
        assert placed.read_bytes() == FILES[part.path]
        if part.path in parts.COPIED:  # Python would resolve a linked script's directory
            assert not placed.is_symlink()
        else:
            target = os.readlink(placed)
            assert not os.path.isabs(target) and target.endswith(parts.link_name(part))
    main = env / "__main__.py"
    assert os.access(main, os.X_OK)
    assert not os.access(env / "PEX-INFO", os.X_OK)
    assert [p.name for p in workdir.iterdir() if TMP_MARKER in p.name] == []

    # relative links: the directory stays valid wherever the working directory is seen
    moved = tmp_path / "elsewhere"
    workdir.rename(moved)
    assert (moved / "env.pex" / ".deps" / "b-2.0-py3-none-any.whl").read_bytes() == b"b" * 2000


def test_a_second_assembly_is_a_noop(tmp_path):
    part_list = tree_parts()
    localize_fakes(tmp_path, part_list)
    assert assemble(tmp_path, "env.pex", part_list).returncode == 0
    before = snapshot(tmp_path / "env.pex")
    assert assemble(tmp_path, "env.pex", part_list).returncode == 0
    assert snapshot(tmp_path / "env.pex") == before
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("env.pex")) == \
        ["env.pex"]


def test_concurrent_assemblies_agree_on_one_directory(tmp_path):
    part_list = tree_parts()
    localize_fakes(tmp_path, part_list)
    script = tmp_path.parent / "concurrent.sh"
    script.write_text(node_script.assembly_script("env.pex", part_list))
    procs = [subprocess.Popen(["bash", str(script)], cwd=tmp_path) for _ in range(8)]
    assert [p.wait() for p in procs] == [0] * 8
    assert (tmp_path / "env.pex" / "PEX-INFO").read_bytes() == FILES["PEX-INFO"]
    assert not [p for p in tmp_path.iterdir() if "cpack-tmp" in p.name]
    assert not (tmp_path / "env.pex" / "env.pex").exists()  # no mv into the winner


@pytest.mark.parametrize("path", [
    "a b.whl", "$(id).whl", "`id`.whl", "a;b", "x&&y", "a|b", "new\nline", "q'uote", 'q"uote',
    "back\\slash", "*.whl", "../escape", "a/../../b", "/abs/path", "./here", "a//b", "", ".",
    "dir/", "semi;colon/x",
])
def test_part_paths_with_shell_metacharacters_or_escapes_are_refused(path):
    with pytest.raises(IntegrityError, match="not a plain relative path"):
        Part(path, "a" * 64, 1).validate("m.json")


def test_accepted_characters_are_quoted_in_the_script(tmp_path):
    # "~" and "=" pass validation; unquoted, "~x" at the start of a word is a home dir
    files = {"PEX-INFO": b"{}", "~user/a+b=c.whl": b"data", ".deps/~x.whl": b"x"}
    part_list = tree_parts(files)
    for part in part_list:
        part.validate("m.json")
    script = node_script.assembly_script("env.pex", part_list)
    assert "'~user'" in script and "'~user/a+b=c.whl'" in script
    localize_fakes(tmp_path, part_list, files)
    result = assemble(tmp_path, "env.pex", part_list)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "env.pex" / "~user" / "a+b=c.whl").read_bytes() == b"data"
    assert (tmp_path / "env.pex" / ".deps" / "~x.whl").read_bytes() == b"x"


def test_destination_names_are_never_interpreted_by_the_shell(tmp_path):
    part_list = tree_parts()
    localize_fakes(tmp_path, part_list)
    dest = "we$(touch PWNED)ird`touch PWNED2`.pex"
    result = assemble(tmp_path, dest, part_list)
    assert not (tmp_path / "PWNED").exists() and not (tmp_path / "PWNED2").exists()
    assert result.returncode == 0, result.stderr
    assert (tmp_path / dest / "PEX-INFO").read_bytes() == FILES["PEX-INFO"]


# -- hashing -------------------------------------------------------------------------------

def test_tree_sha256_ignores_order_but_not_content():
    part_list = tree_parts()
    digest = parts.tree_sha256(part_list)
    assert parts.tree_sha256(list(reversed(part_list))) == digest
    first = part_list[0]
    for changed in (Part(first.path, "0" * 64, first.size, first.executable),
                    Part(first.path, first.sha256, first.size + 1, first.executable),
                    Part(first.path, first.sha256, first.size, not first.executable),
                    Part("other", first.sha256, first.size, first.executable)):
        assert parts.tree_sha256([changed] + part_list[1:]) != digest
    assert parts.tree_sha256(part_list[1:]) != digest


@pytest.fixture
def counted_hashing(monkeypatch):
    reads = []
    real = parts.file_sha256

    def counting(path):
        reads.append(Path(path).name)
        return real(path)

    monkeypatch.setattr(parts, "file_sha256", counting)
    return reads


def test_hash_cache_hits_do_not_read_the_file(tmp_path, counted_hashing):
    data = tmp_path / "a.whl"
    data.write_bytes(b"x" * 5000)
    cache_file = tmp_path / "cache" / "hashes.json"
    cache = parts.HashCache(cache_file)
    expected = hashlib.sha256(b"x" * 5000).hexdigest()
    assert cache.sha256(data) == expected and cache.sha256(data) == expected
    assert counted_hashing == ["a.whl"]
    cache.save()

    reloaded = parts.HashCache(cache_file)  # another process: the JSON file is the cache
    assert reloaded.sha256(data) == expected
    assert counted_hashing == ["a.whl"]

    data.write_bytes(b"y" * 5001)  # new content: another size and mtime, read again
    assert reloaded.sha256(data) == hashlib.sha256(b"y" * 5001).hexdigest()
    assert counted_hashing == ["a.whl", "a.whl"]


def test_a_damaged_hash_cache_is_ignored(tmp_path, counted_hashing):
    data = tmp_path / "a.whl"
    data.write_bytes(b"x")
    cache_file = tmp_path / "hashes.json"
    cache_file.write_text("{not json")
    assert parts.HashCache(cache_file).sha256(data) == hashlib.sha256(b"x").hexdigest()
    key = parts.HashCache._key(data)
    cache_file.write_text(json.dumps({key: "not-a-digest"}))
    assert parts.HashCache(cache_file).sha256(data) == hashlib.sha256(b"x").hexdigest()
    assert counted_hashing == ["a.whl", "a.whl"]


def listed_parts(listed):
    return [part for part, _ in listed]


def make_tree(root, files=FILES):
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    if (root / "__main__.py").exists():
        (root / "__main__.py").chmod(0o755)
    (root / "pex").symlink_to("__main__.py")  # pex's convenience link is not a part
    return root


def test_list_parts_hashes_every_file_but_not_symlinks(tmp_path):
    tree = make_tree(tmp_path / "env.pex")
    listed = parts.list_parts(tree, parts.HashCache(tmp_path / "h.json"))
    assert sorted(listed_parts(listed), key=str) == sorted(tree_parts(), key=str)
    assert all(path == tree / part.path for part, path in listed)


# -- the pool ------------------------------------------------------------------------------

class CountingReporter(Reporter):
    def __init__(self):
        self.advanced = 0

    def advance(self, nbytes):
        self.advanced += nbytes


@pytest.fixture(params=["local", "memory"])
def store_path(request, tmp_path):
    """A package path in the local store, or in fsspec's in-memory filesystem (a remote
    store: no hard links, temporary name then rename, several upload threads)."""
    if request.param == "local":
        yield Store.for_url(str(tmp_path / "envs" / "env.pex"))
        return
    store, path = Store.for_url(f"memory://cpack-{uuid.uuid4().hex}/envs/env.pex")
    assert not store.is_local
    yield store, path
    bucket = path.rsplit("/", 2)[0]
    if store.fs.exists(bucket):
        store.fs.rm(bucket, recursive=True)


def read(store, path):
    with store.fs.open(path, "rb") as f:
        return f.read()


def test_publish_writes_each_part_once_and_only_the_missing_ones(tmp_path, store_path):
    store, path = store_path
    listed = parts.list_parts(make_tree(tmp_path / "built"), parts.HashCache(tmp_path / "h"))
    part_list = [part for part, _ in listed]
    assert parts_pool.missing(store, path, part_list) == part_list  # no pool yet

    reporter = CountingReporter()
    total = sum(p.size for p in part_list)
    assert parts_pool.publish(store, path, listed, reporter) == total == reporter.advanced
    for part in part_list:
        assert read(store, parts_pool.part_url(path, part)) == FILES[part.path]
    assert parts_pool.missing(store, path, part_list) == []
    assert not [e for e in store.ls(parts_pool.pool_dir(path)) if TMP_MARKER in e["name"]]

    # a second publish writes nothing; one changed file costs one part
    assert parts_pool.publish(store, path, listed, CountingReporter()) == 0
    changed = dict(FILES, **{".deps/b-2.0-py3-none-any.whl": b"c" * 1500})
    listed2 = parts.list_parts(make_tree(tmp_path / "built2", changed),
                               parts.HashCache(tmp_path / "h"))
    new = [part for part, _ in listed2 if part.path == ".deps/b-2.0-py3-none-any.whl"]
    assert parts_pool.missing(store, path, [part for part, _ in listed2]) == new
    assert parts_pool.publish(store, path, listed2, CountingReporter()) == 1500


def test_a_part_with_the_wrong_size_is_missing_and_rewritten(tmp_path, store_path):
    store, path = store_path
    listed = parts.list_parts(make_tree(tmp_path / "built"), parts.HashCache(tmp_path / "h"))
    parts_pool.publish(store, path, listed, Reporter())
    wheel = next(part for part, _ in listed if part.path.endswith("a-1.0-py3-none-any.whl"))
    url = parts_pool.part_url(path, wheel)
    store.fs.rm(url)
    store.fs.pipe_file(url, b"truncated")
    assert parts_pool.missing(store, path, [part for part, _ in listed]) == [wheel]
    assert parts_pool.publish(store, path, listed, Reporter()) == wheel.size
    assert read(store, url) == FILES[".deps/a-1.0-py3-none-any.whl"]


def test_identical_files_are_one_part(tmp_path, store_path):
    store, path = store_path
    files = {"PEX-INFO": b"{}", ".deps/x.whl": b"same", ".deps/y.whl": b"same"}
    listed = parts.list_parts(make_tree(tmp_path / "built", files), parts.HashCache(tmp_path / "h"))
    assert len(parts_pool.missing(store, path, [part for part, _ in listed])) == 2
    assert parts_pool.publish(store, path, listed, Reporter()) == 2 + 4


def test_the_local_pool_links_the_built_files_instead_of_copying(tmp_path):
    store, path = Store.for_url(str(tmp_path / "envs" / "env.pex"))
    listed = parts.list_parts(make_tree(tmp_path / "built"), parts.HashCache(tmp_path / "h"))
    parts_pool.publish(store, path, listed, Reporter())
    for part, local in listed:
        assert os.stat(parts_pool.part_url(path, part)).st_ino == local.stat().st_ino


def test_pool_and_link_names():
    part = Part(".deps/six.whl", "ab" * 32, 3)
    assert parts_pool.pool_dir("hdfs://nn/user/me/envs/e.pex") == \
        "hdfs://nn/user/me/envs/.cluster-pack-parts"
    assert parts_pool.part_url("/envs/e.pex", part) == f"/envs/.cluster-pack-parts/{'ab' * 32}"
    assert parts.link_name(part) == "cpack-" + "ab" * 16


def test_materialize_writes_real_files_with_execute_bits(tmp_path):
    part_list = tree_parts()
    fetched = []

    def fetch(part, target):
        fetched.append(part.path)
        target.write_bytes(FILES[part.path])

    dest = node_script.materialize(part_list, tmp_path / "env.pex", fetch)
    assert sorted(fetched) == sorted(FILES)
    assert not [p for p in dest.rglob("*") if p.is_symlink()]
    assert os.access(dest / "__main__.py", os.X_OK) and not os.access(dest / "PEX-INFO", os.X_OK)


# -- the v2 manifest -----------------------------------------------------------------------

def parts_manifest(part_list=None, **overrides):
    part_list = tree_parts() if part_list is None else part_list
    values = dict(fingerprint="f" * 64, artifact_name="env.pex",
                  size=sum(p.size for p in part_list), sha256=parts.tree_sha256(part_list),
                  package_installed=["a==1.0", "b==2.0"], platform="cp311-cp311-linux_x86_64",
                  python_version="3.11", run=run_info_for("env.pex", LAYOUT_PARTS),
                  layout=LAYOUT_PARTS, parts=part_list)
    values.update(overrides)
    return Manifest(**values)


def test_parts_manifest_round_trip():
    manifest = parts_manifest()
    data = json.loads(manifest.to_json())
    assert data["format_version"] == 2 and data["layout"] == "parts"
    assert {"path", "sha256", "size", "executable"} == set(data["parts"][0])
    again = Manifest.from_json(manifest.to_json(), "env.json")
    assert again == manifest and again.is_parts
    assert again.run.interpreter_cmd == "./env.pex/__main__.py"


def test_a_tampered_parts_list_is_refused():
    data = json.loads(parts_manifest().to_json())
    data["parts"][3]["sha256"] = "0" * 64  # a part swapped, the tree digest left as it was
    with pytest.raises(IntegrityError, match="env.json: its sha256 does not match the parts"):
        Manifest.from_json(json.dumps(data).encode(), "env.json")
    data = json.loads(parts_manifest().to_json())
    data["parts"].append({"path": "extra.py", "sha256": "1" * 64, "size": 1})
    with pytest.raises(IntegrityError, match="does not match the parts"):
        Manifest.from_json(json.dumps(data).encode(), "env.json")


@pytest.mark.parametrize("bad", ["../../etc/cron.d/x", "/etc/passwd", ".deps/../../x",
                                 "a b"])
def test_a_part_path_escaping_the_directory_is_refused(bad):
    # the tree digest is recomputed so that only the path is wrong
    part_list = tree_parts() + [Part(bad, "2" * 64, 1)]
    raw = parts_manifest(part_list).to_json()
    with pytest.raises(IntegrityError, match="not a plain relative path"):
        Manifest.from_json(raw, "env.json")


def test_a_parts_manifest_needs_its_pex_info_and_valid_parts():
    without = [p for p in tree_parts() if p.path != "PEX-INFO"]
    with pytest.raises(IntegrityError, match="without its PEX-INFO"):
        Manifest.from_json(parts_manifest(without).to_json(), "env.json")
    data = json.loads(parts_manifest().to_json())
    del data["parts"][0]["sha256"]
    with pytest.raises(IntegrityError, match="lacks"):
        Manifest.from_json(json.dumps(data).encode(), "env.json")
    data = json.loads(parts_manifest().to_json())
    data["parts"][0]["size"] = -1
    with pytest.raises(IntegrityError, match="invalid size"):
        Manifest.from_json(json.dumps(data).encode(), "env.json")


# -- force repair and garbage collection --------------------------------------------

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
    pool = directory / parts_pool.POOL_DIR
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

    dry = parts_pool.collect_garbage(store, path, dry_run=True)
    assert sorted(dry.unreferenced) == [c, d] and dry.removed == [c] and dry.kept_young == [d]
    assert old_orphan.exists()

    done = parts_pool.collect_garbage(store, path)
    assert done.removed == [c] and done.freed_bytes == 3
    assert not old_orphan.exists() and young_orphan.exists()
    assert all(p.exists() for p in kept)


def test_an_unreadable_manifest_stops_the_collection(tmp_path):
    orphan = _pool_file(tmp_path, "e" * 64, 30)
    (tmp_path / "broken.json").write_text(json.dumps({"format_version": 2, "run": {}}))
    store, path = Store.for_url(str(tmp_path))
    with pytest.raises(StorageError, match="broken.json"):
        parts_pool.collect_garbage(store, path)
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
    src = tmp_path / "src"
    src.mkdir()
    (src / "PEX-INFO").write_bytes(b"{}")
    (src / "dep.whl").write_bytes(b"x" * 1000)
    listed = [(parts.Part(name, parts.file_sha256(src / name), (src / name).stat().st_size),
               src / name) for name in ("PEX-INFO", "dep.whl")]
    store, path = Store.for_url(str(tmp_path / "store" / "env.pex"))
    assert parts_pool.publish(store, path, listed, Reporter()) == 1002
    damaged = tmp_path / "store" / parts_pool.POOL_DIR / listed[1][0].sha256
    assert damaged.stat().st_mode & 0o222 == 0  # parts are read-only
    # replaced by other bytes of the same size (a new file: on the local store a part is a
    # hard link to the build's file, so an in-place edit would damage both alike)
    (damaged.parent / "other").write_bytes(b"y" * 1000)
    os.replace(damaged.parent / "other", damaged)

    assert parts_pool.publish(store, path, listed, Reporter()) == 0  # sizes match: not noticed
    assert parts_pool.damaged(store, path, [p for p, _ in listed]) == [listed[1][0]]
    assert parts_pool.publish(store, path, listed, Reporter(), verify=True) == 1000
    assert damaged.read_bytes() == b"x" * 1000
    assert parts_pool.damaged(store, path, [p for p, _ in listed]) == []
