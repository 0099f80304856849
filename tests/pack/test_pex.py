"""pack.pex: the one function that builds and runs a pex command line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from cluster_pack import packaging
from cluster_pack.errors import BuildError
from cluster_pack.pack import pex


@pytest.fixture
def commands(monkeypatch):
    """The argv and environment of every command run, each succeeding."""
    seen = []

    def fake_run(cmd, **kwargs):
        seen.append((cmd, kwargs.get("env")))
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(pex.subprocess, "run", fake_run)
    return seen


def test_a_failing_pex_is_a_build_error_naming_the_output_with_its_stderr(tmp_path):
    output = tmp_path / "env.pex"
    with pytest.raises(BuildError) as raised:
        pex.run_pex(output, layout="no-such-layout")  # pex's argument parser refuses it
    message = str(raised.value)
    assert message.startswith(f"pex (building {output}) failed (exit 2):\n")
    assert "no-such-layout" in message.splitlines()[-1]  # the tail of pex's stderr
    assert not output.exists()


def test_only_the_tail_of_a_long_stderr_is_kept_and_stdout_is_the_fallback(monkeypatch):
    lines = [f"line {i}" for i in range(100)]
    results = iter([("out", "\n".join(lines)), ("said on stdout", "")])

    def failing(cmd, **kwargs):
        stdout, stderr = next(results)
        return subprocess.CompletedProcess(cmd, 3, stdout, stderr)

    monkeypatch.setattr(pex.subprocess, "run", failing)
    with pytest.raises(BuildError) as raised:
        pex.run_tool(["tool"], "the tool")
    assert str(raised.value).splitlines() == ["the tool failed (exit 3):", *lines[-25:]]
    with pytest.raises(BuildError, match="the tool failed \\(exit 3\\):\nsaid on stdout$"):
        pex.run_tool(["tool"], "the tool")


def test_the_base_options_are_always_given(commands, monkeypatch):
    monkeypatch.setenv("PEX", "/outer/env.pex")
    pex.run_pex(Path("/out/env.pex"))
    (cmd, env), = commands
    assert cmd == [sys.executable, "-m", "pex", "--venv", "--no-emit-warnings",
                   "--max-install-jobs", "0", *pex.PEX_TOOL_OPTIONS, "-o", "/out/env.pex"]
    assert "PEX" not in env  # an outer pex runtime never leaks into the build


def test_every_option_reaches_the_command_line(commands):
    pex.run_pex(Path("/out/env.pex"), layout="packed", python="/py/bin/python",
                requirements=["six==1.17.0"], requirements_file=Path("/r.txt"),
                venv_repository=Path("/venv"), intransitive=True,
                index_urls=["https://a", "https://b"], find_links=["https://f"],
                compress=False, inherit_path="prefer", include_tools=True,
                sources_directory=Path("/src"))
    (cmd, _), = commands
    assert cmd[:3] == ["/py/bin/python", "-m", "pex"]
    args = " ".join(cmd[3:])
    for expected in ("--inherit-path=prefer --venv-system-site-packages", "--layout packed",
                     "--no-compress", "--venv-repository /venv --intransitive",
                     "--index-url=https://a --index-url=https://b", "-f https://f",
                     "--include-tools", "--sources-directory=/src", "-r /r.txt",
                     "six==1.17.0 -o /out/env.pex"):
        assert expected in args


def test_inherit_path_false_leaves_the_system_site_packages_out(commands):
    pex.run_pex(Path("/o.pex"), inherit_path="false", compress=True)
    (cmd, _), = commands
    assert "--inherit-path=false" in cmd and "--venv-system-site-packages" not in cmd
    assert "--non-hermetic-venv-scripts" in cmd and "--compress" in cmd


def test_pex_tool_options_match_what_pex_info_records():
    assert pex.PEX_TOOL_OPTIONS == ["--inherit-path=fallback", "--venv-system-site-packages",
                                    "--non-hermetic-venv-scripts"]
    assert pex.PEX_INFO_OPTIONS == {"inherit_path": "fallback",
                                    "venv_system_site_packages": True,
                                    "venv_hermetic_scripts": False}


def test_pack_in_pex_goes_through_run_pex_and_keeps_its_error(monkeypatch, tmp_path):
    calls = []

    def failing(output, **options):
        calls.append((output, options))
        raise BuildError("pex (building x) failed (exit 1):\nno such distribution")

    monkeypatch.setattr(pex, "run_pex", failing)
    with pytest.raises(packaging.PexCreationError, match="no such distribution"):
        packaging.pack_in_pex(["not-installed-anywhere==1"], str(tmp_path / "env.pex"),
                              additional_repo="https://repo", additional_indexes=["https://f"])
    (output, options), = calls
    assert output == tmp_path / "env.pex"
    assert options["requirements"] == ["not-installed-anywhere==1"]
    assert options["venv_repository"] is None and not options["intransitive"]
    assert options["index_urls"] == ["https://repo"] and options["find_links"] == ["https://f"]
