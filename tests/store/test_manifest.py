import json

import pytest

from cluster_pack.errors import ConfigurationError, IntegrityError
from cluster_pack.pack.parts import Part, tree_sha256
from cluster_pack.store.manifest import (
    LAYOUT_PARTS,
    LegacyManifest,
    Manifest,
    manifest_path,
    run_info_for,
    summarize,
)


@pytest.mark.parametrize("package_path,expected", [
    ("/tmp/envs/my.pex", "/tmp/envs/my.json"),
    ("/tmp/envs/my.pex.zip", "/tmp/envs/my.pex.json"),
    ("hdfs://nn:8020/user/me/envs/my.pex", "hdfs://nn:8020/user/me/envs/my.json"),
    ("hdfs:///user/me/envs/my.pex", "hdfs:///user/me/envs/my.json"),
    ("s3://bucket/envs/my.pex", "s3://bucket/envs/my.json"),
    ("my.pex", "my.json"),
])
def test_manifest_path_follows_the_original_naming(package_path, expected):
    assert manifest_path(package_path) == expected


def _manifest(**overrides):
    values = dict(fingerprint="f" * 64, artifact_name="my.pex", size=3, sha256="a" * 64,
                  package_installed=["six==1.16.0"], platform="cp311-cp311-linux_x86_64",
                  python_version="3.11", run=run_info_for("my.pex"))
    values.update(overrides)
    return Manifest(**values)


def test_roundtrip_keeps_the_original_fields():
    raw = _manifest().to_json()
    data = json.loads(raw)
    for key in ("package_installed", "platform", "python_version", "format_version",
                "fingerprint", "sha256", "size", "run"):
        assert key in data
    again = Manifest.from_json(raw)
    assert again == _manifest(created_at=again.created_at)


@pytest.mark.parametrize("name", ["../other.pex", "/etc/passwd", "sub/dir.pex", ""])
def test_a_manifest_may_only_describe_the_artifact_next_to_it(name):
    with pytest.raises(IntegrityError, match="artifact"):
        Manifest.from_json(_manifest(artifact_name=name).to_json(), "x.json")


def test_invalid_manifests_are_named():
    with pytest.raises(IntegrityError, match="bad.json is not valid JSON"):
        Manifest.from_json(b"{", "bad.json")
    with pytest.raises(IntegrityError, match="invalid sha256"):
        Manifest.from_json(_manifest(sha256="nope").to_json(), "x.json")
    newer = json.loads(_manifest().to_json())
    newer["format_version"] = 999
    with pytest.raises(IntegrityError, match="upgrade cluster-pack"):
        Manifest.from_json(json.dumps(newer).encode(), "x.json")


def test_original_manifests_are_recognised_as_legacy():
    raw = json.dumps({"package_installed": ["a==1"], "platform": "Linux", "python_version": "3.9.1"})
    with pytest.raises(LegacyManifest) as info:
        Manifest.from_json(raw.encode())
    assert info.value.package_installed == ["a==1"]


def test_run_info_matches_get_pyenv_usage_from_archive():
    assert run_info_for("e.pex").interpreter_cmd == "./e.pex"
    large = run_info_for("e.pex.zip")
    assert (large.dest_path, large.interpreter_cmd, large.must_unpack) == \
        ("pyenv", "pyenv/__main__.py", True)
    with pytest.raises(ConfigurationError, match="e.tar.gz"):
        run_info_for("e.tar.gz")


def test_run_info_of_the_parts_layout_runs_the_assembled_directory():
    run = run_info_for("e.pex", LAYOUT_PARTS)
    assert (run.dest_path, run.interpreter_cmd, run.must_unpack) == \
        ("e.pex", "./e.pex/__main__.py", False)


def test_summary_names_the_layout_and_counts_parts():
    assert (summarize(_manifest())["layout"], summarize(_manifest())["parts"]) == ("pex", None)
    parts = [Part("PEX-INFO", "b" * 64, 2), Part(".deps/six.whl", "c" * 64, 5)]
    manifest = _manifest(layout=LAYOUT_PARTS, parts=parts, size=7, sha256=tree_sha256(parts),
                         run=run_info_for("my.pex", LAYOUT_PARTS))
    assert (summarize(manifest)["layout"], summarize(manifest)["parts"]) == ("parts", 2)


def test_format_1_manifests_still_read_as_single_files():
    data = json.loads(_manifest().to_json())
    data["format_version"] = 1
    del data["parts"]
    manifest = Manifest.from_json(json.dumps(data).encode(), "old.json")
    assert not manifest.is_parts and manifest.parts == []
