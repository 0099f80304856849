"""Faults during publish: SIGKILL at random points of a large upload, a full disk.

Kill loop (local store and harness HDFS): each run starts a publisher subprocess
(``publish.publish_zip(..., force_upload=True)`` of a ~64 MB artifact), SIGKILLs it after a
random delay drawn over the measured duration of a whole publish, then checks what a
reader sees, backdates what the dead publisher left (temporaries, HDFS lock) past the
staleness thresholds and runs a complete publish that must succeed, sweep everything
and leave a consistent artifact + manifest.

CI runs ``CPACK_FAULT_RUNS`` (default 6) runs per store; the full loop is
``CPACK_FAULT_RUNS=20 pytest tests/reliability -m "slow or not slow"``.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cluster_pack.errors import IntegrityError, StorageError
from cluster_pack.store import backends as storage_backends
from cluster_pack.store import publish
from cluster_pack.store.manifest import Manifest, manifest_path
from cluster_pack.store.storage import STALE_TMP_SECONDS, TMP_MARKER, Store
from tests.reliability.conftest import fault_runs, make_pex, tmp_entries
from tests.venvs import remove_remote_dir

ARTIFACT_MB = int(os.environ.get("CPACK_FAULT_ARTIFACT_MB", "64"))

PUBLISHER = r"""
import sys, time
from cluster_pack.store import publish
print("ready", flush=True)
sys.stdin.readline()
t0 = time.monotonic()
publish.publish_zip(sys.argv[1], sys.argv[2], force_upload=True)
print("done %.3f" % (time.monotonic() - t0), flush=True)
"""


def _sha(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(8 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@pytest.fixture(scope="module")
def versions(tmp_path_factory):
    """Two large, different, valid artifacts (A and B) with the same name."""
    root = tmp_path_factory.mktemp("fault-artifacts")
    out = {}
    for tag in ("A", "B"):
        path = make_pex(root / tag / "k.pex", ARTIFACT_MB << 20, seed=tag.encode())
        out[tag] = (path, _sha(path))
    yield out
    shutil.rmtree(root, ignore_errors=True)


def _reader_state(store: Store, path: str):
    """(manifest sha256 or None, artifact sha256 or None) as a reader sees them."""
    raw = store.read_bytes(manifest_path(path), 1 << 20)
    manifest = Manifest.from_json(raw, manifest_path(path)).sha256 if raw is not None else None
    if not store.exists(path):
        return manifest, None, None
    h = hashlib.sha256()
    size = 0
    with store.fs.open(path, "rb") as f:
        for chunk in iter(lambda: f.read(8 << 20), b""):
            h.update(chunk)
            size += len(chunk)
    return manifest, h.hexdigest(), size


def _start(source: Path, url: str, env=None):
    proc = subprocess.Popen([sys.executable, "-c", PUBLISHER, str(source), url],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    line = proc.stdout.readline().strip()
    assert line == "ready", proc.stderr.read()
    return proc


def _kill_during(proc: subprocess.Popen, delay: float, summary) -> bool:
    """Let a started publisher go, SIGKILL it after ``delay`` s; True if it had finished."""
    proc.stdin.write("go\n")
    proc.stdin.flush()
    time.sleep(delay)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    summary.add("faults_injected")
    summary.add("runs")
    return "done" in proc.stdout.read()


def _publish_in_subprocess(source: Path, url: str, env=None) -> float:
    proc = _start(source, url, env)
    out, err = proc.communicate("go\n", timeout=600)
    assert proc.returncode == 0, err
    return float(out.split()[-1])


class _Local:
    def __init__(self, root: Path):
        self.dir = root / "store"
        self.url = str(self.dir / "k.pex")
        self.store, self.path = Store.for_url(self.url)

    def temporaries(self):
        return tmp_entries(self.dir)

    def backdate_leftovers(self) -> int:
        old = time.time() - STALE_TMP_SECONDS - 120
        names = self.temporaries()
        for name in names:
            os.utime(self.dir / name, (old, old))
        return len(names)


class _Hdfs:
    def __init__(self, base: str):
        self.url = f"{base}/k.pex"
        self.store, self.path = Store.for_url(self.url)
        self.directory = self.path.rsplit("/", 1)[0]

    def temporaries(self):
        return sorted(e["name"] for e in self.store.ls(self.directory) if TMP_MARKER in e["name"])

    def backdate_leftovers(self) -> int:
        old_ms = int((time.time() - max(STALE_TMP_SECONDS, storage_backends.LOCK_STALE_SECONDS)
                      - 120) * 1000)
        names = self.temporaries()
        lock = f"{self.path}.lock"
        if self.store.fs.exists(lock):
            names.append(lock)  # the dead publisher's lock: stale after LOCK_STALE_SECONDS
        for name in names:
            self.store.fs.client.set_times(self.store.fs._strip_protocol(name), old_ms, old_ms)
        return len(names)


def _kill_loop(target, versions, summary, runs: int, env=None, label: str = ""):
    (a_path, a_sha), (_b_path, b_sha) = versions["A"], versions["B"]
    known = {a_sha: "A", b_sha: "B"}
    full = _publish_in_subprocess(a_path, target.url, env)  # calibrates a whole publish
    current = "A"
    summary.add("runs")
    outcomes = {"killed": 0, "mid_upload": 0, "completed": 0, "old": 0, "new": 0,
                "torn": 0}
    rng = random.Random(int(os.environ.get("CPACK_FAULT_SEED", "0")) or None)
    for run in range(runs):
        new = "B" if current == "A" else "A"
        source = versions[new][0]
        delay = rng.uniform(0, full * 1.15)
        finished = _kill_during(_start(source, target.url, env), delay, summary)
        outcomes["completed" if finished else "killed"] += 1

        manifest_sha, artifact_sha, size = _reader_state(target.store, target.path)
        summary.add("reader_checks")
        # the artifact under its name is always a complete A or B, the manifest too
        if artifact_sha not in known or manifest_sha not in known:
            summary.add("artifacts_corrupted")
            pytest.fail(f"{label} run {run}: killed after {delay:.3f}s left a partial "
                        f"artifact/manifest (artifact {artifact_sha} size {size}, "
                        f"manifest {manifest_sha})")
        if manifest_sha != artifact_sha:
            # killed between the artifact rename and the manifest write: readers must refuse
            outcomes["torn"] += 1
            print(f"{label} run {run}: torn after a kill at {delay:.3f}s of {full:.2f}s: "
                  f"artifact {known[artifact_sha]} manifest {known[manifest_sha]}, publishing {new}")
            summary.add("torn_states_refused")
        else:
            outcomes["old" if known[artifact_sha] == current else "new"] += 1
        if known[artifact_sha] == new:
            current = new

        if any(TMP_MARKER + "zip-" not in n for n in target.temporaries()):
            outcomes["mid_upload"] += 1  # a partial upload temporary was left behind
        left = target.backdate_leftovers()
        # the next publish succeeds, sweeps the stale leftovers, leaves a consistent pair
        nxt = "B" if current == "A" else "A"
        result = publish.publish_zip(str(versions[nxt][0]), target.url, force_upload=True)
        assert result.built
        current = nxt
        summary.add("runs")
        if left:
            summary.add("stale_temporaries_swept", left)
        manifest_sha, artifact_sha, _ = _reader_state(target.store, target.path)
        summary.add("reader_checks")
        if not (manifest_sha == artifact_sha == versions[nxt][1]):
            summary.add("artifacts_corrupted")
            pytest.fail(f"{label} run {run}: the publish after the kill left "
                        f"manifest {manifest_sha} / artifact {artifact_sha}")
        _fail_on_leaked_temporaries(target, label, run, summary)
    print(f"{label} kill loop: {runs} runs, whole publish {full:.2f}s, {outcomes}")
    summary.figure(f"{label} kill loop outcomes", json.dumps(outcomes))


def _fail_on_leaked_temporaries(target, label, run, summary):
    leaked = target.temporaries()
    if leaked:
        summary.add("leaked_temporaries", len(leaked))
        pytest.fail(f"{label} run {run}: temporaries survived the next publish "
                    f"although older than the threshold: {leaked}")


def test_kill_loop_local_store(tmp_path, versions, summary):
    _kill_loop(_Local(tmp_path), versions, summary, fault_runs(6), label="local")


@pytest.mark.slow
def test_kill_loop_local_store_full(tmp_path, versions, summary):
    _kill_loop(_Local(tmp_path), versions, summary, max(20, fault_runs(20)), label="local-full")


@pytest.fixture
def hdfs_base(hadoop_cluster, hadoop_env, request):
    url = f"{hadoop_cluster.default_fs}/tmp/cpack-rel-{request.node.name[:30]}-{os.getpid()}"
    yield url
    remove_remote_dir(url)  # the versions published there (the HDFS lives for the session)


def _hdfs_loop(hdfs_base, versions, summary, runs, tmp_path, label):
    cache = tmp_path / "cache"  # remote publishes stage in the local cache's build dir
    env = {**os.environ, "C_PACK_CACHE_DIR": str(cache)}
    os.environ["C_PACK_CACHE_DIR"] = str(cache)  # the in-process publishes too
    try:
        _kill_loop(_Hdfs(hdfs_base), versions, summary, runs, env=env, label=label)
    finally:
        del os.environ["C_PACK_CACHE_DIR"]
    build = cache / "build"
    stale = time.time() - STALE_TMP_SECONDS - 60
    left = tmp_entries(build)
    for name in left:  # what the killed publishers left in the local build dir...
        os.utime(build / name, (stale, stale))
    os.environ["C_PACK_CACHE_DIR"] = str(cache)
    try:  # ... is swept by the next publish once stale
        publish.publish_zip(str(versions["A"][0]), f"{hdfs_base}/k.pex", force_upload=True)
    finally:
        del os.environ["C_PACK_CACHE_DIR"]
    summary.add("stale_temporaries_swept", len(left))
    leaked = tmp_entries(build)
    summary.add("leaked_temporaries", len(leaked))
    assert leaked == [], f"local build temporaries not swept: {leaked}"


@pytest.mark.hdfs
def test_kill_loop_hdfs(hadoop_env, hdfs_base, versions, summary, tmp_path):
    _hdfs_loop(hdfs_base, versions, summary, fault_runs(6), tmp_path, "hdfs")


@pytest.mark.hdfs
@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("CPACK_FAULT_RUNS"),
                    reason="the >=20-run kill loop on HDFS (~70 s) runs with CPACK_FAULT_RUNS "
                           "set; CI runs it on the local store and 6 runs on HDFS")
def test_kill_loop_hdfs_full(hadoop_env, hdfs_base, versions, summary, tmp_path):
    _hdfs_loop(hdfs_base, versions, summary, max(20, fault_runs(20)), tmp_path, "hdfs-full")


# -- the torn window, deterministically ------------------------------------------------------

KILLED_BEFORE_MANIFEST = r"""
import os, signal, sys
from cluster_pack.store import publish
from cluster_pack.store.storage import Store
real = Store.publish_bytes
def die(self, data, path):  # SIGKILL right after the artifact was renamed into place
    os.kill(os.getpid(), signal.SIGKILL)
Store.publish_bytes = die
publish.publish_zip(sys.argv[1], sys.argv[2], force_upload=True)
"""


def test_kill_between_artifact_and_manifest_is_refused_then_repaired(tmp_path, summary):
    """The one window the atomic renames cannot close: new artifact, old manifest.

    Readers that verify (the runner, every engine's localization) refuse it; the next
    publish repairs it (its sha256 differs from the manifest's, so it is not skipped).
    """
    from cluster_pack.launch import local as runner
    from cluster_pack.launch import spec as launch

    store_dir = tmp_path / "store"
    url = str(store_dir / "t.pex")
    old = make_pex(tmp_path / "old" / "t.pex", seed=b"old")
    new = make_pex(tmp_path / "new" / "t.pex", seed=b"new")
    publish.publish_zip(str(old), url)
    proc = subprocess.run([sys.executable, "-c", KILLED_BEFORE_MANIFEST, str(new), url])
    assert proc.returncode == -signal.SIGKILL
    summary.add("faults_injected")
    summary.add("runs")
    manifest = Manifest.from_json(Path(manifest_path(url)).read_bytes())
    assert manifest.sha256 == _sha(old) and _sha(Path(url)) == _sha(new)  # torn
    summary.add("torn_states_refused")
    spec = launch.build_launch_spec([], package_path=url, include_editables=False)
    with pytest.raises(IntegrityError) as err:
        runner.run(spec, node_dir=tmp_path / "node")
    assert url in str(err.value)
    summary.add("integrity_refusals")
    result = publish.publish_zip(str(new), url)  # not skipped: sha256 differs
    assert result.built
    assert Manifest.from_json(Path(manifest_path(url)).read_bytes()).sha256 == _sha(new)
    assert runner.run(launch.build_launch_spec([], package_path=url, include_editables=False),
                      node_dir=tmp_path / "node").check().stdout.strip() == "hello from pex"
    # the dead publisher's (fresh) temporary directory is kept until stale, then swept
    left = tmp_entries(store_dir)
    assert all(TMP_MARKER + "zip-" in n for n in left), left
    stale = time.time() - STALE_TMP_SECONDS - 60
    for name in left:
        os.utime(store_dir / name, (stale, stale))
    publish.publish_zip(str(old), url)
    summary.add("stale_temporaries_swept", len(left))
    leaked = tmp_entries(store_dir)
    summary.add("leaked_temporaries", len(leaked))
    assert leaked == []


# -- stale temporaries -----------------------------------------------------------------------

def test_backdated_temporaries_are_swept_fresh_ones_kept(tmp_path, summary):
    store_dir = tmp_path / "store"
    store_dir.mkdir()
    url = str(store_dir / "s.pex")
    stale_file = store_dir / f".s.pex{TMP_MARKER}4242-deadbeef"
    stale_dir = store_dir / f".s.pex{TMP_MARKER}zip-abcd"  # publish_zip's temporary directory
    fresh = store_dir / f".s.pex{TMP_MARKER}4343-cafebabe"
    stale_file.write_bytes(b"x" * 1000)
    stale_dir.mkdir()
    (stale_dir / "s.pex").write_bytes(b"y" * 1000)
    fresh.write_bytes(b"z")
    old = time.time() - STALE_TMP_SECONDS - 60
    for p in (stale_file, stale_dir):
        os.utime(p, (old, old))
    summary.add("faults_injected", 2)
    publish.publish_zip(str(make_pex(tmp_path / "src" / "s.pex")), url)
    summary.add("runs")
    left = tmp_entries(store_dir)
    leaked = [n for n in left if n != fresh.name]
    summary.add("leaked_temporaries", len(leaked))
    summary.add("stale_temporaries_swept", 2 - len(leaked))
    assert leaked == [], f"stale temporaries not swept: {leaked}"
    assert left == [fresh.name], "a fresh temporary (maybe a running upload) must be kept"


# -- disk full -------------------------------------------------------------------------------

@pytest.fixture
def small_tmpfs(tmp_path):
    """A 20 MB tmpfs; skipped (even under CI) when this machine may not mount one."""
    mnt = tmp_path / "tmpfs"
    mnt.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=20m,mode=0700", "tmpfs",
                           str(mnt)], capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root/CAP_SYS_ADMIN): "
                    f"{proc.stderr.strip() or proc.returncode}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def _visible(directory: Path):
    """What a reader listing the directory sees (not dot-files, locks excluded)."""
    return sorted(p.name for p in directory.rglob("*")
                  if not any(part.startswith(".") for part in p.relative_to(directory).parts))


def test_disk_full_during_publish_is_clear_and_leaves_nothing(small_tmpfs, tmp_path, summary):
    store_dir = small_tmpfs / "envs"
    url = str(store_dir / "full.pex")
    small = make_pex(tmp_path / "a" / "full.pex", 1 << 20, seed=b"small")
    publish.publish_zip(str(small), url)
    before = (_sha(Path(url)), Path(manifest_path(url)).read_bytes())
    big = make_pex(tmp_path / "b" / "full.pex", 30 << 20, seed=b"big")
    with pytest.raises(StorageError) as err:
        publish.publish_zip(str(big), url)
    summary.add("faults_injected")
    summary.add("runs")
    message = str(err.value)
    print(f"disk full: {message}")
    assert "full.pex" in message and str(store_dir) in message
    assert "No space left" in message or "ENOSPC" in message or "28" in message
    # the old artifact and its manifest are untouched, nothing half-written is visible
    assert (_sha(Path(url)), Path(manifest_path(url)).read_bytes()) == before
    assert _visible(store_dir) == ["full.json", "full.pex"]
    leaked = tmp_entries(store_dir)
    summary.add("leaked_temporaries", len(leaked))
    assert leaked == []


@pytest.mark.slow
def test_disk_full_during_build_of_a_real_venv(small_tmpfs, packed_venv, summary):
    """upload_env with C_PACK_CACHE_DIR on the full disk: a clear error naming the path."""
    cache = small_tmpfs / "cache"
    cache.mkdir()
    proc = packed_venv.run(
        "import os\nos.environ.pop('HADOOP_CONF_DIR', None)\n"
        "from cluster_pack.store import publish\npublish.publish_env(force_upload=True)\n",
        cache, check=False)
    summary.add("faults_injected")
    summary.add("runs")
    assert proc.returncode != 0
    last = proc.stderr.strip().splitlines()[-1]
    print(f"disk full during build: {last}")
    err = proc.stderr
    assert ("StorageError" in err or "BuildError" in err), err[-3000:]
    assert "No space left" in err and str(small_tmpfs) in err, err[-3000:]
    envs = cache / "envs"
    assert _visible(envs) == [] if envs.exists() else True
    leaked = tmp_entries(envs) if envs.exists() else []
    summary.add("leaked_temporaries", len(leaked))
    assert leaked == [], leaked


# -- the parts layout: a publisher killed while it writes parts ------------------------------
#
# Each run publishes a NEW version (its big distributions differ from every earlier one, so
# there is always something to upload), kills the publisher at a random point, then checks
# what a reader sees: the manifest is the previous version or the new one, every part it
# names is in the pool, complete, with the content its name says; no pool entry under a
# part's name is partial (temporaries have hidden names). Leftovers are backdated past the
# staleness thresholds and the same version is published again: it completes, repairs
# what the dead publisher left half done and sweeps its temporaries.

PARTS_PUBLISHER = r"""
import sys, time
from pathlib import Path
from tests.reliability.conftest import publish_parts
print("ready", flush=True)
sys.stdin.readline()
t0 = time.monotonic()
publish_parts(Path(sys.argv[1]), sys.argv[2])
print("done %.3f" % (time.monotonic() - t0), flush=True)
"""

REPO_ROOT = Path(__file__).resolve().parents[2]


class _PartsTarget:
    """The env directory, its pool, and what a dead publisher leaves in them."""

    def __init__(self, url: str):
        from cluster_pack.store import parts_pool

        self.url = url
        self.store, self.path = Store.for_url(url)
        self.directory = self.path.rsplit("/", 1)[0]
        self.pool = parts_pool.pool_dir(self.path)
        self.verified = {}  # pool entry -> size, hashed once

    def entries(self):
        return self.store.ls(self.directory) + self.store.ls(self.pool)

    def temporaries(self):
        return sorted(e["name"] for e in self.entries() if TMP_MARKER in e["name"])

    def backdate_leftovers(self) -> int:
        names = self.temporaries()
        lock = f"{self.path}.lock"
        if not self.store.is_local and self.store.fs.exists(lock):
            names.append(lock)  # the dead publisher's HDFS lock
        old = time.time() - max(STALE_TMP_SECONDS, storage_backends.LOCK_STALE_SECONDS) - 120
        for name in names:
            if self.store.is_local:
                os.utime(name, (old, old))
            else:
                self.store.fs.client.set_times(self.store.fs._strip_protocol(name),
                                               int(old * 1000), int(old * 1000))
        return len(names)

    def half_parts(self):
        """Pool entries under a part's name whose content is not that part."""
        bad = []
        for entry in self.store.ls(self.pool):
            name = entry["name"].rstrip("/").rsplit("/", 1)[-1]
            if TMP_MARKER in name or self.verified.get(name) == entry.get("size"):
                continue
            h = hashlib.sha256()
            with self.store.fs.open(entry["name"], "rb") as f:
                for chunk in iter(lambda: f.read(8 << 20), b""):
                    h.update(chunk)
            if h.hexdigest() != name:
                bad.append((name[:12], entry.get("size")))
            else:
                self.verified[name] = entry.get("size")
        return bad


def _start_parts(source: Path, url: str, env):
    proc = subprocess.Popen([sys.executable, "-c", PARTS_PUBLISHER, str(source), url],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, cwd=REPO_ROOT)
    line = proc.stdout.readline().strip()
    assert line == "ready", proc.stderr.read()
    return proc


def _parts_kill_loop(url, tmp_path, summary, runs, megabytes, env, label):
    from tests.reliability.conftest import check_published_parts, make_packed_dir

    target = _PartsTarget(url)
    builds = tmp_path / "builds"  # the publishers' temporary build copies (TMPDIR)
    builds.mkdir()
    env = {**os.environ, **env, "TMPDIR": str(builds)}

    def version(i):
        return make_packed_dir(tmp_path / f"v{i}" / "k.pex", {"toydep": str(i)},
                               payload_size=megabytes << 20, payload_seed=f"v{i}".encode())

    def publish_whole(source):
        proc = _start_parts(source, url, env)
        out, err = proc.communicate("go\n", timeout=600)
        assert proc.returncode == 0, err
        return float(out.split()[-1])

    full = publish_whole(version(0))  # calibrates a whole publish (every part new)
    summary.add("runs")
    known = {check_published_parts(url)[0].sha256: 0}
    outcomes = {"killed": 0, "completed": 0, "old": 0, "new": 0, "left_temporaries": 0}
    rng = random.Random(int(os.environ.get("CPACK_FAULT_SEED", "0")) or None)
    for run in range(1, runs + 1):
        source = version(run)
        delay = rng.uniform(0, full * 1.15)
        finished = _kill_during(_start_parts(source, url, env), delay, summary)
        outcomes["completed" if finished else "killed"] += 1

        manifest, problems = check_published_parts(url)
        half = target.half_parts()
        summary.add("reader_checks")
        if problems or half or manifest is None:
            summary.add("artifacts_corrupted")
            pytest.fail(f"{label} run {run}: killed after {delay:.3f}s of {full:.2f}s: "
                        f"manifest names broken parts {problems}, half parts {half}")
        if manifest.sha256 not in known:
            known[manifest.sha256] = run
        outcomes["new" if known[manifest.sha256] == run else "old"] += 1
        if target.temporaries():
            outcomes["left_temporaries"] += 1

        left = target.backdate_leftovers()
        publish_whole(source)  # the next publish completes and repairs
        summary.add("runs")
        if left:
            summary.add("stale_temporaries_swept", left)
        manifest, problems = check_published_parts(url)
        known.setdefault(manifest.sha256, run)
        summary.add("reader_checks")
        if problems or known[manifest.sha256] != run or target.half_parts():
            summary.add("artifacts_corrupted")
            pytest.fail(f"{label} run {run}: the publish after the kill left manifest of "
                        f"run {known[manifest.sha256]}, problems {problems}")
        _fail_on_leaked_temporaries(target, label, run, summary)
        shutil.rmtree(tmp_path / f"v{run}")
    # every killed publisher's build copy is in TMPDIR (a real build: the cache's build
    # dir, swept by the next publish once stale)
    shutil.rmtree(builds, ignore_errors=True)
    print(f"{label} parts kill loop: {runs} runs, whole publish {full:.2f}s, {outcomes}")
    summary.figure(f"{label} parts kill loop outcomes", json.dumps(outcomes))


def test_parts_kill_loop_local_store(tmp_path, summary):
    _parts_kill_loop(str(tmp_path / "store" / "k.pex"), tmp_path, summary, fault_runs(6),
                     ARTIFACT_MB, {}, "local")


@pytest.mark.hdfs
def test_parts_kill_loop_hdfs(hadoop_env, hdfs_base, summary, tmp_path, monkeypatch):
    monkeypatch.setenv("C_PACK_CACHE_DIR", str(tmp_path / "cache"))
    _parts_kill_loop(f"{hdfs_base}/k.pex", tmp_path, summary, fault_runs(6),
                     min(ARTIFACT_MB, 32), {"C_PACK_CACHE_DIR": str(tmp_path / "cache")}, "hdfs")
