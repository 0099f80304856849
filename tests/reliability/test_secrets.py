"""A planted S3 secret (fs_args + AWS env vars) never shows up anywhere we produce."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import traceback

import pytest

from cluster_pack.launch import spec as launch
from cluster_pack.store import publish
from cluster_pack.store.manifest import manifest_path
from cluster_pack.store.storage import Store
from tests.reliability.conftest import make_pex

PLANT_FS = "cpackPLANTEDfsArgSecret0xDEADBEEF"
PLANT_ENV = "cpackPLANTEDenvSecret0xFEEDFACE"
PLANT_TOKEN = "cpackPLANTEDsessionToken0xC0FFEE"
PLANTS = (PLANT_FS, PLANT_ENV, PLANT_TOKEN)

pytestmark = pytest.mark.s3


def _scan(where: str, text: str, summary) -> None:
    summary.add("secrets_scanned")
    found = [p for p in PLANTS if p in (text or "")]
    if found:
        summary.add("secrets_leaked", len(found))
        pytest.fail(f"secret {found} leaked in {where}: ...{text[max(0, text.find(found[0]) - 200):][:400]}")


def _exception_text(exc: BaseException) -> str:
    parts, seen = [], set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        parts += [str(exc), repr(exc), repr(getattr(exc, "args", ())),
                  "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))]
        exc = exc.__cause__ or exc.__context__
    return "\n".join(parts)


@pytest.fixture
def planted(s3_env, s3_server, monkeypatch):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", PLANT_ENV)
    monkeypatch.setenv("AWS_SESSION_TOKEN", PLANT_TOKEN)
    return {**s3_server.fs_args, "secret": PLANT_FS, "key": s3_server.key}


def test_planted_secret_in_logs_errors_manifests(planted, s3_server, tmp_path, caplog, summary):
    caplog.set_level(logging.DEBUG)
    url = f"s3://{s3_server.bucket}/secret-test/e.pex"
    local = make_pex(tmp_path / "e.pex")
    result = publish.publish_zip(str(local), url, fs_args=planted)
    summary.add("runs")
    store, path = Store.for_url(url, planted)
    _scan("the manifest", store.read_bytes(manifest_path(path), 1 << 20).decode(), summary)
    _scan("the publish result", repr(result), summary)
    _scan("ls", json.dumps(store.ls(path.rsplit("/", 1)[0]), default=str), summary)
    _scan("info", repr(publish.read_manifest(store, path)), summary)
    for bad in ("s3://no-such-bucket-cpack-secret/envs/e.pex",):
        with pytest.raises(Exception) as err:
            publish.publish_zip(str(local), bad, fs_args=planted)
        summary.add("faults_injected")
        _scan("the exception chain of a failing upload", _exception_text(err.value), summary)
    # spark conf and YARN application spec we generate for this environment
    from cluster_pack.launch import spark as spark_conf

    _scan("s3a_conf", json.dumps(spark_conf.s3a_conf(planted)), summary)
    spec = launch.build_launch_spec([], package_path=url, include_editables=False,
                                    fs_args=planted)
    _scan("the launch script", spec.shell_script(), summary)
    _scan("spark_submit_args", " ".join(spark_conf.spark_submit_args(url, master="yarn",
                                                                      fs_args=planted)),
          summary)
    pytest.importorskip("skein")
    from cluster_pack.launch import yarn

    app = yarn.application_spec(spec)
    _scan("the YARN application spec", app.to_yaml(), summary)
    # every log record of this test, at DEBUG, of every library
    _scan("logs (DEBUG, all loggers)", "\n".join(
        f"{r.name} {r.getMessage()} {r.args!r}" for r in caplog.records), summary)


def _cli(*args, env):
    return subprocess.run([sys.executable, "-m", "cluster_pack", *args], capture_output=True,
                          text=True, env=env)


def test_planted_secret_in_cli_output(planted, s3_server, tmp_path, summary):
    env = {**os.environ}
    url = f"s3://{s3_server.bucket}/secret-cli/e.pex"
    local = make_pex(tmp_path / "e.pex")
    fs = ["--fs-arg", f"secret={PLANT_FS}", "--fs-arg", f"key={s3_server.key}",
          "--fs-arg", f"endpoint_url={s3_server.endpoint_url}"]
    calls = [
        ("upload-zip", str(local), "--package-path", url, "--force", *fs),
        ("info", url, *fs),
        ("ls", url.rsplit("/", 1)[0], *fs),
        ("upload-zip", str(local), "--package-path", "s3://no-such-bucket-cpack/e.pex", *fs),
        ("info", "s3://no-such-bucket-cpack/e.pex", *fs),
        ("spark-args", url, "--master", "yarn", *fs),
    ]
    for call in calls:
        for extra in ([], ["--json"], ["-v"]):
            proc = _cli(*call, *extra, env=env)
            summary.add("runs")
            _scan(f"`cluster-pack {call[0]} {' '.join(extra)}` (rc {proc.returncode})",
                  proc.stdout + proc.stderr, summary)
