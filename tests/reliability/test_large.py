"""An environment over 4 GiB and 65,535 files packs, publishes and runs with no flag,
as parts (the default layout) and as a ``.pex.zip`` (``C_PACK_LAYOUT=pex``).

By default (CI) a rehearsal runs: 100 MB of data but 70,000 files, which alone needs the
unzipped layout. The full size writes ~25 GB: opt in with ``CPACK_LARGE_TESTS=1``.
"""

import json
import os
import shutil
import subprocess
import sys
import zipfile

from tests.fakes import _record_line
from tests.venvs import REPO, TestVenv, build_venv

GIB = 1024 ** 3
CHUNK = 64 * 1024 * 1024
# CPACK_LARGE_BYTES shrinks the incompressible part for a quick rehearsal: 70,000 files
# alone already need the unzipped layout (zipimport before 3.13 cannot read ZIP64).
_FULL = os.environ.get("CPACK_LARGE_TESTS") == "1"
TOTAL = int(os.environ.get("CPACK_LARGE_BYTES", int(4.2 * GIB) if _FULL else 100_000_000))


def _site(venv):
    return next((venv / "lib").glob("python*/site-packages"))


def _install_big_distribution(site, total_bytes, small_files):
    """A real installed distribution: incompressible chunks plus many tiny modules."""
    package = site / "bigdata"
    (package / "blobs").mkdir(parents=True)
    (package / "many").mkdir()
    written = [package / "__init__.py"]
    (package / "__init__.py").write_text(
        "import os\nHERE = os.path.dirname(__file__)\n")
    remaining, i = total_bytes, 0
    while remaining > 0:
        size = min(CHUNK, remaining)
        path = package / "blobs" / f"chunk{i:03d}.bin"
        with open(path, "wb") as f:
            f.write(os.urandom(size))
        written.append(path)
        remaining -= size
        i += 1
    for j in range(small_files):
        path = package / "many" / f"m{j:05d}.txt"
        path.write_text(str(j))
        written.append(path)
    dist_info = site / "bigdata-1.0.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: bigdata\nVersion: 1.0\n")
    (dist_info / "INSTALLER").write_text("test\n")
    (dist_info / "WHEEL").write_text(
        "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
    written += [dist_info / "METADATA", dist_info / "INSTALLER", dist_info / "WHEEL"]
    lines = [_record_line(site, p) for p in written] + ["bigdata-1.0.dist-info/RECORD,,"]
    (dist_info / "RECORD").write_text("\n".join(lines) + "\n")


PUBLISH = ("import json; from cluster_pack.store import publish\n"
           "r = publish.publish_env(package_path=%r)\n"
           "print(json.dumps(r.path))")
CHECK = ("import bigdata, os; print(len(os.listdir(os.path.join(bigdata.HERE, 'many'))),"
         " sum(os.path.getsize(os.path.join(bigdata.HERE, 'blobs', f))"
         " for f in os.listdir(os.path.join(bigdata.HERE, 'blobs'))))")


def test_environment_over_4gib_and_65535_files_runs_without_a_flag(tmp_path, summary):
    """Both layouts, from one venv, with no flag: the parts (content-addressed, pex's
    packed layout: one zip per distribution, no size limit), and by default the single
    file beside them, which is the unzipped ``.pex.zip`` layout chosen automatically."""
    try:
        _large_environment_runs(tmp_path, summary)
    finally:
        # the data several times over (venv, parts, .pex.zip, nodes, unpacked copy): removed
        # even when the test failed (the full size writes ~25 GB)
        shutil.rmtree(tmp_path, ignore_errors=True)


def _large_environment_runs(tmp_path, summary):
    venv = build_venv(tmp_path / "venv", ["six"], editables=[REPO])
    _install_big_distribution(_site(venv), TOTAL, 70_000)
    test_venv = TestVenv(venv, tmp_path)
    store = tmp_path / "cache"
    store.mkdir()
    pex_root = {"PEX_ROOT": str(tmp_path / "pex_root")}  # pex's build cache, removed with tmp

    parts_path = test_venv.json(PUBLISH % str(store / "parts" / "big.pex"), store,
                                env={**pex_root, "C_PACK_LAYOUT": "parts"})
    assert parts_path == str(store / "parts" / "big.pex")  # no flag
    assert not os.path.exists(parts_path)  # nothing at the path: a manifest and a pool
    parts_manifest = json.loads((store / "parts" / "big.json").read_text())
    assert parts_manifest["layout"] == "parts" and not parts_manifest["run"]["must_unpack"]
    assert parts_manifest["size"] > min(TOTAL, 4 * GIB)
    big = [p for p in parts_manifest["parts"] if p["path"].startswith(".deps/bigdata-")]
    assert len(big) == 1 and big[0]["size"] > TOTAL  # one part per distribution

    zip_path = test_venv.json(PUBLISH % str(store / "pex" / "big.pex"), store, env=pex_root)
    assert zip_path.endswith(".pex.zip")  # chosen automatically: a zipapp could not run
    manifest = json.loads((store / "pex" / "big.pex.json").read_text())
    assert manifest["file_size"] == os.path.getsize(zip_path) > min(TOTAL, 4 * GIB)
    with zipfile.ZipFile(zip_path) as zf:  # the original's large layout, to unpack
        assert {"__main__.py", "PEX-INFO"} <= set(zf.namelist())

    shutil.rmtree(tmp_path / "venv" / "lib")  # the node must not need the packing venv
    from cluster_pack.launch import local as runner
    from cluster_pack.launch import spec as launch

    for label, path in (("parts", parts_path), ("pex+parts", zip_path)):
        spec = launch.build_launch_spec(["-c", CHECK], package_path=path,
                                        include_editables=False)
        run = runner.run(spec, node_dir=tmp_path / f"node-{label}")
        assert run.returncode == 0, (label, run.stderr[-3000:])
        files, size = map(int, run.stdout.split())
        assert (files, size) == (70_000, TOTAL), label
    # the single file itself, unpacked and run as the original's users do
    unpacked = tmp_path / "node-single" / "pyenv"
    with zipfile.ZipFile(zip_path) as zf:
        zf.extractall(unpacked)
    run = subprocess.run([sys.executable, str(unpacked / "__main__.py"), "-c", CHECK],
                         capture_output=True, text=True, env={**os.environ, **pex_root})
    assert run.returncode == 0, run.stderr[-3000:]
    assert tuple(map(int, run.stdout.split())) == (70_000, TOTAL)
    summary.figure("large environment",
                   f"{manifest['size'] / GIB:.2f} GiB, >70,000 files: ran as parts and as "
                   f".pex.zip")
