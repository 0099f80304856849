import os
import stat
import time

import pytest

from cluster_pack.errors import ConfigurationError
from cluster_pack.store.storage import ARTIFACT_MODE, TMP_MARKER, Store


def test_local_paths_and_file_urls_resolve_to_the_same_place(tmp_path):
    store, path = Store.for_url(str(tmp_path / "a.pex"))
    assert store.is_local and path == str(tmp_path / "a.pex")
    store2, path2 = Store.for_url((tmp_path / "a.pex").as_uri())
    assert store2.is_local and path2 == path


def test_unknown_scheme_is_named():
    with pytest.raises(ConfigurationError, match="unknown storage scheme 'ftp://'"):
        Store.for_url("ftp://host/x.pex")


def test_publish_file_is_atomic_and_leaves_no_temporary(tmp_path):
    source = tmp_path / "src.bin"
    source.write_bytes(b"x" * 100_000)
    store, path = Store.for_url(str(tmp_path / "out" / "env.pex"))
    seen = []
    store.publish_file(source, path, progress=seen.append)
    assert open(path, "rb").read() == source.read_bytes()
    assert sum(seen) == 100_000
    assert stat.S_IMODE(os.stat(path).st_mode) == ARTIFACT_MODE
    assert not [p for p in os.listdir(tmp_path / "out") if TMP_MARKER in p]


def test_failed_publish_keeps_the_previous_artifact(tmp_path, monkeypatch):
    store, path = Store.for_url(str(tmp_path / "env.pex"))
    (tmp_path / "env.pex").write_bytes(b"old")
    source = tmp_path / "new"
    source.write_bytes(b"new" * 1000)

    def broken_copy(src, dst, progress):
        dst.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr("cluster_pack.store.storage._copy", broken_copy)
    with pytest.raises(OSError, match="disk full"):
        store.publish_file(source, path)
    assert (tmp_path / "env.pex").read_bytes() == b"old"
    assert not [p for p in os.listdir(tmp_path) if TMP_MARKER in p]


def test_stale_temporaries_of_killed_uploads_are_removed(tmp_path):
    store, _ = Store.for_url(str(tmp_path))
    stale = tmp_path / f".env.pex{TMP_MARKER}123-abcd"
    fresh = tmp_path / f".env.pex{TMP_MARKER}456-ef01"
    stale.write_bytes(b"x")
    fresh.write_bytes(b"y")
    old = time.time() - 7200
    os.utime(stale, (old, old))
    assert store.remove_stale_temporaries(str(tmp_path)) == 1
    assert not stale.exists() and fresh.exists()  # a concurrent upload may own it


def test_read_bytes_of_missing_file_is_none(tmp_path):
    store, path = Store.for_url(str(tmp_path / "nothing.json"))
    assert store.read_bytes(path, 100) is None


def test_publish_bytes_replaces_atomically(tmp_path):
    store, path = Store.for_url(str(tmp_path / "m.json"))
    store.publish_bytes(b"one", path)
    store.publish_bytes(b"two", path)
    assert (tmp_path / "m.json").read_bytes() == b"two"
    assert os.listdir(tmp_path) == ["m.json"]


def test_publish_file_without_sweep_leaves_the_directory_alone(tmp_path):
    # publishing many parts to one pool: the caller sweeps once, not once per part
    store, path = Store.for_url(str(tmp_path / "pool" / "part"))
    (tmp_path / "pool").mkdir()
    stale = tmp_path / "pool" / f".x{TMP_MARKER}1-abcd"
    stale.write_bytes(b"x")
    old = time.time() - 7200
    os.utime(stale, (old, old))
    source = tmp_path / "src"
    source.write_bytes(b"data")
    store.publish_file(source, path, sweep=False)
    assert stale.exists() and (tmp_path / "pool" / "part").read_bytes() == b"data"
    store.publish_file(source, path)
    assert not stale.exists()


@pytest.mark.parametrize("url,what", [
    ("hdfs://namenode:notaport/envs/e.pex", "Port could not be cast"),
    ("hdfs://namenode:99999/envs/e.pex", "Port out of range"),
    ("s3://[::1/envs/e.pex", "Invalid IPv6 URL"),
])
def test_a_malformed_url_is_a_configuration_error_naming_it(url, what):
    with pytest.raises(ConfigurationError, match=f"^{url.replace('[', '.')}: malformed URL .*{what}"):
        Store.for_url(url)


def test_a_file_on_the_way_is_a_configuration_error(tmp_path):
    (tmp_path / "file").write_text("x")
    store, path = Store.for_url(str(tmp_path / "file" / "e.json"))
    with pytest.raises(ConfigurationError, match="a part of the path is a file"):
        store.read_bytes(path, 100)


def test_an_option_the_filesystem_refuses_is_a_configuration_error():
    pytest.importorskip("s3fs")
    store, path = Store.for_url("s3://bucket/envs/e.pex", {"bogus_option": 1})
    with pytest.raises(ConfigurationError, match="bogus_option.*check the storage options"):
        store.read_bytes(path, 100)
