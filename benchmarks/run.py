#!/usr/bin/env python3
"""Measure cluster-pack side by side with the incumbents, in one run.

    python benchmarks/run.py [--envs small,medium|large] [--repeat N] [--smoke] [--out DIR]

Stdlib only: it builds what it needs itself under benchmarks/work/ (gitignored) with uv
(found on PATH, in <repo>/.venv, or bootstrapped from PyPI), including a tooling venv for
matplotlib and venv-pack.  See benchmarks/README.md for what is measured and how.
"""
from __future__ import annotations

import argparse
import base64
import datetime
import hashlib
import json
import os
import platform
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
WORK = HERE / "work"
UV_BOOTSTRAP_VERSION = "0.13.8"

# The extra distribution installed for the "one package changed" scenario (in no reference env).
CHANGED_PKG = "tomli==2.3.0"
CHANGED_NAME = "tomli"

# What a job imports at start, per reference env (node-start scenario).
IMPORTS = {
    "small": "import requests, click, attr, six",
    "medium": "import numpy, pandas",
    "large": "import numpy, pandas",
}
# Which requirements file a reference env is built from.
REQS = {"small": "small", "medium": "medium", "large": "medium"}

# "large": a generated, installed distribution of incompressible random files.
BALLAST_NAME = "bench_ballast"
BALLAST_DIST = "bench_ballast-1.0.0.dist-info"
BALLAST_FILES = 72_000
BALLAST_FILE_SIZE = 64 * 1024  # 72,000 x 64 KiB = 4.39 GiB (> 4 GiB, > 70,000 files)
BALLAST_PER_DIR = 1_000

SCENARIOS = ["cold", "noop", "changed"]
NODE_SCENARIOS = ["node_cold", "node_warm", "node_unzip_import"]

VERBOSE = False


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


# --------------------------------------------------------------------------------------
# Process measurement
# --------------------------------------------------------------------------------------

def _snapshot(root: Optional[Path]) -> Dict[str, tuple]:
    snap: Dict[str, tuple] = {}
    if root is None or not root.exists():
        return snap
    for dirpath, _dirs, files in os.walk(root):
        for f in files:
            p = os.path.join(dirpath, f)
            try:
                st = os.lstat(p)
            except FileNotFoundError:
                continue
            snap[p] = (st.st_size, st.st_mtime_ns, st.st_ino)
    return snap


def _written(before: Dict[str, tuple], after: Dict[str, tuple]) -> tuple:
    """Bytes and count of files created or modified between two snapshots."""
    nbytes = nfiles = 0
    for p, sig in after.items():
        if before.get(p) != sig:
            nbytes += sig[0]
            nfiles += 1
    return nbytes, nfiles


def clean_env(extra: Optional[Dict[str, str]] = None, path_prefix: Optional[Path] = None,
              write_bytecode: bool = False) -> Dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not (k.startswith("PEX") or k in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME",
                                                 "CLUSTER_PACK_CACHE_DIR", "C_PACK_CACHE_DIR",
                                                 "C_PACK_VENV_OPTIMIZATION_LEVEL"))}
    env["C_PACK_USER"] = env.get("C_PACK_USER", "bench")
    if not write_bytecode:  # packers must not add __pycache__ to the reference env
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    else:  # a node writes bytecode once, whatever the benchmarking machine's shell says
        env.pop("PYTHONDONTWRITEBYTECODE", None)
    if path_prefix is not None:
        env["PATH"] = f"{path_prefix}{os.pathsep}{env.get('PATH', '')}"
    if extra:
        env.update(extra)
    return env


def run_measured(cmd: List[str], *, env: Dict[str, str], cwd: Optional[Path] = None,
                 store: Optional[Path] = None, logfile: Path, timeout: float) -> Dict[str, Any]:
    """Run cmd; wall time, peak RSS (wait4 rusage of the child tree), bytes written to store."""
    logfile.parent.mkdir(parents=True, exist_ok=True)
    before = _snapshot(store)
    load0 = os.getloadavg()[0]
    with open(logfile, "wb") as out:
        out.write(("$ " + " ".join(shlex.quote(str(c)) for c in cmd) + "\n").encode())
        out.flush()
        t0 = time.perf_counter()
        proc = subprocess.Popen([str(c) for c in cmd], env=env, cwd=cwd, stdout=out,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
        timed_out = []

        def _kill() -> None:
            timed_out.append(True)
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

        timer = threading.Timer(timeout, _kill)
        timer.start()
        try:
            _pid, status, ru = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
        wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    after = _snapshot(store)
    nbytes, nfiles = _written(before, after)
    text = logfile.read_text(errors="replace")
    inproc = None
    for line in text.splitlines():
        if line.startswith("BENCH_JSON "):
            inproc = json.loads(line[len("BENCH_JSON "):])
    res: Dict[str, Any] = {
        "wall_s": wall,
        "rc": proc.returncode,
        "maxrss_mib": ru.ru_maxrss / 1024.0,
        "bytes_written": nbytes,
        "files_written": nfiles,
        "loadavg_1m": load0,
    }
    if inproc is not None:
        res["inproc"] = inproc
    if timed_out:
        res["error"] = f"timeout after {timeout:.0f}s"
    elif proc.returncode != 0:
        tail = [ln for ln in text.splitlines()[1:] if ln.strip()][-6:]  # [0] is the command
        res["error"] = f"exit {proc.returncode}: " + " | ".join(tail)[-600:]
    return res


def sh(cmd: List[Any], **kw: Any) -> str:
    if VERBOSE:
        log("$ " + " ".join(shlex.quote(str(c)) for c in cmd))
    return subprocess.run([str(c) for c in cmd], check=True, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, **kw).stdout


def rm(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.exists():
        shutil.rmtree(path)


def fresh(path: Path) -> Path:
    rm(path)
    path.mkdir(parents=True)
    return path


# --------------------------------------------------------------------------------------
# Environments
# --------------------------------------------------------------------------------------

def base_python(arg: Optional[str]) -> str:
    if arg:
        return arg
    exe = getattr(sys, "_base_executable", None) or sys.executable
    return os.path.realpath(exe)


def find_uv(py: str) -> str:
    for cand in (os.environ.get("UV"), shutil.which("uv"), REPO / ".venv" / "bin" / "uv",
                 WORK / "bootstrap" / "bin" / "uv"):
        if cand and os.access(str(cand), os.X_OK):
            return str(cand)
    log(f"uv not found: bootstrapping uv=={UV_BOOTSTRAP_VERSION} from PyPI")
    sh([py, "-m", "venv", WORK / "bootstrap"])
    sh([WORK / "bootstrap" / "bin" / "pip", "install", "-q", f"uv=={UV_BOOTSTRAP_VERSION}"])
    return str(WORK / "bootstrap" / "bin" / "uv")


class Ctx:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.py = base_python(args.python)
        self.uv = find_uv(self.py)
        self.tooling = WORK / "tooling"
        self.timeout = args.timeout

    def uv_pip(self, venv: Path, *args: Any) -> str:
        # --compile-bytecode: like a pip-installed env, the reference env ships its .pyc files
        return sh([self.uv, "pip", "install", "-q", "--link-mode=copy", "--compile-bytecode",
                   "--python",
                   venv / "bin" / "python", *args])

    def uv_uninstall(self, venv: Path, *names: str) -> None:
        sh([self.uv, "pip", "uninstall", "-q", "--python", venv / "bin" / "python", *names])

    def make_venv(self, venv: Path) -> None:
        if not (venv / "bin" / "python").exists():
            sh([self.uv, "venv", "-q", "--python", self.py, venv])


def site_packages(venv: Path) -> Path:
    found = sorted((venv / "lib").glob("python3*/site-packages"))
    if not found:
        raise RuntimeError(f"no site-packages in {venv}")
    return found[0]


def prepare_tooling(ctx: Ctx) -> None:
    log("tooling venv (matplotlib, venv-pack)")
    ctx.make_venv(ctx.tooling)
    ctx.uv_pip(ctx.tooling, "-r", HERE / "requirements-tools.txt")


def prepare_env(ctx: Ctx, name: str, incumbent: bool = True) -> Dict[str, Path]:
    d = WORK / "envs" / name
    reqs = HERE / f"requirements-{REQS[name]}.txt"
    ours, inc = d / "ours", d / "cp0319"
    log(f"env {name}: {ours} (ours, editable) and {inc} (cluster-pack 0.3.19)")
    ctx.make_venv(ours)
    ctx.uv_pip(ours, "-r", reqs, "-c", reqs, "-e", REPO)
    ctx.make_venv(inc)
    ctx.uv_pip(inc, "-r", reqs, "-c", reqs, "-r", HERE / "requirements-incumbent.txt")
    for venv in (ours, inc):
        # leftovers of an interrupted "changed" scenario
        sh([ctx.uv, "pip", "uninstall", "-q", "--python", venv / "bin" / "python", CHANGED_NAME])
        # like a pip-installed env, ship .pyc files (a no-op once done; some packages carry
        # templates that do not compile, hence no check)
        subprocess.run([str(venv / "bin" / "python"), "-m", "compileall", "-q", "-j0",
                        str(site_packages(venv))], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, env=clean_env(write_bytecode=True))
    if name == "large":
        sp = site_packages(ours)
        if not (sp / BALLAST_DIST / "RECORD").exists():
            generate_ballast(sp)
        sp2 = site_packages(inc)
        if incumbent and not (sp2 / BALLAST_DIST / "RECORD").exists():
            log("copying ballast into the 0.3.19 env")
            rm(sp2 / BALLAST_NAME)
            rm(sp2 / BALLAST_DIST)
            shutil.copytree(sp / BALLAST_NAME, sp2 / BALLAST_NAME)
            shutil.copytree(sp / BALLAST_DIST, sp2 / (BALLAST_DIST + ".tmp"))
            os.rename(sp2 / (BALLAST_DIST + ".tmp"), sp2 / BALLAST_DIST)
    return {"ours": ours, "cp0319": inc}


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def generate_ballast(sp: Path, n_files: int = BALLAST_FILES, size: int = BALLAST_FILE_SIZE) -> None:
    """An installed distribution (dist-info with METADATA/RECORD/INSTALLER) of random files."""
    log(f"generating {BALLAST_NAME}: {n_files} files x {size} B of random data in {sp}")
    rm(sp / BALLAST_NAME)
    rm(sp / BALLAST_DIST)
    records: List[str] = []

    def write(rel: str, data: bytes) -> None:
        p = sp / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
        records.append(f"{rel},{_record_hash(data)},{len(data)}")

    write(f"{BALLAST_NAME}/__init__.py", b'"""Benchmark ballast: incompressible random data."""\n')
    for i in range(n_files):
        write(f"{BALLAST_NAME}/d{i // BALLAST_PER_DIR:03d}/f{i:06d}.bin", os.urandom(size))
    di = BALLAST_DIST
    write(f"{di}/METADATA", b"Metadata-Version: 2.1\nName: bench-ballast\nVersion: 1.0.0\n"
                            b"Summary: generated benchmark ballast\n")
    write(f"{di}/INSTALLER", b"bench\n")
    write(f"{di}/WHEEL", b"Wheel-Version: 1.0\nGenerator: bench\nRoot-Is-Purelib: true\n"
                         b"Tag: py3-none-any\n")
    write(f"{di}/top_level.txt", f"{BALLAST_NAME}\n".encode())
    records.append(f"{di}/RECORD,,")
    (sp / di / "RECORD").write_text("\n".join(records) + "\n")  # written last: completion marker


LIST_DISTS = r"""
import importlib.metadata as m, json, sys
out = {}
for d in m.distributions(path=[sys.argv[1]]):
    name = d.metadata["Name"]
    du = d.read_text("direct_url.json")
    editable = bool(du and json.loads(du).get("dir_info", {}).get("editable"))
    out[name] = {"version": d.version, "editable": editable}
print(json.dumps(out))
"""


def list_dists(venv: Path) -> Dict[str, Dict[str, Any]]:
    return json.loads(sh([venv / "bin" / "python", "-c", LIST_DISTS, site_packages(venv)]))


def pinned_requirements(venv: Path) -> List[str]:
    """All name==version of the env, editable installs excluded (pex cannot take them from
    a venv repository; for us that is the editable cluster-pack itself)."""
    return sorted(f"{n}=={d['version']}" for n, d in list_dists(venv).items() if not d["editable"])


# --------------------------------------------------------------------------------------
# Tools
# --------------------------------------------------------------------------------------

UPLOAD_SNIPPET = r"""
import json, sys, time
t0 = time.perf_counter()
import cluster_pack
t1 = time.perf_counter()
if not hasattr(cluster_pack, "upload_env"):
    print("BENCH_JSON " + json.dumps({"na": "cluster_pack.upload_env does not exist"}))
    sys.exit(3)
res = cluster_pack.upload_env(package_path=sys.argv[1])
t2 = time.perf_counter()
print("BENCH_JSON " + json.dumps({"import_s": t1 - t0, "upload_env_s": t2 - t1,
                                  "result": [str(x) for x in res]}))
"""


class Tool:
    """One way of producing a shippable artifact from a reference env."""

    def __init__(self, key: str, label: str, *, venv_key: str, should_work: bool,
                 scenarios: List[str], node: Optional[str], artifact: str,
                 build: Callable[["Tool", Ctx, Dict[str, Path], Path, str], tuple],
                 note: str = ""):
        self.key, self.label, self.venv_key = key, label, venv_key
        self.should_work, self.scenarios, self.node = should_work, scenarios, node
        self.artifact, self._build, self.note = artifact, build, note

    def command(self, ctx: Ctx, venvs: Dict[str, Path], state: Path, scenario: str) -> tuple:
        return self._build(self, ctx, venvs, state, scenario)


def _upload_env_cmd(extra_env: Dict[str, str]) -> Callable:
    def build(tool: Tool, ctx: Ctx, venvs: Dict[str, Path], state: Path, scenario: str) -> tuple:
        venv = venvs[tool.venv_key]
        # both spellings of our cache-dir setting (settings.py reads C_PACK_CACHE_DIR)
        env = clean_env({"PEX_ROOT": str(state / "pex_root"),
                         "CLUSTER_PACK_CACHE_DIR": str(state / "cp_cache"),
                         "C_PACK_CACHE_DIR": str(state / "cp_cache"), **extra_env},
                        path_prefix=venv / "bin")
        return [venv / "bin" / "python", "-c", UPLOAD_SNIPPET, state / "store" / tool.artifact], env
    return build


def _pex_cmd(*flags: str) -> Callable:
    def build(tool: Tool, ctx: Ctx, venvs: Dict[str, Path], state: Path, scenario: str) -> tuple:
        venv = venvs["ours"]
        env = clean_env({"PEX_ROOT": str(state / "pex_root")})
        cmd = [venv / "bin" / "pex", "--venv-repository", venv, "--intransitive", *flags,
               "-o", state / "store" / tool.artifact, *pinned_requirements(venv)]
        return cmd, env
    return build


def _zip_floor(tool: Tool, ctx: Ctx, venvs: Dict[str, Path], state: Path, scenario: str) -> tuple:
    sp = site_packages(venvs["ours"])
    out = state / "store" / tool.artifact
    # no cache, no incremental mode: the floor rewrites the whole archive every time
    return ["sh", "-c", f"rm -f {shlex.quote(str(out))} && cd {shlex.quote(str(sp))} "
                        f"&& zip -0 -r -q {shlex.quote(str(out))} ."], clean_env()


def _cp_floor(tool: Tool, ctx: Ctx, venvs: Dict[str, Path], state: Path, scenario: str) -> tuple:
    sp = site_packages(venvs["ours"])
    out = state / "store" / tool.artifact
    return ["sh", "-c", f"rm -rf {shlex.quote(str(out))} && cp -r {shlex.quote(str(sp))} "
                        f"{shlex.quote(str(out))}"], clean_env()


def _venv_pack(tool: Tool, ctx: Ctx, venvs: Dict[str, Path], state: Path, scenario: str) -> tuple:
    return [ctx.tooling / "bin" / "venv-pack", "-p", venvs[tool.venv_key], "-o",
            state / "store" / tool.artifact, "--force", "--quiet"], clean_env()


def make_tools() -> List[Tool]:
    all3 = list(SCENARIOS)
    return [
        Tool("zip_floor", "floor: zip -0 -r site-packages", venv_key="ours", should_work=True,
             scenarios=all3, node="zip", artifact="site-packages.zip", build=_zip_floor),
        Tool("cp_floor", "floor: cp -r site-packages", venv_key="ours", should_work=True,
             scenarios=["cold"], node=None, artifact="site-packages", build=_cp_floor),
        Tool("ours", "cluster-pack (this repo, default: one .pex file + parts)",
             venv_key="ours", should_work=True, scenarios=all3, node="pex",
             artifact="env.pex", build=_upload_env_cmd({}),
             note="editable cluster-pack is in the env; packed per upload_env() defaults; "
                  "node start runs the single file"),
        Tool("ours_parts", "cluster-pack (this repo, C_PACK_LAYOUT=parts: parts only)",
             venv_key="ours", should_work=True, scenarios=all3, node="pex",
             artifact="env.pex", build=_upload_env_cmd({"C_PACK_LAYOUT": "parts"}),
             note="node start localizes the parts and runs the packed directory"),
        Tool("ours_pex", "cluster-pack (this repo, C_PACK_LAYOUT=pex: one .pex file)",
             venv_key="ours", should_work=True, scenarios=all3, node="pex", artifact="env.pex",
             build=_upload_env_cmd({"C_PACK_LAYOUT": "pex"})),
        Tool("cp0319", "cluster-pack 0.3.19", venv_key="cp0319", should_work=False,
             scenarios=all3, node="pex", artifact="env.pex", build=_upload_env_cmd({}),
             note="resolves every requirement from PyPI at pack time"),
        Tool("cp0319_opt1", "cluster-pack 0.3.19 + C_PACK_VENV_OPTIMIZATION_LEVEL=1 "
                            "(ignored by 0.3.19)", venv_key="cp0319", should_work=False,
             scenarios=all3, node=None, artifact="env.pex",
             build=_upload_env_cmd({"C_PACK_VENV_OPTIMIZATION_LEVEL": "1"})),
        Tool("pex_nocompress", "pex --venv-repository --intransitive --no-compress",
             venv_key="ours", should_work=True, scenarios=all3, node="pex", artifact="env.pex",
             build=_pex_cmd("--no-compress")),
        Tool("pex_nocompress_venv", "pex --venv-repository --intransitive --no-compress --venv",
             venv_key="ours", should_work=True, scenarios=["cold"], node="pex",
             artifact="env.pex", build=_pex_cmd("--no-compress", "--venv")),
        Tool("pex_default", "pex --venv-repository --intransitive (compressed)",
             venv_key="ours", should_work=True, scenarios=all3, node="pex", artifact="env.pex",
             build=_pex_cmd()),
        Tool("venv_pack", "venv-pack 0.2.0 (tar.gz)", venv_key="ours", should_work=False,
             scenarios=["cold"], node="tar", artifact="env.tar.gz", build=_venv_pack,
             note="on our env: expected to refuse the editable install"),
        Tool("venv_pack_cp0319env", "venv-pack 0.2.0 (tar.gz) on the 0.3.19 env copy",
             venv_key="cp0319", should_work=False, scenarios=all3, node="tar",
             artifact="env.tar.gz", build=_venv_pack,
             note="the 0.3.19 env copy has no editable install (but 0.3.19's own deps)"),
    ]


def ours_available(venv: Path) -> Optional[str]:
    """None if our upload_env exists in the env, else why not."""
    r = subprocess.run([str(venv / "bin" / "python"), "-c",
                        "import cluster_pack; cluster_pack.upload_env"],
                       capture_output=True, text=True, env=clean_env())
    if r.returncode == 0:
        return None
    return "n/a: " + (r.stderr.strip().splitlines() or ["?"])[-1][:200]


# --------------------------------------------------------------------------------------
# Node start
# --------------------------------------------------------------------------------------

def node_env(extra: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    """A container may write bytecode (into its own fresh dirs), as a real job would."""
    return clean_env(extra, write_bytecode=True)


def node_start(ctx: Ctx, tool: Tool, artifact: Path, venvs: Dict[str, Path], env_name: str,
               node_dir: Path, logs: Path) -> Dict[str, Dict[str, Any]]:
    """Copy the artifact into a fresh container dir and start a job from it."""
    imports = IMPORTS[env_name]
    out: Dict[str, Dict[str, Any]] = {}
    c = fresh(node_dir / "container")
    local = c / artifact.name
    t0 = time.perf_counter()
    manifest = parts_manifest(artifact)
    if manifest is not None:  # what a node does: localize every part, assemble the pex dir
        pool = artifact.parent / ".cluster-pack-parts"
        for part in manifest["parts"]:
            (local / part["path"]).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(pool / part["sha256"], local / part["path"])
            if part.get("executable"):
                os.chmod(local / part["path"], 0o755)
    elif artifact.is_dir():
        shutil.copytree(artifact, local)
    else:
        shutil.copy2(artifact, local)
    copy_s = time.perf_counter() - t0
    T = ctx.timeout

    def run(name: str, cmd: List[Any], env: Dict[str, str]) -> Dict[str, Any]:
        r = run_measured(cmd, env=env, cwd=c, logfile=logs / f"{name}.log", timeout=T)
        r["copy_s"] = copy_s
        return r

    if tool.node == "pex":
        env = node_env({"PEX_ROOT": str(c / "pex_root")})
        out["node_cold"] = run("node_cold", [ctx.py, local, "-c", imports], env)
        out["node_warm"] = run("node_warm", [ctx.py, local, "-c", imports], env)
        unz = c / "unzipped"
        if local.is_dir():  # packed layout: one zip per distribution
            wheels = sorted((local / ".deps").glob("*.whl"))
            script = "; ".join(f"unzip -q {shlex.quote(str(w))} -d "
                               f"{shlex.quote(str(unz / '.deps' / w.name))}" for w in wheels)
            (unz / ".deps").mkdir(parents=True)
            r = run("unzip", ["sh", "-c", script or "true"], node_env())
        else:
            r = run("unzip", ["unzip", "-q", local, "-d", unz], node_env())
        deps = unz / ".deps"
        entries = sorted(str(p) for p in deps.iterdir() if p.is_dir()) if deps.is_dir() else []
        if "error" in r:
            out["node_unzip_import"] = r
        elif not entries:
            out["node_unzip_import"] = {"error": "no pre-installed .deps/ in artifact"}
        else:
            r2 = run("unzip_import", [ctx.py, "-s", "-c", imports],
                     node_env({"PYTHONPATH": os.pathsep.join(entries)}))
            r2["unzip_s"] = r["wall_s"]
            r2["import_s"] = r2["wall_s"]
            r2["wall_s"] = r["wall_s"] + r2["wall_s"]
            out["node_unzip_import"] = r2
    elif tool.node == "zip":
        unz = c / "unzipped"
        r = run("unzip", ["unzip", "-q", local, "-d", unz], node_env())
        if "error" in r:
            out["node_cold"] = r
        else:
            env = node_env({"PYTHONPATH": str(unz)})
            r2 = run("import_cold", [ctx.py, "-s", "-c", imports], env)
            r2["unzip_s"], r2["import_s"] = r["wall_s"], r2["wall_s"]
            r2["wall_s"] = r["wall_s"] + r2["wall_s"]
            out["node_cold"] = r2
            out["node_unzip_import"] = r2
            out["node_warm"] = run("import_warm", [ctx.py, "-s", "-c", imports], env)
    elif tool.node == "tar":
        unp = c / "venv"
        unp.mkdir()
        r = run("untar", ["tar", "xzf", local, "-C", unp], node_env())
        if "error" in r:
            out["node_cold"] = r
        else:
            r2 = run("import_cold", [unp / "bin" / "python", "-c", imports], node_env())
            r2["untar_s"], r2["import_s"] = r["wall_s"], r2["wall_s"]
            r2["wall_s"] = r["wall_s"] + r2["wall_s"]
            out["node_cold"] = r2
            out["node_unzip_import"] = r2
            out["node_warm"] = run("import_warm", [unp / "bin" / "python", "-c", imports],
                                   node_env())
    rm(c)
    return out


def parts_manifest(artifact: Path) -> Optional[Dict[str, Any]]:
    """The manifest of a parts-layout environment published at ``artifact``, else None."""
    manifest = artifact.with_suffix(".json")
    if artifact.exists() or not manifest.exists():
        return None
    data = json.loads(manifest.read_text())
    return data if data.get("layout") == "parts" else None


def artifact_bytes(artifact: Path) -> Optional[int]:
    manifest = parts_manifest(artifact)
    if manifest is not None:
        return int(manifest["size"])
    if not artifact.exists():
        return None
    if artifact.is_file():
        return artifact.stat().st_size
    return sum(f.stat().st_size for f in artifact.rglob("*") if f.is_file())


def warm_page_cache(root: Path) -> None:
    """Read every file under ``root`` once."""
    for dirpath, _d, files in os.walk(root):
        for f in files:
            try:
                with open(os.path.join(dirpath, f), "rb") as fh:
                    while fh.read(1 << 20):
                        pass
            except OSError:
                pass


def installed_bytes(venv: Path, name: str) -> Optional[int]:
    """Installed size of a distribution, from its RECORD."""
    for record in site_packages(venv).glob(f"{name}-*.dist-info/RECORD"):
        total = 0
        for line in record.read_text().splitlines():
            size = line.rsplit(",", 1)[-1]
            total += int(size) if size.isdigit() else 0
        return total
    return None


# --------------------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------------------

def bench_env(ctx: Ctx, env_name: str, tools: List[Tool], repeat: int,
              results: Dict[str, Any], failures: List[str]) -> None:
    venvs = prepare_env(ctx, env_name, incumbent=any(t.venv_key == "cp0319" for t in tools))
    sp = site_packages(venvs["ours"])
    size = nfiles = 0
    for dirpath, _d, files in os.walk(sp):
        for f in files:
            nfiles += 1
            size += os.lstat(os.path.join(dirpath, f)).st_size
    er: Dict[str, Any] = {"site_packages_bytes": size, "site_packages_files": nfiles,
                          "imports": IMPORTS[env_name],
                          "dists_ours": list_dists(venvs["ours"]),
                          "dists_cp0319": list_dists(venvs["cp0319"]), "tools": {}}
    results["envs"][env_name] = er
    log(f"env {env_name}: site-packages {size / 2**20:.0f} MiB in {nfiles} files")
    # every tool then reads from the page cache: the first one measured would otherwise
    # pay for the disk alone (the large env's first zip took 38 s, its next ones 17-20 s)
    warm_page_cache(sp)

    na = ours_available(venvs["ours"])
    runs = WORK / "runs" / env_name

    # the plain venv: what a node with the env pre-installed would do
    pv: Dict[str, Any] = {"label": "plain venv (env pre-installed on node)", "samples": {}}
    er["tools"]["plain_venv"] = pv
    for i in range(repeat):
        r = run_measured([venvs["ours"] / "bin" / "python", "-c", IMPORTS[env_name]],
                         env=clean_env(), logfile=runs / "plain_venv" / f"import{i}.log",
                         timeout=ctx.timeout)
        pv["samples"].setdefault("node_cold", []).append(r)
        pv["samples"].setdefault("node_warm", []).append(r)
        if "error" in r:
            failures.append(f"{env_name}/plain_venv: {r['error']}")

    for tool in tools:
        tr: Dict[str, Any] = {"label": tool.label, "note": tool.note, "samples": {}}
        er["tools"][tool.key] = tr
        if tool.key == "ours" and na:
            tr["na"] = na
            log(f"{env_name}/{tool.key}: {na}")
            continue
        for i in range(repeat):
            state = fresh(runs / tool.key / "state")
            (state / "store").mkdir()
            logs = runs / tool.key / f"logs{i}"
            rm(logs)
            venv = venvs[tool.venv_key]
            ok = True
            changed_dist_bytes = None
            for scen in tool.scenarios:
                if scen == "changed":
                    ctx.uv_pip(venv, CHANGED_PKG)
                    changed_dist_bytes = installed_bytes(venv, CHANGED_NAME)
                try:
                    cmd, env = tool.command(ctx, venvs, state, scen)
                    r = run_measured(cmd, env=env, store=state / "store",
                                     logfile=logs / f"{scen}.log", timeout=ctx.timeout)
                except Exception as e:  # noqa: BLE001 - a broken tool is a result
                    r = {"error": f"{type(e).__name__}: {e}"[:600]}
                finally:
                    if scen == "changed":
                        ctx.uv_uninstall(venv, CHANGED_NAME)
                art = state / "store" / tool.artifact
                if "error" not in r:
                    size = artifact_bytes(art)
                    if size is not None:
                        r["artifact_bytes"] = size
                    if scen == "changed":
                        r["changed_dist_bytes"] = changed_dist_bytes
                    manifest = parts_manifest(art)
                    if manifest is not None:
                        r["manifest_bytes"] = art.with_suffix(".json").stat().st_size
                tr["samples"].setdefault(scen, []).append(r)
                _report(env_name, tool.key, scen, r)
                if "error" in r:
                    ok = False
                    if tool.should_work:
                        failures.append(f"{env_name}/{tool.key}/{scen}: {r['error']}")
                    break
                if scen == "cold" and tool.node:
                    nres = node_start(ctx, tool, art, venvs, env_name, runs / tool.key,
                                      logs / "node")
                    for k, v in nres.items():
                        tr["samples"].setdefault(k, []).append(v)
                        _report(env_name, tool.key, k, v)
                        if "error" in v and tool.should_work:
                            failures.append(f"{env_name}/{tool.key}/{k}: {v['error']}")
            rm(state)
            if not ok and not tool.should_work:
                break  # an incumbent failing for its own reasons: once is enough


def _report(env: str, tool: str, scen: str, r: Dict[str, Any]) -> None:
    if "error" in r:
        log(f"{env}/{tool}/{scen}: ERROR {r['error'][:300]}")
        return
    extra = ""
    if "inproc" in r and "upload_env_s" in r["inproc"]:
        extra += f" (upload_env {r['inproc']['upload_env_s']:.2f}s)"
    if r.get("bytes_written"):
        extra += f" wrote {r['bytes_written'] / 2**20:.1f} MiB"
    if r.get("maxrss_mib"):
        extra += f" rss {r['maxrss_mib']:.0f} MiB"
    log(f"{env}/{tool}/{scen}: {r['wall_s']:.2f}s{extra}")


# --------------------------------------------------------------------------------------
# Metadata, summaries, outputs
# --------------------------------------------------------------------------------------

def _first_line(cmd: List[Any]) -> str:
    try:
        out = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=60)
        return ((out.stdout or out.stderr).strip().splitlines() or ["?"])[0]
    except Exception as e:  # noqa: BLE001
        return f"unavailable: {e}"


def _version_line(cmd: List[Any], marker: str) -> str:
    try:
        out = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=60)
    except Exception as e:  # noqa: BLE001
        return f"unavailable: {e}"
    lines = [ln.strip() for ln in out.stdout.splitlines() if marker in ln]
    return lines[0][:80] if lines else "?"


def machine_info() -> Dict[str, Any]:
    info: Dict[str, Any] = {"platform": platform.platform(), "python": sys.version.split()[0],
                            "cpu_count": os.cpu_count(), "loadavg": os.getloadavg()}
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                info["cpu_model"] = line.split(":", 1)[1].strip()
                break
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal"):
                info["mem_total_gib"] = int(line.split()[1]) / 2**20
    except OSError:
        pass
    return info


def tool_versions(ctx: Ctx, envs: List[str]) -> Dict[str, Any]:
    v: Dict[str, Any] = {
        "uv": _first_line([ctx.uv, "--version"]),
        "zip": _version_line(["zip", "-v"], "This is Zip"),
        "unzip": _first_line(["unzip", "-v"])[:80] if shutil.which("unzip") else "missing",
        "python": _first_line([ctx.py, "--version"]),
        "venv-pack": _first_line([ctx.tooling / "bin" / "venv-pack", "--version"]),
        "repo_commit": _first_line(["git", "-C", REPO, "rev-parse", "HEAD"]),
        "repo_dirty": bool(subprocess.run(["git", "-C", str(REPO), "status", "--porcelain",
                                           "--untracked-files=no"],
                                          capture_output=True, text=True).stdout.strip()),
    }
    if envs:
        d = WORK / "envs" / envs[0]
        ours = list_dists(d / "ours")
        inc = list_dists(d / "cp0319")
        v["cluster-pack (ours)"] = ours.get("cluster-pack", {}).get("version")
        v["pex (ours env, used for the pex rows)"] = ours.get("pex", {}).get("version")
        v["cluster-pack (incumbent)"] = inc.get("cluster-pack", {}).get("version")
        v["pex (incumbent env)"] = inc.get("pex", {}).get("version")
        v["pip (incumbent env)"] = inc.get("pip", {}).get("version")
    return v


def _stat(samples: List[Dict[str, Any]], metric: Callable[[Dict[str, Any]], Optional[float]]):
    vals = [metric(s) for s in samples if "error" not in s]
    vals = [x for x in vals if x is not None]
    if not vals:
        return None
    return {"min": min(vals), "median": statistics.median(vals), "n": len(vals)}


def _inproc(s: Dict[str, Any]) -> Optional[float]:
    return s.get("inproc", {}).get("upload_env_s")


def summarize(results: Dict[str, Any]) -> None:
    for er in results["envs"].values():
        for tr in er["tools"].values():
            summ: Dict[str, Any] = {}
            for scen, samples in tr["samples"].items():
                e = {"wall_s": _stat(samples, lambda s: s.get("wall_s")),
                     "upload_env_s": _stat(samples, _inproc),
                     "maxrss_mib": _stat(samples, lambda s: s.get("maxrss_mib")),
                     "bytes_written": _stat(samples, lambda s: s.get("bytes_written")),
                     "artifact_bytes": _stat(samples, lambda s: s.get("artifact_bytes"))}
                errs = [s["error"] for s in samples if "error" in s]
                if errs:
                    e["error"] = errs[0]
                summ[scen] = e
            tr["summary"] = summ


COLS = [("cold", "cold"), ("noop", "no-op / re-run"), ("changed", "one pkg changed"),
        ("node_cold", "node start cold"), ("node_warm", "node start warm"),
        ("node_unzip_import", "unzip + plain import")]


def _fmt_t(st: Optional[Dict[str, Any]]) -> str:
    if not st:
        return ""
    return f"{st['min']:.2f} / {st['median']:.2f}"


def _cell(tr: Dict[str, Any], scen: str) -> str:
    if "na" in tr:
        return "n/a"
    e = tr.get("summary", {}).get(scen)
    if e is None:
        return "—"
    if e.get("wall_s") is None:
        parts = [p.split("$ ", 1)[0] if "$ " in p else p for p in e.get("error", "?").split(" | ")]
        err = " | ".join(p for p in parts if p.strip())
        return "ERROR: " + err.replace("|", "\\|")[:200]
    txt = _fmt_t(e["wall_s"])
    if scen in ("cold", "noop", "changed") and e.get("upload_env_s"):
        txt += f" (in-proc {_fmt_t(e['upload_env_s'])})"
    if scen in ("noop", "changed") and e.get("bytes_written") is not None:
        txt += f"; {e['bytes_written']['median'] / 2**20:.1f} MiB written"
    if e.get("error"):
        txt += " (some runs failed)"
    return txt


def _median(tr: Dict[str, Any], scen: str, metric: str = "wall_s") -> Optional[float]:
    st = tr.get("summary", {}).get(scen, {}).get(metric)
    return st["median"] if st else None


def _paired_ratio(tr: Dict[str, Any], top: str, bottom: str) -> Optional[float]:
    """Median over the repeats of ``top / bottom`` measured in the same repeat (a node's
    first start and its unzip + import run one after the other): steadier than a ratio of
    medians on a machine whose disk speed drifts."""
    ratios = [a["wall_s"] / b["wall_s"]
              for a, b in zip(tr.get("samples", {}).get(top, []),
                              tr.get("samples", {}).get(bottom, []))
              if "error" not in a and "error" not in b and b.get("wall_s")]
    return statistics.median(ratios) if ratios else None


def targets(er: Dict[str, Any], key: str = "ours_parts") -> List[tuple]:
    """(what, measured, target, met) for issue 7's targets (the parts layout), from this
    run's medians."""
    tools = er["tools"]
    ours, floor = tools.get(key, {}), tools.get("zip_floor", {})
    inc, plain = tools.get("cp0319", {}), tools.get("plain_venv", {})
    out: List[tuple] = []

    def add(what: str, value: Optional[float], fmt: str, target: str,
            ok: Callable[[float], bool]) -> None:
        if value is not None:
            out.append((what, fmt.format(value), target, ok(value)))

    cold, fl = _median(ours, "cold"), _median(floor, "cold")
    add("cold / zip floor", cold / fl if cold and fl else None, "{:.2f}x", "<= 1.5x",
        lambda v: v <= 1.5)
    ic = _median(inc, "cold")
    add("cluster-pack 0.3.19 cold / ours", ic / cold if ic and cold else None, "{:.1f}x",
        ">= 10x", lambda v: v >= 10)
    # "rebuild + publish": the upload_env() call of each process; the whole process also
    # starts Python and imports cluster-pack (~0.1 s, the no-op's wall time)
    ic_cold, ic_changed = _median(ours, "cold", "upload_env_s"), _median(ours, "changed",
                                                                         "upload_env_s")
    add("one pkg changed / cold, upload_env() in-process",
        ic_changed / ic_cold if ic_changed and ic_cold else None, "{:.1%}", "<= 5%",
        lambda v: v <= 0.05)
    changed = _median(ours, "changed")
    add("one pkg changed / cold, whole process (incl. interpreter start + import)",
        changed / cold if changed and cold else None, "{:.1%}", "<= 5%", lambda v: v <= 0.05)
    samples = [s for s in ours.get("samples", {}).get("changed", []) if "error" not in s]
    if samples and samples[0].get("changed_dist_bytes"):
        written = statistics.median(s["bytes_written"] for s in samples)
        allowed = 2 * samples[0]["changed_dist_bytes"] + samples[0].get("manifest_bytes", 0)
        add(f"one pkg changed: bytes written / (2 x {samples[0]['changed_dist_bytes']} B + "
            "manifest)", written / allowed, "{:.2f}", "<= 1", lambda v: v <= 1)
    add("no-op upload_env() in-process (s)", _median(ours, "noop", "upload_env_s"), "{:.3f}",
        "<= 0.3", lambda v: v <= 0.3)
    add("node first start / (unzip + import), paired per repeat",
        _paired_ratio(ours, "node_cold", "node_unzip_import"), "{:.2f}x", "<= 1.3x",
        lambda v: v <= 1.3)
    nw, pw = _median(ours, "node_warm"), _median(plain, "node_warm")
    add("node warm start - plain venv (s)", nw - pw if nw and pw else None, "{:+.2f}",
        "<= +0.3", lambda v: v <= 0.3)
    add("peak RSS of packing (MiB)", _median(ours, "cold", "maxrss_mib"), "{:.0f}", "< 300",
        lambda v: v < 300)
    return out


def compat_targets(er: Dict[str, Any]) -> List[tuple]:
    """(what, measured, target, met) for issue 14's targets: the default layout publishes
    the original's single file (plus the parts) at copy speed."""
    tools = er["tools"]
    ours, parts_only, floor = tools.get("ours", {}), tools.get("ours_parts", {}), \
        tools.get("zip_floor", {})
    inc = tools.get("cp0319", {})
    out: List[tuple] = []

    def add(what: str, value: Optional[float], fmt: str, target: str,
            ok: Callable[[float], bool]) -> None:
        if value is not None:
            out.append((what, fmt.format(value), target, ok(value)))

    fl = _median(floor, "cold")
    cold, changed = _median(ours, "cold"), _median(ours, "changed")
    add("default cold / zip floor", cold / fl if cold and fl else None, "{:.2f}x", "<= 1.2x",
        lambda v: v <= 1.2)
    add("default one pkg added / zip floor", changed / fl if changed and fl else None,
        "{:.2f}x", "<= 0.6x", lambda v: v <= 0.6)
    for label, tr in (("default", ours), ("parts only", parts_only)):
        add(f"no-op upload_env() in-process, {label} (s)", _median(tr, "noop", "upload_env_s"),
            "{:.3f}", "<= 0.1", lambda v: v <= 0.1)
    add("single file first start (empty PEX_ROOT) / (unzip + import), paired per repeat",
        _paired_ratio(ours, "node_cold", "node_unzip_import"), "{:.2f}x", "<= 1.3x",
        lambda v: v <= 1.3)
    add("0.3.19's .pex first start / (unzip + import), for comparison",
        _paired_ratio(inc, "node_cold", "node_unzip_import"), "{:.2f}x", "(reference)",
        lambda v: True)
    return out


def write_markdown(results: Dict[str, Any], path: Path) -> None:
    L: List[str] = []
    L.append(f"# cluster-pack benchmarks — {results['date']}\n")
    m = results["machine"]
    L.append(f"Machine: {m.get('cpu_model', '?')}, {m['cpu_count']} cores, "
             f"{m.get('mem_total_gib', 0):.0f} GiB, {m['platform']}, Python {m['python']}. "
             f"Repeat (per command): {results['repeat']}. Command: `{results['command']}`.\n")
    L.append("Times in seconds, **min / median** over the repeats. Versions: " + ", ".join(
        f"{k} {v}" for k, v in results["versions"].items()) + ".\n")
    for env_name, er in results["envs"].items():
        L.append(f"\n## {env_name} env — site-packages {er['site_packages_bytes'] / 2**20:.0f} MiB, "
                 f"{er['site_packages_files']} files; node imports `{er['imports']}`\n")
        L.append("| tool | " + " | ".join(c[1] for c in COLS) + " | peak RSS cold (MiB) | artifact (MiB) |")
        L.append("|---" * (len(COLS) + 3) + "|")
        for key, tr in er["tools"].items():
            cells = [_cell(tr, c[0]) if c[0] in tr.get("samples", {}) or "na" in tr else ""
                     for c in COLS]
            rss = tr.get("summary", {}).get("cold", {}).get("maxrss_mib")
            art = tr.get("summary", {}).get("cold", {}).get("artifact_bytes")
            rss_s = f"{rss['median']:.0f}" if rss else ""
            art_s = f"{art['median'] / 2**20:.0f}" if art else ""
            L.append(f"| {tr['label']} | " + " | ".join(cells) + f" | {rss_s} | {art_s} |")
        # ratios of medians
        floor = er["tools"].get("zip_floor", {})
        inc = er["tools"].get("cp0319", {})
        L.append("\nRatios of medians (× zip floor / × cluster-pack 0.3.19; lower is better):\n")
        L.append("| tool | " + " | ".join(c[1] for c in COLS[:3] + COLS[3:5]) + " |")
        L.append("|---" * 6 + "|")
        for key, tr in er["tools"].items():
            if key in ("zip_floor",) or "na" in tr:
                continue
            cells = []
            for scen, _ in COLS[:5]:
                v = _median(tr, scen)
                f = _median(floor, scen)
                i = _median(inc, scen)
                if v is None:
                    cells.append("")
                    continue
                a = f"{v / f:.1f}×" if f else "—"
                b = f"{v / i:.2f}×" if i else "—"
                cells.append(f"{a} / {b}")
            L.append(f"| {tr['label']} | " + " | ".join(cells) + " |")
        for title, rows in (
                ("Issue 14's targets, cluster-pack's default layout (the single file + parts)",
                 compat_targets(er)),
                ("Issue 7's targets, cluster-pack with C_PACK_LAYOUT=parts", targets(er))):
            if rows:
                L.append(f"\n{title}, this run's medians:\n")
                L.append("| target | measured | goal | met |")
                L.append("|---|---|---|---|")
                L.extend(f"| {w} | {v} | {t} | {'yes' if ok else '**no**'} |"
                         for w, v, t, ok in rows)
    L.append("\n### Notes\n")
    L.extend(f"- {n}" for n in results["notes"])
    if results.get("failures"):
        L.append("\n### Failures of tools that should work\n")
        L.extend(f"- `{f}`" for f in results["failures"])
    path.write_text("\n".join(L) + "\n")


NOTES = [
    "cold: fresh store dir, fresh PEX_ROOT and CLUSTER_PACK_CACHE_DIR; the page cache is NOT "
    "dropped (shared machine), so 'cold' means cold tool caches, warm disk cache (every file of "
    "site-packages is read once before the first measure, so that all tools start equal).",
    "no-op: the same call again on the same env, store and caches. For cluster-pack (ours and "
    "0.3.19) 'in-proc' is upload_env() timed with perf_counter inside the process; whole-process "
    "time includes interpreter start and `import cluster_pack`. pex, zip and venv-pack have no "
    "no-op mode: their row is a full re-run with warm caches.",
    f"one pkg changed: `{CHANGED_PKG}` installed into the env (uv), then the same call again on "
    "the previous store and caches; 'written' = sum of sizes of files created or modified in the "
    "store dir.",
    "node start: the artifact is copied into a fresh container dir; 'cold' = first start with a "
    "fresh PEX_ROOT, 'warm' = second start reusing it; 'unzip + plain import' = unzip the "
    "artifact then import with PYTHONPATH on its .deps/ entries (pex) or the unzipped "
    "site-packages (zip floor); venv-pack = tar xzf + the unpacked venv's python. The plain "
    "venv row is the env's own python with the env installed on the node.",
    "peak RSS: ru_maxrss of the packing process tree (os.wait4 rusage: largest process).",
    "Our package is installed editable in the reference env (uv pip install -e); the pex rows "
    "exclude it (pex cannot take an editable install from a venv repository); ours packs it "
    "per upload_env() defaults. cluster-pack 0.3.19 lives in its own copy of the env with its "
    "own deps (pex, pip, s3fs, skein, ...), so its env is larger than ours.",
    "cluster-pack 0.3.19 passes the env's name==version list to `pex` which resolves and "
    "downloads everything from PyPI at pack time: its times include network.",
    "C_PACK_VENV_OPTIMIZATION_LEVEL=1 is ignored by 0.3.19 (the row measures the same code).",
]


def render_chart(json_path: Path, png_path: Path) -> None:
    """Runs inside the tooling venv (matplotlib)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    results = json.loads(json_path.read_text())
    envs = list(results["envs"].items())
    fig, axes = plt.subplots(len(envs), 1, figsize=(14, 6.5 * len(envs)), squeeze=False)
    keys: List[str] = []
    for _e, er in envs:
        keys += [k for k in er["tools"] if k not in keys]
    cmap = plt.get_cmap("tab20" if len(keys) > 10 else "tab10")
    color = {k: cmap(i) for i, k in enumerate(keys)}  # one color per tool in every panel
    for ax, (env_name, er) in zip(axes[:, 0], envs):
        tools = [(k, tr) for k, tr in er["tools"].items() if "na" not in tr]
        scens = [c for c in COLS if any(c[0] in tr.get("summary", {}) for _k, tr in tools)]
        width = 0.8 / max(1, len(tools))
        for ti, (key, tr) in enumerate(tools):
            xs, meds, mins = [], [], []
            for si, (scen, _lbl) in enumerate(scens):
                st = tr.get("summary", {}).get(scen, {}).get("wall_s")
                if st:
                    xs.append(si + (ti - (len(tools) - 1) / 2) * width)
                    meds.append(st["median"])
                    mins.append(st["median"] - st["min"])
            if xs:
                ax.bar(xs, meds, width, yerr=[mins, [0] * len(mins)], label=tr["label"],
                       capsize=2, color=color[key])
        ax.set_xticks(range(len(scens)))
        ax.set_xticklabels([lbl for _s, lbl in scens])
        ax.set_yscale("log")
        ax.set_ylabel("seconds (median; whisker down to min)")
        ax.set_title(f"{env_name} env ({er['site_packages_bytes'] / 2**20:.0f} MiB, "
                     f"{er['site_packages_files']} files) — {results['date']}")
        ax.legend(fontsize=7, ncol=3, loc="upper center", bbox_to_anchor=(0.5, -0.06))
        ax.grid(axis="y", which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(png_path, dpi=110)


def write_outputs(results: Dict[str, Any], out: Path, tooling: Path) -> bool:
    """<date>.json/.md/.png in out, copied to latest.*; False if the chart failed."""
    date = results["date"]
    jp, mp, pp = out / f"{date}.json", out / f"{date}.md", out / f"{date}.png"
    jp.write_text(json.dumps(results, indent=1, default=str) + "\n")
    write_markdown(results, mp)
    ok = True
    try:
        sh([tooling / "bin" / "python", Path(__file__).resolve(), "--render-chart", jp, pp])
    except (subprocess.CalledProcessError, OSError) as e:
        log(f"chart failed: {getattr(e, 'stdout', '') or e}")
        ok = False
    for p in (jp, mp, pp):
        if p.exists():
            shutil.copy2(p, out / f"latest{p.suffix}")
    print(mp.read_text())
    return ok


def merge(args: argparse.Namespace) -> int:
    files = [json.loads(Path(f).read_text()) for f in args.merge]
    res = files[0]
    for other in files[1:]:
        res["command"] += " ; " + other["command"]
        res["repeat"] = f"{res['repeat']}, {other['repeat']}"
        for env_name, er in other["envs"].items():
            mine = res["envs"].setdefault(env_name, er)
            if mine is not er:
                for key, tr in er["tools"].items():
                    mine["tools"].setdefault(key, tr)
        for k, v in other.get("versions", {}).items():
            res.setdefault("versions", {}).setdefault(k, v)
        res["failures"] = res.get("failures", []) + other.get("failures", [])
    res["notes"] = NOTES
    summarize(res)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    return 0 if write_outputs(res, out, WORK / "tooling") else 1


def smoke_tools(tools: List["Tool"]) -> List["Tool"]:
    """The rows of a smoke run (CI): every scenario still runs once with our tool, and every
    incumbent packs once, but their known costs are not paid twice. 0.3.19 keeps its no-op
    and node rows (the compatibility targets compare them) but not "changed" (a second full
    rebuild from PyPI, ~1 min); its C_PACK_VENV_OPTIMIZATION_LEVEL=1 variant (the same code:
    0.3.19 ignores the variable) is left out; pex and venv-pack run "cold" only, and only
    venv-pack's node start (the tar one) is measured."""
    kept = []
    for tool in tools:
        if tool.key == "cp0319_opt1":
            continue
        if tool.key == "cp0319":
            tool.scenarios = [s for s in tool.scenarios if s != "changed"]
        elif tool.key.startswith(("pex_", "venv_pack")):
            tool.scenarios = [s for s in tool.scenarios if s == "cold"]
            if tool.node == "pex":  # the same node start as ours and 0.3.19 (both .pex)
                tool.node = None
        kept.append(tool)
    return kept


def main() -> int:
    global VERBOSE
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--envs", default="small,medium",
                    help="comma-separated: small, medium, large (default small,medium)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--smoke", action="store_true", help="1 iteration, small env only")
    ap.add_argument("--out", default=str(HERE / "results"))
    ap.add_argument("--tools", default="", help="comma-separated subset of tool keys")
    ap.add_argument("--python", default=None, help="base interpreter of the reference envs")
    ap.add_argument("--timeout", type=float, default=1800.0, help="per-command timeout (s)")
    ap.add_argument("-v", "--verbose", action="store_true")
    ap.add_argument("--merge", nargs="+", metavar="JSON",
                    help="measure nothing: merge earlier result JSONs (rows of later files are "
                         "added to the first's envs) and write the outputs again")
    ap.add_argument("--render-chart", nargs=2, metavar=("JSON", "PNG"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.render_chart:
        render_chart(Path(args.render_chart[0]), Path(args.render_chart[1]))
        return 0
    if args.merge:
        return merge(args)
    VERBOSE = args.verbose
    if args.smoke:
        args.envs, args.repeat = "small", 1
    envs = [e.strip() for e in args.envs.split(",") if e.strip()]
    for e in envs:
        if e not in IMPORTS:
            ap.error(f"unknown env {e!r}")
    for exe in ("zip", "unzip", "tar"):
        if not shutil.which(exe):
            ap.error(f"{exe} is required")
    tools = make_tools()
    if args.smoke:
        tools = smoke_tools(tools)
    if args.tools:
        keep = set(args.tools.split(","))
        tools = [t for t in tools if t.key in keep]

    WORK.mkdir(parents=True, exist_ok=True)
    ctx = Ctx(args)
    prepare_tooling(ctx)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    date = datetime.date.today().isoformat()
    results: Dict[str, Any] = {
        "date": date, "started": datetime.datetime.now().isoformat(timespec="seconds"),
        "command": " ".join(["python", "benchmarks/run.py"] + sys.argv[1:]),
        "repeat": args.repeat, "machine": machine_info(), "envs": {}, "notes": NOTES,
    }
    failures: List[str] = []
    t0 = time.perf_counter()
    for e in envs:
        bench_env(ctx, e, tools, args.repeat, results, failures)
    results["elapsed_s"] = time.perf_counter() - t0
    results["machine"]["loadavg_end"] = os.getloadavg()
    results["versions"] = tool_versions(ctx, envs)
    results["failures"] = failures
    summarize(results)
    for env_name, er in results["envs"].items():
        rows = compat_targets(er) + targets(er)
        er["targets"] = [{"what": w, "measured": v, "goal": t, "met": ok}
                         for w, v, t, ok in rows]
        for w, v, t, ok in rows:
            log(f"{env_name}: {w}: {v} (goal {t}) {'met' if ok else 'NOT MET'}")

    if not write_outputs(results, out, ctx.tooling):
        failures.append("chart rendering failed")
    log(f"wrote {out / results['date']}.md ({results['elapsed_s']:.0f}s)")
    if failures:
        log("FAILED: " + "; ".join(failures))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
