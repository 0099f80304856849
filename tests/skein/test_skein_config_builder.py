"""skein_config_builder: LaunchSpec -> SkeinConfig, and the script really runs (local bash)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import skein

from cluster_pack.launch import spec as launch
from cluster_pack.launch import yarn
from cluster_pack.skein import skein_config_builder as scb
from cluster_pack.store import parts_pool

NASTY = ["two words", "it's", 'say "hi"', "$HOME", "${PATH}", "a;b", "`id`", "$(id)",
         "line1\nline2", "back\\slash", "*", "", "tab\there", "&& echo pwned |", "'"]


def test_build_module_files_env_and_types(fake_artifact):
    extra = fake_artifact.parent / "conf.json"
    extra.write_text("{}")
    config = scb.build("my_pkg.job", ["a"], package_path=str(fake_artifact),
                       additional_files=[str(extra)])
    assert isinstance(config, scb.SkeinConfig)
    assert config.env == {"SKEIN_CONFIG": "./.skein", "GIT_PYTHON_REFRESH": "quiet"}
    assert set(config.files) == {"env.pex", "conf.json"}
    pex = config.files["env.pex"]
    assert isinstance(pex, skein.File)
    assert str(pex.type) == "FILE"
    assert pex.source == f"file://{fake_artifact}"
    # a local artifact is uploaded per application: no cross-application cache to hope for
    assert str(pex.visibility) == "APPLICATION"
    assert "./env.pex -m my_pkg.job a\n" in config.script
    assert 'export C_PACK_LOCAL_ARTIFACT="$PWD"/env.pex' in config.script
    assert "export C_PACK_PACKAGE_PATH=" in config.script


def test_remote_artifact_is_private_and_large_layout_is_an_archive():
    spec = launch.module_launch_spec("m", package_path="hdfs://nn:8020/user/me/envs/big.pex.zip")
    files = yarn.files_of(spec)
    assert list(files) == ["pyenv"]
    assert str(files["pyenv"].type) == "ARCHIVE"
    assert str(files["pyenv"].visibility) == "PRIVATE"  # YARN caches it per node and user
    assert files["pyenv"].source == "hdfs://nn:8020/user/me/envs/big.pex.zip"
    assert "pyenv/__main__.py -m m" in yarn.container_script(spec)


def test_s3_sources_are_read_through_s3a():
    spec = launch.module_launch_spec("m", package_path="s3://bucket/envs/e.pex")
    assert yarn.files_of(spec)["e.pex"].source == "s3a://bucket/envs/e.pex"


def test_build_with_func_ships_the_pickled_function(fake_artifact, tmp_path):
    config = scb.build_with_func(lambda x: x, [1], package_path=str(fake_artifact),
                                 tmp_dir=str(tmp_path), log_level="DEBUG")
    names = [n for n in config.files if n.startswith("function_")]
    assert len(names) == 1 and (tmp_path / names[0]).exists()
    assert str(config.files[names[0]].visibility) == "APPLICATION"
    assert f"-m cluster_pack_runner {names[0]} DEBUG" in config.script


def test_args_with_shell_metacharacters_arrive_unchanged(fake_artifact, container, tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text("import json, os, sys\n"
                     "print('PROBE' + json.dumps({'argv': sys.argv[1:], "
                     "'env': os.environ.get('NASTY_VAR'), 'pex_root': os.environ['PEX_ROOT']}))\n")
    spec = launch.build_launch_spec([probe.name, *NASTY], package_path=str(fake_artifact),
                                    additional_files=[str(probe)],
                                    env_vars={"NASTY_VAR": "\n".join(NASTY)})
    out = container(yarn.container_script(spec), yarn.files_of(spec))
    assert out.returncode == 0, out.stderr
    assert "pwned" not in out.stdout.replace("&& echo pwned |", "")
    payload = json.loads(out.stdout.split("PROBE", 1)[1])
    assert payload["argv"] == NASTY
    assert payload["env"] == "\n".join(NASTY)
    assert payload["pex_root"].endswith("/home/.cache/cluster-pack/pex_root")


def test_pex_root_falls_back_to_the_working_dir_without_a_writable_home(fake_artifact,
                                                                        container, tmp_path):
    config = scb.build("os", package_path=str(fake_artifact))  # python -m os: no output
    script = config.script.replace(" -m os", " -c 'import os; print(os.environ[\"PEX_ROOT\"])'")
    # the -c argument above was inserted unquoted on purpose: the generated part is quoted
    out = container(script, config.files, env={"HOME": "/proc/cannot-write-here"})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().endswith("/container/.pex")
    out = container(script, config.files, env={"PEX_ROOT": str(tmp_path / "mine")}, name="c2")
    assert out.stdout.strip() == str(tmp_path / "mine")


def test_function_runs_and_its_result_is_logged(fake_artifact, container):
    def add(a, b):
        return {"sum": a + b}

    config = scb.build_with_func(add, [2, 3], package_path=str(fake_artifact))
    out = container(config.script, config.files)
    assert out.returncode == 0, out.stderr
    assert "add returned {'sum': 5}" in out.stderr


def test_failing_function_exit_status_and_traceback(fake_artifact, container):
    def boom():
        raise ValueError("kaboom")

    config = scb.build_with_func(boom, package_path=str(fake_artifact))
    out = container(config.script, config.files)
    assert out.returncode == 1
    assert "Traceback (most recent call last)" in out.stderr
    assert "ValueError: kaboom" in out.stderr


@pytest.mark.parametrize("fails", [False, True])
def test_process_logs_tees_the_output_then_runs(fake_artifact, container, tmp_path, fails):
    def job():
        print("job output with $dollar and `ticks`", flush=True)
        if fails:
            raise RuntimeError("job failed")

    def _record(path):  # nested: cloudpickle ships it by value
        with open(path) as f:
            content = f.read()
        with open("processed.txt", "w") as f:
            f.write("PROCESSED:" + content)

    config = scb.build_with_func(job, package_path=str(fake_artifact), process_logs=_record)
    assert len([n for n in config.files if n.startswith("function_")]) == 2
    out = container(config.script, config.files)
    assert out.returncode == (1 if fails else 0), out.stderr
    assert "job output with $dollar and `ticks`" in out.stdout  # tee: still on stdout
    processed = (tmp_path / "container" / "processed.txt").read_text()
    assert processed.startswith("PROCESSED:")
    assert "job output with $dollar and `ticks`" in processed
    assert ("RuntimeError: job failed" in processed) is fails


def test_process_logs_failure_fails_the_container(fake_artifact, container):
    def bad_hook(path):
        raise OSError("cannot upload " + path)

    config = scb.build("os", package_path=str(fake_artifact), process_logs=bad_hook)
    out = container(config.script, config.files)
    assert out.returncode == 1
    assert "OSError: cannot upload output.log" in out.stdout + out.stderr


def test_execute_fun_module_is_still_runnable(tmp_path):
    import subprocess

    import cloudpickle

    path = tmp_path / "function.dat"
    path.write_bytes(cloudpickle.dumps({"func": print, "args": ["from _execute_fun"]}))
    out = subprocess.run([sys.executable, "-m", "cluster_pack.skein._execute_fun", str(path)],
                         capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "from _execute_fun" in out.stdout


# -- the parts layout (upload_env's default) ---------------------------------------------

def _parts_manifest(name="e.pex"):
    from cluster_pack.pack import parts
    from cluster_pack.store.manifest import Manifest, RunInfo

    part_list = [parts.Part("PEX-INFO", "a" * 64, 10), parts.Part("__main__.py", "b" * 64, 20, True),
                 parts.Part(".deps/six-1.17.0-py2.py3-none-any.whl", "c" * 64, 30),
                 parts.Part(".deps/copy-of-six.whl", "c" * 64, 30)]  # same bytes twice
    return Manifest(fingerprint="f", artifact_name=name, size=90,
                    sha256=parts.tree_sha256(part_list), package_installed=[], platform="",
                    python_version="3.11", run=RunInfo(name, f"./{name}/__main__.py", False),
                    layout="parts", parts=part_list)


@pytest.mark.parametrize("url,hadoop", [
    ("hdfs://nn:8020/user/me/envs/e.pex", "hdfs://nn:8020/user/me/envs"),
    ("s3://bucket/envs/e.pex", "s3a://bucket/envs"),
])
def test_parts_are_private_files_named_by_content(url, hadoop):
    spec = launch.module_launch_spec("m", package_path=url, manifest=_parts_manifest())
    files = yarn.files_of(spec)
    # one resource per distinct part (the same bytes twice are localized once)
    assert sorted(files) == [f"cpack-{c * 32}" for c in "abc"]
    for name, f in files.items():
        assert str(f.type) == "FILE"
        # immutable and named by content: YARN's cache keeps them per node and user, for
        # every application and every version sharing them
        assert str(f.visibility) == "PRIVATE"
        assert f.source == f"{hadoop}/.cluster-pack-parts/{name[len('cpack-'):] * 2}"
    script = yarn.container_script(spec)
    assert script.index("ln -s ../../cpack-" + "c" * 32) < script.index("./e.pex/__main__.py -m m")
    assert 'export C_PACK_LOCAL_ARTIFACT="$PWD"/e.pex' in script


@pytest.fixture
def parts_artifact(tmp_path, monkeypatch):
    """A parts environment published to a local store whose ``__main__.py`` runs this
    interpreter (stands for the packed environment), with the real manifest reader."""
    from cluster_pack.store import publish
    from cluster_pack.store.storage import Store
    from tests.reliability.conftest import make_packed_dir, publish_parts

    main = "os.execv(sys.executable, [sys.executable] + sys.argv[1:])\n"
    url = str(tmp_path / "published" / "env.pex")
    publish_parts(make_packed_dir(tmp_path / "src" / "env.pex", main=main), url)
    monkeypatch.setattr(launch, "read_published_manifest",
                        lambda path, fs_args: publish.read_manifest(*Store.for_url(path)))
    return url


def test_function_runs_from_parts_with_process_logs(parts_artifact, container, tmp_path):
    def add(a, b):
        import os
        print("LOCAL", os.environ["C_PACK_LOCAL_ARTIFACT"], os.path.isdir(
            os.environ["C_PACK_LOCAL_ARTIFACT"]), flush=True)
        return {"sum": a + b}

    def check(path):
        print("PROCESSED", "add returned" in open(path).read(), flush=True)

    config = scb.build_with_func(add, [2, 3], package_path=parts_artifact, process_logs=check,
                                 tmp_dir=str(tmp_path))
    assert all(str(f.visibility) == "APPLICATION" for f in config.files.values())  # local
    out = container(config.script, config.files)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "add returned {'sum': 5}" in out.stdout + out.stderr
    assert "PROCESSED True" in out.stdout
    assert "/env.pex True" in out.stdout  # C_PACK_LOCAL_ARTIFACT: the assembled directory


@pytest.mark.parametrize("damage", ["missing", "truncated"])
def test_a_damaged_pool_is_refused_before_submitting(parts_artifact, damage):
    """YARN checks a resource's timestamp, not its content: a part missing from the pool
    or of another size than the manifest says is refused before the submission."""
    from cluster_pack.errors import IntegrityError
    from cluster_pack.launch.dask import yarn_application_spec

    spec = launch.module_launch_spec("m", package_path=parts_artifact, include_editables=False)
    victim = next(p for p in spec.manifest.parts if p.path.endswith(".whl"))
    pool_file = parts_pool.part_url(parts_artifact, victim)
    data = Path(pool_file).read_bytes()
    Path(pool_file).unlink()  # a hard link to the build's file: never damage that one
    if damage == "truncated":
        Path(pool_file).write_bytes(data[:-10])
    for submit in (lambda: yarn.application_spec(spec),
                   lambda: yarn_application_spec(parts_artifact, include_editables=False)):
        with pytest.raises(IntegrityError) as err:
            submit()
        assert victim.path in str(err.value) and pool_file in str(err.value)


def test_an_unreachable_pool_is_left_to_yarn(caplog):
    spec = launch.module_launch_spec("m", package_path="hdfs://127.0.0.1:1/user/me/envs/e.pex",
                                     manifest=_parts_manifest())
    yarn.check_parts(spec)  # a warning, no exception: YARN reports what it cannot read
    assert "cannot list the parts" in caplog.text
