import hashlib
import json
import subprocess
import sys
import tempfile

import pytest

from cluster_pack.errors import ConfigurationError
from cluster_pack.launch import script as node_script
from cluster_pack.launch.spec import LaunchSpec, Resource, build_launch_spec, environment_resource
from cluster_pack.pack import parts as parts_module
from cluster_pack.pack.parts import Part, tree_sha256
from cluster_pack.store.manifest import LAYOUT_PARTS, Manifest, run_info_for

HOSTILE = [
    "plain", "with space", "quote'single", 'quote"double', "$HOME", "`id`", "$(id)",
    "a;b", "x && y", "new\nline", "back\\slash", "*", "~", "tab\there", "ünïcødé", "",
]


def test_shell_script_passes_hostile_values_unchanged(tmp_path):
    env = {f"V{i}": v for i, v in enumerate(HOSTILE)}
    probe = ("import json, os, sys; print(json.dumps([sys.argv[1:], "
             "[os.environ[k] for k in sorted(os.environ) if k.startswith('V')]]))")
    spec = LaunchSpec(argv=[sys.executable, "-c", probe, *HOSTILE], env=env)
    script = tmp_path / "run.sh"
    script.write_text(spec.shell_script())
    out = subprocess.run(["bash", str(script)], capture_output=True, text=True, cwd=tmp_path,
                         env={"PATH": "/usr/bin:/bin"}, check=True).stdout
    args, values = json.loads(out)
    assert args == HOSTILE
    assert values == [env[k] for k in sorted(env)]


def test_invalid_environment_variable_names_are_refused():
    spec = LaunchSpec(argv=["true"], env={"BAD NAME": "x"})
    with pytest.raises(ConfigurationError, match="BAD NAME"):
        spec.shell_script()


def test_pre_script_hook_runs_before_the_command(tmp_path):
    spec = LaunchSpec(argv=["cat", "hook.txt"])
    script = tmp_path / "run.sh"
    script.write_text(spec.shell_script(pre_script_hook="echo from-hook > hook.txt"))
    out = subprocess.run(["bash", str(script)], capture_output=True, text=True, cwd=tmp_path)
    assert out.stdout.strip() == "from-hook"


def test_environment_resource_kinds():
    assert environment_resource("hdfs:///e/x.pex") == Resource("hdfs:///e/x.pex", "x.pex", "file",
                                                                shared=True)
    large = environment_resource("hdfs:///e/x.pex.zip")
    assert (large.name, large.kind) == ("pyenv", "archive")


def test_launch_spec_for_a_published_env_without_editables(tmp_path):
    manifest = Manifest("f" * 64, "x.pex", 10, "a" * 64, [], "p", "3.11", run_info_for("x.pex"))
    spec = build_launch_spec(["-m", "job", "--day", "1"], package_path="/envs/x.pex",
                             env_vars={"MY_VAR": "1"}, additional_files=["/tmp/conf.yaml"],
                             include_editables=False, manifest=manifest)
    assert spec.argv == ["./x.pex", "-m", "job", "--day", "1"]
    assert [r.name for r in spec.resources] == ["x.pex", "conf.yaml"]
    assert spec.resources[0].sha256 == "a" * 64
    assert spec.env["C_PACK_PACKAGE_PATH"] == "/envs/x.pex"
    assert spec.env["MY_VAR"] == "1"
    assert spec.env["PEX_EXTRA_SYS_PATH"] == "."


def test_launch_spec_for_a_parts_environment(tmp_path):
    parts = [Part("__main__.py", "1" * 64, 10, True), Part("PEX-INFO", "2" * 64, 20),
             Part(".deps/a.whl", "3" * 64, 30), Part(".deps/copy-of-a.whl", "3" * 64, 30)]
    manifest = Manifest("f" * 64, "x.pex", 90, tree_sha256(parts), [], "p", "3.11",
                        run_info_for("x.pex", LAYOUT_PARTS), layout=LAYOUT_PARTS, parts=parts)
    spec = build_launch_spec(["-m", "job"], package_path="hdfs:///envs/x.pex",
                             include_editables=False, manifest=manifest)
    assert spec.argv == ["./x.pex/__main__.py", "-m", "job"]
    assert spec.artifact_name == "x.pex"
    # one resource per distinct part, under its content name, shared, with its digest
    assert [(r.source, r.name, r.size, r.sha256, r.shared, r.kind) for r in spec.resources] == [
        (f"hdfs:///envs/.cluster-pack-parts/{p.sha256}", parts_module.link_name(p), p.size,
         p.sha256, True, "file") for p in parts[:3]]
    assert spec.setup == node_script.assembly_script("x.pex", parts)
    script = spec.shell_script()
    assert script.index(spec.setup.splitlines()[0]) < script.index("./x.pex/__main__.py")


def test_the_assembled_parts_run_through_the_generated_script(tmp_path):
    main = b"import sys; print('ran', open(sys.argv[1]).read())\n"
    files = {"__main__.py": main, "PEX-INFO": b"{}", ".deps/data.txt": b"from a part"}
    parts = [Part(p, hashlib.sha256(d).hexdigest(), len(d), p == "__main__.py")
             for p, d in files.items()]
    for part in parts:
        (tmp_path / parts_module.link_name(part)).write_bytes(files[part.path])
    manifest = Manifest("f" * 64, "x.pex", 0, tree_sha256(parts), [], "p", "3.11",
                        run_info_for("x.pex", LAYOUT_PARTS), layout=LAYOUT_PARTS, parts=parts)
    spec = build_launch_spec(["x.pex/.deps/data.txt"], package_path="/envs/x.pex",
                             include_editables=False, manifest=manifest)
    assert spec.argv[0] == "./x.pex/__main__.py"
    spec.argv.insert(0, sys.executable)  # the fake __main__.py has no shebang
    (tmp_path / "run.sh").write_text(spec.shell_script())
    out = subprocess.run(["bash", "run.sh"], cwd=tmp_path, capture_output=True, text=True,
                         env={"PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ran from a part"


@pytest.fixture
def fake_env(tmp_path, monkeypatch):
    """A published "environment" that is this interpreter (a shell script named .pex), with
    temporary directories made in ``tmp_path/tmp`` and no editable project shipped."""
    from cluster_pack.launch import spec as spec_module

    env = tmp_path / "envs" / "fake.pex"
    env.parent.mkdir()
    env.write_text(f'#!/bin/sh\nexec {sys.executable} "$@"\n')
    env.chmod(0o755)
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    monkeypatch.setenv("C_PACK_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(spec_module, "editable_resources", lambda workdir=None: [])
    return str(env), scratch


def test_run_function_returns_the_result_and_leaves_no_temporary_directory(fake_env):
    from cluster_pack.launch import local

    package_path, scratch = fake_env
    offset = 40
    assert local.run_function(lambda x: x + offset, [2], package_path=package_path) == 42
    assert local.run_function(lambda: "again", package_path=package_path) == "again"
    assert list(scratch.iterdir()) == []


def test_run_function_failure_names_the_function_and_leaves_no_temporary_directory(fake_env):
    from cluster_pack.errors import JobFailedError
    from cluster_pack.launch import local

    package_path, scratch = fake_env

    def broken():
        raise KeyError("kaboom")

    with pytest.raises(JobFailedError, match=r"(?s)broken failed in the packed environment "
                                             r".*fake\.pex.*KeyError: 'kaboom'") as info:
        local.run_function(broken, package_path=package_path)
    assert isinstance(info.value, RuntimeError)  # what the function documented before
    assert list(scratch.iterdir()) == []


def test_run_function_keeps_a_working_directory_the_caller_gave(fake_env, tmp_path):
    from cluster_pack.launch import local

    package_path, scratch = fake_env
    mine = tmp_path / "mine"
    assert local.run_function(lambda: 1, package_path=package_path, workdir=mine) == 1
    assert (mine / "launch_container.sh").is_file()
    assert list(scratch.iterdir()) == []
