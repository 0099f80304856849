from pathlib import Path

import pytest

from cluster_pack.errors import ConfigurationError, PackageSelectionError
from cluster_pack.pack.environment import inspect_site_packages
from cluster_pack.pack.packspec import PackSpec, select_requirements
from tests.fakes import make_dist


@pytest.fixture
def env(tmp_path):
    site = tmp_path / "lib" / "site-packages"
    make_dist(site, "torch", "2.1.0", {"torch/__init__.py": ""})
    make_dist(site, "numpy", "1.26.4", {"numpy/__init__.py": ""})
    make_dist(site, "Typing_Extensions", "4.9.0", {"typing_extensions.py": ""})
    return inspect_site_packages(tmp_path, (site,))


def names(requirements):
    return [str(r) for r in requirements]


def test_selection_keeps_everything_by_default(env):
    assert names(select_requirements(env)) == [
        "numpy==1.26.4", "torch==2.1.0", "Typing_Extensions==4.9.0"]


def test_additional_package_is_matched_by_normalized_name_not_substring(env):
    # the original dropped torch when torchvision was added
    reqs = select_requirements(env, additional_packages={"torchvision": "0.16.0"})
    assert "torch==2.1.0" in names(reqs)
    assert "torchvision==0.16.0" in names(reqs)
    added = [r for r in reqs if r.key == "torchvision"][0]
    assert added.installed is None  # must be resolved


def test_additional_package_replaces_same_name_other_spelling(env):
    reqs = select_requirements(env, additional_packages={"typing-extensions": "4.10.0"})
    assert "typing-extensions==4.10.0" in names(reqs)
    assert not any(n.startswith("Typing_Extensions") for n in names(reqs))


def test_additional_package_already_installed_needs_no_resolution(env):
    reqs = select_requirements(env, additional_packages={"numpy": "1.26.4"})
    assert all(r.installed is not None for r in reqs)


def test_ignored_and_only_packages(env):
    assert names(select_requirements(env, ignored_packages=["TORCH"])) == [
        "numpy==1.26.4", "Typing_Extensions==4.9.0"]
    assert names(select_requirements(env, only_packages=["numpy"])) == ["numpy==1.26.4"]


def test_only_packages_applies_to_additional_too(env):
    # the original applies only_packages last, to additional packages as well
    reqs = select_requirements(env, additional_packages={"six": "1.16.0"},
                               only_packages=["numpy", "six"])
    assert names(reqs) == ["numpy==1.26.4", "six==1.16.0"]


def test_only_packages_naming_a_missing_package_is_an_error(env):
    with pytest.raises(PackageSelectionError, match="not-there"):
        select_requirements(env, only_packages=["numpy", "not-there"])


def test_string_instead_of_list_is_rejected(env):
    with pytest.raises(ConfigurationError, match="list of package names"):
        select_requirements(env, ignored_packages="numpy")


def test_fingerprint_depends_on_versions_and_content_not_micro_version(env, tmp_path):
    base = PackSpec(env, select_requirements(env))
    same = PackSpec(env, select_requirements(env))
    assert base.fingerprint() == same.fingerprint()
    other = PackSpec(env, select_requirements(env, ignored_packages=["torch"]))
    assert other.fingerprint() != base.fingerprint()
    large = PackSpec(env, select_requirements(env), large=True)
    assert large.fingerprint() != base.fingerprint()
    # the parts layout is another artifact: switching layouts republishes
    in_parts = PackSpec(env, select_requirements(env), parts=True)
    assert in_parts.fingerprint() not in (base.fingerprint(), large.fingerprint())
    # the micro version of Python is not part of it
    from dataclasses import replace
    micro = replace(env, python_full_version="3.11.99")
    assert PackSpec(micro, select_requirements(micro)).fingerprint() == base.fingerprint()
    # a reinstall with different content (RECORD) changes it
    before = base.fingerprint()
    record = next(Path(tmp_path).rglob("numpy-1.26.4.dist-info/RECORD"))
    record.write_text(record.read_text() + "numpy/extra.py,sha256=x,1\n")
    assert PackSpec(env, select_requirements(env)).fingerprint() != before
