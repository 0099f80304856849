"""``launch.local.safe_extract_tar``: what ``cluster-pack fetch`` unpacks a shipped
interpreter with. Only entries that stay inside the target directory are written."""

from __future__ import annotations

import io
import os
import stat
import tarfile
from pathlib import Path

import pytest

from cluster_pack.errors import IntegrityError
from cluster_pack.launch.local import safe_extract_tar


def _tar(path: Path, entries) -> Path:
    """entries: (name, kind, payload) with kind file/dir/symlink/hardlink."""
    with tarfile.open(path, "w") as tar:
        for name, kind, payload in entries:
            info = tarfile.TarInfo(name)
            if kind == "file":
                data = payload.encode()
                info.size, info.mode = len(data), 0o4755 if name.endswith("suid") else 0o755
                tar.addfile(info, io.BytesIO(data))
                continue
            if kind == "dir":
                info.type, info.mode = tarfile.DIRTYPE, 0o755
            elif kind == "symlink":
                info.type, info.linkname = tarfile.SYMTYPE, payload
            tar.addfile(info)
    return path


def test_a_python_home_with_relative_links_is_unpacked(tmp_path):
    archive = _tar(tmp_path / "py.tar", [
        ("bin", "dir", None), ("bin/python3.12", "file", "#!elf"),
        ("bin/python3", "symlink", "python3.12"), ("lib/libpython3.12.so", "file", "so"),
        ("bin/tool-suid", "file", "x")])
    target = tmp_path / "home"
    safe_extract_tar(archive, target)
    assert (target / "bin" / "python3").resolve() == (target / "bin" / "python3.12").resolve()
    assert (target / "bin" / "python3").read_text() == "#!elf"
    assert (target / "lib" / "libpython3.12.so").read_text() == "so"
    if hasattr(tarfile, "data_filter"):  # no set-uid bit survives
        assert not os.stat(target / "bin" / "tool-suid").st_mode & stat.S_ISUID


@pytest.mark.parametrize("entry", [
    ("../outside", "file", "x"),
    ("/tmp/absolute-cpack-test", "file", "x"),
    ("bin/escape", "symlink", "../../outside"),
    ("bin/abs", "symlink", "/etc/passwd"),
])
def test_an_entry_leaving_the_target_is_refused_and_nothing_is_written(tmp_path, entry):
    archive = _tar(tmp_path / "bad.tar", [("bin/python3", "file", "ok"), entry])
    target = tmp_path / "sub" / "home"
    with pytest.raises(IntegrityError, match=repr(entry[0]).strip("'")):
        safe_extract_tar(archive, target)
    assert not target.exists()
    assert not (tmp_path / "outside").exists() and not (tmp_path / "sub" / "outside").exists()
