import sys

import pytest

from cluster_pack.errors import BrokenDistributionError, NotInVirtualEnvError
from cluster_pack.pack import environment
from cluster_pack.pack.environment import default_env_name, inspect_site_packages
from tests.fakes import make_dist


def test_regular_and_pep660_editable_distributions_are_kept_apart(tmp_path):
    site = tmp_path / "site"
    project = tmp_path / "proj"
    (project / "src" / "mypkg").mkdir(parents=True)
    (project / "src" / "mypkg" / "__init__.py").write_text("")
    make_dist(site, "six", "1.16.0", {"six.py": ""})
    make_dist(site, "mypkg", "0.1", {"__editable__.mypkg-0.1.pth": f"{project / 'src'}\n"},
              editable_url=project.as_uri())
    env = inspect_site_packages(tmp_path, (site,))
    assert set(env.distributions) == {"six"}
    assert set(env.editables) == {"mypkg"}
    dist = env.editables["mypkg"]
    assert dist.editable_location == project
    assert dist.editable_paths == (project / "src",)


def test_editable_finder_mapping_is_read(tmp_path):
    site = tmp_path / "site"
    project = tmp_path / "proj"
    (project / "pkg").mkdir(parents=True)
    finder = f"MAPPING = {{'pkg': {str(project / 'pkg')!r}}}\n"
    make_dist(site, "pkg", "1.0", {
        "__editable__.pkg-1.0.pth": "import __editable___pkg_1_0_finder; "
                                    "__editable___pkg_1_0_finder.install()\n",
        "__editable___pkg_1_0_finder.py": finder,
    }, editable_url=project.as_uri())
    env = inspect_site_packages(tmp_path, (site,))
    assert dict(env.editables["pkg"].editable_mapping) == {"pkg": project / "pkg"}


def test_legacy_egg_link_editable(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    project = tmp_path / "legacy"
    (project / "legacy.egg-info").mkdir(parents=True)
    (project / "legacy.egg-info" / "PKG-INFO").write_text(
        "Metadata-Version: 1.1\nName: legacy\nVersion: 0.3\n")
    (site / "legacy.egg-link").write_text(f"{project}\n.\n")
    env = inspect_site_packages(tmp_path, (site,))
    assert "legacy" in env.editables
    assert env.editables["legacy"].editable_location == project


def test_broken_metadata_names_the_distribution_directory(tmp_path):
    site = tmp_path / "site"
    dist_info = make_dist(site, "broken", "1.0")
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\n")  # no Name, no Version
    with pytest.raises(BrokenDistributionError, match="broken-1.0.dist-info"):
        inspect_site_packages(tmp_path, (site,))


def test_default_env_name_is_the_venv_basename_like_0_3_19(tmp_path, monkeypatch):
    # 0.3.19's rule (no "_<sha1>" suffix as on the original master): the basename of
    # $VIRTUAL_ENV when set, else of the venv directory
    monkeypatch.delenv("VIRTUAL_ENV", raising=False)
    a = tmp_path / "project_a" / ".venv"
    a.mkdir(parents=True)
    assert default_env_name(a) == ".venv"
    monkeypatch.setenv("VIRTUAL_ENV", str(tmp_path / "project_b" / "venv-linux"))
    assert default_env_name(a) == "venv-linux"


def test_not_in_a_virtualenv_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(sys, "prefix", sys.base_prefix)
    with pytest.raises(NotInVirtualEnvError, match="not running in a virtualenv"):
        environment.current_environment()


def test_current_environment_reads_this_venv():
    if sys.prefix == sys.base_prefix:
        pytest.skip("the test suite is not running in a virtualenv")
    env = environment.current_environment()
    assert "pex" in env.distributions
    assert env.python_version == f"{sys.version_info.major}.{sys.version_info.minor}"
    assert env.platform_tag.startswith("cp3")


def test_running_artifact_comes_from_pex_or_our_variable(monkeypatch):
    monkeypatch.delenv("PEX", raising=False)
    monkeypatch.delenv(environment.LOCAL_ARTIFACT_ENV_VAR, raising=False)
    assert environment.running_artifact() is None
    monkeypatch.setenv("PEX", "/x/env.pex")
    assert environment.running_artifact() == "/x/env.pex"
