"""CLI: python -m cluster_pack_harness {start,stop,status,env,build}."""

from __future__ import annotations

import argparse
import json
import sys
import time

from cluster_pack_harness import build as _build
from cluster_pack_harness._proc import HarnessError
from cluster_pack_harness.harness import Harness, default_dir


def _log(msg: str) -> None:
    print(f"[harness] {msg}", file=sys.stderr, flush=True)


def cmd_start(args) -> int:
    h = Harness(args.dir, yarn=not args.no_yarn, xmx=args.xmx, nm_memory_mb=args.nm_memory_mb,
                nm_vcores=args.nm_vcores, bucket=args.bucket, secure=args.secure)
    try:
        existing = Harness.attach(h.dir)
    except HarnessError:
        existing = None
    if existing is not None:
        _log(f"a harness already runs in {h.dir}: {json.dumps(existing.status())}; stop it first")
        return 1
    t0 = time.monotonic()
    parts = [p for p, on in (("hadoop", not args.no_hadoop), ("s3", not args.no_s3)) if on]
    _log(f"starting {', '.join(parts) or 'nothing'} in {h.dir} ...")
    try:
        h.start(hadoop=not args.no_hadoop, s3=not args.no_s3, timeout=args.timeout, log=_log)
    except HarnessError as e:
        _log(f"start failed: {e}")
        return 1
    _log(f"ready in {time.monotonic() - t0:.1f}s")
    print(json.dumps(h.describe(), indent=2))
    _log(f"environment: source {h.dir / 'env.sh'}   (or read {h.dir / 'env.json'})")
    _log(f"stop with: {sys.executable} -m cluster_pack_harness stop --dir {h.dir}")
    return 0


def cmd_stop(args) -> int:
    try:
        Harness.stop_dir(args.dir)
    except HarnessError as e:
        _log(f"stop: {e}")
        return 1
    _log(f"stopped (nothing left running from {Harness(args.dir).dir})")
    return 0


def cmd_status(args) -> int:
    try:
        h = Harness.attach(args.dir)
        st = h.status()
    except HarnessError:
        st = {"dir": str(Harness(args.dir).dir), "hadoop": False, "s3": False}
    print(json.dumps(st, indent=2))
    return 0 if (st["hadoop"] or st["s3"]) else 3


def cmd_env(args) -> int:
    path = Harness(args.dir).dir / ("env.json" if args.json else "env.sh")
    try:
        sys.stdout.write(path.read_text())
    except OSError:
        _log(f"no {path}: is the harness started?")
        return 1
    return 0


def cmd_build(args) -> int:
    try:
        java_home, major = _build.find_java_home()
        _log(f"JDK {major} at {java_home}")
        b = _build.ensure_built(offline=args.offline, quiet=not args.verbose, java_home=java_home, log=_log)
    except HarnessError as e:
        _log(str(e))
        return 1
    _log(f"built: {b.directory} ({len(b.jars())} jars on the classpath)")
    from cluster_pack_harness.loopback import ensure_bind_shim

    shim = ensure_bind_shim(log=_log)
    _log(f"container bind-to-loopback shim: {shim or 'unavailable (no C compiler)'}")
    print(b.directory)
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m cluster_pack_harness",
                                description="Real HDFS + YARN (Hadoop minicluster) and S3 (moto) on loopback.")
    sub = p.add_subparsers(dest="command", required=True)

    def with_dir(sp):
        sp.add_argument("--dir", default=None,
                        help="harness directory (default: $CLUSTER_PACK_HARNESS_DIR or ./.harness; "
                             f"now {default_dir()})")
        return sp

    s = with_dir(sub.add_parser("start", help="start in the background and wait until ready"))
    s.add_argument("--no-hadoop", action="store_true", help="no HDFS/YARN")
    s.add_argument("--no-yarn", action="store_true", help="HDFS only")
    s.add_argument("--no-s3", action="store_true", help="no S3 server")
    s.add_argument("--secure", action="store_true",
                   help="Kerberos: a KDC on loopback, principals and keytabs for the daemons and the "
                        "users alice and bob, HDFS/YARN with Kerberos and SASL data transfer")
    s.add_argument("--timeout", type=float, default=180.0)
    s.add_argument("--xmx", default="2g", help="JVM heap (default 2g)")
    s.add_argument("--nm-memory-mb", type=int, default=8192)
    s.add_argument("--nm-vcores", type=int, default=8)
    s.add_argument("--bucket", default=None, help="S3 bucket to create (default cluster-pack-test)")
    s.set_defaults(func=cmd_start)
    with_dir(sub.add_parser("stop", help="stop everything started in --dir")).set_defaults(func=cmd_stop)
    with_dir(sub.add_parser("status", help="print status (exit 3 if nothing runs)")).set_defaults(func=cmd_status)
    e = with_dir(sub.add_parser("env", help="print env.sh (or env.json with --json)"))
    e.add_argument("--json", action="store_true")
    e.set_defaults(func=cmd_env)
    b = sub.add_parser("build", help="build (or check) the Java minicluster program")
    b.add_argument("--offline", action="store_true", help="mvn -o")
    b.add_argument("--verbose", action="store_true")
    b.set_defaults(func=cmd_build)
    args = p.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
