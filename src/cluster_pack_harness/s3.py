"""S3: a moto server (real HTTP S3 API) on 127.0.0.1, in its own process.

The server process is ``python -m cluster_pack_harness.s3 --dir DIR/s3`` which runs moto's
ThreadedMotoServer on an ephemeral loopback port, writes ``DIR/s3/ready.json`` with the port and
stops on SIGTERM, on ``DIR/s3/stop`` or (``--exit-on-stdin-eof``) when its parent goes away.
Logs go to ``DIR/s3.log``.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Dict, Optional

from cluster_pack_harness._proc import (
    HarnessError,
    HarnessUnavailable,
    ServerProcess,
    pid_alive,
    tail,
)

DEFAULT_BUCKET = "cluster-pack-test"
DEFAULT_KEY = "cluster-pack-harness-key"
DEFAULT_SECRET = "cluster-pack-harness-secret"
DEFAULT_REGION = "us-east-1"
_MARK = "cluster_pack_harness.s3"


class S3Server(ServerProcess):
    marker = _MARK
    description = "an S3 server"
    name = "the S3 server"

    def __init__(self, base_dir, *, bucket: str = DEFAULT_BUCKET, key: str = DEFAULT_KEY,
                 secret: str = DEFAULT_SECRET, region: str = DEFAULT_REGION, port: int = 0):
        self.base_dir = Path(base_dir).resolve()
        self.workdir = self.base_dir / "s3"
        self.log_file = self.base_dir / "s3.log"
        self.bucket = bucket
        self.key = key
        self.secret = secret
        self.region = region
        self.port = port
        self.pid: Optional[int] = None
        self._proc: Optional[subprocess.Popen] = None
        self.info: Dict = {}

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.info['port']}"

    @property
    def fs_args(self) -> Dict:
        """Keyword arguments for ``s3fs.S3FileSystem`` / ``fsspec.filesystem("s3", ...)``."""
        return {
            "key": self.key,
            "secret": self.secret,
            "client_kwargs": {"endpoint_url": self.endpoint_url, "region_name": self.region},
        }

    @property
    def env(self) -> Dict[str, str]:
        return {
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_ENDPOINT_URL_S3": self.endpoint_url,
            "S3_ENDPOINT": self.endpoint_url,
            "AWS_ACCESS_KEY_ID": self.key,
            "AWS_SECRET_ACCESS_KEY": self.secret,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_REGION": self.region,
            "AWS_EC2_METADATA_DISABLED": "true",
            "CLUSTER_PACK_HARNESS_S3_BUCKET": self.bucket,
        }

    def client(self):
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint_url, aws_access_key_id=self.key,
                            aws_secret_access_key=self.secret, region_name=self.region)

    def launch(self, *, watch_parent: bool = False) -> None:
        import importlib.util

        missing = [m for m in ("moto", "flask", "boto3") if importlib.util.find_spec(m) is None]
        if missing:
            raise HarnessUnavailable(f"moto[server] is not installed (missing: {', '.join(missing)})")
        self._refuse_if_running()
        self._fresh_workdir()
        cmd = [sys.executable, "-m", _MARK, "--dir", str(self.workdir), "--port", str(self.port)]
        if watch_parent:
            cmd.append("--exit-on-stdin-eof")
        env = dict(os.environ)
        # the server must not try to talk to itself / AWS
        for k in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_PROFILE"):
            env.pop(k, None)
        self._spawn(cmd, env, watch_parent)

    def wait_ready(self, timeout: float = 60.0) -> Dict:
        ready = self.workdir / "ready.json"
        deadline = time.monotonic() + timeout
        while not ready.exists():
            if not pid_alive(self.pid):
                raise HarnessError(f"S3 server exited during startup (see {self.log_file}):\n"
                                   + tail(self.log_file, 40))
            if time.monotonic() > deadline:
                log_tail = tail(self.log_file, 40)
                self.stop()
                raise HarnessError(f"S3 server not ready after {timeout:.0f}s:\n{log_tail}")
            time.sleep(0.05)
        self.info = json.loads(ready.read_text())
        self.info.update(bucket=self.bucket, key=self.key, secret=self.secret, region=self.region)
        c = self.client()
        existing = [b["Name"] for b in c.list_buckets().get("Buckets", [])]
        if self.bucket not in existing:
            c.create_bucket(Bucket=self.bucket)
        return self.info

    def start(self, timeout: float = 60.0, *, watch_parent: bool = False) -> "S3Server":
        self.launch(watch_parent=watch_parent)
        self.wait_ready(timeout)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        pid = self.pid or self._read_pid()
        self._finish_stop(pid, self._terminate(pid, timeout))

    @classmethod
    def attach(cls, base_dir, info: Optional[Dict] = None) -> "S3Server":
        self = cls(base_dir)
        self.pid = self._read_pid()
        if not self.running():
            raise HarnessError(f"no running S3 server in {self.base_dir}")
        self.info = json.loads((self.workdir / "ready.json").read_text())
        if info:
            self.bucket = info.get("bucket", self.bucket)
            self.key = info.get("key", self.key)
            self.secret = info.get("secret", self.secret)
            self.region = info.get("region", self.region)
        return self


# ---------------------------------------------------------------------- server process


def _serve(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m cluster_pack_harness.s3")
    p.add_argument("--dir", required=True)
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--exit-on-stdin-eof", action="store_true")
    args = p.parse_args(argv)
    workdir = Path(args.dir)

    from moto.moto_server.threaded_moto_server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=args.port, verbose=True)
    server.start()
    host, port = server.get_host_and_port()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: stop.set())
    signal.signal(signal.SIGINT, lambda *a: stop.set())
    if args.exit_on_stdin_eof:
        def watch():
            try:
                while sys.stdin.buffer.read(256):
                    pass
            except OSError:
                pass
            stop.set()

        threading.Thread(target=watch, daemon=True).start()
    tmp = workdir / "ready.json.tmp"
    tmp.write_text(json.dumps({"pid": os.getpid(), "host": host, "port": port}))
    os.replace(tmp, workdir / "ready.json")
    print(f"[harness] moto S3 server ready on http://{host}:{port}", flush=True)
    stop_file = workdir / "stop"
    while not stop.wait(0.25):
        if stop_file.exists():
            break
    print("[harness] stopping S3 server", flush=True)
    try:
        (workdir / "ready.json").unlink()
    except OSError:
        pass
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(_serve())
