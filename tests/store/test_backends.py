"""Unit tests of the remote resolution (no server needed)."""

import pytest

from cluster_pack.store import backends as storage_backends
from cluster_pack.store.storage import Store


def test_fast_fail_defaults_do_not_override_user_settings(tmp_path, monkeypatch):
    (tmp_path / "core-site.xml").write_text(
        "<configuration><property><name>dfs.client.failover.max.attempts</name>"
        "<value>7</value></property></configuration>")
    monkeypatch.setenv("HADOOP_CONF_DIR", str(tmp_path))
    config = storage_backends.hdfs_config({"dfs.client.failover.sleep.max.millis": 5})
    assert "dfs.client.failover.max.attempts" not in config  # the site file wins
    assert config["dfs.client.failover.sleep.max.millis"] == "5"
    assert config["dfs.client.failover.sleep.base.millis"] == "200"


def test_scrub_hides_secrets_from_args_and_env(monkeypatch):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "envsecret123")
    hidden = storage_backends.secrets_of({"secret": "argsecret456"})
    message = storage_backends.scrub("bad argsecret456 envsecret123", hidden)
    assert "secret456" not in message and "secret123" not in message


def test_s3a_is_s3_and_urls_round_trip():
    pytest.importorskip("s3fs")
    store, path = Store.for_url("s3a://bucket/envs/e.pex", {"anon": True})
    assert path == "bucket/envs/e.pex" and store.url(path) == "s3://bucket/envs/e.pex"


def test_hdfs_url_keeps_the_netloc():
    pytest.importorskip("hdfs_native")
    store, path = Store.for_url("hdfs://127.0.0.1:9/user/u/envs/e.pex")
    assert store.url(path) == "hdfs://127.0.0.1:9/user/u/envs/e.pex"
