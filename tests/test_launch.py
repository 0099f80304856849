import json
import subprocess
import sys

import pytest

from cluster_pack.errors import ConfigurationError
from cluster_pack.launch import LaunchSpec, Resource, build_launch_spec, environment_resource
from cluster_pack.manifest import Manifest, run_info_for

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
