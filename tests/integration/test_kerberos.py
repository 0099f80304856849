"""cluster-pack on a Kerberized cluster: the secure harness (MiniKdc + HDFS/YARN with Kerberos,
block tokens and SASL data transfer protection), used by the real clients.

One session-scoped ``secure_hadoop_cluster``; users ``alice`` and ``bob`` get tickets from
their keytabs into per-test caches (``KRB5CCNAME``). Publishing runs with the python of the
REAL test venv shared with the YARN tests (``yarn_venv``), and the CLI is that venv's
``python -m cluster_pack``. Every output of these tests is kept and scanned at the end for
ticket and keytab content (``test_no_ticket_or_keytab_content_anywhere``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from typing import Dict, List, Sequence

import pytest

from tests.integration.conftest import driver_runner
from tests.integration.kerberos_secrets import assert_no_secrets, cluster_texts, secrets_of

pytestmark = [pytest.mark.kerberos, pytest.mark.hdfs, pytest.mark.timeout(600)]

# every stdout/stderr/log/manifest these tests saw: scanned for secrets at the end
OUTPUTS: List[str] = []
FAIL_FAST_SECONDS = 15.0  # a CLI command without a valid ticket (python start-up included)


@pytest.fixture(scope="module")
def secure_driver(krb, yarn_venv, tmp_path_factory):
    return driver_runner(yarn_venv, krb.base_env, tmp_path_factory.mktemp("krb-drivers"))


@pytest.fixture(scope="module")
def cli(krb, yarn_venv):
    """``cli(args, ticket_env)``: the test venv's ``python -m cluster_pack``; returns
    (returncode, stdout, stderr, seconds)."""

    def run(args: Sequence[str], env: Dict[str, str], timeout: float = 120):
        t0 = time.monotonic()
        proc = subprocess.run([str(yarn_venv.python), "-m", "cluster_pack", *args],
                              env={**krb.base_env, **env}, capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)
        OUTPUTS.extend([proc.stdout, proc.stderr])
        return proc.returncode, proc.stdout, proc.stderr, time.monotonic() - t0

    return run


def _driver(secure_driver, code: str, env: Dict[str, str]):
    result = secure_driver(code, extra_env=env)
    OUTPUTS.append(json.dumps(result))
    return result


# ------------------------------------------------------------------------------- harness


def test_secure_harness_kdc_keytabs_and_kerberized_hdfs(krb, tmp_path):
    cluster = krb.cluster
    assert cluster.info["secure"] is True and cluster.realm
    assert os.stat(cluster.kerberos_dir).st_mode & 0o777 == 0o700
    for user in ("alice", "bob"):
        assert os.stat(cluster.keytab(user)).st_mode & 0o777 == 0o600
        assert cluster.principal(user) == f"{user}@{cluster.realm}"
    env = cluster.env
    assert env["KRB5_CONFIG"] == str(cluster.krb5_conf) and cluster.krb5_conf.is_file()
    assert "-Djava.security.krb5.conf=" in env["SKEIN_DRIVER_JAVA_OPTIONS"]
    core = (cluster.conf_dir / "core-site.xml").read_text()
    hdfs_site = (cluster.conf_dir / "hdfs-site.xml").read_text()
    assert "<value>kerberos</value>" in core
    assert "dfs.data.transfer.protection" in hdfs_site and "<value>authentication</value>" in hdfs_site

    # hdfs-native, as alice (GSSAPI to the namenode, SASL + block token to the datanode)
    code = f"""
import json
from hdfs_native import Client
c = Client({krb.default_fs!r})
w = c.create("/user/alice/krb-probe"); w.write(b"kerberized"); w.close()
st = c.get_file_info("/user/alice/krb-probe")
print(json.dumps([c.read("/user/alice/krb-probe").read().decode(), st.owner]))
c.delete("/user/alice/krb-probe", False)
"""
    proc = subprocess.run([sys.executable, "-c", code],
                          env={**krb.base_env, **krb.ticket("alice")}, capture_output=True,
                          text=True, timeout=60)
    OUTPUTS.extend([proc.stdout, proc.stderr])
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == ["kerberized", "alice"]


# ------------------------------------------------------------------------------- publishing


def test_upload_env_noop_reupload_upload_zip_and_cli_as_alice(krb, secure_driver, cli, tmp_path):
    alice = krb.ticket("alice")
    target = f"{krb.envs}/krb.pex"
    result = _driver(secure_driver, f"""
import json, time, cluster_pack
from cluster_pack.store import publish
t0 = time.monotonic()
path, name = cluster_pack.upload_env(package_path={target!r})
t1 = time.monotonic()
again = publish.publish_env(package_path={target!r})
print("RESULT:" + json.dumps({{"path": path, "first": t1 - t0, "again_built": again.built,
                               "again_bytes": again.uploaded_bytes,
                               "again_seconds": time.monotonic() - t1}}))
""", alice)
    assert result["path"] == target
    assert result["again_built"] is False and result["again_bytes"] == 0, result

    code, out, err, _ = cli(["ls", "--json", krb.envs], alice)
    assert code == 0, err
    assert "krb.pex" in out

    dest = tmp_path / "fetched"
    code, out, err, _ = cli(["fetch", target, str(dest)], alice)
    assert code == 0, err
    assert (dest / "krb.pex").exists()

    local = _small_pex(tmp_path / "small.pex")
    copy = f"{krb.envs}/copy.pex"
    code, out, err, _ = cli(["upload-zip", "--json", "--package-path", copy, str(local)], alice)
    assert code == 0, err
    code, out, err, _ = cli(["upload-zip", "--json", "--package-path", copy, str(local)], alice)
    assert code == 0 and json.loads(out)["uploaded_bytes"] == 0, (out, err)

    code, out, err, _ = cli(["gc", "--json", krb.envs], alice)
    assert code == 0, err

    # private to alice: directory 0750 alice:alice (SECURITY.md), manifests 0640
    code, out, err, _ = cli(["info", "--json", target], alice)
    assert code == 0, err
    OUTPUTS.append(out)


def _small_pex(path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("PEX-INFO", json.dumps({"distributions": {}}))
        zf.writestr("__main__.py", "print('hello from a kerberized pex')\n")
    return path


def _expired_ticket(krb) -> Dict[str, str]:
    env = krb.ticket("alice", lifetime="2s")
    time.sleep(2.5)
    return env


def test_without_or_with_an_expired_ticket_every_command_fails_fast_in_one_line(
        krb, cli, secure_driver, tmp_path):
    target = f"{krb.envs}/krb.pex"
    local = _small_pex(tmp_path / "some.pex")
    commands = [["ls", krb.envs], ["fetch", target, str(tmp_path / "f")], ["gc", krb.envs],
                ["info", target], ["upload-zip", "--package-path", f"{krb.envs}/x.pex", str(local)]]
    cases = {"no ticket": (krb.no_ticket(), "no Kerberos ticket"),
             "expired": (_expired_ticket(krb), "has expired")}
    for case, (env, says) in cases.items():
        for args in commands:
            code, out, err, seconds = cli(args, env)
            lines = err.strip().splitlines()
            where = f"{case}: cluster-pack {' '.join(args)} -> {code}: {err!r}"
            assert code == 2, where
            assert len(lines) == 1 and lines[0].startswith("Error: "), where
            assert says in lines[0] and "kinit" in lines[0], where
            assert "Traceback" not in err and "GssMajorCodes" not in err, where
            assert seconds < FAIL_FAST_SECONDS, where
        if case == "expired":  # names the principal to kinit as
            assert "kinit alice@" in lines[0], lines[0]

    # the API: upload_env raises KerberosError before packing anything
    result = _driver(secure_driver, f"""
import json, time, cluster_pack
from cluster_pack.errors import KerberosError, StorageError
t0 = time.monotonic()
try:
    cluster_pack.upload_env(package_path={target!r})
    outcome = "uploaded"
except KerberosError as exc:
    outcome = ["KerberosError", isinstance(exc, StorageError), exc.exit_code, str(exc)]
print("RESULT:" + json.dumps({{"outcome": outcome, "seconds": time.monotonic() - t0}}))
""", krb.no_ticket())
    kind, is_storage, exit_code, message = result["outcome"]
    assert (kind, is_storage, exit_code) == ("KerberosError", True, 2)
    assert "kinit" in message and result["seconds"] < FAIL_FAST_SECONDS


# ------------------------------------------------------------------------------- permissions


def test_bob_can_neither_read_nor_overwrite_alices_environment(krb, cli, tmp_path):
    target = f"{krb.envs}/krb.pex"
    alice, bob = krb.ticket("alice"), krb.ticket("bob")
    code, before, err, _ = cli(["info", "--json", target], alice)
    assert code == 0, err

    code, out, err, _ = cli(["fetch", target, str(tmp_path / "stolen")], bob)
    assert code != 0 and "ermission" in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "stolen" / "krb.pex").exists()
    code, out, err, _ = cli(["info", target], bob)
    assert code != 0 and "ermission" in err, err

    fake = _small_pex(tmp_path / "fake.pex")
    code, out, err, _ = cli(["upload-zip", "--force", "--package-path", target, str(fake)], bob)
    assert code != 0 and "ermission" in err, err
    code, out, err, _ = cli(["upload-zip", "--package-path", f"{krb.envs}/bobs.pex", str(fake)], bob)
    assert code != 0 and "ermission" in err, err

    code, after, err, _ = cli(["info", "--json", target], alice)
    assert code == 0 and after == before, err


# ------------------------------------------------------------------------------- YARN


def test_submit_func_on_secure_yarn_tokens_and_a_job_launching_a_job(krb, secure_driver):
    """submit_func with a ticket: the containers localize the environment from secure HDFS
    with the app's HDFS delegation token (skein gets it for ``hadoop_file_systems``) and the
    ticket cache is shipped (the original's rule). In the parent container the ticket is then
    made unusable (``KRB5CCNAME`` names a missing file, the localized copy is deleted): with
    its delegation tokens ALONE (``HADOOP_TOKEN_FILE_LOCATION``: HDFS and RM tokens) it reads
    HDFS, reuses the running environment (``upload_env``) and submits a child application
    that runs (skein's driver logs in with the tokens; the child shares them). Two YARN
    applications in all; the parent waits for the child (the RM cancels the tokens when the
    application that got them ends)."""
    pkg = f"{krb.envs}/krb.pex"
    bin_dir = krb.cluster.env["CLUSTER_PACK_HARNESS_BIN"]
    result = _driver(secure_driver, f"""
import json, os, time
import skein
from cluster_pack.skein import skein_launcher

def child(n):
    import os
    return ("child", n * 2, os.environ.get("KRB5CCNAME"))

def parent(a, b):
    import os, subprocess, sys
    shipped = os.environ.get("KRB5CCNAME")
    shipped_file = bool(shipped) and os.path.isfile(shipped[len("FILE:"):])
    # no ticket from here on: the localized cache is gone, KRB5CCNAME names a missing file
    if shipped_file:
        os.remove(shipped[len("FILE:"):])
    os.environ["KRB5CCNAME"] = "FILE:" + os.path.join(os.getcwd(), "no-ticket-here")
    klist = subprocess.run(["klist", "-s"], capture_output=True).returncode
    import skein
    import cluster_pack
    from cluster_pack.skein import skein_launcher as sl
    from cluster_pack.store.storage import Store
    tokens = open(os.environ["HADOOP_TOKEN_FILE_LOCATION"], "rb").read()
    store, path = Store.for_url({pkg!r})
    reads_hdfs = store.exists(path)
    published, _ = cluster_pack.upload_env(package_path={pkg!r})  # in a container: reuses
    # The harness runs containers as its own Unix user (DefaultContainerExecutor), not as
    # the application's user as a production secure cluster does (LinuxContainerExecutor).
    # With no Kerberos credentials Hadoop's login user is the Unix one, so skein's driver
    # would stage the child under /user/<that user>: HADOOP_PROXY_USER names the YARN user
    # ($USER, alice) as the login user, which LinuxContainerExecutor gives for free.
    os.environ["HADOOP_PROXY_USER"] = os.environ["USER"]
    with skein.Client() as client:
        app_id = sl.submit_func(client, child, args=[21], package_path=published,
                                memory="512 MiB", name="child")
        ok = sl.wait_for_finished(client, app_id, poll_every_secs=1)
        logs = sl.get_application_logs(client, app_id, log_tries=10)
    text = "\\n".join(logs.values()) if logs else ""
    return {{"sum": a + b, "hdfs_token": b"HDFS_DELEGATION_TOKEN" in tokens,
            "rm_token": b"RM_DELEGATION_TOKEN" in tokens, "klist_without_ticket": klist,
            "reads_hdfs": reads_hdfs, "krb5ccname": shipped, "shipped_file": shipped_file,
            "child_ok": ok, "child_logged": "child returned ('child', 42, None)" in text,
            "child_text": text}}

t0 = time.monotonic()
with skein.Client() as client:
    app_id = skein_launcher.submit_func(
        client, parent, args=[2, 3], package_path={pkg!r}, memory="768 MiB", name="parent",
        hadoop_file_systems=[{krb.default_fs!r}],
        env_vars={{"PATH": {bin_dir!r} + ":/usr/local/bin:/usr/bin:/bin"}})
    ok = skein_launcher.wait_for_finished(client, app_id, poll_every_secs=1)
    logs = skein_launcher.get_application_logs(client, app_id, log_tries=10)
    logs = dict(logs.items()) if logs else {{}}
print("RESULT:" + json.dumps({{"ok": ok, "logs": logs, "seconds": time.monotonic() - t0}}))
""", krb.ticket("alice"))
    text = "\n".join(result["logs"].values())
    assert result["ok"], text
    line = next(ln for ln in text.splitlines() if "parent returned" in ln)
    # the original's rule: the ticket cache travels as a private YARN resource of the app
    # (localized in the container's directory), never by content in the environment
    assert "'krb5ccname': 'FILE:alice-" in line and "'shipped_file': True" in line, line
    assert "'klist_without_ticket': 1" in line, line  # the ticket is really unusable
    assert "'sum': 5" in line, line
    assert "'hdfs_token': True" in line and "'rm_token': True" in line, line
    assert "'reads_hdfs': True" in line, line  # hdfs-native with the HDFS token alone
    # the child was submitted with the tokens alone, ran, and had no ticket either
    assert "'child_ok': True" in line and "'child_logged': True" in line, line


# ------------------------------------------------------------------------------- secrets


def test_no_ticket_or_keytab_content_anywhere(krb, cli, tmp_path):
    cluster = krb.cluster
    env = krb.ticket("alice")
    # every ticket the module's tests got (each kinit makes new session keys)
    secrets = secrets_of(cluster, [c for c in krb.caches.iterdir() if c.is_file()])
    # what else a user sees: -v output, the manifest, the cluster's logs and containers' logs
    code, out, err, _ = cli(["info", "-v", "--json", f"{krb.envs}/krb.pex"], env)
    assert_no_secrets(secrets, [*OUTPUTS, out, err, *cluster_texts(cluster)])
