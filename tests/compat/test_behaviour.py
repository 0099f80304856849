"""Behaviours of the original cluster-pack (0.3.19 / master) that code relies on.

Each test pins one behaviour a drop-in replacement must have, checked against the real
thing where it can be (``pip list`` for the requirement listings, real venvs).
"""

from __future__ import annotations

import getpass
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from cluster_pack import packaging, settings
from cluster_pack.pack import environment
from cluster_pack.pack.environment import canonical_name
from tests.venvs import build_venv, make_toy_project, remove_at_teardown


@pytest.fixture
def no_virtual_env(monkeypatch):
    monkeypatch.delenv("VIRTUAL_ENV", raising=False)


@pytest.fixture
def restore_user():
    yield
    settings._overrides.pop("user", None)


# -- 4. default environment name: 0.3.19's rule -----------------------------------------

def test_env_name_is_the_basename_of_virtual_env(monkeypatch):
    monkeypatch.setenv("VIRTUAL_ENV", "/home/me/projects/my-proj/venv-linux")
    assert environment.default_env_name() == "venv-linux"
    # $VIRTUAL_ENV wins over the prefix, as 0.3.19's PexPacker.env_name did
    assert environment.default_env_name(Path("/elsewhere/.venv")) == "venv-linux"
    assert packaging.get_env_name("VIRTUAL_ENV") == "venv-linux"
    assert packaging.PEX_PACKER.env_name() == "venv-linux"


def test_get_env_name_is_the_bare_basename_or_default(monkeypatch):
    monkeypatch.setenv("CPACK_TEST_ENV_PATH", "/opt/envs/team_env")
    assert packaging.get_env_name("CPACK_TEST_ENV_PATH") == "team_env"
    monkeypatch.setenv("CPACK_TEST_ENV_PATH", "relative/dir")
    assert packaging.get_env_name("CPACK_TEST_ENV_PATH") == "dir"
    monkeypatch.setenv("CPACK_TEST_ENV_PATH", "")
    assert packaging.get_env_name("CPACK_TEST_ENV_PATH") == "default"
    monkeypatch.delenv("CPACK_TEST_ENV_PATH")
    assert packaging.get_env_name("CPACK_TEST_ENV_PATH") == "default"


def test_env_name_without_virtual_env_is_the_running_venv_name(monkeypatch, no_virtual_env):
    monkeypatch.setattr(sys, "prefix", "/srv/venvs/reco-venv")
    assert sys.prefix != sys.base_prefix
    assert environment.default_env_name() == "reco-venv"
    assert environment.default_env_name(Path("/a/b/.venv")) == ".venv"
    assert packaging.PEX_PACKER.env_name() == "reco-venv"
    assert packaging.get_env_name("VIRTUAL_ENV") == "default"  # the bare 0.3.19 function


def test_env_name_outside_any_venv_is_default(monkeypatch, no_virtual_env):
    monkeypatch.setattr(sys, "prefix", sys.base_prefix)
    assert environment.default_env_name() == "default"
    assert packaging.PEX_PACKER.env_name() == "default"


def test_detect_archive_names_default_path(monkeypatch, tmp_path, no_virtual_env):
    monkeypatch.setenv("VIRTUAL_ENV", "/x/y/myenv")
    monkeypatch.setattr("cluster_pack.store.hadoop_conf.default_fs", lambda: "hdfs://nn:8020")
    monkeypatch.setenv("C_PACK_USER", "alice")
    monkeypatch.delenv("PEX", raising=False)
    monkeypatch.delenv("C_PACK_LOCAL_ARTIFACT", raising=False)
    assert packaging.detect_archive_names(packaging.PEX_PACKER) == (
        "hdfs://nn:8020/user/alice/envs/myenv.pex", "myenv", "")


def test_upload_env_publishes_at_the_virtual_env_basename(packed_venv, store_dir):
    code = """
        import json, cluster_pack
        print(json.dumps(cluster_pack.upload_env(only_packages=["six"])))
    """
    env = {"VIRTUAL_ENV": "/home/me/work/my-project-env", "HADOOP_CONF_DIR": "/nonexistent",
           "HADOOP_HOME": "/nonexistent"}
    path, name = packed_venv.json(code, store_dir, env=env)
    assert name == "my-project-env"
    assert path == str(store_dir / "envs" / "my-project-env.pex")
    # not activated: named after the venv directory (0.3.19 said "default")
    path, name = packed_venv.json(code, store_dir, env={k: v for k, v in env.items()
                                                        if k != "VIRTUAL_ENV"})
    assert name == packed_venv.root.name
    assert path == str(store_dir / "envs" / f"{packed_venv.root.name}.pex")


# -- 5. requirements of another interpreter ---------------------------------------------

def _fake_dist(site: Path, name: str, version: str) -> None:
    info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    (info / "INSTALLER").write_text("test\n")
    (info / "RECORD").write_text("")


@pytest.fixture(scope="module")
def other_venv(tmp_path_factory):
    """A real venv (not the one running the tests) with a PEP 660 editable project, a
    legacy ``setup.py develop`` (``.egg-link``) editable and names whose pip order differs
    from a plain case-insensitive sort."""
    root = tmp_path_factory.mktemp("other")
    toy = make_toy_project(root, "otherproj")
    venv = build_venv(root / "venv", ["six"], editables=[toy])
    python = venv / "bin" / "python"
    site = Path(subprocess.check_output(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        text=True).strip())
    for name, version in (("a-c", "1.0"), ("A_b", "2.0"), ("A.a", "3.0"), ("Zeta", "1.0rc1"),
                          ("beta", "1.0-beta.2")):
        _fake_dist(site, name, version)
    legacy = root / "legacyproj"
    (legacy / "legacyproj").mkdir(parents=True)
    (legacy / "legacyproj" / "__init__.py").write_text("")
    (legacy / "legacyproj.egg-info").mkdir()
    (legacy / "legacyproj.egg-info" / "PKG-INFO").write_text(
        "Metadata-Version: 1.1\nName: legacyproj\nVersion: 0.2\n")
    (legacy / "legacyproj.egg-info" / "top_level.txt").write_text("legacyproj\n")
    (site / "legacyproj.egg-link").write_text(f"{legacy}\n.")
    (site / "easy-install.pth").write_text(f"{legacy}\n")
    yield python, toy, legacy
    remove_at_teardown(root)


def _pip_list(python: Path, *args: str):
    """What the original parsed: ``pip list -l <args> --format json`` of ``python``."""
    proc = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "list", "-l",
                           *args, "--format", "json", "--disable-pip-version-check"],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"pip --python unavailable: {proc.stderr[-300:]}")
    return json.loads(proc.stdout.split("\n")[0])


def test_non_editable_requirements_of_another_interpreter(other_venv):
    python, _, _ = other_venv
    reqs = packaging.get_non_editable_requirements(str(python))
    names = list(reqs)
    for editable in ("otherproj", "legacyproj"):
        assert editable not in names
    assert "six" in names and "cluster-pack" not in names  # that venv's, not ours
    assert names[:3] == ["A.a", "A_b", "a-c"]  # pip's order: by normalized name
    assert names == sorted(names, key=canonical_name)
    assert reqs["Zeta"] == "1.0rc1" and reqs["beta"] == "1.0b2"  # as pip prints them
    expected = _pip_list(python, "--exclude-editable")
    assert list(reqs.items()) == [(p["name"], p["version"]) for p in expected]


def test_non_editable_requirements_of_this_interpreter_match_pip_list():
    reqs = packaging.get_non_editable_requirements()
    expected = _pip_list(Path(sys.executable), "--exclude-editable")
    assert list(reqs.items()) == [(p["name"], p["version"]) for p in expected]


def test_editable_requirements_of_another_interpreter(other_venv, monkeypatch):
    python, toy, legacy = other_venv
    monkeypatch.delenv("PEX", raising=False)
    monkeypatch.delenv("C_PACK_LOCAL_ARTIFACT", raising=False)
    found = packaging.get_editable_requirements(str(python))
    assert found == {"otherproj": str(toy / "src" / "otherproj"),
                     "legacyproj": str(legacy / "legacyproj")}
    assert {p["name"] for p in _pip_list(python, "-e")} == {"otherproj", "legacyproj"}


def test_editable_requirements_in_a_job_read_the_index_of_the_cwd(monkeypatch, tmp_path):
    import email

    monkeypatch.setenv("PEX", "/tmp/somewhere/env.pex")
    (tmp_path / packaging.EDITABLE_PACKAGES_INDEX).write_text("email\nno_such_module_x\n")
    monkeypatch.chdir(tmp_path)  # after import: the default is the cwd at call time
    assert packaging.get_editable_requirements() == {
        "email": os.path.dirname(email.__file__)}


# -- 6. cluster_pack.filesystem / cluster_pack.skein after a bare import -----------------

def test_submodules_are_attributes_after_import_but_imported_lazily():
    code = textwrap.dedent("""
        import json, sys
        import cluster_pack
        light = [m for m in ("skein", "cluster_pack.skein", "cluster_pack.filesystem")
                 if m in sys.modules]
        fs, path = cluster_pack.filesystem.resolve_filesystem_and_path("/p/")
        launcher = cluster_pack.skein.skein_launcher
        print(json.dumps({"light": light, "path": path, "submit": callable(launcher.submit)}))
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out == {"light": [], "path": "/p/", "submit": True}


# -- 9. settings and filesystem details of master ---------------------------------------

def test_set_current_user_overrides_c_pack_user(monkeypatch, restore_user):
    monkeypatch.setenv("C_PACK_USER", "from_env")
    monkeypatch.setattr("cluster_pack.store.hadoop_conf.default_fs", lambda: "hdfs://")
    assert settings.get_current_user() == "from_env"
    settings.set_current_user("  spaced_user  ")
    assert settings.get_current_user() == "spaced_user"
    assert settings._get_current_user() == "spaced_user"
    assert packaging._build_package_path("myenv", "pex") == \
        "hdfs:///user/spaced_user/envs/myenv.pex"
    monkeypatch.setattr(getpass, "getuser", lambda: "system_user")
    for blank in (None, "", "   "):
        settings.set_current_user(blank)
        assert settings.get_current_user() == "system_user"


def test_layout_optimization_params_are_masters():
    params = {m.name: tuple(m.get_params()) for m in settings.LayoutOptimization}
    assert params == {
        "SLOW_FAST_SMALL": ("packed", True, 0),
        "FAST_MID_BIG": ("loose", True, 0),
        "MID_SLOW_SMALL": ("loose", True, 1),
        "DISABLED": ("packed", False, 0),
    }


@pytest.mark.parametrize("uri, path", [
    ("/p/", "/p/"),
    ("/tmp/x.pex", "/tmp/x.pex"),
    ("relative/dir", "relative/dir"),
    ("./env.pex", "./env.pex"),
    ("file:///tmp/p/", "/tmp/p/"),
    ("memory://bucket/key/env.pex", "/key/env.pex"),
])
def test_resolve_filesystem_and_path_returns_the_url_path(uri, path):
    from cluster_pack.filesystem import resolve_filesystem_and_path

    fs, got = resolve_filesystem_and_path(uri)
    assert got == path
    assert "file" in fs.protocol or "memory" in fs.protocol


def test_resolve_filesystem_and_path_s3_keeps_the_original_path():
    pytest.importorskip("s3fs")
    from cluster_pack.filesystem import resolve_filesystem_and_path

    fs, path = resolve_filesystem_and_path("s3://bucket/envs/env.pex", anon=True)
    assert path == "/envs/env.pex"
    assert "s3" in fs.protocol


# -- errors: what the original raised as ValueError is still a ValueError -----------------

def test_upload_env_refuses_another_packer_with_a_value_error():
    from cluster_pack import uploader
    from cluster_pack.errors import ConfigurationError

    class ZipPacker(packaging.Packer):
        def extension(self) -> str:
            return "zip"

    with pytest.raises(ConfigurationError, match="unsupported packer .*PEX_PACKER") as info:
        uploader.upload_env(packer=ZipPacker())
    assert isinstance(info.value, ValueError)


def test_get_pyenv_usage_from_archive_keeps_the_originals_value_error():
    with pytest.raises(ValueError, match=r"^Archive format env\.tar unsupported"):
        packaging.get_pyenv_usage_from_archive("hdfs:///envs/env.tar")
