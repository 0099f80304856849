"""Tests of the real-parts harness itself: these fail if HDFS, YARN or S3 do not really work."""

import getpass
import json
import os
import subprocess
import time
import uuid

import pytest

# ---------------------------------------------------------------------------- HDFS


@pytest.mark.hdfs
def test_hdfs_write_read_with_hdfs_native(hadoop_cluster):
    import fsspec
    from hdfs_native.fsspec import HdfsFileSystem

    assert hadoop_cluster.default_fs.startswith("hdfs://127.0.0.1:")
    port = int(hadoop_cluster.default_fs.rsplit(":", 1)[1])
    assert port == hadoop_cluster.namenode_port
    fs = fsspec.filesystem("hdfs", host="127.0.0.1", port=port, skip_instance_cache=True)
    assert isinstance(fs, HdfsFileSystem)
    user = getpass.getuser()
    path = f"/user/{user}/harness-{uuid.uuid4().hex}/hello.bin"
    payload = os.urandom(3 * 1024 * 1024 + 17)
    with fs.open(path, "wb") as f:
        f.write(payload)
    with fs.open(path, "rb") as f:
        assert f.read() == payload
    assert fs.info(path)["size"] == len(payload)
    fs.rm(os.path.dirname(path), recursive=True)
    assert not fs.exists(path)


@pytest.mark.hdfs
def test_hdfs_home_dir_owned_by_user_and_permissions_on(hadoop_cluster):
    import fsspec

    fs = fsspec.filesystem("hdfs", host="127.0.0.1", port=hadoop_cluster.namenode_port,
                           skip_instance_cache=True)
    user = getpass.getuser()
    home = fs.info(f"/user/{user}")
    assert home["type"] == "directory"
    assert home["owner"] == user
    conf = (hadoop_cluster.conf_dir / "hdfs-site.xml").read_text()
    assert "<name>dfs.permissions.enabled</name>\n    <value>true</value>" in conf


@pytest.mark.hdfs
def test_hdfs_permissions_are_enforced(hadoop_cluster, monkeypatch):
    import fsspec

    user = getpass.getuser()
    monkeypatch.setenv("HADOOP_USER_NAME", "intruder")
    fs = fsspec.filesystem("hdfs", host="127.0.0.1", port=hadoop_cluster.namenode_port,
                           skip_instance_cache=True)
    with pytest.raises(Exception, match="(?i)permission"):
        with fs.open(f"/user/{user}/not-yours-{uuid.uuid4().hex}", "wb") as f:
            f.write(b"x")
    # /tmp is world-writable (1777)
    path = f"/tmp/intruder-{uuid.uuid4().hex}"
    with fs.open(path, "wb") as f:
        f.write(b"ok")
    assert fs.info(path)["owner"] == "intruder"
    fs.rm(path)


@pytest.mark.hdfs
def test_conf_dir_and_shims(hadoop_cluster, hadoop_env):
    core = (hadoop_cluster.conf_dir / "core-site.xml").read_text()
    assert hadoop_cluster.default_fs in core
    assert os.environ["HADOOP_CONF_DIR"] == str(hadoop_cluster.conf_dir)
    for key in ("JAVA_HOME", "HADOOP_CLASSPATH", "CLASSPATH"):
        assert os.environ[key]
    # the `hadoop` shim (on PATH via hadoop_env) is a real Hadoop FsShell
    cp = subprocess.run(["hadoop", "classpath"], capture_output=True, text=True, check=True).stdout
    assert "hadoop-common" in cp and str(hadoop_cluster.conf_dir) in cp
    ls = subprocess.run(["hadoop", "fs", "-ls", "/user"], capture_output=True, text=True, timeout=120)
    assert ls.returncode == 0, ls.stderr
    assert f"/user/{getpass.getuser()}" in ls.stdout


# ---------------------------------------------------------------------------- YARN


@pytest.mark.yarn
@pytest.mark.timeout(300)
def test_yarn_runs_a_skein_application(hadoop_cluster, hadoop_env):
    """The NodeManager launches skein's Java ApplicationMaster (Java 17 + --add-opens) and a container."""
    import skein

    assert hadoop_cluster.rm_address
    spec = skein.ApplicationSpec(
        name="harness-echo",
        queue="default",
        master=skein.Master(
            script="echo hello-from-yarn; echo \"JDK_JAVA_OPTIONS=$JDK_JAVA_OPTIONS\"",
            resources=skein.Resources(memory="256 MiB", vcores=1),
        ),
    )
    with skein.Client() as client:
        app_id = client.submit(spec)
        deadline = time.monotonic() + 240
        while True:
            report = client.application_report(app_id)
            if report.state in ("FINISHED", "FAILED", "KILLED"):
                break
            assert time.monotonic() < deadline, f"application {app_id} still {report.state}"
            time.sleep(0.5)
    assert (report.state, report.final_status) == ("FINISHED", "SUCCEEDED"), report.diagnostics
    # the container really ran, with the JPMS options the NM injects for Java containers
    log_dir = hadoop_cluster.info["nm_log_dirs"].split(",")[0]
    logs = {}
    for root, _, files in os.walk(os.path.join(log_dir, app_id)):
        for f in files:
            with open(os.path.join(root, f), errors="replace") as fh:
                logs[f] = fh.read()
    assert "hello-from-yarn" in logs.get("application.driver.log", ""), sorted(logs)
    assert "--add-opens=java.base/java.lang=ALL-UNNAMED" in logs.get("application.driver.log", "")
    assert "Picked up JDK_JAVA_OPTIONS" in logs.get("application.master.log", "")


# ---------------------------------------------------------------------------- S3


@pytest.mark.s3
def test_s3_put_get_with_s3fs(s3_server):
    import s3fs

    assert s3_server.endpoint_url.startswith("http://127.0.0.1:")
    fs = s3fs.S3FileSystem(skip_instance_cache=True, **s3_server.fs_args)
    key = f"{s3_server.bucket}/harness/{uuid.uuid4().hex}.bin"
    payload = os.urandom(6 * 1024 * 1024 + 5)  # > 5 MiB: multipart upload
    with fs.open(key, "wb") as f:
        f.write(payload)
    assert fs.cat(key) == payload
    assert key in fs.ls(f"{s3_server.bucket}/harness")
    fs.rm(key)
    assert not fs.exists(key)


@pytest.mark.s3
def test_s3_env_for_boto3(s3_env, s3_server):
    import boto3

    client = boto3.client("s3")  # endpoint/credentials/region from the environment only
    client.put_object(Bucket=s3_server.bucket, Key="env/hello.txt", Body=b"hello")
    assert client.get_object(Bucket=s3_server.bucket, Key="env/hello.txt")["Body"].read() == b"hello"
    assert os.environ["AWS_ENDPOINT_URL"] == s3_server.endpoint_url


# ---------------------------------------------------------------------------- CLI


@pytest.mark.s3
@pytest.mark.timeout(120)
def test_cli_start_status_stop_s3_only(tmp_path):
    import sys

    d = tmp_path / "h"
    py = [sys.executable, "-m", "cluster_pack_harness"]
    env = {k: v for k, v in os.environ.items() if k != "CLUSTER_PACK_HARNESS_DIR"}
    out = subprocess.run(py + ["start", "--dir", str(d), "--no-hadoop"], capture_output=True, text=True,
                         env=env, timeout=90)
    assert out.returncode == 0, out.stderr
    try:
        info = json.loads((d / "env.json").read_text())
        assert info["AWS_ENDPOINT_URL"].startswith("http://127.0.0.1:")
        assert "export AWS_ACCESS_KEY_ID=" in (d / "env.sh").read_text()
        st = subprocess.run(py + ["status", "--dir", str(d)], capture_output=True, text=True, env=env)
        assert st.returncode == 0 and json.loads(st.stdout)["s3"] is True
        pid = int((d / "s3" / "pid").read_text())
        assert os.getpgid(pid) == pid  # own process group
    finally:
        stop = subprocess.run(py + ["stop", "--dir", str(d)], capture_output=True, text=True, env=env,
                              timeout=60)
    assert stop.returncode == 0, stop.stderr
    st = subprocess.run(py + ["status", "--dir", str(d)], capture_output=True, text=True, env=env)
    assert st.returncode == 3
    assert not (d / "env.json").exists()


# ---------------------------------------------------------------------------- lifecycle


@pytest.mark.yarn
@pytest.mark.timeout(300)
def test_stop_kills_running_containers(tmp_path, monkeypatch):
    """A cluster stopped while a YARN container runs leaves no process behind (containers are setsid'ed)."""
    import skein

    from cluster_pack_harness import HadoopCluster, HarnessUnavailable
    from cluster_pack_harness._proc import pid_alive, processes_under

    cluster = HadoopCluster(tmp_path / "h", xmx="1g", nm_memory_mb=2048, nm_vcores=2)
    try:
        cluster.start(timeout=180)
    except HarnessUnavailable as e:  # same policy as the fixtures
        if os.environ.get("CI", "").lower() in ("1", "true", "yes", "on"):
            pytest.fail(str(e))
        pytest.skip(str(e))
    jvm = cluster.pid
    try:
        for k, v in cluster.env.items():
            monkeypatch.setenv(k, v)
        spec = skein.ApplicationSpec(
            name="harness-sleeper",
            master=skein.Master(script="sleep 600", resources=skein.Resources(memory="256 MiB", vcores=1)),
        )
        with skein.Client() as client:
            app_id = client.submit(spec)
            deadline = time.monotonic() + 120
            sleepers = []
            while not sleepers:
                assert time.monotonic() < deadline, "container never started"
                assert client.application_report(app_id).state in ("SUBMITTED", "ACCEPTED", "RUNNING")
                sleepers = [p for p in processes_under(cluster.workdir, require_env="CONTAINER_ID")
                            if "sleep 600" in open(f"/proc/{p}/cmdline", "rb").read().replace(b"\0", b" ").decode()]
                time.sleep(0.5)
            containers = processes_under(cluster.workdir, require_env="CONTAINER_ID")
            assert containers
            # skein's AM serves gRPC + a web UI on the wildcard address; the harness' LD_PRELOAD
            # shim must have moved them to loopback
            listening = _listening_addresses(containers)
            assert listening, "the ApplicationMaster should listen on some port"
            assert all(a in ("127.0.0.1", "::ffff:127.0.0.1", "::1") for a, _ in listening), listening
            t0 = time.monotonic()
            cluster.stop()
            stop_seconds = time.monotonic() - t0
    finally:
        if cluster.pid:
            cluster.stop()
    assert not pid_alive(jvm)
    assert [p for p in containers if pid_alive(p)] == []
    assert processes_under(cluster.workdir) == []
    assert stop_seconds < 60


def _listening_addresses(pids):
    """(address, port) of TCP sockets in LISTEN state owned by ``pids`` (from /proc)."""
    import ipaddress

    inodes = set()
    for pid in pids:
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                try:
                    link = os.readlink(f"/proc/{pid}/fd/{fd}")
                except OSError:
                    continue
                if link.startswith("socket:["):
                    inodes.add(link[8:-1])
        except OSError:
            continue
    out = []
    for table, v6 in (("/proc/net/tcp", False), ("/proc/net/tcp6", True)):
        try:
            lines = open(table).read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            f = line.split()
            if f[3] != "0A" or f[9] not in inodes:
                continue
            hexaddr, hexport = f[1].split(":")
            raw = bytes.fromhex(hexaddr)
            if v6:
                raw = b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4))
                addr = ipaddress.IPv6Address(raw)
                addr = f"::ffff:{addr.ipv4_mapped}" if addr.ipv4_mapped else str(addr)
            else:
                addr = str(ipaddress.IPv4Address(raw[::-1]))
            out.append((addr, int(hexport, 16)))
    return out


def test_missing_prerequisite_skips_locally_and_fails_in_ci(tmp_path):
    """No JDK -> the hadoop_cluster fixture skips on a dev machine and fails with CI=true."""
    import sys

    (tmp_path / "test_inner.py").write_text(
        "def test_needs_hadoop(hadoop_cluster):\n    pass\n"
    )
    base = {k: v for k, v in os.environ.items() if k not in ("CLUSTER_PACK_HARNESS_DIR", "CI")}
    base["CLUSTER_PACK_HARNESS_JAVA_HOME"] = str(tmp_path / "no-such-jdk")
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "cluster_pack_harness.pytest_plugin",
           "-p", "no:cacheprovider", "--rootdir", str(tmp_path), "-c", os.devnull, str(tmp_path)]
    local = subprocess.run(cmd, capture_output=True, text=True, env=base, cwd=tmp_path, timeout=120)
    assert local.returncode == 0, local.stdout + local.stderr
    assert "1 skipped" in local.stdout
    ci = subprocess.run(cmd, capture_output=True, text=True, env={**base, "CI": "true"}, cwd=tmp_path,
                        timeout=120)
    assert ci.returncode == 1, ci.stdout + ci.stderr
    assert "1 error" in ci.stdout and "no-such-jdk" in ci.stdout
