"""pytest plugin: session-scoped real HDFS/YARN and S3, started lazily.

Load it with ``pytest_plugins = ["cluster_pack_harness.pytest_plugin"]`` in a conftest.

Fixtures:
    hadoop_cluster  (session) HadoopCluster: .conf_dir, .default_fs, .env, .rm_address, .namenode_port
    secure_hadoop_cluster (session) the same with Kerberos (a KDC, users alice and bob):
                    .principal(user), .keytab(user), .kinit(user, ccache), .krb5_conf, .realm;
                    stopped after the last collected test that uses it
    s3_server       (session) S3Server: .endpoint_url, .bucket, .key, .secret, .fs_args, .env, .client()
    hadoop_env      (function) os.environ patched with hadoop_cluster.env for one test
    s3_env          (function) os.environ patched with s3_server.env for one test
    harness_env     (function) both

Nothing starts unless a test requests one of them. A part that cannot start because a
prerequisite is missing (no JDK, no Maven/build, moto not installed) makes its tests skip on a
developer machine and fail when ``CI`` is true (``CI=true``/``1``). Startup errors and timeouts
always fail. With ``CLUSTER_PACK_HARNESS_DIR`` pointing at a harness started by
``python -m cluster_pack_harness start``, the running parts are reused (and left running);
``CLUSTER_PACK_HARNESS_SECURE_DIR`` does the same for one started with ``start --secure``
(a secure harness is never reused as the plain one, nor the reverse).
Tests using hadoop_cluster/s3_server get the ``hdfs``/``s3`` markers automatically,
secure_hadoop_cluster the ``kerberos`` marker. The secure cluster needs ``kinit`` (krb5-user)
besides the JDK: a missing one is a prerequisite like the others.
"""

from __future__ import annotations

import os
import shutil
import sys
from typing import Callable, Dict, Iterator, Optional, Union

import pytest

from cluster_pack_harness._proc import HarnessError, HarnessUnavailable
from cluster_pack_harness.hadoop import HadoopCluster
from cluster_pack_harness.harness import Harness
from cluster_pack_harness.s3 import S3Server


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes", "on")


def _unavailable(part: str, err: Exception):
    msg = f"harness {part} unavailable: {err}"
    if in_ci():
        pytest.fail(msg + " (CI=true: missing prerequisites are failures, run .ci/install-harness.sh)",
                    pytrace=False)
    pytest.skip(msg)


def _log(msg: str) -> None:
    print(f"[harness] {msg}", file=sys.stderr, flush=True)


def _reuse_dir(kind: str = "hadoop") -> Optional[str]:
    name = "CLUSTER_PACK_HARNESS_SECURE_DIR" if kind == "secure" else "CLUSTER_PACK_HARNESS_DIR"
    return os.environ.get(name) or None


def _attached(kind: str):
    d = _reuse_dir(kind)
    if not d:
        return None
    try:
        h = Harness.attach(d)
    except HarnessError:
        return None
    part = h.s3 if kind == "s3" else h.hadoop
    if isinstance(part, HadoopCluster) and part.secure != (kind == "secure"):
        return None
    if part is not None:
        _log(f"reusing running {kind} from {d}")
    return part


# The secure cluster serves a few modules: it is stopped after the last test of the session
# that uses it rather than at the session's end, so that its JVM does not idle beside the
# other tests (on a 2-core machine, a few % of a core for the rest of the run).
_EARLY_STOP_FIXTURES = {"secure": "secure_hadoop_cluster"}
_last_user: Dict[str, str] = {}  # kind -> node id of the last collected test using it
_early_stop: Dict[str, Callable[[], None]] = {}  # kind -> stop, for parts this session started


def _session_part(kind: str, part: Union[HadoopCluster, S3Server],
                  start: Callable[[], object]) -> Iterator[Union[HadoopCluster, S3Server]]:
    """A fixture's body: the ``kind`` part of a running harness when there is one (left
    running), else ``part`` started with ``start`` for the session, then stopped."""
    reused = _attached(kind)
    if reused is not None:
        yield reused
        return
    try:
        start()
    except HarnessUnavailable as e:
        _unavailable(kind, e)
    stopped = False

    def stop() -> None:
        nonlocal stopped
        if not stopped:
            stopped = True
            part.stop()

    if kind in _EARLY_STOP_FIXTURES:
        _early_stop[kind] = stop
    try:
        yield part
    finally:
        _early_stop.pop(kind, None)
        stop()


def pytest_collection_finish(session) -> None:
    for kind, fixture in _EARLY_STOP_FIXTURES.items():
        users = [item.nodeid for item in session.items
                 if fixture in getattr(item, "fixturenames", ())]
        if users:
            _last_user[kind] = users[-1]


@pytest.hookimpl(hookwrapper=True, trylast=True)
def pytest_runtest_teardown(item, nextitem):
    yield  # the test's own fixtures (and its module's, at a module's end) are torn down
    for kind, nodeid in _last_user.items():
        if item.nodeid == nodeid and kind in _early_stop:
            _log(f"stopping the {kind} cluster: no test left uses it")
            _early_stop.pop(kind)()


def _patched(env: Dict[str, str], monkeypatch) -> Dict[str, str]:
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    return env


@pytest.fixture(scope="session")
def _harness_base(tmp_path_factory):
    return tmp_path_factory.mktemp("harness", numbered=True)


@pytest.fixture(scope="session")
def hadoop_cluster(_harness_base):
    """Real HDFS (1 NN + 1 DN) and YARN (1 RM + 1 NM) for the session."""
    cluster = HadoopCluster(_harness_base)
    yield from _session_part("hadoop", cluster, lambda: cluster.start(
        timeout=float(os.environ.get("CLUSTER_PACK_HARNESS_TIMEOUT", "180")),
        watch_parent=True, log=_log))


def _require_kinit() -> None:
    if shutil.which("kinit") is None or shutil.which("klist") is None:
        raise HarnessUnavailable("kinit/klist not found (Debian: apt-get install krb5-user); "
                                 "run .ci/install-harness.sh")


@pytest.fixture(scope="session")
def secure_hadoop_cluster(tmp_path_factory):
    """Kerberized HDFS + YARN for the session: a KDC (MiniKdc) on loopback, the daemons as
    hdfs/localhost, users ``alice`` and ``bob`` with keytabs; SASL data transfer protection.

    Its own directory (never the plain cluster's). Clients need a ticket: ``kinit(user, ccache)``.
    """
    cluster = HadoopCluster(tmp_path_factory.mktemp("secure-harness", numbered=True), secure=True)

    def start() -> None:
        _require_kinit()
        cluster.start(timeout=float(os.environ.get("CLUSTER_PACK_HARNESS_TIMEOUT", "180")),
                      watch_parent=True, log=_log)

    yield from _session_part("secure", cluster, start)


@pytest.fixture(scope="session")
def s3_server(_harness_base):
    """Real S3 API (moto server) on 127.0.0.1 with one bucket (``.bucket``)."""
    server = S3Server(_harness_base)
    yield from _session_part("s3", server, lambda: server.start(watch_parent=True))


@pytest.fixture
def hadoop_env(hadoop_cluster, monkeypatch):
    """os.environ with HADOOP_CONF_DIR, JAVA_HOME, HADOOP_CLASSPATH, PATH (shims)... for one test."""
    return _patched(hadoop_cluster.env, monkeypatch)


@pytest.fixture
def s3_env(s3_server, monkeypatch):
    """os.environ with AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, ... for one test."""
    return _patched(s3_server.env, monkeypatch)


@pytest.fixture
def harness_env(hadoop_env, s3_env):
    return {**hadoop_env, **s3_env}


_AUTO_MARKS = {"hadoop_cluster": "hdfs", "hadoop_env": "hdfs", "s3_server": "s3", "s3_env": "s3",
               "harness_env": "hdfs", "secure_hadoop_cluster": "kerberos"}


def pytest_collection_modifyitems(config, items):
    for item in items:
        names = getattr(item, "fixturenames", ())
        for fixture, mark in _AUTO_MARKS.items():
            if fixture in names and item.get_closest_marker(mark) is None:
                item.add_marker(getattr(pytest.mark, mark))
        if "harness_env" in names and item.get_closest_marker("s3") is None:
            item.add_marker(pytest.mark.s3)
