"""Real S3 API (harness moto server): publishing, s3a://, errors without secrets."""

import hashlib
import json
import subprocess
import sys

import pytest

from cluster_pack.errors import StorageError
from cluster_pack.store import publish
from cluster_pack.store.manifest import manifest_path
from cluster_pack.store.storage import Store
from tests.integration.test_storage_hdfs import make_pex

pytestmark = pytest.mark.s3


def test_upload_zip_to_s3_and_s3a(s3_env, s3_server, tmp_path):
    local = make_pex(tmp_path / "e.pex")
    url = f"s3://{s3_server.bucket}/envs/e.pex"
    first = publish.publish_zip(str(local), url, fs_args=s3_server.fs_args)
    assert first.built and first.path == url
    again = publish.publish_zip(str(local), f"s3a://{s3_server.bucket}/envs/e.pex")
    assert not again.built  # same object through s3a:// and the AWS env vars
    store, path = Store.for_url(url)
    manifest = json.loads(store.read_bytes(manifest_path(path), 1 << 20))
    data = store.fs.cat_file(path)
    assert hashlib.sha256(data).hexdigest() == manifest["sha256"] == \
        hashlib.sha256(local.read_bytes()).hexdigest()
    back = tmp_path / "back.pex"
    store.download(path, back)
    assert subprocess.run([sys.executable, str(back)], capture_output=True,
                          text=True).stdout.strip() == "hello from pex"


def test_missing_bucket_names_it_and_hides_the_secret(s3_env, s3_server, tmp_path):
    secret = "SuperSecretValue-do-not-print"
    fs_args = {**s3_server.fs_args, "secret": secret}
    with pytest.raises(StorageError) as err:
        publish.publish_zip(str(make_pex(tmp_path / "e.pex")),
                            "s3://no-such-bucket-cpack/envs/e.pex", fs_args=fs_args)
    assert "no-such-bucket-cpack" in str(err.value)
    assert secret not in str(err.value) and secret not in repr(err.value.__cause__)


def test_cli_ls_and_info_with_fs_arg(s3_env, s3_server, tmp_path):
    url = publish.publish_zip(str(make_pex(tmp_path / "cli.pex")),
                              f"s3://{s3_server.bucket}/cli/cli.pex").path
    args = ["--fs-arg", f"endpoint_url={s3_server.endpoint_url}"]
    info = subprocess.run([sys.executable, "-m", "cluster_pack", "info", url, *args],
                          capture_output=True, text=True)
    assert info.returncode == 0, info.stderr
    ls = subprocess.run([sys.executable, "-m", "cluster_pack", "ls",
                         f"s3://{s3_server.bucket}/cli", *args], capture_output=True, text=True)
    assert ls.returncode == 0, ls.stderr
    assert "cli" in ls.stdout
