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

from tests.reliability.conftest import make_pex, tmp_entries

PUBLISH = r"""
import sys
from cluster_pack import publish
for _ in range(int(sys.argv[3])):
    publish.publish_zip(sys.argv[1], sys.argv[2], force_upload=True)
"""

READER = r"""
import hashlib, json, sys, time
from cluster_pack.manifest import Manifest, manifest_path
from cluster_pack.store import Store
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


def _run_concurrently(targets, jobs, readers, duration, summary):
    procs = [subprocess.Popen([sys.executable, "-c", PUBLISH, *job], stderr=subprocess.PIPE,
                              text=True) for job in jobs]
    rprocs = [subprocess.Popen([sys.executable, "-c", READER, ",".join(targets), str(duration)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
              for _ in range(readers)]
    for proc in procs:
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err
        summary.add("runs")
    totals = {"checks": 0, "mismatches": 0, "torn": 0, "retries": 0, "missing": 0}
    details = []
    for proc in rprocs:
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err
        stats = json.loads(out.strip().splitlines()[-1])
        details += stats.pop("details")
        for k in totals:
            totals[k] += stats[k]
    summary.add("reader_checks", totals["checks"])
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
    from cluster_pack import publish
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
    from cluster_pack import publish
    publish.publish_zip(str(same_src), f"{base}/same.pex")
    publish.publish_zip(str(tmp_path / "r0" / "race.pex"), race)
    totals, details = _run_concurrently([f"{base}/same.pex", race], jobs, readers=2,
                                        duration=10.0, summary=summary)
    print(f"concurrency (hdfs): {len(jobs)} publishers, 2 readers: {totals}")
    summary.figure("concurrency hdfs (reader totals)", json.dumps(totals))
    assert totals["mismatches"] == 0, [d for d in details if d[0] == "mismatches"][:5]
    from cluster_pack.store import TMP_MARKER, Store
    store, path = Store.for_url(base)
    leaked = [e["name"] for e in store.ls(path) if TMP_MARKER in e["name"]
              or e["name"].endswith(".lock")]
    summary.add("leaked_temporaries", len(leaked))
    assert leaked == []
