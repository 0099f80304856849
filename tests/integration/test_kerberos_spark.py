"""Spark on YARN, and skein's keytab login, on the Kerberized harness (``secure_hadoop_cluster``).

* PySpark in client mode on secure YARN as ``alice`` (a ticket from her keytab in a cache of
  this test): the Spark test venv (``spark_venv``, shared with the other Spark tests) is
  published to the secure HDFS, the SparkSession gets cluster-pack's properties
  (``spark_config_builder.add_packaged_environment``), Spark gets HDFS delegation tokens at
  submission and the executors, which have no ticket, import from the packed environment and
  write and read a directory on the secure HDFS with them.
* ``skein.Client(principal=..., keytab=...)`` with no ticket cache at all runs one function
  with ``skein_launcher.submit_func`` (cluster-pack's own HDFS reads log in from the keytab
  too, with MIT Kerberos's ``KRB5_CLIENT_KTNAME``).

What a user sets for Spark (README, "Secure (Kerberized) HDFS and YARN"): the cluster's
``HADOOP_CONF_DIR``, a ticket (``KRB5CCNAME``) and, when krb5.conf is not ``/etc/krb5.conf``,
``spark.driver.extraJavaOptions=-Djava.security.krb5.conf=...`` for the client JVM. Every
output of these tests is scanned at the end for keytab and ticket content.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Dict, List

import pytest

pytest.importorskip("pyspark")

from tests.integration.conftest import driver_runner  # noqa: E402
from tests.integration.kerberos_secrets import (  # noqa: E402
    assert_no_secrets,
    cluster_texts,
    secrets_of,
)
from tests.venvs import JAVA_HOME, clean_env  # noqa: E402

pytestmark = [pytest.mark.kerberos, pytest.mark.spark, pytest.mark.yarn, pytest.mark.hdfs,
              pytest.mark.slow, pytest.mark.timeout(600)]

# every stdout/stderr/log these tests saw: scanned for secrets at the end of the module
OUTPUTS: List[str] = []
# the delegation tokens' passwords the Spark driver got (read from a private file), scanned
# for too
TOKEN_PASSWORDS: List[bytes] = []


def _run(cmd: List[str], env: Dict[str, str], cwd: Path, timeout: float):
    proc = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)
    OUTPUTS.extend([proc.stdout, proc.stderr])
    return proc


# ------------------------------------------------------------------------------- Spark

SPARK_DRIVER = textwrap.dedent("""
    import json, sys, time
    from pathlib import Path

    from pyspark.sql import SparkSession

    from cluster_pack.spark import spark_config_builder

    package_path, manifest, out_dir, krb5_conf, nm_log_dirs, token_secrets = sys.argv[1:7]


    def where(line):
        import os, sys

        import cowsay  # only in the packed environment

        return json.dumps({"line": line, "executable": sys.executable, "prefix": sys.prefix,
                           "cowsay": cowsay.__file__, "cwd": os.getcwd(),
                           "pex": os.environ.get("PEX") or ""})


    ssb = (SparkSession.builder.appName("cluster-pack-kerberos").master("yarn")
           .config("spark.submit.deployMode", "client")
           # the client JVM: where krb5.conf is (not /etc/krb5.conf here)
           .config("spark.driver.extraJavaOptions", f"-Djava.security.krb5.conf={krb5_conf}")
           .config("spark.executor.instances", "1").config("spark.executor.cores", "1")
           .config("spark.executor.memory", "512m")
           .config("spark.executor.memoryOverhead", "384m")
           .config("spark.yarn.am.memory", "512m").config("spark.ui.enabled", "false"))
    spark_config_builder.add_packaged_environment(ssb, package_path)
    options = {k: str(v) for k, v in ssb._options.items()}
    t0 = time.monotonic()
    spark = ssb.getOrCreate()
    sc = spark.sparkContext
    jvm = sc._jvm
    ugi = jvm.org.apache.hadoop.security.UserGroupInformation.getCurrentUser()
    # the kinds of the tokens Spark got at submission (kinds only: never a token's content)
    tokens = jvm.java.util.ArrayList(ugi.getCredentials().getAllTokens())
    kinds = sorted({str(t.getKind()) for t in tokens})
    # the tokens' passwords go to a private file of the test (never to stdout): the secrets
    # scan looks for them in every output and log
    import os
    fd = os.open(token_secrets, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump([bytes(t.getPassword()).hex() for t in tokens], f)
    t1 = time.monotonic()
    # the executors (no ticket there: the delegation token) read the environment's manifest
    # (0640, alice's) from the secure HDFS and write a directory there, through Python
    # workers of the packed environment; then read that directory back (JVM only)
    sc.textFile(manifest, 2).map(where).saveAsTextFile(out_dir)
    rows = [json.loads(line) for line in sc.textFile(out_dir).collect()]
    t2 = time.monotonic()
    path = jvm.org.apache.hadoop.fs.Path(out_dir)
    owner = path.getFileSystem(sc._jsc.hadoopConfiguration()).getFileStatus(path).getOwner()
    # the containers' logs (AM, executor), kept for the secrets scan: the harness removes
    # them when the application ends
    logs = {}
    for log in (Path(nm_log_dirs) / sc.applicationId).rglob("*"):
        if log.is_file():
            logs[str(log.relative_to(nm_log_dirs))] = log.read_text(errors="replace")
    report = {"options": options, "rows": rows, "owner": owner, "token_kinds": kinds,
              "container_logs": logs,
              "auth": str(ugi.getAuthenticationMethod()), "user": ugi.getShortUserName(),
              "app_id": sc.applicationId, "session_seconds": t1 - t0, "job_seconds": t2 - t1}
    spark.stop()
    print("REPORT " + json.dumps(report))
""")


@pytest.fixture(scope="module")
def spark_published(krb, spark_venv):
    """The Spark test venv published to alice's directory on the secure HDFS (pyspark and
    py4j left out), in a process of its own (see test_spark_yarn.published)."""
    package_path = f"{krb.envs}/spark_krb.pex"
    t0 = time.monotonic()
    proc = _run([str(spark_venv["python"]), "-c",
                 "import sys, cluster_pack; cluster_pack.upload_env(package_path=sys.argv[1], "
                 "ignored_packages=['pyspark', 'py4j'])", package_path],
                clean_env({**krb.base_env, **krb.ticket("alice"),
                           "C_PACK_CACHE_DIR": str(spark_venv["base"] / "cache")}),
                spark_venv["base"], 600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    print(f"[kerberos spark] upload_env: {time.monotonic() - t0:.1f}s", file=sys.stderr)
    return package_path


def test_pyspark_on_secure_yarn_with_the_env_on_secure_hdfs(krb, spark_venv, spark_published):
    cluster = krb.cluster
    base = spark_venv["base"]
    out_dir = f"{krb.default_fs}/user/alice/spark-krb-{time.time_ns()}"
    driver = base / "kerberos_driver.py"
    driver.write_text(SPARK_DRIVER)
    env = clean_env({**krb.base_env, **krb.ticket("alice"), "JAVA_HOME": JAVA_HOME,
                     "SPARK_HOME": str(spark_venv["spark_home"]),
                     "C_PACK_CACHE_DIR": str(base / "cache")},
                    drop=("PYSPARK_PYTHON", "PYSPARK_DRIVER_PYTHON"))
    t0 = time.monotonic()
    manifest = spark_published[:-len(".pex")] + ".json"
    token_secrets = krb.caches / "spark-token-passwords.json"
    proc = _run([str(spark_venv["python"]), str(driver), spark_published, manifest, out_dir,
                 str(cluster.krb5_conf), cluster.info["nm_log_dirs"], str(token_secrets)],
                env, base, 500)
    assert proc.returncode == 0, f"driver failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-8000:]}"
    TOKEN_PASSWORDS.extend(bytes.fromhex(h) for h in json.loads(token_secrets.read_text()))
    token_secrets.unlink()
    assert TOKEN_PASSWORDS and all(len(p) >= 16 for p in TOKEN_PASSWORDS), len(TOKEN_PASSWORDS)
    report = json.loads(next(ln for ln in proc.stdout.splitlines()
                             if ln.startswith("REPORT "))[len("REPORT "):])
    print(f"[kerberos spark] driver: {time.monotonic() - t0:.1f}s (session "
          f"{report['session_seconds']:.1f}s, job {report['job_seconds']:.1f}s)", file=sys.stderr)

    # the client logged in from alice's ticket cache; Spark got an HDFS delegation token
    assert (report["user"], report["auth"]) == ("alice", "KERBEROS"), report
    assert "HDFS_DELEGATION_TOKEN" in report["token_kinds"], report["token_kinds"]
    # cluster-pack's properties: the parts from the pool on the secure HDFS, localized by
    # YARN with that token; the env's file system in the list Spark gets tokens for
    options = report["options"]
    pool = f"{krb.envs}/.cluster-pack-parts/"
    assert any(f.startswith(pool) for f in options["spark.yarn.dist.files"].split(","))
    assert options["spark.kerberos.access.hadoopFileSystems"] == krb.default_fs
    # the executors ran the packed environment, and wrote/read the secure HDFS as alice
    rows = report["rows"]
    assert json.loads("\n".join(row["line"] for row in rows))["artifact_name"] == "spark_krb.pex"
    for row in rows:
        assert "/.pex/venvs/" in row["executable"], row
        assert row["cowsay"].startswith(row["prefix"]), row
        assert row["pex"] == os.path.join(row["cwd"], "spark_krb.pex"), row
    assert report["owner"] == "alice"
    # the AM's and the executor's stdout/stderr, for the secrets scan (also in OUTPUTS, with
    # the driver's stdout)
    stderrs = [name for name in report["container_logs"] if name.endswith("/stderr")]
    assert len(stderrs) >= 2, sorted(report["container_logs"])


# ------------------------------------------------------------------------------- skein keytab


@pytest.fixture(scope="module")
def keytab_driver(krb, yarn_venv, tmp_path_factory):
    return driver_runner(yarn_venv, krb.base_env, tmp_path_factory.mktemp("krb-keytab-drivers"))


def test_skein_client_with_a_keytab_and_no_ticket_cache_runs_submit_func(krb, keytab_driver):
    """``skein.Client(principal, keytab)`` with no ticket cache anywhere (``KRB5CCNAME`` is a
    memory cache of this process): skein's driver logs in from the keytab and gets the
    application's delegation tokens; cluster-pack's own HDFS client (hdfs-native, reading the
    environment's manifest) is logged in by MIT Kerberos from the same keytab
    (``KRB5_CLIENT_KTNAME``). No ticket is shipped to the container. The environment is
    published first, with a ticket (a separate step)."""
    cluster = krb.cluster
    pkg = f"{krb.envs}/krb_keytab.pex"
    published = keytab_driver(f"""
import json, cluster_pack
path, _ = cluster_pack.upload_env(package_path={pkg!r})
print("RESULT:" + json.dumps(path))
""", extra_env=krb.ticket("alice"))
    OUTPUTS.append(json.dumps(published))
    code = f"""
import json, time
import skein
from cluster_pack.skein import skein_launcher

def square(n):
    import os
    return {{"square": n * n, "ticket": os.environ.get("KRB5CCNAME"),
            "token_file": bool(os.environ.get("HADOOP_TOKEN_FILE_LOCATION"))}}

t0 = time.monotonic()
with skein.Client(principal={cluster.principal('alice')!r},
                  keytab={str(cluster.keytab('alice'))!r}) as client:
    app_id = skein_launcher.submit_func(client, square, args=[7], package_path={pkg!r},
                                        memory="512 MiB", name="keytab")
    ok = skein_launcher.wait_for_finished(client, app_id, poll_every_secs=1)
    report = client.application_report(app_id)
    logs = skein_launcher.get_application_logs(client, app_id, log_tries=10)
    logs = dict(logs.items()) if logs else {{}}
print("RESULT:" + json.dumps({{"ok": ok, "user": report.user, "logs": logs,
                               "seconds": time.monotonic() - t0}}))
"""
    # no ticket cache anywhere: MIT Kerberos logs cluster-pack's own HDFS client (hdfs-native,
    # reading the manifest) in from the client keytab into a memory cache
    result = keytab_driver(code, extra_env={"KRB5CCNAME": "MEMORY:cpack-keytab-test",
                                            "KRB5_CLIENT_KTNAME": str(cluster.keytab("alice"))})
    OUTPUTS.append(json.dumps(result))
    text = "\n".join(result["logs"].values())
    assert result["ok"], text
    assert result["user"] == "alice", result["user"]
    line = next(ln for ln in text.splitlines() if "square returned" in ln)
    assert "'square': 49" in line and "'token_file': True" in line, line
    assert "'ticket': None" in line, line  # no ticket shipped: the delegation tokens only
    print(f"[kerberos keytab] submit_func: {result['seconds']:.1f}s", file=sys.stderr)


# ------------------------------------------------------------------------------- secrets


def test_no_ticket_keytab_or_token_content_in_what_these_tests_saw(krb):
    # the keytabs' keys, every ticket cache the tests above used, and the passwords of the
    # delegation tokens Spark got
    secrets = secrets_of(krb.cluster, [p for p in krb.caches.iterdir() if p.is_file()])
    assert TOKEN_PASSWORDS, "the Spark test recorded no delegation token"
    secrets += TOKEN_PASSWORDS
    haystacks = [h for h in OUTPUTS if h]
    assert haystacks, "the tests above captured nothing"
    # the cluster's log (Spark's token requests, renewals) and the containers' stdout/stderr
    # still on disk (the Spark AM's and executors' logs)
    assert_no_secrets(secrets, haystacks + cluster_texts(krb.cluster))
