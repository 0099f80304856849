"""pack.layout: the one function choosing the layout and the single file's kind."""

from __future__ import annotations

from pathlib import Path

import pytest

from cluster_pack import settings
from cluster_pack.errors import ConfigurationError
from cluster_pack.pack.environment import Environment
from cluster_pack.pack.layout import (
    FileKind,
    Layout,
    choose_layout,
    env_name_of,
    published_layout,
)
from cluster_pack.pack.packspec import PackSpec
from cluster_pack.settings import LayoutOptimization

SMALL = (1000, 10)
GIB = 1024**3


def choose(layout=None, installed=SMALL, **kwargs):
    kwargs.setdefault("threshold", GIB)
    kwargs.setdefault("max_entries", 65_000)
    kwargs.setdefault("optimization", LayoutOptimization.SLOW_FAST_SMALL)
    kwargs.setdefault("compress", False)
    return choose_layout(layout, installed=lambda: installed, **kwargs)


def never_measured():
    raise AssertionError("the installed size was measured")


@pytest.fixture(autouse=True)
def no_layout_env(monkeypatch):
    for name in ("C_PACK_LAYOUT", "C_PACK_LARGE_PEX_THRESHOLD", "C_PACK_LAYOUT_OPTIMIZATION",
                 "C_PACK_COMPRESS"):
        monkeypatch.delenv(name, raising=False)


def test_layout_is_a_string_enum_and_the_old_names_are_aliases():
    assert settings.LAYOUT_PEX_AND_PARTS == "pex+parts" and settings.LAYOUT_PARTS == "parts"
    assert settings.LAYOUT_PEX == "pex" and settings.ARTIFACT_LAYOUTS == tuple(Layout)
    assert f"{Layout.PARTS}" == str(Layout.PARTS) == "parts"
    assert Layout.parse(" PEX+Parts ") is Layout.PEX_AND_PARTS
    assert str(FileKind.LOOSE) == "loose" and FileKind.PACKED == "packed"


@pytest.mark.parametrize("layout, parts, single_file", [
    (Layout.PEX_AND_PARTS, True, True), (Layout.PARTS, True, False), ("pex", False, True)])
def test_rule_1_the_requested_layout_says_what_is_published(layout, parts, single_file):
    choice = choose(layout)
    assert (choice.layout, choice.parts, choice.single_file) == (layout, parts, single_file)
    assert choice.file_kind is FileKind.ZIPAPP and not choice.large


def test_rule_1_without_a_request_c_pack_layout_decides(monkeypatch):
    assert choose().layout is Layout.PEX_AND_PARTS
    monkeypatch.setenv("C_PACK_LAYOUT", "PARTS")
    assert choose().layout is Layout.PARTS
    monkeypatch.setenv("C_PACK_LAYOUT", "zip")
    with pytest.raises(ConfigurationError, match="C_PACK_LAYOUT must be one of pex\\+parts, "
                                                 "parts, pex, got 'zip'"):
        choose()
    with pytest.raises(ConfigurationError, match="layout must be one of"):
        choose("tarball")


@pytest.mark.parametrize("kwargs", [{"allow_large_pex": True},
                                    {"package_path": "/envs/e.pex.zip"}])
def test_rule_2_an_explicitly_large_file_is_published_even_with_c_pack_layout_parts(
        monkeypatch, kwargs):
    monkeypatch.setenv("C_PACK_LAYOUT", "parts")
    choice = choose(installed=never_measured, **kwargs)
    assert choice.layout is Layout.PEX_AND_PARTS and choice.large


@pytest.mark.parametrize("kwargs, named", [
    ({"allow_large_pex": True}, "allow_large_pex=True"),
    ({"package_path": "/envs/e.pex.zip"}, "package_path /envs/e.pex.zip")])
def test_rule_2_an_explicit_parts_layout_with_an_explicitly_large_file_contradicts(
        kwargs, named):
    with pytest.raises(ConfigurationError, match=f"the parts layout publishes no single file, "
                                                 f"but {named} asks for the .pex.zip one"):
        choose(Layout.PARTS, **kwargs)


@pytest.mark.parametrize("installed, large", [
    ((GIB, 65_000), False), ((GIB + 1, 10), True), ((10, 65_001), True)])
def test_rule_3_the_size_and_the_file_count_decide_the_single_files_kind(installed, large):
    choice = choose(installed=installed)
    assert choice.large is large and choice.parts and choice.single_file
    assert choice.file_kind is (FileKind.PACKED if large else FileKind.ZIPAPP)


def test_rule_3_the_size_is_measured_only_when_it_decides():
    assert not choose(Layout.PARTS, installed=never_measured).large  # parts have no limit
    assert choose(allow_large_pex=True, installed=never_measured).large


def test_rule_3_default_threshold_is_c_pack_large_pex_threshold(monkeypatch):
    monkeypatch.setenv("C_PACK_LARGE_PEX_THRESHOLD", "999")
    assert choose_layout("pex", installed=lambda: (1000, 1)).large
    assert not choose_layout("pex", installed=lambda: (999, 1)).large


@pytest.mark.parametrize("optimization, kind, compress", [
    (LayoutOptimization.SLOW_FAST_SMALL, FileKind.PACKED, False),
    (LayoutOptimization.FAST_MID_BIG, FileKind.LOOSE, False),
    ("mid_slow_small", FileKind.LOOSE, True),
    (LayoutOptimization.DISABLED, FileKind.PACKED, True)])
def test_rule_4_the_layout_optimization_shapes_the_large_file(optimization, kind, compress):
    large = choose("pex", allow_large_pex=True, optimization=optimization)
    assert (large.file_kind, large.compress) == (kind, compress)
    small = choose("pex", optimization=optimization)
    assert (small.file_kind, small.compress) == (FileKind.ZIPAPP, False)
    assert choose("pex", optimization=optimization, compress=True).compress


def test_rule_4_an_unknown_layout_optimization_is_refused():
    with pytest.raises(ConfigurationError, match="must be one of SLOW_FAST_SMALL"):
        choose(optimization="SMALLEST")


def test_rule_5_an_explicit_path_must_be_a_pex_file():
    with pytest.raises(ConfigurationError, match="is a directory; give a file path ending in "
                                                 ".pex, e.g. /envs/myenv.pex"):
        choose(package_path="/envs/", env_name="myenv")
    with pytest.raises(ConfigurationError, match="has the wrong extension"):
        choose(package_path="/envs/e.tar.gz")


def test_rule_5_the_artifact_path_follows_the_kind():
    def default():
        return "/default/me"

    small, large = choose("pex"), choose("pex", installed=(GIB + 1, 1))
    assert small.artifact_path("/envs/e.pex", default) == "/envs/e.pex"
    assert large.artifact_path("/envs/e.pex", default) == "/envs/e.pex.zip"
    assert small.artifact_path(None, default) == "/default/me.pex"
    assert large.artifact_path(None, default) == "/default/me.pex.zip"
    explicit = choose("pex", package_path="/envs/e.pex.zip")
    assert explicit.large and explicit.artifact_path("/envs/e.pex.zip", default) == \
        "/envs/e.pex.zip"
    assert small.artifact_path("/envs/e.pex", never_measured) == "/envs/e.pex"


def test_published_layout_names_and_env_names():
    assert published_layout("e.pex") == "pex" and published_layout("e.pex.zip") == "pex.zip"
    assert published_layout("e.pex", parts=True) == "parts"
    assert env_name_of("my.env.pex.zip") == "my.env" and env_name_of("e.pex") == "e"


def environment() -> Environment:
    return Environment(Path("/venv"), "/usr/bin/python3", "3.11", "3.11.7",
                       "cp311-cp311-linux_x86_64", ())


def test_a_pack_spec_refuses_contradictory_layout_fields():
    env = environment()
    with pytest.raises(ConfigurationError, match="nothing to build"):
        PackSpec(env, (), parts=False, single_file=False)
    with pytest.raises(ConfigurationError, match="large describes the single file"):
        PackSpec(env, (), large=True, parts=True, single_file=False)
    with pytest.raises(ConfigurationError, match="must be one of"):
        PackSpec(env, (), layout_optimization="FASTEST")
    spec = PackSpec(env, (), large=True, layout_optimization="FAST_MID_BIG")
    assert spec.file_kind is FileKind.LOOSE and FileKind.LOOSE.suffix == ".pex.zip"
    assert PackSpec(env, ()).file_kind is FileKind.ZIPAPP
