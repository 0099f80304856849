"""The single-file artifact: a ZIP written by copying entries of the packed directory's zips."""

import hashlib
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from cluster_pack.errors import BuildError
from cluster_pack.pack import singlefile

MAIN = "# runtime\nboot(pex_hash={hash!r})\n"


def make_packed(root: Path, pex_hash: str = "0" * 40, compress: bool = False) -> Path:
    """A packed pex directory as the builder lays it out (runtime files and dist zips)."""
    packed = root / "env.pex"
    (packed / ".deps").mkdir(parents=True)
    (packed / "__pex__").mkdir()
    method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with zipfile.ZipFile(packed / ".bootstrap", "w", method) as zf:
        zf.writestr("pex/__init__.py", "")
        zf.writestr("pex/big.bin", bytes(range(256)) * 1024)  # > the buffered size
    with zipfile.ZipFile(packed / ".deps" / "demo-1.0-py3-none-any.whl", "w", method) as zf:
        zf.writestr("demo/", "")
        zf.writestr("demo/__init__.py", "VALUE = 'demo'\n")
        zf.writestr("démo_data/ünïcode.txt", "x" * 100)
        zf.writestr("demo-1.0.dist-info/RECORD", "demo/__init__.py,,\n")
    info = {"pex_hash": pex_hash, "distributions": {"demo-1.0-py3-none-any.whl": "f" * 40},
            "code_hash": None}
    (packed / "PEX-INFO").write_text(json.dumps(info))
    (packed / "__main__.py").write_text(MAIN.format(hash=pex_hash))
    (packed / "__pex__" / "__init__.py").write_text(MAIN.format(hash=pex_hash))
    return packed


@pytest.mark.parametrize("compress", [False, True])
def test_zipapp_holds_every_entry_of_the_packed_zips_byte_for_byte(tmp_path, compress):
    packed = make_packed(tmp_path, compress=compress)
    out = singlefile.write(packed, tmp_path / "out.pex", "zipapp", "3.11")
    raw = out.path.read_bytes()
    assert raw.startswith(b"#!/usr/bin/env python3.11\n") and out.size == len(raw)
    assert out.sha256 == hashlib.sha256(raw).hexdigest()  # hashed while written
    with zipfile.ZipFile(out.path) as zf:
        assert zf.testzip() is None  # every CRC matches the copied bytes
        names = zf.namelist()
        for folder, source in ((".bootstrap/", packed / ".bootstrap"),
                               (".deps/demo-1.0-py3-none-any.whl/",
                                packed / ".deps" / "demo-1.0-py3-none-any.whl")):
            with zipfile.ZipFile(source) as src:
                for info in src.infolist():
                    assert zf.read(folder + info.filename) == src.read(info)
                    if info.is_dir():
                        continue
                    assert zf.getinfo(folder + info.filename).compress_type == \
                        info.compress_type  # copied, never recompressed
            assert folder in names
        assert zf.read("PEX-INFO") == (packed / "PEX-INFO").read_bytes()
        assert zf.read("__main__.py") == (packed / "__main__.py").read_bytes()
        # pex's order: sorted top-level names
        top = [n for n in names if n.count("/") == 0 or n.endswith("/") and n.count("/") == 1]
        assert top == sorted(top)
    assert out.path.stat().st_mode & 0o111


def test_the_zipapp_is_importable_by_zipimport_despite_its_shebang(tmp_path):
    packed = make_packed(tmp_path)
    out = singlefile.write(packed, tmp_path / "out.pex", "zipapp", "3.11",
                           sources=[("mod_at_root.py", _file(tmp_path, "VALUE = 42\n"))])
    code = f"import sys; sys.path.insert(0, {str(out.path)!r}); import mod_at_root; " \
           "print(mod_at_root.VALUE)"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.stdout.strip() == "42", run.stderr


def test_packed_layout_zips_the_directory_files_whole(tmp_path):
    packed = make_packed(tmp_path)
    out = singlefile.write(packed, tmp_path / "out.pex.zip", "packed", "3.11")
    assert not out.path.read_bytes().startswith(b"#!")
    assert out.sha256 == hashlib.sha256(out.path.read_bytes()).hexdigest()
    with zipfile.ZipFile(out.path) as zf:
        assert zf.testzip() is None
        wheel = ".deps/demo-1.0-py3-none-any.whl"
        assert zf.read(wheel) == (packed / wheel).read_bytes()
        assert zf.read(".bootstrap") == (packed / ".bootstrap").read_bytes()


def test_loose_layout_is_the_zipapp_without_shebang(tmp_path):
    packed = make_packed(tmp_path)
    loose = singlefile.write(packed, tmp_path / "loose.pex.zip", "loose", "3.11")
    zipapp = singlefile.write(packed, tmp_path / "app.pex", "zipapp", "3.11")
    assert zipapp.path.read_bytes().startswith(b"#!") and \
        loose.path.read_bytes().startswith(b"PK\x03\x04")
    with zipfile.ZipFile(loose.path) as a, zipfile.ZipFile(zipapp.path) as b:
        assert a.namelist() == b.namelist()


def test_sources_get_their_own_pex_hash_and_code_hash(tmp_path):
    packed = make_packed(tmp_path, pex_hash="a" * 40)
    source = _file(tmp_path, "X = 1\n")
    with_sources = singlefile.write(packed, tmp_path / "s.pex", "zipapp", "3.11",
                                    sources=[("pkg/__init__.py", source)])
    with zipfile.ZipFile(with_sources.path) as zf:
        info = json.loads(zf.read("PEX-INFO"))
        assert info["code_hash"] and info["pex_hash"] != "a" * 40
        for runtime in ("__main__.py", "__pex__/__init__.py"):
            text = zf.read(runtime).decode()
            assert f"pex_hash={info['pex_hash']!r}" in text and "a" * 40 not in text
        assert zf.read("pkg/__init__.py") == b"X = 1\n" and "pkg/" in zf.namelist()
    source.write_text("X = 2\n")  # other code, another hash
    again = singlefile.write(packed, tmp_path / "s2.pex", "zipapp", "3.11",
                             sources=[("pkg/__init__.py", source)])
    with zipfile.ZipFile(again.path) as zf:
        assert json.loads(zf.read("PEX-INFO"))["pex_hash"] != info["pex_hash"]


def test_a_runtime_that_does_not_name_its_hash_once_is_refused(tmp_path):
    packed = make_packed(tmp_path)
    (packed / "__main__.py").write_text("# no hash here\n")
    with pytest.raises(BuildError, match="pex_hash"):
        singlefile.write(packed, tmp_path / "x.pex", "zipapp", "3.11",
                         info_changes={"inherit_path": "fallback"})
    assert not list(tmp_path.glob("x.pex*"))  # nothing half-written left


def test_zip64_end_records_when_there_are_more_than_65535_entries(tmp_path):
    path = tmp_path / "many.zip"
    with open(path, "wb") as f:
        with singlefile.ZipWriter(f.fileno(), preamble=b"#!/bin/sh\n") as writer:
            for i in range(70_000):
                writer.add_bytes(f"d/{i}", str(i).encode())
    with zipfile.ZipFile(path) as zf:
        assert len(zf.infolist()) == 70_000 and zf.read("d/69999") == b"69999"


def test_an_unknown_layout_is_refused(tmp_path):
    with pytest.raises(ValueError, match="layout"):
        singlefile.write(make_packed(tmp_path), tmp_path / "x", "tarball", "3.11")


def _file(root: Path, text: str) -> Path:
    path = root / f"src-{len(list(root.iterdir()))}.py"
    path.write_text(text)
    return path


def test_large_sources_are_read_not_mapped_with_the_same_result(tmp_path, monkeypatch):
    packed = make_packed(tmp_path)
    mapped = singlefile.write(packed, tmp_path / "mapped.pex", "zipapp", "3.11")
    monkeypatch.setattr(singlefile, "_MAP_LIMIT", 10)  # every source "large": pread
    read = singlefile.write(packed, tmp_path / "read.pex", "zipapp", "3.11")
    assert read.path.read_bytes() == mapped.path.read_bytes()
    assert read.sha256 == mapped.sha256 == hashlib.sha256(read.path.read_bytes()).hexdigest()
