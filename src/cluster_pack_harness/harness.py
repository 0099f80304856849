"""The Harness: HDFS+YARN and/or S3 in one directory, plus env.sh / env.json for clients."""

from __future__ import annotations

import json
import os
import shlex
import time
from pathlib import Path
from typing import Any, Dict, Optional, Union

from cluster_pack_harness._proc import HarnessError
from cluster_pack_harness.hadoop import HadoopCluster
from cluster_pack_harness.s3 import S3Server

DEFAULT_DIR = ".harness"


def default_dir() -> Path:
    return Path(os.environ.get("CLUSTER_PACK_HARNESS_DIR") or DEFAULT_DIR).resolve()


class Harness:
    """Start/stop the real parts::

        h = Harness("/tmp/h").start(hadoop=True, s3=True)
        h.env            # HADOOP_CONF_DIR, JAVA_HOME, HADOOP_CLASSPATH, AWS_* ...
        h.hadoop.default_fs, h.s3.endpoint_url, h.s3.bucket
        h.stop()
    """

    def __init__(self, directory: Optional[Union[str, os.PathLike]] = None, *, yarn: bool = True,
                 xmx: str = "2g", nm_memory_mb: int = 8192, nm_vcores: int = 8,
                 bucket: Optional[str] = None, build: bool = True, secure: bool = False):
        self.dir = Path(directory).resolve() if directory else default_dir()
        self.hadoop: Optional[HadoopCluster] = None
        self.s3: Optional[S3Server] = None
        self._hadoop_kwargs: Dict[str, Any] = dict(yarn=yarn, xmx=xmx, nm_memory_mb=nm_memory_mb,
                                                   nm_vcores=nm_vcores, build=build, secure=secure)
        self._s3_kwargs: Dict[str, Any] = {"bucket": bucket} if bucket else {}
        self.startup_seconds: Dict[str, float] = {}

    # ------------------------------------------------------------------ lifecycle

    def start(self, hadoop: bool = True, s3: bool = True, *, timeout: float = 180.0,
              watch_parent: bool = False, log=None) -> "Harness":
        """Start the requested parts (in parallel) and wait until they are ready.

        ``watch_parent``: the servers exit by themselves when this process dies (stdin pipe);
        the CLI does not use it, so its servers outlive it.
        """
        self.dir.mkdir(parents=True, exist_ok=True)
        t0 = time.monotonic()
        try:
            if hadoop and self.hadoop is None:
                h = HadoopCluster(self.dir, **self._hadoop_kwargs)
                h.launch(watch_parent=watch_parent, log=log)
                self.hadoop = h
            if s3 and self.s3 is None:
                s = S3Server(self.dir, **self._s3_kwargs)
                s.launch(watch_parent=watch_parent)
                self.s3 = s
                s.wait_ready(timeout=60)
                self.startup_seconds["s3"] = round(time.monotonic() - t0, 1)
            if hadoop and self.hadoop is not None and not self.hadoop.info:
                self.hadoop.wait_ready(timeout=timeout)
                self.startup_seconds["hadoop"] = round(time.monotonic() - t0, 1)
        except BaseException:
            try:
                self.stop()
            except HarnessError:
                pass
            raise
        self.write_env_files()
        return self

    def stop(self) -> None:
        errors = []
        for part in (self.hadoop, self.s3):
            if part is None:
                continue
            try:
                part.stop()
            except HarnessError as e:
                errors.append(str(e))
        self.hadoop = None
        self.s3 = None
        for name in ("env.sh", "env.json", "harness.json"):
            try:
                (self.dir / name).unlink()
            except OSError:
                pass
        if errors:
            raise HarnessError("; ".join(errors))

    def __enter__(self) -> "Harness":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    # ------------------------------------------------------------------ env

    @property
    def env(self) -> Dict[str, str]:
        env: Dict[str, str] = {"CLUSTER_PACK_HARNESS_DIR": str(self.dir)}
        if self.hadoop is not None and self.hadoop.info:
            env.update(self.hadoop.env)
        if self.s3 is not None and self.s3.info:
            env.update(self.s3.env)
        return env

    def describe(self) -> Dict:
        d: Dict = {"dir": str(self.dir), "startup_seconds": self.startup_seconds}
        if self.hadoop is not None and self.hadoop.info:
            info = {k: v for k, v in self.hadoop.info.items() if k != "classpath"}
            info.update(log=str(self.hadoop.log_file), bin=str(self.hadoop.bin_dir))
            d["hadoop"] = info
        if self.s3 is not None and self.s3.info:
            d["s3"] = {"pid": self.s3.pid, "endpoint_url": self.s3.endpoint_url, "bucket": self.s3.bucket,
                       "key": self.s3.key, "secret": self.s3.secret, "region": self.s3.region,
                       "log": str(self.s3.log_file)}
        return d

    def write_env_files(self) -> None:
        """DIR/env.sh (``source`` it), DIR/env.json (flat env, PATH excluded), DIR/harness.json."""
        env = self.env
        lines = ["# generated by cluster_pack_harness; source this file", ""]
        for k, v in sorted(env.items()):
            if k == "PATH":
                continue
            lines.append(f"export {k}={shlex.quote(v)}")
        if "CLUSTER_PACK_HARNESS_BIN" in env:
            lines.append(f'export PATH={shlex.quote(env["CLUSTER_PACK_HARNESS_BIN"])}:"$PATH"')
        _atomic_write(self.dir / "env.sh", "\n".join(lines) + "\n")
        flat = {k: v for k, v in env.items() if k != "PATH"}
        _atomic_write(self.dir / "env.json", json.dumps(flat, indent=2, sort_keys=True) + "\n")
        _atomic_write(self.dir / "harness.json", json.dumps(self.describe(), indent=2) + "\n")

    # ------------------------------------------------------------------ reuse / status

    @classmethod
    def attach(cls, directory: Optional[Union[str, os.PathLike]] = None) -> "Harness":
        """Handle on a harness started by the CLI; only the parts that run are attached."""
        self = cls(directory)
        desc = {}
        try:
            desc = json.loads((self.dir / "harness.json").read_text())
        except (OSError, ValueError):
            pass
        try:
            self.hadoop = HadoopCluster.attach(self.dir)
        except HarnessError:
            self.hadoop = None
        try:
            self.s3 = S3Server.attach(self.dir, desc.get("s3"))
        except (HarnessError, OSError, ValueError):
            self.s3 = None
        if self.hadoop is None and self.s3 is None:
            raise HarnessError(f"no running harness in {self.dir}")
        return self

    @classmethod
    def stop_dir(cls, directory: Optional[Union[str, os.PathLike]] = None) -> None:
        """Stop whatever was started in ``directory`` (ready or not), from the pid files."""
        self = cls(directory)
        self.hadoop = HadoopCluster(self.dir)
        self.s3 = S3Server(self.dir)
        self.stop()

    def status(self) -> Dict:
        return {
            "dir": str(self.dir),
            "hadoop": bool(self.hadoop and self.hadoop.running()),
            "s3": bool(self.s3 and self.s3.running()),
            **({"secure": self.hadoop.secure} if self.hadoop and self.hadoop.info else {}),
            **({"default_fs": self.hadoop.default_fs, "rm_address": self.hadoop.rm_address}
               if self.hadoop and self.hadoop.info else {}),
            **({"s3_endpoint_url": self.s3.endpoint_url, "bucket": self.s3.bucket}
               if self.s3 and self.s3.info else {}),
        }


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
