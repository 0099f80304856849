"""End to end on a real venv: pack, publish to a local store, run through the local runner."""

import hashlib
import json
import os
import subprocess
import sys
import threading
import zipfile
from functools import partial
from http.server import HTTPServer, SimpleHTTPRequestHandler
from pathlib import Path

import pytest

from tests.venvs import REPO, TestVenv, build_venv

# Spies on the builder and on every way publishing writes to the store: what a call did
# is checked from its actions, not only from what it reports.
UPLOAD = """
import json, cluster_pack
from cluster_pack.pack import builder
from cluster_pack.pack import parts
from cluster_pack.store import publish
from cluster_pack.store import storage as store
seen = {{"builds": 0, "writes": []}}

def spy(owner, name, record):
    original = getattr(owner, name)
    def wrapper(*args, **kwargs):
        record(*args)
        return original(*args, **kwargs)
    setattr(owner, name, wrapper)

spy(builder.PexBuilder, "build", lambda *a: seen.__setitem__("builds", seen["builds"] + 1))
spy(store.Store, "publish_file", lambda self, local, path, *a: seen["writes"].append(path))
spy(store.Store, "publish_bytes", lambda self, data, path: seen["writes"].append(path))
spy(store.Store, "remove", lambda self, path: seen["writes"].append(path))
spy(store.Store, "publish_file_once",
    lambda self, local, path, *a: seen["writes"].append(path))
r = publish.publish_env({kwargs})
print(json.dumps({{"path": r.path, "built": r.built, "reason": r.reason,
                  "written": r.uploaded_bytes, **seen}}))
"""

RUN = """
import json
from cluster_pack.launch import spec as launch
from cluster_pack.launch import local as runner
spec = launch.module_launch_spec("toyproj_job", package_path={path!r})
res = runner.run(spec)
print(json.dumps({{"rc": res.returncode, "out": res.stdout, "err": res.stderr}}))
"""


def upload(venv, store, env=None, **kwargs):
    args = ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
    return venv.json(UPLOAD.format(kwargs=args), store, env=env)


PEX_LAYOUT = {"C_PACK_LAYOUT": "pex"}
PARTS_LAYOUT = {"C_PACK_LAYOUT": "parts"}


def pex_distributions(path):
    """Distribution names in a published environment (single-file or parts layout)."""
    path = Path(path)
    manifest = json.loads(path.with_suffix(".json").read_text())
    if manifest["layout"] == "parts":
        sha = next(p["sha256"] for p in manifest["parts"] if p["path"] == "PEX-INFO")
        info = json.loads((path.parent / ".cluster-pack-parts" / sha).read_text())
    else:
        with zipfile.ZipFile(path) as zf:
            info = json.loads(zf.read("PEX-INFO"))
    return sorted(w.split("-")[0].lower() for w in info["distributions"])


def pool_files(path):
    """{sha256: (inode, mtime)} of the pool next to ``path``."""
    pool = Path(path).parent / ".cluster-pack-parts"
    return {f.name: (f.stat().st_ino, f.stat().st_mtime_ns) for f in pool.iterdir()
            if not f.name.startswith(".")}


def published_state(path):
    """What a publish to ``path`` may change: the pool, the manifest, the path itself."""
    manifest = Path(path).with_suffix(".json")
    return (pool_files(path), manifest.stat().st_ino, manifest.read_bytes(),
            Path(path).exists())


def store_tree(root):
    """{relative path: (inode, mtime)} of everything under ``root`` (lock files aside)."""
    return {str(f.relative_to(root)): (f.lstat().st_ino, f.lstat().st_mtime_ns)
            for f in Path(root).rglob("*") if ".locks" not in f.parts}


def parts_by_path(path):
    manifest = json.loads(Path(path).with_suffix(".json").read_text())
    return {p["path"]: p for p in manifest["parts"]}


@pytest.fixture
def job(packed_venv):
    """A module in the editable project that reports what it sees."""
    path = packed_venv.toyproj / "src" / "toyproj_job.py"
    path.write_text(
        "import json, os, sys, numpy, six, toyproj\n"
        "print(json.dumps({'numpy': numpy.__version__, 'toy': toyproj.VALUE,\n"
        "  'exe': sys.executable, 'venv': os.environ.get('VIRTUAL_ENV'),\n"
        "  'sys_path': sys.path}))\n")
    yield path
    path.unlink()
    packed_venv.set_toy_value("v1")


def run_job(venv, store, path):
    result = venv.json(RUN.format(path=path), store)
    assert result["rc"] == 0, result["err"]
    return json.loads(result["out"].strip().splitlines()[-1])


def test_upload_env_publishes_a_runnable_self_contained_pex(packed_venv, store_dir, job):
    first = upload(packed_venv, store_dir)
    assert first["built"] and first["path"].startswith(str(store_dir / "envs"))
    artifact = Path(first["path"])
    manifest = json.loads(artifact.with_suffix(".json").read_text())
    assert manifest["artifact_name"] == artifact.name and manifest["layout"] == "parts"
    # the original's single file at the returned path, and the parts pool beside it
    assert artifact.is_file() and artifact.stat().st_size == manifest["file_size"]
    assert hashlib.sha256(artifact.read_bytes()).hexdigest() == manifest["file_sha256"]
    assert artifact.read_bytes().startswith(b"#!/usr/bin/env python3.")
    with zipfile.ZipFile(artifact) as zf:
        single_info = json.loads(zf.read("PEX-INFO"))
    assert single_info["inherit_path"] == "fallback"
    pool = artifact.parent / ".cluster-pack-parts"
    for part in manifest["parts"]:
        assert (pool / part["sha256"]).stat().st_size == part["size"]
    assert manifest["size"] == sum(p["size"] for p in manifest["parts"])
    assert first["written"] >= manifest["size"] + manifest["file_size"]
    assert any(p.startswith("numpy==") for p in manifest["package_installed"])
    assert not any(p.startswith("toyproj") for p in manifest["package_installed"])
    assert {"numpy", "six", "pex"} <= set(pex_distributions(artifact))
    assert sorted(single_info["distributions"]) == sorted(json.loads(
        (pool / parts_by_path(artifact)["PEX-INFO"]["sha256"]).read_text())["distributions"])

    seen = run_job(packed_venv, store_dir, first["path"])
    assert seen["toy"] == "v1"
    # nothing of the packing venv leaks into the container
    packing = str(packed_venv.root)
    assert packing not in (seen["venv"] or "") and packing not in seen["exe"]
    assert not [p for p in seen["sys_path"] if p.startswith(packing)]


def test_the_returned_path_runs_alone_with_a_bare_interpreter(packed_venv, store_dir, tmp_path):
    """`python PATH` and `./PATH` with nothing but an interpreter, as 0.3.19's artifact ran."""
    path = Path(upload(packed_venv, store_dir, only_packages=["numpy", "six"])["path"])
    base = Path(packed_venv.base_python)
    code = "import numpy, six, sys; print(numpy.__version__, six.__name__, sys.prefix)"
    bare = {"PEX_ROOT": str(tmp_path / "pex_root"), "PATH": str(base.parent)}
    by_python = subprocess.run(["env", "-i", *[f"{k}={v}" for k, v in bare.items()],
                                str(base), str(path), "-c", code],
                               capture_output=True, text=True, cwd=tmp_path)
    assert by_python.returncode == 0, by_python.stderr
    assert by_python.stdout.split()[1] == "six"
    assert str(tmp_path / "pex_root") in by_python.stdout.split()[2]
    by_itself = subprocess.run(["env", "-i", *[f"{k}={v}" for k, v in bare.items()],
                                f"./{path.name}", "-c", code],
                               capture_output=True, text=True, cwd=path.parent)
    assert by_itself.returncode == 0, by_itself.stderr
    # PYTHONPATH is honoured, as by the original's zipapp (Spark puts pyspark.zip there)
    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "from_pythonpath.py").write_text("WHERE = 'pythonpath'\n")
    with_path = subprocess.run(
        ["env", "-i", *[f"{k}={v}" for k, v in bare.items()], f"PYTHONPATH={extra}",
         str(base), str(path), "-c", "import from_pythonpath; print(from_pythonpath.WHERE)"],
        capture_output=True, text=True, cwd=tmp_path)
    assert with_path.stdout.split() == ["pythonpath"], with_path.stderr


def test_default_noop_keeps_the_single_file_and_parts(packed_venv, store_dir):
    first = upload(packed_venv, store_dir, only_packages=["six"])
    before = published_state(first["path"]), Path(first["path"]).stat().st_ino
    again = upload(packed_venv, store_dir, only_packages=["six"])
    assert not again["built"] and again["writes"] == [] and again["builds"] == 0
    assert (published_state(first["path"]), Path(first["path"]).stat().st_ino) == before
    # a single file removed by hand is noticed and published again
    Path(first["path"]).unlink()
    repaired = upload(packed_venv, store_dir, only_packages=["six"])
    assert repaired["built"] and Path(first["path"]).is_file()


def test_second_call_is_a_noop_and_force_rebuilds(packed_venv, store_dir, job):
    upload = partial(globals()["upload"], env=PARTS_LAYOUT)
    first = upload(packed_venv, store_dir)
    assert first["builds"] == 1 and first["writes"]
    before = published_state(first["path"])
    assert len(before[0]) == len(parts_by_path(first["path"]))  # one pool file per part

    again = upload(packed_venv, store_dir)
    assert not again["built"] and again["written"] == 0 and again["path"] == first["path"]
    assert again["builds"] == 0 and again["writes"] == []
    assert published_state(first["path"]) == before
    assert not list((store_dir / "build").glob("*")) if (store_dir / "build").exists() else True

    forced = upload(packed_venv, store_dir, force_upload=True)
    assert forced["built"] and forced["builds"] == 1 and forced["reason"] == "forced"
    pool, manifest_inode, manifest_bytes, _ = published_state(first["path"])
    assert manifest_inode != before[1]  # a new manifest (created_at), published anew
    # the same content gives the same parts: none rewritten, only the manifest written
    assert pool == before[0]
    assert forced["writes"] == [str(Path(first["path"]).with_suffix(".json"))]
    assert forced["written"] == len(manifest_bytes)
    assert run_job(packed_venv, store_dir, first["path"])["toy"] == "v1"


def test_changing_one_package_writes_only_its_part_and_the_manifest(packed_venv, store_dir):
    upload = partial(globals()["upload"], env=PARTS_LAYOUT)
    target = str(store_dir / "delta.pex")
    first = upload(packed_venv, store_dir, package_path=target, only_packages=["numpy"])
    before = pool_files(target)
    first_parts = parts_by_path(target)

    added = upload(packed_venv, store_dir, package_path=target, only_packages=["numpy", "six"])
    assert added["built"]
    now = parts_by_path(target)
    six = next(p for path, p in now.items() if path.startswith(".deps/six-"))
    new = {p["sha256"] for p in now.values()} - before.keys()
    # six, plus the small files naming the distributions (PEX-INFO, the entry points)
    assert six["sha256"] in new
    assert {p["path"] for p in now.values() if p["sha256"] in new} <= {
        six["path"], "PEX-INFO", "__main__.py", "__pex__/__init__.py"}
    manifest_size = Path(target).with_suffix(".json").stat().st_size
    new_bytes = sum(p["size"] for p in now.values() if p["sha256"] in new)
    assert added["written"] == new_bytes + manifest_size
    assert added["written"] <= (2 * six["size"] + manifest_size + now["PEX-INFO"]["size"]
                                + now["__main__.py"]["size"])
    numpy = next(path for path in first_parts if path.startswith(".deps/numpy-"))
    assert now[numpy] == first_parts[numpy]  # the same part, reused
    after = pool_files(target)
    assert {sha: after[sha] for sha in before} == before  # old parts untouched (inode, mtime)
    pool = Path(target).parent / ".cluster-pack-parts"
    assert sorted(added["writes"]) == sorted(
        [str(pool / sha) for sha in new] + [str(Path(target).with_suffix(".json"))])

    # back to numpy alone: every part is already in the pool, only the manifest is written
    removed = upload(packed_venv, store_dir, package_path=target, only_packages=["numpy"])
    assert removed["built"] and removed["writes"] == [str(Path(target).with_suffix(".json"))]
    assert pool_files(target) == after
    assert {p["sha256"] for p in parts_by_path(target).values()} == \
        {p["sha256"] for p in first_parts.values()}
    assert first["written"] > removed["written"]


NO_DISTZIP_FOR_SIX = """
from cluster_pack.pack import distzip
_plan = distzip.plan
def plan(dist, prefix):
    if dist.key == "six":
        raise distzip.Unsupported("six: made unsupported by the test")
    return _plan(dist, prefix)
distzip.plan = plan
distzip.DistZipCache.get = lambda self, key: None  # six was zipped by an earlier call
"""


def numpy_zip_names(path):
    part = next(p for name, p in parts_by_path(path).items() if name.startswith(".deps/numpy-"))
    with zipfile.ZipFile(Path(path).parent / ".cluster-pack-parts" / part["sha256"]) as zf:
        return set(zf.namelist())


def test_a_distribution_distzip_cannot_pack_sends_the_build_to_pex(packed_venv, store_dir, job):
    direct = upload(packed_venv, store_dir, package_path=str(store_dir / "direct.pex"))
    # distzip leaves entry-point scripts to the node; pex puts numpy's f2py in the zip
    assert not [n for n in numpy_zip_names(direct["path"]) if n.startswith(".prefix/bin/")]

    args = f"package_path={str(store_dir / 'fallback.pex')!r}"
    fallback = packed_venv.json(NO_DISTZIP_FOR_SIX + UPLOAD.format(kwargs=args), store_dir)
    assert fallback["built"]
    assert ".prefix/bin/f2py" in numpy_zip_names(fallback["path"])
    assert {"numpy", "six"} <= set(pex_distributions(fallback["path"]))
    assert run_job(packed_venv, store_dir, fallback["path"])["toy"] == "v1"
    assert run_job(packed_venv, store_dir, direct["path"])["toy"] == "v1"


def test_editable_edit_shows_up_without_rebuilding(packed_venv, store_dir, job):
    path = upload(packed_venv, store_dir)["path"]
    before = published_state(path)
    assert run_job(packed_venv, store_dir, path)["toy"] == "v1"
    packed_venv.set_toy_value("edited")
    again = upload(packed_venv, store_dir)
    assert not again["built"] and again["writes"] == []
    assert run_job(packed_venv, store_dir, path)["toy"] == "edited"
    assert published_state(path) == before


def test_ignored_and_only_packages_change_the_content(packed_venv, store_dir):
    ignored = upload(packed_venv, store_dir, package_path=str(store_dir / "a.pex"),
                     ignored_packages=["numpy"])
    assert "numpy" not in pex_distributions(ignored["path"])
    only = upload(packed_venv, store_dir, package_path=str(store_dir / "b.pex"),
                  only_packages=["six"])
    assert pex_distributions(only["path"]) == ["six"]
    manifest = json.loads((store_dir / "b.json").read_text())
    assert [p.split("==")[0] for p in manifest["package_installed"]] == ["six"]


def test_additional_package_is_resolved_and_added(packed_venv, store_dir):
    result = upload(packed_venv, store_dir, package_path=str(store_dir / "c.pex"),
                    additional_packages={"tomli-w": "1.0.0"})
    assert "tomli_w" in pex_distributions(result["path"])
    assert "numpy" in pex_distributions(result["path"])


def test_unresolvable_additional_package_fails_cleanly_and_writes_nothing(packed_venv, store_dir):
    proc = packed_venv.run(
        "import cluster_pack\n"
        "cluster_pack.upload_env(package_path=%r, "
        "additional_packages={'no-such-package-cpack-test': '9.9.9'})" % str(store_dir / "d.pex"),
        store_dir, env={"UV_OFFLINE": "1"}, check=False)
    assert proc.returncode != 0
    assert "PackageSelectionError" in proc.stderr
    assert "no-such-package-cpack-test" in proc.stderr
    assert not [p for p in os.listdir(store_dir) if p.startswith("d.")]


@pytest.fixture
def http_server(tmp_path):
    handler = partial(SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield tmp_path, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_upload_zip_from_a_local_file_and_from_http(packed_venv, store_dir, http_server, job):
    built = upload(packed_venv, store_dir, env=PEX_LAYOUT, package_path=str(store_dir / "src.pex"))
    served_dir, base_url = http_server
    (served_dir / "served.pex").write_bytes(Path(built["path"]).read_bytes())

    code = ("import json, cluster_pack\n"
            "a = cluster_pack.upload_zip(%r, package_path=%r)\n"
            "b = cluster_pack.upload_zip(%r, package_path=%r)\n"
            "print(json.dumps([a, b]))")
    a, b = packed_venv.json(code % (built["path"], str(store_dir / "copy.pex"),
                                    f"{base_url}/served.pex", str(store_dir / "web.pex")),
                            store_dir)
    for path in (a, b):
        assert Path(path).read_bytes() == Path(built["path"]).read_bytes()
        manifest = json.loads(Path(path).with_suffix(".json").read_text())
        assert any(p.startswith("numpy==") for p in manifest["package_installed"])
    assert run_job(packed_venv, store_dir, b)["toy"] == "v1"


def test_upload_zip_refuses_zip_slip_entries(packed_venv, store_dir):
    evil = store_dir / "evil.pex"
    with zipfile.ZipFile(evil, "w") as zf:
        zf.writestr("PEX-INFO", "{}")
        zf.writestr("../../escape.py", "print('owned')")
    proc = packed_venv.run("import cluster_pack; cluster_pack.upload_zip(%r, package_path=%r)"
                           % (str(evil), str(store_dir / "out.pex")), store_dir, check=False)
    assert proc.returncode != 0 and "outside the directory" in proc.stderr
    assert not (store_dir / "out.pex").exists()


JOBS_FROM_JOBS = """
import json, os
from cluster_pack.launch import local as runner

def child():
    import toyproj, os
    return ["child", toyproj.VALUE, os.environ["C_PACK_PACKAGE_PATH"]]

def parent():
    import cluster_pack
    from cluster_pack.launch import local as runner
    path, name = cluster_pack.upload_env()
    return [path, runner.run_function(child)]

path = {path!r}
print(json.dumps(runner.run_function(parent, package_path=path)))
"""


def test_jobs_launched_from_jobs_reuse_the_published_environment(packed_venv, store_dir, job):
    path = upload(packed_venv, store_dir)["path"]
    envs = Path(path).parent
    before, state = store_tree(envs), published_state(path)
    inner_path, child = packed_venv.json(JOBS_FROM_JOBS.format(path=path), store_dir)
    assert inner_path == path
    assert child == ["child", "v1", path]
    # nothing was repacked or rewritten, nor added next to it
    assert store_tree(envs) == before and published_state(path) == state


def test_large_env_gets_the_pex_zip_beside_its_parts_and_runs(packed_venv, store_dir, job):
    # a 1-byte threshold makes this small venv "too large for a zipapp": the single file
    # is the original's .pex.zip (unpacked as pyenv/), the parts have no limit
    result = upload(packed_venv, store_dir, env={"C_PACK_LARGE_PEX_THRESHOLD": "1"},
                    package_path=str(store_dir / "big.pex"))
    assert result["path"] == str(store_dir / "big.pex.zip")
    manifest = json.loads((store_dir / "big.pex.json").read_text())
    assert manifest["layout"] == "parts" and manifest["file_sha256"]
    with zipfile.ZipFile(store_dir / "big.pex.zip") as zf:
        names = zf.namelist()
    assert "__main__.py" in names and any(n.startswith(".deps/numpy-") for n in names)
    assert run_job(packed_venv, store_dir, result["path"])["toy"] == "v1"
    # parts only: no zipapp limit, nothing at the path
    parts_only = upload(packed_venv, store_dir, package_path=str(store_dir / "p.pex"),
                        env={"C_PACK_LARGE_PEX_THRESHOLD": "1", **PARTS_LAYOUT})
    assert parts_only["path"] == str(store_dir / "p.pex") and not Path(parts_only["path"]).exists()
    assert run_job(packed_venv, store_dir, parts_only["path"])["toy"] == "v1"


def test_large_layout_is_chosen_automatically_with_the_pex_layout(packed_venv, store_dir, job):
    # a 1-byte threshold makes this small venv "too large for a zipapp"
    code = ("import json; from cluster_pack.store import publish\n"
            "r = publish.publish_env(package_path=%r)\n"
            "print(json.dumps(r.path))") % str(store_dir / "big.pex")
    path = packed_venv.json(code, store_dir, env={"C_PACK_LARGE_PEX_THRESHOLD": "1",
                                                  **PEX_LAYOUT})
    assert path == str(store_dir / "big.pex.zip")
    manifest = json.loads((store_dir / "big.pex.json").read_text())
    assert manifest["layout"] == "pex.zip" and manifest["run"]["must_unpack"]
    with zipfile.ZipFile(path) as zf:
        assert "__main__.py" in zf.namelist() and "PEX-INFO" in zf.namelist()
    seen = run_job(packed_venv, store_dir, path)
    assert seen["toy"] == "v1" and "/pex_root/" in seen["exe"]


def test_allow_large_pex_flag_is_honoured(packed_venv, store_dir):
    result = upload(packed_venv, store_dir, package_path=str(store_dir / "flag.pex"),
                    allow_large_pex=True, only_packages=["six"])
    assert result["path"].endswith("flag.pex.zip") and Path(result["path"]).is_file()
    assert json.loads((store_dir / "flag.pex.json").read_text())["file_sha256"]
    single = upload(packed_venv, store_dir, package_path=str(store_dir / "one.pex"),
                    allow_large_pex=True, only_packages=["six"], env=PEX_LAYOUT)
    assert single["path"].endswith("one.pex.zip")
    assert json.loads((store_dir / "one.pex.json").read_text())["layout"] == "pex.zip"


def test_switching_layouts_replaces_the_published_environment(packed_venv, store_dir):
    target = store_dir / "switch.pex"
    single = upload(packed_venv, store_dir, env=PEX_LAYOUT, package_path=str(target),
                    only_packages=["six"])
    assert single["built"] and target.is_file()
    parts = upload(packed_venv, store_dir, env=PARTS_LAYOUT, package_path=str(target),
                   only_packages=["six"])
    assert parts["built"]  # the layout is part of the fingerprint
    assert json.loads((store_dir / "switch.json").read_text())["layout"] == "parts"
    assert not target.exists()  # the stale single file would be another environment
    back = upload(packed_venv, store_dir, env=PEX_LAYOUT, package_path=str(target),
                  only_packages=["six"])
    assert back["built"] and target.is_file()
    assert json.loads((store_dir / "switch.json").read_text())["layout"] == "pex"
    assert pex_distributions(target) == ["six"]


def test_upload_spec_builds_from_a_requirements_file(packed_venv, store_dir):
    project = store_dir.parent / "proj"
    project.mkdir()
    (project / "requirements.txt").write_text("six==1.16.0\n")
    code = ("import json, cluster_pack\n"
            "a = cluster_pack.upload_spec(%r, package_path=%r)\n"
            "b = cluster_pack.upload_spec(%r, package_path=%r)\n"
            "print(json.dumps([a, b]))") % ((str(project / "requirements.txt"),
                                             str(store_dir / "specs")) * 2)
    first, second = packed_venv.json(code, store_dir)
    assert first == second == str(store_dir / "specs" / "cluster_pack_proj.pex")
    assert pex_distributions(first) == ["six"]
    manifest = json.loads((store_dir / "specs" / "cluster_pack_proj.json").read_text())
    assert manifest["fingerprint"].startswith("spec:")


def test_upload_spec_resolves_from_c_pack_pypi_url(packed_venv, store_dir, tmp_path):
    """A PEP 503 index on loopback serving one wheel: the spec is resolved from it."""
    served = tmp_path / "index"
    wheels = served / "files"
    proc = subprocess.run([sys.executable, "-m", "pip", "download", "--quiet",
                           "--no-deps", "--only-binary=:all:", "-d", str(wheels),
                           "six==1.16.0"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    (wheel,) = wheels.iterdir()
    (served / "simple" / "six").mkdir(parents=True)
    (served / "simple" / "six" / "index.html").write_text(
        f'<html><body><a href="../../files/{wheel.name}">{wheel.name}</a></body></html>\n')
    requested = []

    class Handler(SimpleHTTPRequestHandler):
        def log_message(self, fmt, *args):
            requested.append(self.path)

    server = HTTPServer(("127.0.0.1", 0), partial(Handler, directory=str(served)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        project = store_dir.parent / "idx"
        project.mkdir()
        (project / "requirements.txt").write_text("six==1.16.0\n")
        code = ("import json, cluster_pack\n"
                "print(json.dumps(cluster_pack.upload_spec(%r, package_path=%r)))"
                % (str(project / "requirements.txt"), str(store_dir / "idx")))
        index = f"http://127.0.0.1:{server.server_address[1]}/simple"
        path = packed_venv.json(code, store_dir, env={"C_PACK_PYPI_URL": index})
    finally:
        server.shutdown()
    assert pex_distributions(path) == ["six"]
    # the project page was read from the index (the wheel itself may come from pex's cache)
    assert "/simple/six/" in requested, requested


def test_env_fallback_path_is_reused_when_it_matches(packed_venv, store_dir):
    # the fallback is a single-file pex: only the pex layout can take it as is
    first = upload(packed_venv, store_dir, env=PEX_LAYOUT,
                   package_path=str(store_dir / "prebuilt.pex"), only_packages=["six"])
    prebuilt = store_dir.parent / "prebuilt-copy.pex"
    prebuilt.write_bytes(Path(first["path"]).read_bytes())
    code = ("import json, logging, cluster_pack\n"
            "from cluster_pack.store import publish\n"
            "r = publish.publish_env(package_path=%r, only_packages=['six'])\n"
            "print(json.dumps(r.path))") % str(store_dir / "reused.pex")
    fallback = {"C_PACK_ENV_FALLBACK_PATH": str(prebuilt), **PEX_LAYOUT}
    path = packed_venv.json(code, store_dir, env=fallback)
    assert Path(path).read_bytes() == prebuilt.read_bytes()  # taken as is, not rebuilt
    # a fallback that does not match the selection is ignored: numpy gets built
    code2 = code.replace("only_packages=['six']", "only_packages=['six', 'numpy']").replace(
        "reused.pex", "rebuilt.pex")
    path2 = packed_venv.json(code2, store_dir, env=fallback)
    assert pex_distributions(path2) == ["numpy", "six"]
    # the parts layout builds from the venv, whatever the fallback
    path3 = packed_venv.json(code.replace("reused.pex", "parts.pex"), store_dir,
                             env={"C_PACK_ENV_FALLBACK_PATH": str(prebuilt), **PARTS_LAYOUT})
    assert json.loads(Path(path3).with_suffix(".json").read_text())["layout"] == "parts"
    assert pex_distributions(path3) == ["six"] and not Path(path3).exists()


# -- the original's single file (issue 14) ---------------------------------------------

def _bare_run(venv, artifact, code, tmp, env=None):
    """``python ARTIFACT -c CODE`` with nothing but the bare interpreter, in ``tmp``."""
    bare = {"PEX_ROOT": str(tmp / "pex_root"), "PATH": str(Path(venv.base_python).parent),
            **(env or {})}
    return subprocess.run(["env", "-i", *[f"{k}={v}" for k, v in bare.items()],
                           venv.base_python, str(artifact), "-c", code],
                          capture_output=True, text=True, cwd=tmp)


def test_include_editable_bakes_the_editable_projects_into_the_single_file(
        packed_venv, store_dir, tmp_path):
    target = str(store_dir / "with-editables.pex")
    first = upload(packed_venv, store_dir, package_path=target, include_editable=True,
                   only_packages=["six"])
    alone = tmp_path / "alone"
    alone.mkdir()
    shipped = alone / "with-editables.pex"
    shipped.write_bytes(Path(first["path"]).read_bytes())  # nothing shipped beside it
    run = _bare_run(packed_venv, shipped, "import toyproj, cluster_pack; print(toyproj.VALUE)",
                    alone)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["v1"]
    try:
        packed_venv.set_toy_value("edited")  # an edit changes what must be baked in
        again = upload(packed_venv, store_dir, package_path=target, include_editable=True,
                       only_packages=["six"])
        assert again["built"]
        shipped.write_bytes(Path(again["path"]).read_bytes())
        run = _bare_run(packed_venv, shipped, "import toyproj; print(toyproj.VALUE)", alone)
        assert run.stdout.split() == ["edited"], run.stderr
    finally:
        packed_venv.set_toy_value("v1")
    # without the flag, the artifact alone does not have them (they ship at launch)
    plain = upload(packed_venv, store_dir, package_path=str(store_dir / "plain.pex"),
                   only_packages=["six"])
    run = _bare_run(packed_venv, plain["path"], "import toyproj", tmp_path)
    assert run.returncode != 0 and "toyproj" in run.stderr


def test_packages_left_out_are_found_on_the_node_like_inherit_path_fallback(
        packed_venv, store_dir, tmp_path):
    """0.3.19 built with --inherit-path=fallback: ignored packages come from the node."""
    path = upload(packed_venv, store_dir, ignored_packages=["six"],
                  package_path=str(store_dir / "no-six.pex"))["path"]
    with zipfile.ZipFile(path) as zf:
        info = json.loads(zf.read("PEX-INFO"))
        assert not any(n.startswith(".deps/six-") for n in zf.namelist())
    assert info["inherit_path"] == "fallback" and info["venv_system_site_packages"]
    # the node's own site-packages: here the user site of the node's interpreter
    version = subprocess.run([packed_venv.base_python, "-c",
                              "import sys; print('%d.%d' % sys.version_info[:2])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    node_site = tmp_path / "userbase" / "lib" / f"python{version}" / "site-packages"
    node_site.mkdir(parents=True)
    (node_site / "six.py").write_text("NODE = True\n")
    (node_site / "numpy.py").write_text("NODE = True\n")  # the artifact's numpy comes first
    code = "import numpy, six; print(six.__file__, numpy.__file__)"
    run = _bare_run(packed_venv, path, code, tmp_path,
                    env={"PYTHONUSERBASE": str(tmp_path / "userbase")})
    assert run.returncode == 0, run.stderr
    six_file, numpy_file = run.stdout.split()
    # six from the node (its own site-packages, or our user site when it has none)
    assert not six_file.startswith(str(tmp_path / "pex_root"))
    assert numpy_file.startswith(str(tmp_path / "pex_root"))


def test_pex_layout_packs_a_venv_with_a_dependency_not_installed(store_dir, tmp_path):
    """A --no-deps install leaves a requirement unsatisfied: the pex tool refused such a
    venv, the single file is built from the installed files like the parts."""
    venv = TestVenv(build_venv(tmp_path / "venv", ["six"], editables=[REPO]), tmp_path)
    site = next((venv.root / "lib").glob("python*/site-packages"))
    dist_info = site / "needy-1.0.dist-info"
    dist_info.mkdir()
    (site / "needy.py").write_text("VALUE = 'needy'\n")
    files = {"METADATA": "Metadata-Version: 2.1\nName: needy\nVersion: 1.0\n"
                         "Requires-Dist: not-installed-anywhere>=1\n\n",
             "WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n"
                      "Tag: py3-none-any\n"}
    for name, text in files.items():
        (dist_info / name).write_text(text)
    (dist_info / "RECORD").write_text(
        "needy.py,,\nneedy-1.0.dist-info/METADATA,,\nneedy-1.0.dist-info/WHEEL,,\n"
        "needy-1.0.dist-info/RECORD,,\n")
    for layout in ("pex", "pex+parts"):
        path = upload(venv, store_dir, env={"C_PACK_LAYOUT": layout},
                      package_path=str(store_dir / f"needy-{layout}.pex"),
                      only_packages=["needy", "six"])["path"]
        run = _bare_run(venv, path, "import needy, six; print(needy.VALUE)", tmp_path)
        assert run.returncode == 0, (layout, run.stderr)
        assert run.stdout.split() == ["needy"]
