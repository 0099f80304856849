"""The package's public names: every one resolves, and ``import cluster_pack`` loads none
of the stages until a name is used."""

from __future__ import annotations

import json
import subprocess
import sys

import cluster_pack


def test_every_public_name_resolves_to_its_stage_object():
    from cluster_pack import errors, packaging, uploader
    from cluster_pack.launch import spec
    from cluster_pack.store import publish

    missing = [name for name in cluster_pack.__all__ if not hasattr(cluster_pack, name)]
    assert missing == []
    assert cluster_pack.upload_env is uploader.upload_env
    assert cluster_pack.get_pyenv_usage_from_archive is packaging.get_pyenv_usage_from_archive
    assert cluster_pack.publish_env is publish.publish_env
    assert cluster_pack.LaunchSpec is spec.LaunchSpec
    assert cluster_pack.ConfigurationError is errors.ConfigurationError
    assert cluster_pack.yarn_launcher.__name__ == "cluster_pack.skein.skein_launcher"


def test_an_unknown_name_is_an_attribute_error():
    try:
        cluster_pack.no_such_name  # noqa: B018
    except AttributeError as exc:
        assert "no_such_name" in str(exc)
    else:
        raise AssertionError("cluster_pack.no_such_name resolved")


def test_import_loads_no_stage_until_a_name_is_used():
    code = ("import json, sys; import cluster_pack; before = sorted(m for m in sys.modules "
            "if m.startswith('cluster_pack')); cluster_pack.upload_env; "
            "print(json.dumps([before, 'cluster_pack.uploader' in sys.modules]))")
    out = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True,
                         check=True, env={"PYTHONPATH": ":".join(sys.path)}).stdout
    before, loaded_on_use = json.loads(out)
    assert before == ["cluster_pack", "cluster_pack.version"]
    assert loaded_on_use
