"""pack.record: one RECORD parser, each RECORD read once while it is unchanged."""

from __future__ import annotations

import os

import pytest

from cluster_pack.pack import record
from cluster_pack.pack.environment import Distribution


@pytest.fixture
def meta(tmp_path):
    directory = tmp_path / "demo-1.0.dist-info"
    directory.mkdir()
    (directory / "RECORD").write_bytes(
        b'demo/__init__.py,sha256=abc,120\r\n"demo/a,b.py",sha256=def,30\r\n\r\n'
        b"demo-1.0.dist-info/RECORD,,\r\n")
    return directory


def test_rows_line_ending_and_installed_size(meta):
    found = record.read_record(meta)
    assert found.rows == [["demo/__init__.py", "sha256=abc", "120"],
                          ["demo/a,b.py", "sha256=def", "30"],
                          ["demo-1.0.dist-info/RECORD", "", ""]]
    assert found.line_ending == "\r\n"
    assert found.installed() == (150, 3)
    assert record.installed_size([meta, meta.parent / "missing.dist-info"]) == (150, 3)


def test_a_record_is_read_once_until_it_changes(meta, monkeypatch):
    first = record.read_record(meta)
    assert record.read_record(meta) is first  # the same file: not read again
    content_hash = Distribution("demo", "1.0", meta).content_hash()
    (meta / "RECORD").write_bytes(b"demo/__init__.py,sha256=xyz,121\n")
    os.utime(meta / "RECORD", ns=(1, 1))
    second = record.read_record(meta)
    assert second is not first and second.rows == [["demo/__init__.py", "sha256=xyz", "121"]]
    assert second.line_ending == "\n"
    assert Distribution("demo", "1.0", meta).content_hash() != content_hash


def test_no_record_is_none(tmp_path):
    assert record.read_record(tmp_path) is None
