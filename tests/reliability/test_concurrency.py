"""8 publishers of the same artifact + 8 of different ones into one directory, with readers.

Readers loop: read the manifest, read the artifact, re-read the manifest; when the manifest
did not change during the read, the artifact's sha256 and size must match it (a change in
between is a concurrent publish: the reader retries, as the runner would refuse and retry).

A target republished with *different* content by concurrent publishers (``race.pex``) can
be read torn (new artifact, manifest not yet replaced): those reads are counted apart
("torn ... refused") because verification refuses them; they are a documented limit.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from cluster_pack.store import parts_pool
from tests.reliability.conftest import make_pex, tmp_entries

PUBLISH = r"""
import sys
from cluster_pack.store import publish
for _ in range(int(sys.argv[3])):
    publish.publish_zip(sys.argv[1], sys.argv[2], force_upload=True)
"""

READER = r"""
import hashlib, json, sys, time
from cluster_pack.store.manifest import Manifest, manifest_path
from cluster_pack.store.storage import Store
targets, stop_after = sys.argv[1].split(","), float(sys.argv[2])
stats = {"checks": 0, "mismatches": 0, "torn": 0, "retries": 0, "missing": 0, "details": []}
deadline = time.monotonic() + stop_after
while time.monotonic() < deadline:
    for url in targets:
        store, path = Store.for_url(url)
        raw = store.read_bytes(manifest_path(path), 1 << 20)
        if raw is None or not store.exists(path):
            stats["missing"] += 1
            continue
        m = Manifest.from_json(raw, url)
        h, size = hashlib.sha256(), 0
        with store.fs.open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk); size += len(chunk)
        if store.read_bytes(manifest_path(path), 1 << 20) != raw:
            stats["retries"] += 1
            continue
        stats["checks"] += 1
        if h.hexdigest() != m.sha256 or size != m.size:
            key = "torn" if url.endswith("/race.pex") else "mismatches"
            stats[key] += 1
            stats["details"].append([key, url, m.sha256[:12], h.hexdigest()[:12], size, m.size])
print(json.dumps(stats))
"""


def _wait_for(procs, rprocs, counters, summary):
    """Wait for the publishers (each must succeed), then sum the readers' JSON counters.
    Returns (totals, details)."""
    for proc in procs:
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err
        summary.add("runs")
    totals = dict.fromkeys(counters, 0)
    details = []
    for proc in rprocs:
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err
        stats = json.loads(out.strip().splitlines()[-1])
        details += stats.pop("details")
        for k in totals:
            totals[k] += stats[k]
    summary.add("reader_checks", totals["checks"])
    return totals, details


def _run_concurrently(targets, jobs, readers, duration, summary):
    procs = [subprocess.Popen([sys.executable, "-c", PUBLISH, *job], stderr=subprocess.PIPE,
                              text=True) for job in jobs]
    rprocs = [subprocess.Popen([sys.executable, "-c", READER, ",".join(targets), str(duration)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
              for _ in range(readers)]
    totals, details = _wait_for(procs, rprocs,
                                ("checks", "mismatches", "torn", "retries", "missing"), summary)
    summary.add("artifacts_corrupted", totals["mismatches"])
    # race.pex gets *different* content from several publishers at once: a reader can see
    # the new artifact before its manifest (documented in SECURITY.md); the sha256 check
    # makes that a refusal, never a run of unverified bytes
    summary.add("torn_states_refused", totals["torn"])
    return totals, details


def test_16_publishers_and_readers_on_one_local_directory(tmp_path, summary):
    store = tmp_path / "store"
    rounds = int(os.environ.get("CPACK_CONCURRENCY_ROUNDS", "3"))
    same_src = make_pex(tmp_path / "same" / "same.pex", 4 << 20, seed=b"same")
    same_url = str(store / "same.pex")
    jobs = [(str(same_src), same_url, str(rounds)) for _ in range(8)]
    diff_urls = []
    for i in range(8):
        src = make_pex(tmp_path / f"d{i}" / f"env{i}.pex", 4 << 20, seed=f"d{i}".encode())
        diff_urls.append(str(store / f"env{i}.pex"))
        jobs.append((str(src), diff_urls[-1], str(rounds)))
    # one more target written by 4 publishers with *different* content (last writer wins)
    race_url = str(store / "race.pex")
    for i in range(4):
        src = make_pex(tmp_path / f"r{i}" / "race.pex", 4 << 20, seed=f"r{i}".encode())
        jobs.append((str(src), race_url, str(rounds)))
    from cluster_pack.store import publish
    for url, src in [(same_url, same_src), (race_url, tmp_path / "r0" / "race.pex")] + \
            [(u, tmp_path / f"d{i}" / f"env{i}.pex") for i, u in enumerate(diff_urls)]:
        publish.publish_zip(str(src), url)  # readers start with something to read
    t0 = time.monotonic()
    totals, details = _run_concurrently([same_url, race_url] + diff_urls, jobs, readers=3,
                                        duration=8.0, summary=summary)
    print(f"concurrency (local): {len(jobs)} publishers x {rounds} rounds, 3 readers, "
          f"{time.monotonic() - t0:.1f}s: {totals}")
    summary.figure("concurrency local (reader totals)", json.dumps(totals))
    assert totals["mismatches"] == 0, [d for d in details if d[0] == "mismatches"][:5]
    assert totals["checks"] > 0
    leaked = tmp_entries(store)
    summary.add("leaked_temporaries", len(leaked))
    assert leaked == []


@pytest.mark.hdfs
def test_publishers_and_readers_on_hdfs(hadoop_env, hadoop_cluster, tmp_path, summary):
    base = f"{hadoop_cluster.default_fs}/tmp/cpack-rel-conc-{os.getpid()}"
    same_src = make_pex(tmp_path / "same" / "same.pex", 1 << 20, seed=b"same")
    jobs = [(str(same_src), f"{base}/same.pex", "1") for _ in range(4)]
    race = f"{base}/race.pex"
    for i in range(4):
        src = make_pex(tmp_path / f"r{i}" / "race.pex", 1 << 20, seed=f"r{i}".encode())
        jobs.append((str(src), race, "1"))
    from cluster_pack.store import publish
    publish.publish_zip(str(same_src), f"{base}/same.pex")
    publish.publish_zip(str(tmp_path / "r0" / "race.pex"), race)
    totals, details = _run_concurrently([f"{base}/same.pex", race], jobs, readers=2,
                                        duration=10.0, summary=summary)
    print(f"concurrency (hdfs): {len(jobs)} publishers, 2 readers: {totals}")
    summary.figure("concurrency hdfs (reader totals)", json.dumps(totals))
    assert totals["mismatches"] == 0, [d for d in details if d[0] == "mismatches"][:5]
    from cluster_pack.store.storage import TMP_MARKER, Store
    store, path = Store.for_url(base)
    leaked = [e["name"] for e in store.ls(path) if TMP_MARKER in e["name"]
              or e["name"].endswith(".lock")]
    summary.add("leaked_temporaries", len(leaked))
    assert leaked == []


# -- the parts layout ------------------------------------------------------------------------
#
# ``upload_env`` publishes content-addressed parts into a pool shared by every environment
# of the directory, then the manifest. Publishers of the same environment, and of
# environments sharing parts, race on the same pool entries. A reader must never find a
# manifest naming a part that is missing, of another size or another content, and a part,
# once visible, must never be rewritten (a job localizing it keeps reading the same bytes;
# YARN refuses a resource whose timestamp changed since the submission).

PARTS_PUBLISH = r"""
import sys, time
from pathlib import Path
from tests.reliability.conftest import publish_parts
src, url, rounds, go = sys.argv[1], sys.argv[2], int(sys.argv[3]), Path(sys.argv[4])
while not go.exists():
    time.sleep(0.002)
for _ in range(rounds):
    publish_parts(Path(src), url)
"""

PARTS_READER = r"""
import json, sys, time
from pathlib import Path
from tests.reliability.conftest import check_published_parts, pool_entries
targets, stop_after, go = sys.argv[1].split(","), float(sys.argv[2]), Path(sys.argv[3])
stats = {"checks": 0, "problems": 0, "missing_manifest": 0, "rewritten": 0, "details": []}
seen = {}
while not go.exists():
    time.sleep(0.002)
deadline = time.monotonic() + stop_after
while time.monotonic() < deadline:
    for url in targets:
        manifest, problems = check_published_parts(url)
        if manifest is None:
            stats["missing_manifest"] += 1
            continue
        stats["checks"] += 1
        if problems:
            stats["problems"] += len(problems)
            stats["details"].append([url] + [list(p) for p in problems])
    for name, entry in pool_entries(targets[0]).items():
        if ".cpack-tmp-" in name:
            continue
        stamp = [entry.get("ino"), entry.get("mtime") or entry.get("modification_time")]
        if seen.setdefault(name, stamp) != stamp:
            stats["rewritten"] += 1
            stats["details"].append(["rewritten", name[:12], seen[name], stamp])
            seen[name] = stamp
print(json.dumps(stats))
"""


def _run_parts_concurrently(jobs, targets, readers, duration, tmp_path, summary, env=None):
    import pathlib

    repo = str(pathlib.Path(__file__).resolve().parents[2])
    go = tmp_path / "go"
    full_env = {**os.environ, **(env or {})}
    procs = [subprocess.Popen([sys.executable, "-c", PARTS_PUBLISH, *job, str(go)],
                              stderr=subprocess.PIPE, text=True, cwd=repo, env=full_env)
             for job in jobs]
    rprocs = [subprocess.Popen([sys.executable, "-c", PARTS_READER, ",".join(targets),
                                str(duration), str(go)], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, cwd=repo, env=full_env)
              for _ in range(readers)]
    time.sleep(1.0)  # every publisher imported and waiting: they start together
    go.write_text("go")
    totals, details = _wait_for(procs, rprocs,
                                ("checks", "problems", "missing_manifest", "rewritten"), summary)
    summary.add("artifacts_corrupted", totals["problems"] + totals["rewritten"])
    return totals, details


def _final_state_is_complete(targets, summary, fs_args=None):
    from tests.reliability.conftest import check_published_parts

    for url in targets:
        manifest, problems = check_published_parts(url, fs_args)
        summary.add("reader_checks")
        assert manifest is not None and problems == [], (url, problems)


def test_parts_publishers_sharing_a_pool_never_expose_a_missing_part(tmp_path, summary):
    from tests.reliability.conftest import make_packed_dir

    store = tmp_path / "store"
    rounds = int(os.environ.get("CPACK_CONCURRENCY_ROUNDS", "3"))
    payload = 4 << 20
    same = make_packed_dir(tmp_path / "same" / "same.pex", payload_size=payload)
    # two environments sharing their big parts, differing by one small distribution
    env_a = make_packed_dir(tmp_path / "a" / "a.pex", {"toydep": "1"}, payload_size=payload)
    env_b = make_packed_dir(tmp_path / "b" / "b.pex", {"toydep": "2"}, payload_size=payload)
    targets = [str(store / "same.pex"), str(store / "a.pex"), str(store / "b.pex")]
    jobs = [(str(same), targets[0], str(rounds)) for _ in range(6)]
    jobs += [(str(env_a), targets[1], str(rounds)) for _ in range(3)]
    jobs += [(str(env_b), targets[2], str(rounds)) for _ in range(3)]
    t0 = time.monotonic()
    totals, details = _run_parts_concurrently(jobs, targets, 3, 6.0, tmp_path, summary)
    print(f"parts concurrency (local): {len(jobs)} publishers x {rounds} rounds, 3 readers, "
          f"{time.monotonic() - t0:.1f}s: {totals}")
    summary.figure("parts concurrency local (reader totals)", json.dumps(totals))
    assert totals["problems"] == 0, details[:5]
    assert totals["rewritten"] == 0, details[:5]
    assert totals["checks"] > 0
    _final_state_is_complete(targets, summary)
    from cluster_pack.store import parts_pool

    pool = store / parts_pool.POOL_DIR
    leaked = tmp_entries(store) + tmp_entries(pool)
    summary.add("leaked_temporaries", len(leaked))
    assert leaked == []


@pytest.mark.hdfs
def test_parts_publishers_and_readers_on_hdfs(hadoop_env, hadoop_cluster, tmp_path, summary):
    from tests.reliability.conftest import make_packed_dir

    base = f"{hadoop_cluster.default_fs}/tmp/cpack-rel-parts-conc-{os.getpid()}"
    payload = 2 << 20
    env_a = make_packed_dir(tmp_path / "a" / "a.pex", {"toydep": "1"}, payload_size=payload)
    env_b = make_packed_dir(tmp_path / "b" / "b.pex", {"toydep": "2"}, payload_size=payload)
    targets = [f"{base}/a.pex", f"{base}/b.pex"]
    jobs = [(str(env_a), targets[0], "1"), (str(env_a), targets[0], "1"),
            (str(env_b), targets[1], "1"), (str(env_b), targets[1], "1")]
    cache = tmp_path / "cache"  # remote publishes stage in the local cache's build dir
    totals, details = _run_parts_concurrently(jobs, targets, 2, 10.0, tmp_path, summary,
                                              env={"C_PACK_CACHE_DIR": str(cache)})
    print(f"parts concurrency (hdfs): {len(jobs)} publishers, 2 readers: {totals}")
    summary.figure("parts concurrency hdfs (reader totals)", json.dumps(totals))
    assert totals["problems"] == 0, details[:5]
    assert totals["rewritten"] == 0, details[:5]
    _final_state_is_complete(targets, summary)
    from cluster_pack.store.storage import TMP_MARKER, Store

    store, path = Store.for_url(base)
    leaked = [e["name"] for e in store.ls(path) + store.ls(f"{path}/{parts_pool.POOL_DIR}")
              if TMP_MARKER in e["name"] or e["name"].endswith(".lock")]
    summary.add("leaked_temporaries", len(leaked))
    assert leaked == []


def _stamps(url):
    from tests.reliability.conftest import pool_entries

    return {name: (e.get("ino"), e.get("mtime") or e.get("modification_time"), e.get("size"))
            for name, e in pool_entries(url).items()}


@pytest.mark.parametrize("where", ["local", pytest.param("hdfs", marks=pytest.mark.hdfs)])
def test_a_part_published_meanwhile_is_never_rewritten(where, tmp_path, request, summary,
                                                       monkeypatch):
    """The race of two publishers sharing a part, made deterministic: B lists the pool
    (part absent), A publishes it, then B publishes: B must leave A's part as it is (same
    file, same timestamp), since YARN refuses a resource whose timestamp changed after
    the submission of a job that uses it."""
    from tests.reliability.conftest import make_packed_dir, publish_parts

    if where == "hdfs":
        cluster = request.getfixturevalue("hadoop_cluster")
        for key, value in cluster.env.items():
            monkeypatch.setenv(key, value)
        monkeypatch.setenv("C_PACK_CACHE_DIR", str(tmp_path / "cache"))
        base = f"{cluster.default_fs}/tmp/cpack-rel-parts-never-{os.getpid()}"
    else:
        base = str(tmp_path / "store")
    env_a = make_packed_dir(tmp_path / "a" / "a.pex", {"toydep": "1"}, payload_size=1 << 20)
    env_b = make_packed_dir(tmp_path / "b" / "b.pex", {"toydep": "2"}, payload_size=1 << 20)
    publish_parts(env_a, f"{base}/a.pex")
    before = _stamps(f"{base}/a.pex")
    time.sleep(1.1)  # any rewrite now shows in the timestamps (1 s or 1 ms resolution)
    # B's listing was made before A published: every part looks missing to it
    monkeypatch.setattr(parts_pool, "missing", lambda store, path, wanted: list(
        {p.sha256: p for p in wanted}.values()))
    summary.add("faults_injected")
    manifest_b = publish_parts(env_b, f"{base}/b.pex")
    after = _stamps(f"{base}/b.pex")
    summary.add("runs")
    rewritten = {name: (before[name], after[name]) for name in before
                 if after.get(name) != before[name]}
    summary.add("artifacts_corrupted", len(rewritten))
    assert rewritten == {}, rewritten
    assert {p.sha256 for p in manifest_b.parts} <= set(after)
