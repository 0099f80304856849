"""include_interpreter, without a real interpreter: the prefix selection, what is left out,
the refusals, the tar, the manifest field and the node's shell lines (run by sh)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import tarfile
from pathlib import Path

import pytest

from cluster_pack.errors import ConfigurationError, IntegrityError, InterpreterError
from cluster_pack.launch import script
from cluster_pack.pack import interpreter
from cluster_pack.pack.interpreter import InterpreterInfo, InterpreterLayout
from cluster_pack.pack.parts import Part, tree_sha256
from cluster_pack.store.manifest import LAYOUT_PARTS, Manifest, run_info_for

pytestmark = pytest.mark.interpreter


def _file(path: Path, content: str = "x", mode: int = 0o644) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content)
    os.chmod(path, mode)
    return path


def fake_prefix(root: Path, shared: bool = True) -> Path:
    """A pyenv-like installation: bin/python3.12, lib/libpython3.12.so.1.0, the stdlib."""
    _file(root / "bin" / "python3.12", "#!/bin/sh\n", 0o755)
    (root / "bin" / "python3").symlink_to("python3.12")
    if shared:
        _file(root / "lib" / "libpython3.12.so.1.0", "ELF GLIBC_2.17 GLIBC_2.34 GLIBC_2.2.5")
    std = root / "lib" / "python3.12"
    for rel in ("os.py", "json/__init__.py", "json/__pycache__/__init__.cpython-312.pyc",
                "__pycache__/os.cpython-312.pyc", "test/test_os.py", "idlelib/idle.py",
                "tkinter/__init__.py", "turtledemo/demo.py", "turtle.py",
                "site-packages/pip/__init__.py", "config-3.12-x86_64-linux-gnu/libpython3.12.a",
                "lib-dynload/_ssl.cpython-312-x86_64-linux-gnu.so",
                "lib-dynload/_tkinter.cpython-312-x86_64-linux-gnu.so",
                "lib2to3/tests/data.py", "unittest/__init__.py"):
        _file(std / rel)
    return root


def config_for(root: Path, **overrides) -> dict:
    prefix = root
    values = {"platform": "linux", "machine": "x86_64", "base_prefix": str(prefix),
              "base_executable": str(prefix / "bin" / "python3"),
              "stdlib": str(prefix / "lib" / "python3.12"),
              "platstdlib": str(prefix / "lib" / "python3.12"), "version": "3.12.1",
              "Py_ENABLE_SHARED": 1, "LIBDIR": str(prefix / "lib"),
              "INSTSONAME": "libpython3.12.so.1.0", "prefix": str(prefix),
              "implementation": "cpython"}
    values.update(overrides)
    return values


def test_select_layout_finds_binary_stdlib_and_shared_library(tmp_path):
    prefix = fake_prefix(tmp_path / "py")
    layout = interpreter.select_layout(config_for(prefix))
    assert layout == InterpreterLayout(prefix.resolve(), "bin/python3.12", "lib/python3.12",
                                       ("lib/libpython3.12.so.1.0",), ("lib",), "3.12.1",
                                       "x86_64")
    static = interpreter.select_layout(config_for(fake_prefix(tmp_path / "st", shared=False),
                                                  Py_ENABLE_SHARED=0))
    assert static.shared_libraries == () and static.library_dirs == ()


def test_a_moved_installation_finds_its_library_in_its_own_prefix(tmp_path):
    prefix = fake_prefix(tmp_path / "copy")
    # sysconfig still names where it was built (and that path exists elsewhere)
    elsewhere = fake_prefix(tmp_path / "built")
    layout = interpreter.select_layout(config_for(prefix, LIBDIR=str(elsewhere / "lib"),
                                                  prefix=str(elsewhere)))
    assert layout.prefix == prefix.resolve()
    assert layout.shared_libraries == ("lib/libpython3.12.so.1.0",)


@pytest.mark.parametrize("change,message", [
    (dict(platform="darwin"), "cannot ship a darwin interpreter"),
    (dict(implementation="pypy"), "only CPython"),
    (dict(base_prefix="/nonexistent/prefix"), "does not exist"),
    (dict(base_executable="/bin/sh"), "is not inside its prefix"),
    (dict(stdlib="/nonexistent/lib/python3.12"), "no os.py there"),
])
def test_refusals_are_one_line_interpreter_errors(tmp_path, change, message):
    prefix = fake_prefix(tmp_path / "py")
    with pytest.raises(InterpreterError, match=message) as err:
        interpreter.select_layout(config_for(prefix, **change))
    assert "\n" not in str(err.value)
    assert isinstance(err.value, ConfigurationError)


def test_a_shared_library_outside_the_prefix_is_refused(tmp_path):
    prefix = fake_prefix(tmp_path / "py", shared=False)
    outside = _file(tmp_path / "usr" / "lib" / "libpython3.12.so.1.0")
    with pytest.raises(InterpreterError, match="outside its prefix"):
        interpreter.select_layout(config_for(prefix, LIBDIR=str(outside.parent),
                                             prefix="/usr"))
    with pytest.raises(InterpreterError, match="library .* is missing"):
        interpreter.select_layout(config_for(prefix, LIBDIR=str(prefix / "lib")))


def test_exclusion_rules(tmp_path):
    layout = interpreter.select_layout(config_for(fake_prefix(tmp_path / "py")))
    kept = [rel for rel, _ in interpreter.stdlib_files(layout)]
    assert set(kept) == {f"lib/python3.12/{rel}" for rel in (
        "json/__init__.py", "lib-dynload/_ssl.cpython-312-x86_64-linux-gnu.so", "os.py",
        "unittest/__init__.py")}
    with_bytecode = {rel for rel, _ in interpreter.stdlib_files(layout, include_bytecode=True)}
    assert "lib/python3.12/json/__pycache__/__init__.cpython-312.pyc" in with_bytecode
    assert "lib/python3.12/test/test_os.py" not in with_bytecode


LDD = """\
\tlinux-vdso.so.1 (0x00007ffd)
\tlibpython3.12.so.1.0 => /old/prefix/lib/libpython3.12.so.1.0 (0x00007f48)
\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f48)
\tlibcrypt.so.2 => /lib/x86_64-linux-gnu/libcrypt.so.2 (0x00007f48)
\tlibfoo.so.3 => not found
\tlibbar.so.1 => /opt/bar/lib/libbar.so.1 (0x00007f48)
\t/lib64/ld-linux-x86-64.so.2 (0x00007f48)
"""


def test_ldd_parsing_and_foreign_libraries(tmp_path):
    deps = interpreter.parse_ldd(LDD)
    assert ("libfoo.so.3", None) in deps and ("ld-linux-x86-64.so.2",
                                              "/lib64/ld-linux-x86-64.so.2") in deps
    foreign = interpreter.foreign_libraries(deps, tmp_path, shipped=["libpython3.12.so.1.0"])
    assert foreign == ["libfoo.so.3 (not found)", "libbar.so.1 (/opt/bar/lib/libbar.so.1)"]


def test_check_relocatable_refuses_the_binary_needing_a_foreign_library(tmp_path):
    layout = interpreter.select_layout(config_for(fake_prefix(tmp_path / "py")))
    deps = interpreter.parse_ldd(LDD)
    with pytest.raises(InterpreterError, match=r"python3\.12 needs libfoo.so.3 \(not found\)"):
        interpreter.check_relocatable(layout, lambda path: deps)
    # an extension module's needs are only logged
    interpreter.check_relocatable(
        layout, lambda path: deps if path.suffix == ".so" and "dynload" in str(path) else [])


def test_the_tar_is_deterministic_and_holds_the_kept_files(tmp_path):
    layout = interpreter.select_layout(config_for(fake_prefix(tmp_path / "py")))
    interpreter.write_tar(layout, tmp_path / "a.tar")
    interpreter.write_tar(layout, tmp_path / "b.tar")
    assert (tmp_path / "a.tar").read_bytes() == (tmp_path / "b.tar").read_bytes()
    with tarfile.open(tmp_path / "a.tar") as tar:
        members = {m.name: m for m in tar.getmembers()}
    assert members["bin/python3.12"].mode == 0o755 and members["bin/python3.12"].uid == 0
    assert members["bin/python3"].issym() and members["bin/python3"].linkname == "python3.12"
    assert "lib/libpython3.12.so.1.0" in members and "lib/python3.12/os.py" in members
    assert not any("site-packages" in n or "__pycache__" in n or "/test/" in n for n in members)


def test_build_is_cached_per_installation(tmp_path, monkeypatch):
    prefix = fake_prefix(tmp_path / "py")
    monkeypatch.setattr(interpreter, "ldd", lambda path: [])
    first = interpreter.build(config_for(prefix), cache_dir=tmp_path / "cache")
    assert first.info.glibc == "2.34" and first.info.binary == "bin/python3.12"
    mtime = first.path.stat().st_mtime_ns
    again = interpreter.build(config_for(prefix), cache_dir=tmp_path / "cache")
    assert again == first and again.path.stat().st_mtime_ns == mtime
    bytecode = interpreter.build(config_for(prefix), include_bytecode=True,
                                 cache_dir=tmp_path / "cache")
    assert bytecode.info.sha256 != first.info.sha256


INFO = InterpreterInfo("c" * 64, 1234, "3.12.1", "bin/python3.12", ("lib",), "x86_64", "2.17")
PARTS = [Part("PEX-INFO", "a" * 64, 10), Part("__main__.py", "b" * 64, 20, True)]


def _manifest(**overrides) -> Manifest:
    values = dict(fingerprint="f" * 64, artifact_name="my.pex", size=30,
                  sha256=tree_sha256(PARTS), package_installed=[], platform="linux_x86_64",
                  python_version="3.12", run=run_info_for("my.pex", LAYOUT_PARTS),
                  layout=LAYOUT_PARTS, parts=list(PARTS), interpreter=INFO, format_version=3)
    values.update(overrides)
    return Manifest(**values)


def test_manifest_roundtrip_and_pool_parts():
    manifest = Manifest.from_json(_manifest().to_json())
    assert manifest.interpreter == INFO and manifest.format_version == 3
    assert [p.sha256 for p in manifest.pool_parts] == ["a" * 64, "b" * 64, "c" * 64]
    plain = json.loads(_manifest(interpreter=None, format_version=2).to_json())
    assert "interpreter" not in plain  # format 2 readers see what they always saw


@pytest.mark.parametrize("change,message", [
    (dict(format_version=2), "names an interpreter but has format 2"),
    (dict(layout="pex", run=run_info_for("my.pex")), "without the parts layout"),
])
def test_manifest_refuses_an_inconsistent_interpreter(change, message):
    with pytest.raises(IntegrityError, match=message):
        Manifest.from_json(_manifest(**change).to_json())


def test_manifest_refuses_an_interpreter_path_escaping_its_directory():
    data = json.loads(_manifest().to_json())
    data["interpreter"]["binary"] = "../../bin/sh"
    with pytest.raises(IntegrityError, match="not a plain relative path"):
        Manifest.from_json(json.dumps(data).encode())


# -- the node's lines, run by sh with a fake interpreter -----------------------------------

def _fake_part(tmp_path: Path) -> Path:
    """A tar like the interpreter part whose 'python' prints what it sees."""
    out = tmp_path / "cpack-part"
    body = b'#!/bin/sh\necho "ran $0 LD=$LD_LIBRARY_PATH"\n'
    with tarfile.open(out, "w") as tar:
        info = tarfile.TarInfo("bin/python3.12")
        info.size, info.mode = len(body), 0o755
        tar.addfile(info, io.BytesIO(body))
    return out


def _run(lines: str, cwd: Path, **env: str) -> subprocess.CompletedProcess:
    full = {"PATH": "/usr/bin:/bin", "HOME": str(cwd / "home"), **env}
    return subprocess.run(["sh", "-c", lines + "python3.12\n"], cwd=cwd, env=full,
                          capture_output=True, text=True)


def test_node_lines_extract_once_and_put_the_interpreter_first(tmp_path):
    _fake_part(tmp_path)
    machine = os.uname().machine
    info = InterpreterInfo("d" * 64, 1, "3.12.1", "bin/python3.12", ("lib",), machine, "2.0")
    lines = script.interpreter_lines(info, "cpack-part")
    root = tmp_path / "interpreters"
    proc = _run(lines, tmp_path, C_PACK_INTERPRETER_ROOT=str(root))
    assert proc.returncode == 0, proc.stderr
    home = root / ("d" * 32)
    assert proc.stdout.strip() == f"ran {home}/bin/python3.12 LD={home}/lib"
    (tmp_path / "cpack-part").unlink()  # extracted once: the archive is not needed again
    assert _run(lines, tmp_path, C_PACK_INTERPRETER_ROOT=str(root)).returncode == 0
    # the default: a private directory under $HOME
    proc = _run(lines.replace("cpack-part", "missing"), tmp_path)
    assert proc.returncode != 0 and "cannot extract the shipped Python 3.12.1" in proc.stderr


def test_node_lines_refuse_another_machine_or_an_older_glibc(tmp_path):
    _fake_part(tmp_path)
    other = InterpreterInfo("d" * 64, 1, "3.12.1", "bin/python3.12", (), "sparc64", "")
    proc = _run(script.interpreter_lines(other, "cpack-part"), tmp_path)
    assert proc.returncode == 1
    assert "built for sparc64, this node is" in proc.stderr
    newer = InterpreterInfo("d" * 64, 1, "3.12.1", "bin/python3.12", (), os.uname().machine,
                            "9.99")
    proc = _run(script.interpreter_lines(newer, "cpack-part"), tmp_path)
    assert proc.returncode == 1 and "needs glibc 9.99, this node has" in proc.stderr


def test_gc_keeps_the_interpreter_part_a_manifest_names(tmp_path):
    import time

    from cluster_pack.store import parts_pool
    from cluster_pack.store.storage import Store

    (tmp_path / "one.json").write_bytes(_manifest(artifact_name="one.pex",
                                                  run=run_info_for("one.pex", LAYOUT_PARTS))
                                        .to_json())
    pool = tmp_path / parts_pool.POOL_DIR
    pool.mkdir()
    old = time.time() - 30 * 86400
    for sha in ("a" * 64, "b" * 64, INFO.sha256, "e" * 64):
        (pool / sha).write_bytes(b"x")
        os.utime(pool / sha, (old, old))
    store, path = Store.for_url(str(tmp_path))
    assert parts_pool.collect_garbage(store, path).removed == ["e" * 64]
    assert (pool / INFO.sha256).exists()


def test_the_single_file_layout_alone_cannot_ship_an_interpreter(tmp_path, monkeypatch):
    from cluster_pack.store import publish

    monkeypatch.setenv("C_PACK_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("C_PACK_LAYOUT", "pex")
    monkeypatch.setenv("C_PACK_INCLUDE_INTERPRETER", "1")
    with pytest.raises(ConfigurationError, match="include_interpreter needs the parts layout"):
        publish.publish_env(package_path=str(tmp_path / "envs" / "me.pex"))
    assert not (tmp_path / "envs" / "me.pex").exists()
