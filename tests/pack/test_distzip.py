"""distzip: distribution zips written straight from a venv, the way pex's packed layout has them."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from cluster_pack.pack import distzip
from cluster_pack.pack.environment import Distribution, inspect_site_packages


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def make_dist(prefix: Path, name: str = "foo", version: str = "1.0", files: dict = None,
              purelib: bool = True, entry_points: str = "") -> Distribution:
    """A distribution installed in a fake venv ``prefix``; ``files`` maps RECORD paths
    (relative to site-packages) to bytes."""
    site = prefix / "lib" / "python3.11" / "site-packages"
    meta = site / f"{name}-{version}.dist-info"
    meta.mkdir(parents=True, exist_ok=True)
    content = {
        f"{meta.name}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode(),
        f"{meta.name}/WHEEL": ("Wheel-Version: 1.0\nRoot-Is-Purelib: "
                               f"{'true' if purelib else 'false'}\nTag: py3-none-any\n").encode(),
        f"{meta.name}/INSTALLER": b"uv\n",
        f"{meta.name}/REQUESTED": b"",
    }
    if entry_points:
        content[f"{meta.name}/entry_points.txt"] = entry_points.encode()
    content.update(files or {})
    lines = []
    for relpath, data in content.items():
        path = Path(os.path.normpath(site / relpath))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        if relpath.startswith("../../../bin/"):
            path.chmod(0o755)
        lines.append(f"{relpath},{_record_hash(data)},{len(data)}")
    lines.append(f"{meta.name}/RECORD,,")
    (meta / "RECORD").write_text("\n".join(lines) + "\n")
    return Distribution(name, version, meta)


def read_zip(path: Path) -> dict:
    with zipfile.ZipFile(path) as zf:
        return {i.filename: zf.read(i) for i in zf.infolist() if not i.is_dir()}


def test_files_land_where_pex_puts_them(tmp_path):
    dist = make_dist(tmp_path, files={
        "foo/__init__.py": b"X = 1\n",
        "foo/__pycache__/__init__.cpython-311.pyc": b"compiled",
        "../../../bin/foo-cli": b"#!/venv/bin/python\nimport foo\n",
        "../../../bin/tool": b"#!/venv/bin/python3.11 -I\n# -*- coding: utf-8 -*-\nprint(1)\n",
        "../../../bin/native": b"\x7fELF binary",
        "../../../share/foo/data.txt": b"data",
    }, entry_points="[console_scripts]\nfoo-cli = foo:main\n")
    planned = distzip.plan(dist, tmp_path)
    written = distzip.write(planned, tmp_path / "out.zip", compress=False)
    content = read_zip(tmp_path / "out.zip")

    assert set(content) == {
        "foo/__init__.py", "foo-1.0.dist-info/METADATA", "foo-1.0.dist-info/WHEEL",
        "foo-1.0.dist-info/entry_points.txt", "foo-1.0.dist-info/RECORD",
        ".prefix/bin/tool", ".prefix/bin/native", ".prefix/data/share/foo/data.txt",
        ".layout.json"}, "no pyc, no installer files, no entry-point script"
    assert content[".prefix/bin/tool"] == b"#!python\n# -*- coding: utf-8 -*-\nprint(1)\n"
    assert content[".prefix/bin/native"] == b"\x7fELF binary"
    record = content["foo-1.0.dist-info/RECORD"].decode().splitlines()
    tool = content[".prefix/bin/tool"]
    assert f".prefix/bin/tool,{_record_hash(tool)},{len(tool)}" in record
    assert "foo-1.0.dist-info/RECORD,," in record
    assert not [line for line in record if "INSTALLER" in line or "foo-cli" in line]
    layout = json.loads(content[".layout.json"])
    assert layout == {"fingerprint": written.fingerprint, "record_relpath": "foo-1.0.dist-info/RECORD",
                      "root_is_purelib": True, "stash_dir": ".prefix", "sys_path_entries": ["."]}
    assert written.wheel_name == "foo-1.0-py3-none-any.whl"
    assert written.sha256 == hashlib.sha256((tmp_path / "out.zip").read_bytes()).hexdigest()
    assert written.size == (tmp_path / "out.zip").stat().st_size


def test_the_same_installed_files_give_the_same_bytes(tmp_path):
    dist = make_dist(tmp_path, files={"foo.py": b"A = 1\n"})
    first = distzip.write(distzip.plan(dist, tmp_path), tmp_path / "a.zip", compress=False)
    second = distzip.write(distzip.plan(dist, tmp_path), tmp_path / "b.zip", compress=False)
    assert first == second
    Path(tmp_path / "lib/python3.11/site-packages/foo.py").write_bytes(b"A = 2\n")
    third = distzip.write(distzip.plan(dist, tmp_path), tmp_path / "c.zip", compress=False)
    assert third.sha256 != first.sha256 and third.fingerprint != first.fingerprint


def test_compressed_zips_are_deflated(tmp_path):
    dist = make_dist(tmp_path, files={"foo.py": b"A = 1\n" * 1000})
    distzip.write(distzip.plan(dist, tmp_path), tmp_path / "a.zip", compress=True)
    with zipfile.ZipFile(tmp_path / "a.zip") as zf:
        assert zf.getinfo("foo.py").compress_type == zipfile.ZIP_DEFLATED
        assert zf.read("foo.py") == b"A = 1\n" * 1000


@pytest.mark.parametrize("files, reason", [
    ({"../../../include/site/python3.11/foo/foo.h": b"int x;"}, "C headers"),
    ({"/abs/foo.py": b""}, "absolute path"),
])
def test_what_pex_must_pack_is_reported(tmp_path, files, reason):
    if reason == "absolute path":
        dist = make_dist(tmp_path)
        record = dist.metadata_dir / "RECORD"
        record.write_text(record.read_text() + "/abs/foo.py,,\n")
    else:
        dist = make_dist(tmp_path, files=files)
    with pytest.raises(distzip.Unsupported, match=reason):
        distzip.plan(dist, tmp_path)


def test_a_distribution_without_record_is_reported(tmp_path):
    dist = make_dist(tmp_path)
    (dist.metadata_dir / "RECORD").unlink()
    with pytest.raises(distzip.Unsupported, match="no RECORD"):
        distzip.plan(dist, tmp_path)


def test_the_cache_writes_only_changed_distributions(tmp_path, monkeypatch):
    one = make_dist(tmp_path, "one", files={"one.py": b"1"})
    two = make_dist(tmp_path, "two", files={"two.py": b"2"})
    cache_dir = tmp_path / "cache"
    first = distzip.zip_distributions([one, two], tmp_path, False, distzip.DistZipCache(cache_dir))

    writes = []
    real_write = distzip.write
    monkeypatch.setattr(distzip, "write", lambda p, *a, **k: writes.append(p.dist.name)
                        or real_write(p, *a, **k))
    again = distzip.zip_distributions([one, two], tmp_path, False, distzip.DistZipCache(cache_dir))
    assert writes == [] and again == first

    two = make_dist(tmp_path, "two", files={"two.py": b"22"})  # reinstalled: a new RECORD
    third = distzip.zip_distributions([one, two], tmp_path, False, distzip.DistZipCache(cache_dir))
    assert writes == ["two"]
    assert third[0] == first[0] and third[1][0].sha256 != first[1][0].sha256
    assert all(path.is_file() for _, path in third)

    # refresh (upload_env(force_upload=True)): nothing cached is reused, the bytes are the same
    refreshed = distzip.zip_distributions([one, two], tmp_path, False,
                                          distzip.DistZipCache(cache_dir), refresh=True)
    assert sorted(writes) == ["one", "two", "two"] and refreshed == third


def test_a_cache_entry_whose_zip_is_gone_is_written_again(tmp_path):
    dist = make_dist(tmp_path, files={"foo.py": b"1"})
    cache = distzip.DistZipCache(tmp_path / "cache")
    (written, path), = distzip.zip_distributions([dist], tmp_path, False, cache)
    path.chmod(0o644)
    path.unlink()
    (again, path), = distzip.zip_distributions([dist], tmp_path, False,
                                              distzip.DistZipCache(tmp_path / "cache"))
    assert again == written and path.is_file()


def assert_same_as_pex(prefix: Path, dists: list, tmp_path: Path) -> None:
    """Every entry pex writes for ``dists`` is in our zip with the same bytes, except the
    entry-point scripts, which the pex runtime regenerates on the node anyway."""
    ours = {z.wheel_name: path for z, path in distzip.zip_distributions(
        dists, prefix, False, distzip.DistZipCache(tmp_path / "cache"))}
    subprocess.run(
        [sys.executable, "-m", "pex", "--intransitive", "--venv", "--layout", "packed",
         "--no-compress", "--venv-repository", str(prefix), "-o", str(tmp_path / "ref.pex"),
         *(f"{d.name}=={d.version}" for d in dists)],
        check=True, env={**os.environ, "PEX_ROOT": str(tmp_path / "pex_root")})
    # (pex may add dependencies of what it is asked for, even when intransitive)
    reference = [tmp_path / "ref.pex" / ".deps" / name for name in sorted(ours)]
    for ref_path in reference:
        mine, theirs = read_zip(ours[ref_path.name]), read_zip(ref_path)
        layout_mine, layout_theirs = (json.loads(c.pop(".layout.json")) for c in (mine, theirs))
        assert layout_mine.pop("fingerprint") and layout_theirs.pop("fingerprint")
        assert layout_mine == layout_theirs
        scripts = {n for n in set(theirs) - set(mine) if n.startswith(".prefix/bin/")}
        record = layout_theirs["record_relpath"]
        theirs[record] = b"".join(line for line in theirs[record].splitlines(True)
                                  if line.split(b",")[0].decode() not in scripts)
        assert {n: v for n, v in theirs.items() if n not in scripts} == mine, ref_path.name


def _site(prefix: Path) -> Path:
    return sorted((prefix / "lib").glob("python*/site-packages"))[0]


def test_zips_match_the_ones_pex_builds(packed_venv, tmp_path):
    """numpy (compiled, with entry points and vendored libraries) and six (pure)."""
    env = inspect_site_packages(packed_venv.root, (_site(packed_venv.root),))
    assert_same_as_pex(packed_venv.root, [env.distributions[k] for k in ("numpy", "six")],
                       tmp_path)


def test_zips_match_pex_for_data_files_and_scripts(tmp_path):
    """The smallest distributions of the test venv that install data files, Python
    scripts that are not entry points, and other (binary, shell) scripts."""
    prefix = Path(sys.prefix)
    env = inspect_site_packages(prefix, (_site(prefix),))
    kinds: dict = {"data": [], "python script": [], "other script": []}
    for dist in env.distributions.values():
        planned = distzip.plan(dist, prefix)
        for arcname, source in planned.files:
            kind = ("data" if arcname.startswith(".prefix/data/") else
                    "python script" if isinstance(source, bytes) else
                    "other script" if arcname.startswith(".prefix/bin/") else None)
            if kind:
                kinds[kind].append((planned.size, dist.key, dist))
                break
    assert all(kinds.values()), f"the test venv lacks some kind: {kinds}"
    chosen = {d.key: d for d in (min(found, key=lambda t: t[:2])[2] for found in kinds.values())}
    assert_same_as_pex(prefix, [chosen[k] for k in sorted(chosen)], tmp_path)


def test_a_tampered_cache_index_is_not_followed(tmp_path):
    dist = make_dist(tmp_path, files={"foo.py": b"1"})
    cache_dir = tmp_path / "cache"
    (written, _), = distzip.zip_distributions([dist], tmp_path, False, distzip.DistZipCache(cache_dir))
    outside = tmp_path / "outside.zip"
    outside.write_bytes(b"x" * written.size)
    index = json.loads((cache_dir / "index.json").read_text())
    for entry in index.values():
        entry["sha256"] = "../outside"
    (cache_dir / "index.json").write_text(json.dumps(index))
    (again, path), = distzip.zip_distributions([dist], tmp_path, False,
                                              distzip.DistZipCache(cache_dir))
    assert again == written and path.parent == cache_dir
