import os
import zipfile

import pytest

from cluster_pack.errors import EditableSourceError
from cluster_pack.pack.editables import project_of, zip_project, zip_unpacked
from cluster_pack.pack.environment import inspect_site_packages
from tests.fakes import make_dist


@pytest.fixture
def editable(tmp_path):
    project = tmp_path / "proj"
    pkg = project / "src" / "mypkg"
    (pkg / "__pycache__").mkdir(parents=True)
    (pkg / "__init__.py").write_text("VALUE = 1\n")
    (pkg / "data.json").write_text("{}")
    (pkg / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"junk")
    (project / ".git").mkdir()
    (project / ".git" / "HEAD").write_text("ref")
    (project / "build" / "lib").mkdir(parents=True)
    (project / "build" / "lib" / "huge.bin").write_bytes(b"0" * 1000)
    (project / "tests").mkdir()
    (project / "tests" / "test_x.py").write_text("")
    outside = tmp_path / "secret.txt"
    outside.write_text("do not ship")
    os.symlink(outside, pkg / "link_outside.txt")
    site = tmp_path / "site"
    make_dist(site, "mypkg", "0.1", {"__editable__.mypkg-0.1.pth": f"{project / 'src'}\n"},
              editable_url=project.as_uri())
    env = inspect_site_packages(tmp_path, (site,))
    return env.editables["mypkg"], project


def test_zip_holds_the_package_and_nothing_else(editable, tmp_path):
    dist, project = editable
    result = zip_project(project_of(dist), tmp_path / "out")
    names = sorted(zipfile.ZipFile(result.path).namelist())
    assert names == ["mypkg/__init__.py", "mypkg/data.json"]
    assert result.top_level == ("mypkg",)


def test_zip_is_deterministic_and_content_named(editable, tmp_path):
    dist, project = editable
    first = zip_project(project_of(dist), tmp_path / "a")
    second = zip_project(project_of(dist), tmp_path / "b")
    assert first.sha256 == second.sha256 and first.path.name == second.path.name
    (project / "src" / "mypkg" / "__init__.py").write_text("VALUE = 2\n")
    third = zip_project(project_of(dist), tmp_path / "c")
    assert third.sha256 != first.sha256


def test_extra_excludes_are_configurable(editable, tmp_path, monkeypatch):
    dist, _ = editable
    monkeypatch.setenv("C_PACK_EDITABLE_EXCLUDES", "*.json")
    names = zipfile.ZipFile(zip_project(project_of(dist), tmp_path / "o").path).namelist()
    assert names == ["mypkg/__init__.py"]


def test_missing_editable_source_is_named(editable, tmp_path):
    dist, project = editable
    import shutil
    shutil.rmtree(project)
    with pytest.raises(EditableSourceError, match="mypkg is installed in editable mode"):
        project_of(dist)


def test_unpacked_directory_is_zipped_back_for_child_jobs(tmp_path):
    unpacked = tmp_path / "editable_mypkg"
    (unpacked / "mypkg").mkdir(parents=True)
    (unpacked / "mypkg" / "__init__.py").write_text("")
    result = zip_unpacked(unpacked, "editable_mypkg", tmp_path / "out")
    assert zipfile.ZipFile(result.path).namelist() == ["mypkg/__init__.py"]
