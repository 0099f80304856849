"""``cluster-pack``: the command line, mirroring the Python API.

    cluster-pack upload [--package-path URL] [--force] [--only-packages a b] ...
    cluster-pack info URL
    cluster-pack ls [DIR]
    cluster-pack run --local [--package-path URL] -- python -m my_job --arg 1
    cluster-pack upload-zip FILE_OR_URL [--package-path URL]
    cluster-pack fetch URL DEST_DIR     (then: python DEST_DIR/<name>.pex -m my_job)

Every command takes ``--json`` for machine-readable output and ``--verbose`` for logs.
Errors print one ``Error: ...`` line and exit with 2 (bad input) or 1 (failure).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import shlex
import sys
import time
from typing import TYPE_CHECKING, Any, Dict, List, NoReturn, Optional, Sequence, Tuple

if TYPE_CHECKING:  # the commands import what they use when they run (a fast --help)
    from cluster_pack.store.manifest import Manifest
    from cluster_pack.store.storage import Store

from cluster_pack.errors import ClusterPackError, ConfigurationError
from cluster_pack.pack.layout import (
    PUBLISHED_PEX_ZIP,
    Layout,
    published_layout,
)


def _human_size(n: Optional[float]) -> str:
    if n is None:
        return "-"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def _fs_args(pairs: Optional[List[str]]) -> Optional[Dict[str, Any]]:
    """``--fs-arg key=value`` (values parsed as JSON when they are JSON)."""
    if not pairs:
        return None
    args: Dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise ConfigurationError(f"--fs-arg expects key=value, got {pair!r}")
        with contextlib.suppress(ValueError):
            value = json.loads(value)
        args[key] = value
    return args


class _Parser(argparse.ArgumentParser):
    """Reports a bad command line as one ``Error:`` line (exit 2), like every other error,
    instead of argparse's usage block."""

    def error(self, message: str) -> NoReturn:
        raise ConfigurationError(f"{self.prog}: {message} (see {self.prog} --help)")


def _non_negative_days(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0:  # also refuses nan
        raise argparse.ArgumentTypeError(f"expects a number of days >= 0, got {text!r}")
    return value


def _sha256(text: str) -> str:
    value = text.strip().lower()
    if len(value) != 64 or set(value) - set("0123456789abcdef"):
        raise argparse.ArgumentTypeError(f"expects 64 hexadecimal digits, got {text!r}")
    return value


def _non_empty(text: str) -> str:
    if not text.strip():
        raise argparse.ArgumentTypeError("is empty; leave the option out for the default")
    return text


def _env_pair(text: str) -> Tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expects NAME=VALUE, got {text!r}")
    return name, value


def _one_line(message: str) -> str:
    """A message of several lines (a tool's output, a traceback) as one line."""
    return " | ".join(line.strip() for line in message.splitlines() if line.strip())


def _published(package_path: str, fs_args: Optional[Dict[str, Any]]) -> Any:
    """The manifest of the environment at ``package_path`` (None for the original tool's);
    :class:`ConfigurationError` when nothing is published there."""
    from cluster_pack.store.manifest import manifest_path, read_manifest
    from cluster_pack.store.storage import Store

    store, path = Store.for_url(package_path, fs_args)
    manifest = read_manifest(store, path, strict=True)
    if manifest is None and not store.exists(path):
        raise ConfigurationError(
            f"{package_path}: no environment is published there (neither the file nor its "
            f"manifest {store.url(manifest_path(path))}); publish it with cluster-pack upload")
    return manifest


def _reporter(args: argparse.Namespace):
    from cluster_pack.progress import Reporter, RichReporter

    if args.json or not sys.stderr.isatty():
        return contextlib.nullcontext(Reporter())
    return RichReporter()


def _emit(args: argparse.Namespace, data: Dict[str, Any], text: str) -> None:
    if args.json:
        print(json.dumps(data, indent=2, sort_keys=True, default=str))
    else:
        print(text)


def _cmd_upload(args: argparse.Namespace) -> int:
    from cluster_pack.store import publish

    additional = {}
    for item in args.additional_packages or []:
        name, _, version = item.partition("==")
        additional[name] = version
    started = time.perf_counter()
    with _reporter(args) as reporter:
        result = publish.publish_env(
            package_path=args.package_path, additional_packages=additional or None,
            ignored_packages=args.ignored_packages, only_packages=args.only_packages,
            force_upload=args.force, include_editable=args.include_editable,
            fs_args=_fs_args(args.fs_arg), allow_large_pex=args.allow_large_pex,
            include_pex_tools=args.include_pex_tools, reporter=reporter, layout=args.layout,
            include_interpreter=args.include_interpreter or None)
    elapsed = time.perf_counter() - started
    manifest = result.manifest
    size = manifest.size if manifest else None
    data = {"path": result.path, "env_name": result.env_name, "built": result.built,
            "uploaded_bytes": result.uploaded_bytes, "reason": result.reason,
            "seconds": round(elapsed, 3),
            "size": size,
            "sha256": manifest.sha256 if manifest else None,
            "distributions": len(manifest.package_installed) if manifest else None,
            "interpreter": (manifest.interpreter.version
                            if manifest and manifest.interpreter else None)}
    verb = "published" if result.built else "up to date"
    _emit(args, data,
          f"{result.path}: {verb} ({result.reason}) in {elapsed:.2f}s\n"
          f"  {data['distributions']} distributions, {_human_size(size)}, "
          f"{_human_size(result.uploaded_bytes)} written")
    return 0


def _cmd_upload_zip(args: argparse.Namespace) -> int:
    from cluster_pack.store import publish

    with _reporter(args) as reporter:
        result = publish.publish_zip(args.zip_file, args.package_path, args.force,
                                     _fs_args(args.fs_arg), expected_sha256=args.sha256,
                                     reporter=reporter)
    _emit(args, {"path": result.path, "built": result.built, "reason": result.reason,
                 "uploaded_bytes": result.uploaded_bytes},
          f"{result.path}: {'published' if result.built else 'up to date'} ({result.reason})")
    return 0


def _cmd_info(args: argparse.Namespace) -> int:
    from cluster_pack.errors import ConfigurationError
    from cluster_pack.store import parts_pool, publish
    from cluster_pack.store.manifest import manifest_path, summarize
    from cluster_pack.store.storage import Store

    store, path = Store.for_url(args.path, _fs_args(args.fs_arg))
    manifest = publish.read_manifest(store, path)
    if manifest is None:
        raise ConfigurationError(
            f"{args.path}: no cluster-pack manifest at {store.url(manifest_path(path))}")
    data = json.loads(manifest.to_json())
    data["path"] = store.url(path)
    missing = _missing_parts(store, path, manifest)
    data["exists"] = (not missing and (manifest.file_sha256 is None or store.exists(path))
                      if manifest.is_parts else store.exists(path))
    data["parts_count"] = summarize(manifest)["parts"]
    data["missing_parts"] = missing
    lines = [f"{data['path']}",
             f"  size        {_human_size(manifest.size)} ({manifest.size} bytes)",
             f"  sha256      {manifest.sha256}",
             f"  python      {manifest.python_version} ({manifest.platform})",
             f"  layout      {manifest.layout}, run as: {manifest.run.interpreter_cmd}",
             *([f"  parts       {data['parts_count']}, in {store.url(parts_pool.pool_dir(path))}"]
               if manifest.is_parts else []),
             *([f"  single file {_human_size(manifest.file_size).strip()} at the path, "
                f"sha256 {manifest.file_sha256}"] if manifest.file_sha256 else []),
             *([f"  interpreter Python {manifest.interpreter.version} ({manifest.interpreter.machine}"
                f", glibc >= {manifest.interpreter.glibc or '?'}), "
                f"{_human_size(manifest.interpreter.size).strip()}, shipped as a part"]
               if manifest.interpreter else []),
             f"  created     {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(manifest.created_at))}"
             f" by {manifest.created_by}",
             f"  packages    {len(manifest.package_installed)}"]
    lines += [f"    {p}" for p in manifest.package_installed]
    if missing:
        lines.append(f"  WARNING: {len(missing)} part(s) missing from the store: "
                     + ", ".join(missing))
    elif not data["exists"]:
        lines.append("  WARNING: the artifact itself is missing")
    _emit(args, data, "\n".join(lines))
    return 0


def _missing_parts(store: "Store", path: str, manifest: "Manifest") -> List[str]:
    """Paths of the parts the pool lacks (empty for a single-file layout)."""
    from cluster_pack.store import parts_pool

    if not manifest.is_parts:
        return []
    absent = {p.sha256 for p in parts_pool.missing(store, path, manifest.pool_parts)}
    return sorted(p.path for p in manifest.pool_parts if p.sha256 in absent)


def _cmd_ls(args: argparse.Namespace) -> int:
    import dataclasses

    from cluster_pack.store import publish

    found = publish.list_environments(args.directory, _fs_args(args.fs_arg))
    rows = [dataclasses.asdict(e) for e in found]
    text = "\n".join(
        f"{_human_size(r['size']):>10}  "
        f"{time.strftime('%Y-%m-%d %H:%M', time.localtime(r['modified'])) if r['modified'] else '-':16}  "
        f"{r['layout']:7}  {r['path']}{'  (' + r['version'] + ')' if r['version'] else ''}"
        for r in rows) or f"no environments in {args.directory or publish.default_env_dir()}"
    if args.json:
        print(json.dumps(rows, indent=2, default=str))
    else:
        print(text)
    return 0


def _cmd_gc(args: argparse.Namespace) -> int:
    from cluster_pack.store import parts_pool, publish
    from cluster_pack.store.storage import Store

    directory = args.directory or publish.default_env_dir()
    store, path = Store.for_url(directory, _fs_args(args.fs_arg))
    if not store.isdir(path) and (args.directory or store.exists(path)):
        raise ConfigurationError(
            f"{store.url(path)}: {'is a file' if store.exists(path) else 'no such directory'}; "
            "give the directory the environments are published in")
    done = parts_pool.collect_garbage(store, path, min_age_days=args.min_age_days,
                                 dry_run=args.dry_run)
    verb = "would remove" if args.dry_run else "removed"
    text = (f"{verb} {len(done.removed)} unreferenced part(s), "
            f"{_human_size(done.freed_bytes).strip()}, from {store.url(path)}/{parts_pool.POOL_DIR}; "
            f"kept {len(done.kept_young)} younger than {args.min_age_days:g} days")
    _emit(args, {"removed": done.removed, "kept_young": done.kept_young,
                 "freed_bytes": done.freed_bytes, "dry_run": args.dry_run}, text)
    return 0


def _cmd_fetch(args: argparse.Namespace) -> int:
    from cluster_pack.launch import local as runner

    local = runner.fetch_env(args.path, args.dest_dir, _fs_args(args.fs_arg))
    files = [p for p in local.rglob("*") if p.is_file()] if local.is_dir() else [local]
    size = sum(p.stat().st_size for p in files)
    data = {"source": args.path, "path": str(local), "size": size,
            "layout": published_layout(local.name, parts=local.is_dir()),
            "parts": len(files) if local.is_dir() else None}
    how = ("unzip it, then: python <dir>/__main__.py" if data["layout"] == PUBLISHED_PEX_ZIP
           else f"python {shlex.quote(str(local))} -m my_module")
    shipped = runner.interpreter_home(local) / "run"
    if shipped.is_file():  # include_interpreter: the environment's own Python beside it
        data["interpreter"] = str(shipped.parent)
        how = f"{shlex.quote(str(shipped))} -m my_module"
    _emit(args, data, f"{args.path} -> {local}: {_human_size(size)}"
                      f"{f', {len(files)} parts' if local.is_dir() else ''}, verified\n"
                      f"  run it with: {how}")
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from cluster_pack.errors import ConfigurationError
    from cluster_pack.launch import local as runner
    from cluster_pack.launch import spec as launch

    if not args.local:
        raise ConfigurationError(
            "only --local is available from the command line for now; use the YARN, Spark, "
            "Dask or Ray helpers from Python")
    command = list(args.command)
    if command and command[0] == "--":
        command = command[1:]
    if not command:
        raise ConfigurationError("nothing to run: cluster-pack run --local -- python -m my_job")
    if command[0] not in ("python", "python3") and not command[0].startswith("python3."):
        raise ConfigurationError(
            f"the command must start with python (it runs with the packed interpreter), "
            f"got {command[0]!r}")
    if args.node_dir and os.path.exists(args.node_dir) and not os.path.isdir(args.node_dir):
        raise ConfigurationError(f"--node-dir {args.node_dir} is a file; give a directory")
    fs_args = _fs_args(args.fs_arg)
    manifest = _published(args.package_path, fs_args) if args.package_path else None
    spec = launch.build_launch_spec(command[1:], package_path=args.package_path,
                                    env_vars=dict(args.env or []), fs_args=fs_args,
                                    manifest=manifest)
    if not args.json:
        print(f"running {shlex.join(command)} from {spec.package_path}", file=sys.stderr)
    result = runner.run(spec, node_dir=args.node_dir, capture=args.json,
                        pre_script_hook=args.pre_script_hook)
    if args.json:
        print(json.dumps({"returncode": result.returncode, "stdout": result.stdout,
                          "stderr": result.stderr, "workdir": str(result.workdir),
                          "package_path": spec.package_path}, indent=2))
    return result.returncode


def _cmd_spark_args(args: argparse.Namespace) -> int:
    import shlex

    from cluster_pack.launch import spark as spark_conf

    _published(args.path, _fs_args(args.fs_arg))
    argv = spark_conf.spark_submit_args(
        args.path, master=args.master, deploy_mode=args.deploy_mode, pex_root=args.pex_root,
        include_editables=args.editables, driver_python=args.driver_python,
        fs_args=_fs_args(args.fs_arg))
    if args.json:
        print(json.dumps(argv, indent=2))
    else:
        print(shlex.join(argv))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="cluster-pack",
        description="Pack the current virtualenv, publish it, run jobs with it.")
    parser.add_argument("--version", action="version",
                        version=f"cluster-pack {__import__('cluster_pack').__version__}")
    common = _Parser(add_help=False)
    common.add_argument("--json", action="store_true", help="machine-readable output")
    common.add_argument("-v", "--verbose", action="store_true", help="log what happens")
    common.add_argument("--fs-arg", action="append", metavar="KEY=VALUE",
                        help="storage option (e.g. S3 endpoint); repeatable")
    sub = parser.add_subparsers(dest="command_name", required=True)

    up = sub.add_parser("upload", parents=[common], help="pack and publish the current venv")
    up.add_argument("--package-path", type=_non_empty,
                    help="target URL (default: the user's env directory)")
    up.add_argument("--force", action="store_true", help="rebuild even if unchanged")
    up.add_argument("--additional-packages", nargs="*", metavar="NAME==VERSION")
    up.add_argument("--ignored-packages", nargs="*", metavar="NAME")
    up.add_argument("--only-packages", nargs="*", metavar="NAME")
    up.add_argument("--allow-large-pex", action="store_true",
                    help="force the unpacked .pex.zip layout (automatic when needed)")
    up.add_argument("--include-pex-tools", action="store_true")
    up.add_argument("--include-editable", action="store_true",
                    help="bake the venv's editable projects into the single file")
    up.add_argument("--include-interpreter", action="store_true",
                    help="also publish the venv's base interpreter and start jobs with it "
                         "(default: C_PACK_INCLUDE_INTERPRETER)")
    up.add_argument("--layout", choices=[layout.value for layout in Layout],
                    help="what to publish (default: C_PACK_LAYOUT, else pex+parts: the "
                         "single file at the path and the parts beside it); parts "
                         "contradicts --allow-large-pex")
    up.set_defaults(func=_cmd_upload)

    uz = sub.add_parser("upload-zip", parents=[common], help="publish an existing .pex")
    uz.add_argument("zip_file", help="local path or http(s) URL of a .pex / .pex.zip")
    uz.add_argument("--package-path", type=_non_empty)
    uz.add_argument("--force", action="store_true")
    uz.add_argument("--sha256", type=_sha256, help="refuse the file unless it has this sha256")
    uz.set_defaults(func=_cmd_upload_zip)

    info = sub.add_parser("info", parents=[common], help="what a published environment holds")
    info.add_argument("path")
    info.set_defaults(func=_cmd_info)

    ls = sub.add_parser("ls", parents=[common], help="list published environments")
    ls.add_argument("directory", nargs="?", help="default: the user's env directory")
    ls.set_defaults(func=_cmd_ls)

    gc = sub.add_parser("gc", parents=[common],
                        help="remove parts no manifest of the directory names any more")
    gc.add_argument("directory", nargs="?", help="default: the user's env directory")
    gc.add_argument("--min-age-days", type=_non_negative_days, default=7.0,
                    help="keep unreferenced parts younger than this: jobs submitted with an "
                         "older manifest may still localize them (default: 7)")
    gc.add_argument("--dry-run", action="store_true", help="only say what would be removed")
    gc.set_defaults(func=_cmd_gc)

    run = sub.add_parser("run", parents=[common], help="run a command in a packed environment")
    run.add_argument("--local", action="store_true",
                     help="run on this machine exactly as a cluster container would")
    run.add_argument("--package-path", type=_non_empty,
                     help="published environment (default: upload first)")
    run.add_argument("--node-dir", type=_non_empty,
                     help="node cache directory (default: in the cache dir)")
    run.add_argument("--env", action="append", metavar="NAME=VALUE", type=_env_pair)
    run.add_argument("--pre-script-hook", help="shell code run before the command")
    run.add_argument("command", nargs=argparse.REMAINDER)
    run.set_defaults(func=_cmd_run)

    fe = sub.add_parser("fetch", parents=[common],
                        help="download a published environment, verified, to run it with "
                             "plain python (no cluster-pack needed)")
    fe.add_argument("path", help="URL of the published environment (.pex / .pex.zip)")
    fe.add_argument("dest_dir", help="local directory; the environment is written as "
                                     "DEST_DIR/<name>.pex")
    fe.set_defaults(func=_cmd_fetch)

    sa = sub.add_parser("spark-args", parents=[common],
                        help="spark-submit arguments running PySpark from a published env")
    sa.add_argument("path", help="URL of the published .pex / .pex.zip")
    sa.add_argument("--master", help="e.g. yarn, spark://host:7077 (printed as --master)")
    sa.add_argument("--deploy-mode", choices=["client", "cluster"])
    sa.add_argument("--pex-root", help="absolute per-node install directory of the env")
    sa.add_argument("--editables", action="store_true",
                    help="also ship this venv's editable projects")
    sa.add_argument("--driver-python", help="driver python in client mode (default: this one)")
    sa.set_defaults(func=_cmd_spark_args)
    return parser


# raised by a local path the command was given (not wrapped on the way): fix the call
_BAD_PATH_ERRORS = (FileNotFoundError, NotADirectoryError, FileExistsError, IsADirectoryError,
                    PermissionError)


def _fail(exc: BaseException, code: int, verbose: bool) -> int:
    """One ``Error:`` line on stderr (the traceback too with ``--verbose``)."""
    if verbose:
        import traceback

        traceback.print_exception(exc, file=sys.stderr)
    if isinstance(exc, FileExistsError) and exc.filename is not None:
        message = f"{exc.filename}: exists and is not a directory"
    elif isinstance(exc, OSError) and exc.filename is not None and exc.strerror:
        message = f"{exc.filename}: {exc.strerror}"
    else:
        message = str(exc) or type(exc).__name__
    print(f"Error: {_one_line(message)}", file=sys.stderr)
    return code


def main(argv: Optional[Sequence[str]] = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except ClusterPackError as exc:
        return _fail(exc, exc.exit_code, False)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args)
    except ClusterPackError as exc:
        return _fail(exc, exc.exit_code, args.verbose)
    except OSError as exc:
        if isinstance(exc, BrokenPipeError):  # output piped into head & co.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 0
        return _fail(exc, 2 if isinstance(exc, _BAD_PATH_ERRORS) else 1, args.verbose)
    except KeyboardInterrupt:
        print("Error: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
