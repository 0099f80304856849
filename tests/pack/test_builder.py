"""builder: the packed directory made of distzip's zips around a pex runtime built once."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from cluster_pack import settings
from cluster_pack.errors import BuildError
from cluster_pack.pack import builder
from cluster_pack.pack.environment import inspect_site_packages
from cluster_pack.pack.packspec import PackSpec, select_requirements


def spec_of(venv_root: Path, only=None) -> PackSpec:
    site = sorted((venv_root / "lib").glob("python*/site-packages"))[0]
    env = inspect_site_packages(venv_root, (site,))
    return PackSpec(env, select_requirements(env, only_packages=only), parts=True)


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("C_PACK_CACHE_DIR", str(tmp_path / "cache"))
    return settings.get_cache_dir()


def test_an_empty_selection_is_refused(packed_venv, tmp_path, cache_dir):
    spec = spec_of(packed_venv.root, only=["six"])
    empty = PackSpec(spec.environment, (), parts=True)
    with pytest.raises(BuildError, match="nothing to pack"):
        builder.PexBuilder().build(empty, tmp_path, "env")


def test_each_environment_gets_its_own_pex_hash_and_the_runtime_is_built_once(
        packed_venv, tmp_path, cache_dir, monkeypatch):
    pex_runs = []
    real_pex = builder.PexBuilder._pex
    monkeypatch.setattr(builder.PexBuilder, "_pex",
                        lambda self, *a: pex_runs.append(a[2]) or real_pex(self, *a))
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    one = builder.PexBuilder().build(spec_of(packed_venv.root, ["six"]), tmp_path / "one", "env")
    two = builder.PexBuilder().build(spec_of(packed_venv.root, ["six", "numpy"]),
                                     tmp_path / "two", "env")
    assert pex_runs == [[]], "the pex tool ran once, for the runtime alone"

    hashes = []
    for built in (one, two):
        info = json.loads((built.path / "PEX-INFO").read_text())
        hashes.append(info["pex_hash"])
        for script in ("__main__.py", "__pex__/__init__.py"):
            assert f"pex_hash={info['pex_hash']!r}" in (built.path / script).read_text()
        assert sorted(info["distributions"]) == sorted(
            p.path[len(".deps/"):] for p, _ in built.parts if p.path.startswith(".deps/"))
    assert hashes[0] != hashes[1]

    # the standard pex runtime runs the directory
    out = subprocess.run([packed_venv.python, str(two.path), "-c",
                          "import numpy, six; print(numpy.__version__, six.__version__)"],
                         capture_output=True, text=True,
                         env={"PEX_ROOT": str(tmp_path / "pex_root"), "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    assert len(out.stdout.split()) == 2
