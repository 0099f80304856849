import json
import sys

import pytest

from cluster_pack import cli


def test_bad_target_is_one_error_line_and_exit_2(capsys, tmp_path):
    assert cli.main(["upload", "--package-path", f"{tmp_path}/"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("Error: ") and "is a directory" in err[0]


def test_existing_directory_target_is_refused(capsys, tmp_path):
    (tmp_path / "d.pex").mkdir()
    assert cli.main(["upload", "--package-path", str(tmp_path / "d.pex")]) == 2
    assert "existing directory" in capsys.readouterr().err


@pytest.mark.parametrize("target,message", [
    ("ftp://host/env.pex", "unknown storage scheme"),
    ("/tmp/env.tar.gz", "wrong extension"),
])
def test_bad_package_paths(capsys, target, message):
    assert cli.main(["upload", "--package-path", target]) == 2
    assert message in capsys.readouterr().err


def test_only_packages_naming_a_missing_package(capsys, tmp_path):
    code = cli.main(["upload", "--package-path", str(tmp_path / "e.pex"),
                     "--only-packages", "definitely-not-installed-pkg"])
    assert code == 2
    assert "definitely-not-installed-pkg" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_not_in_a_virtualenv(capsys, monkeypatch, tmp_path):
    monkeypatch.setattr(sys, "prefix", sys.base_prefix)
    monkeypatch.delenv("C_PACK_ENV_FALLBACK_PATH", raising=False)
    assert cli.main(["upload", "--package-path", str(tmp_path / "e.pex")]) == 2
    assert "not running in a virtualenv" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_info_of_a_missing_environment(capsys, tmp_path):
    assert cli.main(["info", str(tmp_path / "nothing.pex")]) == 2
    assert "no cluster-pack manifest" in capsys.readouterr().err


def test_run_requires_a_python_command(capsys):
    assert cli.main(["run", "--local", "--", "rm", "-rf", "/"]) == 2
    assert "must start with python" in capsys.readouterr().err


def test_cli_upload_info_ls_run_on_a_real_venv(packed_venv, store_dir):
    import subprocess

    env = {"C_PACK_CACHE_DIR": str(store_dir), "PATH": "/usr/bin:/bin"}
    up = subprocess.run([packed_venv.cli, "upload", "--json", "--only-packages", "six"],
                        env=env, capture_output=True, text=True, check=True)
    data = json.loads(up.stdout)
    assert data["built"] and data["distributions"] == 1
    info = json.loads(subprocess.run([packed_venv.cli, "info", "--json", data["path"]], env=env,
                                     capture_output=True, text=True, check=True).stdout)
    assert info["package_installed"] == ["six==1.17.0"] or info["package_installed"][0].startswith("six==")
    listing = json.loads(subprocess.run([packed_venv.cli, "ls", "--json"], env=env,
                                        capture_output=True, text=True, check=True).stdout)
    assert [r["path"] for r in listing] == [data["path"]]
    run = subprocess.run([packed_venv.cli, "run", "--local", "--package-path", data["path"],
                          "--", "python", "-c", "import six, sys; print(six.__name__, sys.argv[1:])",
                          "a b", "$HOME"], env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert "six ['a b', '$HOME']" in run.stdout
