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


# hdfs-native's errors, as its Python binding raises them (RuntimeError with the Rust Debug text)
NO_CRED = RuntimeError(
    'GSSAPIError(GssMajorCodes { raw: "0x00070000", calling_error: "none", routine_error: '
    '"GSS_S_NO_CRED", supplementary_info: "0x0000" }, 2529639053, "No credentials were '
    'supplied, or the credentials were unavailable or inaccessible: No Kerberos credentials '
    'available (default cache: FILE:/tmp/cc-x)")')
EXPIRED = RuntimeError(
    'GSSAPIError(GssMajorCodes { raw: "0x000d0000", calling_error: "none", routine_error: '
    '"GSS_S_FAILURE", supplementary_info: "0x0000" }, 2529638944, "Unspecified GSS failure.  '
    'Minor code may provide more information: Ticket expired")')
DENIED = RuntimeError(
    'RPCError("org.apache.hadoop.security.AccessControlException", "Permission denied: '
    'user=bob, access=EXECUTE, inode=\\"/user/alice/envs\\":alice:alice:drwxr-x---\\n\\tat '
    'org.apache.hadoop.hdfs.server.namenode.FSPermissionChecker.check(FSPermissionChecker.java:661)")')


class _FakeClient:
    def __init__(self, exc):
        self.exc = exc

    def get_file_info(self, path):
        raise self.exc

    def list_status(self, path, recursive=False):
        exc = self.exc

        class FileStatusIter:  # lazy, like hdfs-native's: fails when iterated
            def __iter__(self):
                return self

            def __next__(self):
                raise exc

        return FileStatusIter()


@pytest.mark.parametrize("exc, says", [(NO_CRED, "no Kerberos ticket in FILE:/tmp/cc-now"),
                                       (EXPIRED, "has expired")])
def test_kerberos_failures_are_one_line_kerberos_errors(monkeypatch, exc, says):
    from cluster_pack.errors import KerberosError, StorageError

    monkeypatch.setenv("KRB5CCNAME", "FILE:/tmp/cc-now")
    monkeypatch.setattr(storage_backends, "ticket_principal", lambda timeout=5.0: "alice@R")
    client = storage_backends._KerberosAware(_FakeClient(exc), "hdfs://nn:8020/p")
    for call in (lambda: client.get_file_info("/p"), lambda: list(client.list_status("/p"))):
        with pytest.raises(KerberosError) as info:
            call()
        message = str(info.value)
        assert isinstance(info.value, StorageError) and info.value.exit_code == 2
        assert message.startswith("hdfs://nn:8020/p: ") and says in message and "kinit" in message
        assert "\n" not in message and "GssMajorCodes" not in message
        assert info.value.__cause__ is None and info.value.__suppress_context__
    if exc is EXPIRED:
        assert "kinit alice@R" in message


def test_missing_gssapi_library_says_what_to_install():
    error = storage_backends.kerberos_error(
        "hdfs://nn/p", RuntimeError("Failed to load libgssapi_krb5.so.2: cannot open"))
    assert "libgssapi-krb5-2" in str(error) and "krb5-libs" in str(error)


def test_namenode_refusal_is_a_permission_error_without_the_java_stack():
    client = storage_backends._KerberosAware(_FakeClient(DENIED), "hdfs://nn/user/alice/envs")
    with pytest.raises(PermissionError) as info:
        client.get_file_info("/user/alice/envs")
    message = str(info.value)
    assert 'user=bob, access=EXECUTE, inode="/user/alice/envs":alice:alice:drwxr-x---' in message
    assert "FSPermissionChecker" not in message and "\n" not in message


def test_other_errors_pass_through_unchanged():
    other = RuntimeError("something else")
    client = storage_backends._KerberosAware(_FakeClient(other), "hdfs://nn/p")
    with pytest.raises(RuntimeError) as info:
        client.get_file_info("/p")
    assert info.value is other


def test_default_env_dir_on_a_kerberized_cluster_is_the_originals(tmp_path, monkeypatch):
    """0.3.19's default path names the login user (``getpass.getuser()``), Kerberos or not:
    a principal with another short name does not move it (C_PACK_USER does)."""
    import getpass

    from cluster_pack import settings
    from cluster_pack.store import publish

    (tmp_path / "core-site.xml").write_text(
        "<configuration><property><name>fs.defaultFS</name><value>hdfs://nn:8020</value>"
        "</property><property><name>hadoop.security.authentication</name>"
        "<value>kerberos</value></property></configuration>")
    monkeypatch.setenv("HADOOP_CONF_DIR", str(tmp_path))
    monkeypatch.delenv("C_PACK_USER", raising=False)
    monkeypatch.setattr(settings, "_overrides", {})
    monkeypatch.setattr(storage_backends, "ticket_principal",
                        lambda timeout=5.0: "someone-else/host@R.COM")
    assert publish.default_env_dir() == f"hdfs://nn:8020/user/{getpass.getuser()}/envs"
    monkeypatch.setenv("C_PACK_USER", "bob")
    assert publish.default_env_dir() == "hdfs://nn:8020/user/bob/envs"
