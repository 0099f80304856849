"""S3 faults against real moto servers (issue 4): wrong credentials, a server killed
mid-upload, and ``upload_env`` from a real venv then run through the local runner.

The harness S3 server accepts any key, so the credential and kill tests start their own
short-lived moto server (``python -m cluster_pack_harness.s3``) on a free loopback port:
with ``INITIAL_NO_AUTH_ACTION_COUNT`` set, moto authenticates (and authorizes through its
IAM) every request after the first N, which lets the test create an IAM user and its
access key, then see a wrong secret rejected (SignatureDoesNotMatch/InvalidAccessKeyId).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Dict, Iterator, List, Optional

import pytest

from cluster_pack.errors import ClusterPackError, StorageError
from cluster_pack.store import parts_pool, publish
from cluster_pack.store.manifest import manifest_path
from tests.integration.test_storage_hdfs import make_pex
from tests.venvs import REPO, build_venv, clean_env, make_toy_project, remove_at_teardown, uv

pytestmark = pytest.mark.s3

REGION = "us-east-1"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class MotoProcess:
    """One moto server process of our own (not the session harness), killable at will."""

    def __init__(self, workdir: Path, port: int, no_auth_actions: Optional[int] = None):
        pytest.importorskip("moto")
        self.workdir = workdir
        self.port = port
        workdir.mkdir(parents=True, exist_ok=True)
        for stale in ("ready.json", "stop"):
            (workdir / stale).unlink(missing_ok=True)
        env = {k: v for k, v in os.environ.items()
               if k not in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_PROFILE")}
        if no_auth_actions is not None:
            env["INITIAL_NO_AUTH_ACTION_COUNT"] = str(no_auth_actions)
        self.log = open(workdir / "server.log", "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "cluster_pack_harness.s3", "--dir", str(workdir),
             "--port", str(port)],
            env=env, stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True)
        deadline = time.monotonic() + 60
        while not (workdir / "ready.json").exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.kill()
                raise AssertionError("moto server did not start:\n"
                                     + (workdir / "server.log").read_text()[-3000:])
            time.sleep(0.05)

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self, service: str, key: str = "bootstrap", secret: str = "bootstrap"):
        import boto3

        return boto3.client(service, endpoint_url=self.endpoint_url, region_name=REGION,
                            aws_access_key_id=key, aws_secret_access_key=secret)

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)  # only the process this test started
        self.proc.wait(timeout=10)
        self.log.close()


@pytest.fixture
def moto_servers(tmp_path) -> Iterator[List[MotoProcess]]:
    started: List[MotoProcess] = []
    yield started
    for server in started:
        server.kill()


def _chain(exc: BaseException) -> List[BaseException]:
    seen: List[BaseException] = []
    todo = [exc]
    while todo:
        e = todo.pop()
        if e is None or any(e is s for s in seen):
            continue
        seen.append(e)
        todo += [e.__cause__, e.__context__]
    return seen


def _no_secret_anywhere(exc: BaseException, secrets: List[str]) -> None:
    for e in _chain(exc):
        for text in (str(e), repr(e), repr(getattr(e, "args", ()))):
            for secret in secrets:
                assert secret not in text, f"a secret leaks through {type(e).__name__}: {text}"


# -- 1. wrong credentials ------------------------------------------------------------------

@pytest.fixture
def auth_server(tmp_path, moto_servers):
    """A moto server that authenticates: an IAM user with a real key pair, one bucket."""
    # 4 unauthenticated actions: create_user, put_user_policy, create_access_key, create_bucket
    server = MotoProcess(tmp_path / "auth-s3", _free_port(), no_auth_actions=4)
    moto_servers.append(server)
    iam = server.client("iam")
    iam.create_user(UserName="cpack")
    iam.put_user_policy(UserName="cpack", PolicyName="all", PolicyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
    key = iam.create_access_key(UserName="cpack")["AccessKey"]
    server.key, server.secret = key["AccessKeyId"], key["SecretAccessKey"]
    server.bucket = "cpack-auth-bucket"
    server.client("s3", server.key, server.secret).create_bucket(Bucket=server.bucket)
    return server


def _fs_args(endpoint: str, key: str, secret: str) -> Dict:
    return {"key": key, "secret": secret,
            "client_kwargs": {"endpoint_url": endpoint, "region_name": REGION}}


def test_right_credentials_publish(auth_server, tmp_path, monkeypatch):
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL",
                "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(var, raising=False)
    url = f"s3://{auth_server.bucket}/envs/ok.pex"
    result = publish.publish_zip(str(make_pex(tmp_path / "ok.pex")), url,
                                 fs_args=_fs_args(auth_server.endpoint_url, auth_server.key,
                                                  auth_server.secret))
    assert result.built
    # and moto really authenticates: a wrong secret is refused by the server itself
    from botocore.exceptions import ClientError

    with pytest.raises(ClientError) as err:
        auth_server.client("s3", auth_server.key, "WRONG").list_objects_v2(
            Bucket=auth_server.bucket)
    assert err.value.response["Error"]["Code"] in ("SignatureDoesNotMatch", "AccessDenied")


@pytest.mark.parametrize("wrong", ["secret", "key"])
def test_wrong_credentials_name_the_bucket_and_hide_the_secret(auth_server, tmp_path,
                                                               monkeypatch, wrong):
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL",
                "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(var, raising=False)
    bad_secret = "WrongSecret-cpack-do-not-print-0123456789"
    key = auth_server.key if wrong == "secret" else "AKIACPACKWRONGKEY000"
    url = f"s3://{auth_server.bucket}/envs/x.pex"
    t0 = time.monotonic()
    with pytest.raises(ClusterPackError) as err:
        publish.publish_zip(str(make_pex(tmp_path / "x.pex")), url,
                            fs_args=_fs_args(auth_server.endpoint_url, key, bad_secret))
    elapsed = time.monotonic() - t0
    print(f"[s3 faults] wrong {wrong}: failed in {elapsed:.2f}s: {err.value}")
    message = str(err.value)
    assert isinstance(err.value, StorageError)
    assert auth_server.bucket in message and auth_server.bucket in repr(err.value)
    assert "denied" in message and "credentials" in message, message
    assert key in message  # the key id (not a secret) helps find the wrong profile
    _no_secret_anywhere(err.value, [bad_secret, auth_server.secret])
    assert elapsed < 10
    # nothing was written by the failed call
    listing = auth_server.client("s3", auth_server.key, auth_server.secret).list_objects_v2(
        Bucket=auth_server.bucket)
    assert [o["Key"] for o in listing.get("Contents", [])] == []


def test_wrong_credentials_from_the_cli(auth_server, tmp_path):
    bad_secret = "WrongSecret-cli-do-not-print-9876543210"
    env = {k: v for k, v in os.environ.items()
           if k not in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_PROFILE")}
    env.update(AWS_ACCESS_KEY_ID=auth_server.key, AWS_SECRET_ACCESS_KEY=bad_secret,
               AWS_DEFAULT_REGION=REGION, AWS_ENDPOINT_URL_S3=auth_server.endpoint_url)
    proc = subprocess.run([sys.executable, "-m", "cluster_pack", "info",
                           f"s3://{auth_server.bucket}/envs/x.pex"],
                          capture_output=True, text=True, env=env, timeout=60)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert auth_server.bucket in out, out
    assert bad_secret not in out and auth_server.secret not in out
    assert "Traceback" not in out, out


# -- 2. server killed mid-upload -----------------------------------------------------------

def test_server_killed_mid_upload_fails_fast_and_leaves_nothing(tmp_path, moto_servers,
                                                                monkeypatch):
    for var in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(var, raising=False)
    port = _free_port()
    server = MotoProcess(tmp_path / "kill-s3", port)
    moto_servers.append(server)
    bucket = "cpack-kill-bucket"
    server.client("s3").create_bucket(Bucket=bucket)
    # 60 MB of incompressible payload: more than s3fs' 50 MB block -> a multipart upload
    artifact = make_pex(tmp_path / "big.pex", payload=os.urandom(60 * 1024 * 1024))
    url = f"s3://{bucket}/envs/x.pex"
    fs_args = _fs_args(server.endpoint_url, "k", "s")

    outcome: Dict = {}

    def run() -> None:
        try:
            outcome["result"] = publish.publish_zip(str(artifact), url, fs_args=fs_args)
        except BaseException as exc:  # noqa: BLE001 - reported to the test thread
            outcome["error"] = exc
        outcome["done"] = time.monotonic()

    client = server.client("s3")
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not client.list_multipart_uploads(Bucket=bucket).get("Uploads"):
        assert "done" not in outcome, f"the upload ended before it could be killed: {outcome}"
        assert time.monotonic() < deadline, "no multipart upload started"
        time.sleep(0.01)
    # mid-upload: neither the artifact nor the manifest is visible to readers
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=bucket).get("Contents", [])]
    assert "envs/x.pex" not in keys and manifest_path("envs/x.pex") not in keys, keys
    killed = time.monotonic()
    server.kill()
    thread.join(60)
    assert not thread.is_alive(), "publish still hangs 60 s after the S3 server died"
    elapsed = outcome["done"] - killed
    print(f"[s3 faults] server SIGKILLed mid-upload: publish failed {elapsed:.2f}s later: "
          f"{outcome.get('error')!r}")
    error = outcome.get("error")
    assert isinstance(error, StorageError), outcome
    assert bucket in str(error), error
    assert elapsed < 20, f"took {elapsed:.1f}s to report the dead server"

    # a fresh server on the same port (moto keeps state in memory: recreate the bucket)
    fresh = MotoProcess(tmp_path / "kill-s3-2", port)
    moto_servers.append(fresh)
    fresh.client("s3").create_bucket(Bucket=bucket)
    again = publish.publish_zip(str(artifact), url, fs_args=fs_args)
    assert again.built
    data = fresh.client("s3").get_object(Bucket=bucket, Key="envs/x.pex")["Body"].read()
    assert len(data) == artifact.stat().st_size
    manifest = json.loads(fresh.client("s3").get_object(
        Bucket=bucket, Key=manifest_path("envs/x.pex"))["Body"].read())
    assert manifest["size"] == len(data)


def test_dead_server_fails_fast(tmp_path, monkeypatch):
    """Nothing listens at the endpoint at all: a clear error in seconds, not minutes."""
    for var in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(var, raising=False)
    endpoint = f"http://127.0.0.1:{_free_port()}"
    t0 = time.monotonic()
    with pytest.raises(StorageError) as err:
        publish.publish_zip(str(make_pex(tmp_path / "e.pex")), "s3://cpack-nobody/envs/e.pex",
                            fs_args=_fs_args(endpoint, "k", "secret-not-shown-xyz"))
    elapsed = time.monotonic() - t0
    print(f"[s3 faults] no server: failed in {elapsed:.2f}s: {err.value}")
    assert "cpack-nobody" in str(err.value)
    assert elapsed < 20
    _no_secret_anywhere(err.value, ["secret-not-shown-xyz"])


# -- 3. upload_env from a real venv, then run it -------------------------------------------

JOB = '''\
import sys
import six
import s3toy
print("S3TOY " + s3toy.VALUE + " six=" + six.__version__ + " " + " ".join(sys.argv[1:]))
'''


@pytest.fixture(scope="module")
def s3_venv(tmp_path_factory):
    root = tmp_path_factory.mktemp("s3venv")
    project = make_toy_project(root, "s3toy", "from-s3")
    (project / "src" / "s3toy" / "job.py").write_text(JOB)
    yield build_venv(root / "venv", ["six", "s3fs"], editables=[REPO, project]), project
    remove_at_teardown(root)


def _run_in(venv: Path, code: str, cwd: Path, env: Dict[str, str]) -> Dict:
    full = clean_env({"C_PACK_UV": uv(), **env},
                     drop=("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_ACCESS_KEY_ID",
                           "AWS_SECRET_ACCESS_KEY"))
    proc = subprocess.run([str(venv / "bin" / "python"), "-c", textwrap.dedent(code)],
                          capture_output=True, text=True, cwd=cwd, env=full, timeout=900)
    assert proc.returncode == 0, f"stdout:\n{proc.stdout[-4000:]}\nstderr:\n{proc.stderr[-6000:]}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_upload_env_to_s3_then_noop_then_run(s3_venv, s3_server, tmp_path):
    venv, _project = s3_venv
    url = f"s3://{s3_server.bucket}/faults-{os.getpid()}/envs/s3venv.pex"
    key = url.split("/", 3)[3]
    cache = tmp_path / "cache"
    cache.mkdir()
    env = {"C_PACK_CACHE_DIR": str(cache)}
    fs_args = json.dumps(s3_server.fs_args)

    first = _run_in(venv, f"""
        import json, time, cluster_pack
        t0 = time.monotonic()
        path, name = cluster_pack.upload_env(package_path={url!r}, fs_args=json.loads({fs_args!r}))
        print(json.dumps({{"path": path, "name": name, "s": time.monotonic() - t0}}))
    """, tmp_path, env)
    assert first["path"] == url
    client = s3_server.client()
    manifest_key = manifest_path(key)
    manifest_head = client.head_object(Bucket=s3_server.bucket, Key=manifest_key)
    manifest = json.loads(client.get_object(Bucket=s3_server.bucket,
                                            Key=manifest_key)["Body"].read())
    # the default layout: parts in the directory's pool, and the original's single file
    # at the .pex key itself
    assert manifest["layout"] == "parts"
    single_head = client.head_object(Bucket=s3_server.bucket, Key=key)
    assert single_head["ContentLength"] == manifest["file_size"]
    pool_prefix = key.rsplit("/", 1)[0] + "/" + parts_pool.POOL_DIR + "/"
    heads = {}
    for part in manifest["parts"]:
        head = client.head_object(Bucket=s3_server.bucket, Key=pool_prefix + part["sha256"])
        assert head["ContentLength"] == part["size"], part
        heads[part["sha256"]] = (head["ETag"], head["LastModified"])
    print(f"[s3 faults] upload_env to S3: {first['s']:.1f}s, {manifest['size']} bytes in "
          f"{len(heads)} parts")

    time.sleep(1.1)  # a rewrite would change LastModified (1 s resolution)
    second = _run_in(venv, f"""
        import json
        from cluster_pack.store import publish
        r = publish.publish_env(package_path={url!r}, fs_args=json.loads({fs_args!r}))
        print(json.dumps({{"path": r.path, "built": r.built, "written": r.uploaded_bytes,
                          "reason": r.reason}}))
    """, tmp_path, env)
    assert second["path"] == url and second["built"] is False and second["written"] == 0, second
    for sha, stamp in heads.items():
        again = client.head_object(Bucket=s3_server.bucket, Key=pool_prefix + sha)
        assert (again["ETag"], again["LastModified"]) == stamp
    manifest_again = client.head_object(Bucket=s3_server.bucket, Key=manifest_key)
    assert manifest_again["LastModified"] == manifest_head["LastModified"]
    single_again = client.head_object(Bucket=s3_server.bucket, Key=key)
    assert (single_again["ETag"], single_again["LastModified"]) == \
        (single_head["ETag"], single_head["LastModified"])  # the no-op rewrote nothing

    ran = _run_in(venv, f"""
        import json
        from cluster_pack.launch import spec as launch
        from cluster_pack.launch import local as runner
        fs_args = json.loads({fs_args!r})
        spec = launch.module_launch_spec("s3toy.job", ["a", "b"], package_path={url!r},
                                         fs_args=fs_args)
        result = runner.run(spec, fs_args=fs_args, node_dir={str(tmp_path / "node")!r},
                            timeout=300)
        print(json.dumps({{"rc": result.returncode, "out": result.stdout,
                          "err": result.stderr[-3000:],
                          "sources": [r.source for r in spec.resources]}}))
    """, tmp_path, env)
    assert ran["rc"] == 0, ran["err"]
    # every part is localized from the pool next to the published path
    remote = [source for source in ran["sources"] if "://" in source]  # not editable zips
    assert sorted(remote) == sorted(
        {f"s3://{s3_server.bucket}/{pool_prefix}{p['sha256']}" for p in manifest["parts"]})
    assert "S3TOY from-s3 six=" in ran["out"] and ran["out"].strip().endswith("a b"), ran
