"""skein_launcher / cluster_pack.launch.yarn: the skein.ApplicationSpec built, without a cluster."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import skein

import cluster_pack
from cluster_pack.launch import spec as launch
from cluster_pack.launch import yarn
from cluster_pack.skein import skein_launcher
from tests.fakes import hadoop_conf_dir
from tests.skein.conftest import run_container

ORIGINAL_TICKET_PATH = yarn.kerberos_ticket_path


class FakeClient:
    """Records the submitted spec; checks local files exist at submission time."""

    def __init__(self, reports=(), logs_error=None, logs=None):
        self.specs = []
        self.reports = list(reports)
        self.logs_error = logs_error
        self.logs = logs
        self.log_calls = 0

    def submit(self, spec):
        for service in spec.services.values():
            for f in service.files.values():
                if f.source.startswith("file://"):
                    assert os.path.exists(f.source[7:]), f"{f.source} gone before upload"
        self.specs.append(spec)
        return f"application_1_{len(self.specs):04d}"

    def application_report(self, app_id):
        state, final = self.reports.pop(0)
        return type("Report", (), {"state": state, "final_status": skein.model.FinalStatus(final),
                                   "queue": "q", "start_time": None, "finish_time": None,
                                   "tracking_url": None, "user": "me"})()

    def application_logs(self, app_id):
        self.log_calls += 1
        if self.logs_error:
            raise ValueError(self.logs_error)
        return skein.model.ApplicationLogs(app_id, self.logs)


def _service(spec):
    (service,) = spec.services.values()
    return service


def test_submit_translates_every_option(fake_artifact, monkeypatch, caplog):
    monkeypatch.setenv("C_PACK_USER", "submitter")
    client = FakeClient()
    app_id = skein_launcher.submit(
        client, "my_pkg.job", args=["a b", "$X"], name="my-app", num_cores=3, memory="3 GiB",
        package_path=str(fake_artifact), hadoop_file_systems=["hdfs://other:8020", "s3://b"],
        queue="science", env_vars={"MY_VAR": "x y;z"}, node_label="gpu", num_containers=4,
        user="alice", acquire_map_reduce_delegation_token=True,
        pre_script_hook="echo hook", max_attempts=2, max_restarts=5)
    assert app_id == "application_1_0001"
    (spec,) = client.specs
    service = _service(spec)
    assert list(spec.services) == ["my-app"] and spec.name == "my-app"
    assert spec.queue == "science"
    assert spec.user == "alice"  # impersonation: alice != C_PACK_USER
    assert spec.file_systems == ["hdfs://other:8020", "s3a://b"]
    assert spec.max_attempts == 2
    if hasattr(skein.ApplicationSpec, "acquire_map_reduce_delegation_token"):
        assert spec.acquire_map_reduce_delegation_token is True
    else:  # released skein (<= 0.8.2) has no such option: said, not silently dropped
        assert "acquire_map_reduce_delegation_token=True is ignored" in caplog.text
    assert spec.acls.enable and spec.acls.view_users == ["*"] and spec.acls.ui_users == ["*"]
    assert service.instances == 4
    assert service.max_restarts == 5
    assert service.node_label == "gpu"
    assert service.resources.vcores == 3 and service.resources.memory == 3072
    assert service.env == {"SKEIN_CONFIG": "./.skein", "GIT_PYTHON_REFRESH": "quiet"}
    assert "export MY_VAR='x y;z'" in service.script  # job variables: quoted, in the script
    assert "./env.pex -m my_pkg.job 'a b' '$X'" in service.script
    assert service.script.index("echo hook") < service.script.index("./env.pex -m")


def test_defaults_match_the_original(fake_artifact, monkeypatch):
    monkeypatch.setenv("C_PACK_USER", "alice")
    client = FakeClient()
    skein_launcher.submit(client, "m", package_path=str(fake_artifact), user="alice")
    spec = client.specs[0]
    service = _service(spec)
    assert spec.name == "skein_launcher" and list(spec.services) == ["skein_launcher"]
    assert spec.user == ""  # same user: no impersonation (YARN rejects self-proxying)
    assert spec.queue == "default" and spec.node_label == "" and service.node_label == ""
    assert getattr(spec, "acquire_map_reduce_delegation_token", False) is False
    assert service.instances == 1 and service.max_restarts == 0 and spec.max_attempts == 1
    assert service.resources.memory == 1024 and service.resources.vcores == 1


def test_kerberos_ticket_cache_is_shipped(fake_artifact, monkeypatch, tmp_path):
    monkeypatch.setattr(yarn, "kerberos_ticket_path", ORIGINAL_TICKET_PATH)
    ticket = tmp_path / "krb5cc_1234"
    ticket.write_bytes(b"ticket")
    monkeypatch.setenv("KRB5CCNAME", f"FILE:{ticket}")
    client = FakeClient()
    skein_launcher.submit(client, "m", package_path=str(fake_artifact))
    service = _service(client.specs[0])
    assert service.env["KRB5CCNAME"] == "FILE:krb5cc_1234"
    assert service.files["krb5cc_1234"].source == f"file://{ticket}"
    assert str(service.files["krb5cc_1234"].visibility) == "APPLICATION"


def test_kerberos_default_cache_rule(monkeypatch, tmp_path):
    monkeypatch.setattr(yarn, "kerberos_ticket_path", ORIGINAL_TICKET_PATH)
    cache = tmp_path / "cache"
    cache.write_bytes(b"ticket")
    monkeypatch.setenv("KRB5CCNAME", str(cache))
    assert yarn.kerberos_ticket_path() == str(cache)
    # nothing to ship: a cache that does not exist, or is not a file (a keytab login)
    for missing in (f"FILE:{tmp_path / 'none'}", str(tmp_path / "none"), "MEMORY:x",
                    "KEYRING:persistent:0", str(tmp_path)):
        monkeypatch.setenv("KRB5CCNAME", missing)
        assert yarn.kerberos_ticket_path() is None, missing
    monkeypatch.delenv("KRB5CCNAME")
    expected = f"/tmp/krb5cc_{os.getuid()}"
    assert yarn.kerberos_ticket_path() == (expected if os.path.exists(expected) else None)


def test_submit_func_keeps_the_pickle_until_submitted_and_runs(fake_artifact, tmp_path):
    client = FakeClient()

    def double(x):
        return x * 2

    skein_launcher.submit_func(client, double, args=[21], package_path=str(fake_artifact),
                               env_vars={"A": "$(echo injected)"})
    service = _service(client.specs[0])
    # replay the container locally: files are gone (temporary dir) so rebuild them
    spec = launch.function_launch_spec(double, [21], package_path=str(fake_artifact),
                                       env_vars={"A": "$(echo injected)"})
    out = run_container(yarn.container_script(spec), yarn.files_of(spec), tmp_path / "c")
    assert out.returncode == 0, out.stderr
    assert "double returned 42" in out.stderr
    assert "-m cluster_pack_runner function_" in service.script
    assert "cluster_pack_runner.zip" in service.files


def test_process_logs_adds_the_hook_function(fake_artifact):
    client = FakeClient()
    skein_launcher.submit(client, "m", package_path=str(fake_artifact),
                          process_logs=lambda path: None)
    service = _service(client.specs[0])
    assert "| tee output.log" in service.script
    assert len([n for n in service.files if n.startswith("function_")]) == 1


def test_wait_for_finished(monkeypatch):
    monkeypatch.setattr("time.sleep", lambda s: None)
    client = FakeClient(reports=[("ACCEPTED", "UNDEFINED"), ("RUNNING", "UNDEFINED"),
                                 ("FINISHED", "SUCCEEDED")])
    assert skein_launcher.wait_for_finished(client, "application_1_1", poll_every_secs=0)
    client = FakeClient(reports=[("FAILED", "FAILED")])
    assert skein_launcher.wait_for_finished(client, "application_1_1") is False


def test_logs_from_yarn(monkeypatch):
    monkeypatch.setattr("time.sleep", lambda s: None)
    client = FakeClient(logs={"container_1": "out"})
    logs = skein_launcher.get_application_logs(client, "application_1_1")
    assert dict(logs.items()) == {"container_1": "out"}


def test_logs_fall_back_to_local_node_dirs(monkeypatch, tmp_path):
    """Aggregation disabled (pseudo-distributed default): read the NM log dirs."""
    monkeypatch.setattr("time.sleep", lambda s: None)
    log_dir = tmp_path / "nm-logs"
    container = log_dir / "application_1_0007" / "container_1_0007_01_000002"
    container.mkdir(parents=True)
    (container / "svc.log").write_text("Traceback ...\nValueError: boom\n")
    (container / "launch_container.sh").write_text("secret env")
    hadoop_conf_dir(tmp_path / "conf", monkeypatch, "yarn-site.xml",
                    "yarn.nodemanager.log-dirs", str(log_dir))
    client = FakeClient(logs_error="Log aggregation has not completed or is not enabled.")
    logs = skein_launcher.get_application_logs(client, "application_1_0007", log_tries=3)
    assert list(logs.keys()) == ["container_1_0007_01_000002"]
    text = logs["container_1_0007_01_000002"]
    assert "LogType:svc.log" in text and "ValueError: boom" in text
    assert "secret env" not in text
    assert client.log_calls == 1
    # waiting for more containers than there are: retries, then returns what exists
    client = FakeClient(logs_error="not enabled")
    logs = skein_launcher.get_application_logs(client, "application_1_0007",
                                               wait_for_nb_logs=2, log_tries=3)
    assert client.log_calls == 3 and len(logs.keys()) == 1
    assert skein_launcher.get_application_logs(FakeClient(logs_error="x"),
                                               "application_1_0008", log_tries=2) is None


def test_aliases_and_lazy_skein_import():
    assert cluster_pack.yarn_launcher is skein_launcher
    import cluster_pack.skein.yarn_launcher as alias

    assert alias is skein_launcher
    code = "import sys, cluster_pack, cluster_pack.launch.yarn; print('skein' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "False", out.stderr


def test_module_launch_of_a_script_file(fake_artifact, tmp_path):
    script = tmp_path / "my_script.py"
    script.write_text("import sys, json; print('ARGS' + json.dumps(sys.argv[1:]))\n")
    client = FakeClient()
    skein_launcher.submit(client, "my_script.py", args=["x y"], package_path=str(fake_artifact),
                          additional_files=[str(script)])
    service = _service(client.specs[0])
    assert "./env.pex my_script.py 'x y'" in service.script
    assert service.files["my_script.py"].source == f"file://{script}"
    out = run_container(service.script, service.files, tmp_path / "c")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.split("ARGS", 1)[1]) == ["x y"]


def test_examples_and_docs_exist():
    root = Path(__file__).resolve().parents[2]
    assert "## Running on YARN" in (root / "README.md").read_text()
    assert (root / "examples" / "interactive-mode" / "README.md").exists()
    assert (root / "examples" / "skein-project" / "README.md").exists()


@pytest.mark.parametrize("authentication", ["kerberos", "simple"])
def test_token_file_systems_add_the_namenodes_the_containers_localize_from(
        tmp_path, monkeypatch, authentication):
    hadoop_conf_dir(tmp_path / "conf", monkeypatch, "core-site.xml",
                    "hadoop.security.authentication", authentication)
    files = {"a": skein.File(source="hdfs://nn2:8020/user/me/envs/p/part1"),
             "b": skein.File(source="hdfs://nn2:8020/user/me/envs/p/part2"),
             "c": skein.File(source="viewfs://cluster/x.zip", type="archive"),
             "d": skein.File(source="s3a://bucket/x.pex"), "e": skein.File(source="/tmp/f"),
             "f": skein.File(source="hdfs:///user/me/default-fs.pex")}
    given = ["hdfs://other:8020", "s3a://b"]
    added = ["hdfs://nn2:8020", "viewfs://cluster"] if authentication == "kerberos" else []
    # as given (deduplicated, s3:// as Hadoop names it), then the namenodes localized from
    assert yarn.token_file_systems(files, ["hdfs://other:8020", "s3://b", "hdfs://other:8020"]) \
        == given + added
    assert yarn.token_file_systems({}) == []


def test_dask_and_ray_applications_get_tokens_for_hadoop_file_systems(fake_artifact):
    from cluster_pack.launch import dask as cp_dask
    from cluster_pack.launch import ray as cp_ray

    for module in (cp_dask, cp_ray):
        app = module.yarn_application_spec(str(fake_artifact), n_workers=1,
                                           hadoop_file_systems=["hdfs://other:8020"])
        assert app.file_systems == ["hdfs://other:8020"], module
