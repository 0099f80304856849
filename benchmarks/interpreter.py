"""What ``include_interpreter`` costs: cold publish and node start, with and without.

    python benchmarks/interpreter.py [--python ~/.pyenv/versions/3.12.1/bin/python3.12]
                                     [--repeat 3] [--out benchmarks/results]

Builds a small venv (six, cluster-pack editable from this checkout) from ``--python`` with
uv, then, inside that venv (so that "without" finds the venv's Python on the node's PATH,
as a node having that Python would):

* cold publish to an empty local store, without the option and with it (first with an
  empty interpreter cache: the tar is written and hashed; then with the tar cached, the
  pool still empty), and a second environment on the same interpreter (the part re-used);
* node start through the local runner (``python -m six``-like job): cold (an empty node
  cache: localize, extract, the pex venv installed, stdlib bytecode compiled) and warm.

Writes ``<out>/interpreter-<date>.json`` and prints a Markdown table (min / median s).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent

INNER = r"""
import json, os, shutil, statistics, sys, time
from pathlib import Path
import cluster_pack
from cluster_pack.launch import local
from cluster_pack.launch.spec import module_launch_spec

work = Path(sys.argv[1]); repeat = int(sys.argv[2])
out = {}

def timed(fn):
    t0 = time.perf_counter(); value = fn(); return time.perf_counter() - t0, value

def publish(target, include, interp_cache):
    os.environ["C_PACK_CACHE_DIR"] = str(work / "cache")
    if not interp_cache:
        shutil.rmtree(work / "cache" / "interpreters", ignore_errors=True)
    return cluster_pack.publish_env(package_path=str(target), include_interpreter=include,
                                    force_upload=True)

rows = {"cold publish, without": [], "cold publish, with (interpreter tar built)": [],
        "cold publish, with (tar cached)": [], "2nd env, same interpreter": [],
        "node start cold, without": [], "node start warm, without": [],
        "node start cold, with": [], "node start warm, with": []}
written = {}
for i in range(repeat):
    for label, include, cached in (("cold publish, without", False, True),
                                   ("cold publish, with (interpreter tar built)", True, False),
                                   ("cold publish, with (tar cached)", True, True)):
        store = work / f"store-{label[:20].replace(' ', '_')}-{i}"
        shutil.rmtree(store, ignore_errors=True)
        seconds, result = timed(lambda: publish(store / "env.pex", include, cached))
        rows[label].append(seconds)
        written[label] = result.uploaded_bytes
        if include and cached:
            seconds, second = timed(lambda: cluster_pack.publish_env(
                package_path=str(store / "other.pex"), include_interpreter=True,
                ignored_packages=["six"], force_upload=True))
            rows["2nd env, same interpreter"].append(seconds)
            written["2nd env, same interpreter"] = second.uploaded_bytes
        if label.endswith("built"):
            continue
        what = "with" if include else "without"
        node = work / f"node-{what}-{i}"
        shutil.rmtree(node, ignore_errors=True)
        spec = module_launch_spec("json.tool", ["--help"], package_path=result.path,
                                  include_editables=False)
        for kind in ("cold", "warm"):
            seconds, run = timed(lambda: local.run(spec, node_dir=node))
            assert run.returncode == 0, run.stderr
            rows[f"node start {kind}, {what}"].append(seconds)
print("RESULT:" + json.dumps({"rows": rows, "written": written,
                              "python": sys.version.split()[0]}))
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    default = Path.home() / ".pyenv" / "versions"
    found = sorted(default.glob("3.12.*/bin/python3.12")) if default.is_dir() else []
    ap.add_argument("--python", default=str(found[-1]) if found else sys.executable)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--out", default=str(HERE / "results"))
    args = ap.parse_args()
    uv = shutil.which("uv") or str(Path(sys.executable).parent / "uv")
    work = Path(tempfile.mkdtemp(prefix="cpack-bench-interp-"))
    try:
        venv = work / "venv"
        subprocess.run([uv, "venv", "--quiet", "--python", args.python, str(venv)], check=True)
        subprocess.run([uv, "pip", "install", "--quiet", "--python", str(venv / "bin" / "python"),
                        "six", "-e", str(REPO)], check=True)
        env = {k: v for k, v in os.environ.items()
               if k not in ("VIRTUAL_ENV", "PYTHONPATH", "C_PACK_CACHE_DIR")}
        proc = subprocess.run([str(venv / "bin" / "python"), "-c", textwrap.dedent(INNER),
                               str(work), str(args.repeat)], env=env, capture_output=True,
                              text=True)
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT:")]
        if proc.returncode != 0 or not lines:
            print(proc.stderr[-4000:], file=sys.stderr)
            return 1
        data = json.loads(lines[-1][len("RESULT:"):])
    finally:
        shutil.rmtree(work, ignore_errors=True)
    import statistics

    print(f"Python {data['python']} venv (six), {args.repeat} repeats, min / median seconds\n")
    print("| | seconds | bytes written |\n|---|---|---|")
    for label, samples in data["rows"].items():
        cell = f"{min(samples):.2f} / {statistics.median(samples):.2f}" if samples else ""
        size = data["written"].get(label)
        print(f"| {label} | {cell} | {f'{size / 2**20:.1f} MiB' if size is not None else ''} |")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"interpreter-{datetime.date.today().isoformat()}.json"
    path.write_text(json.dumps(data, indent=2) + "\n")
    print(f"\n{path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
