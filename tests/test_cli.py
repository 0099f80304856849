import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cluster_pack import cli
from cluster_pack.pack import parts
from cluster_pack.progress import Reporter
from cluster_pack.store import parts_pool
from cluster_pack.store.manifest import LAYOUT_PARTS, Manifest, run_info_for
from cluster_pack.store.storage import Store


def publish_fake_parts(envs, name, files):
    """A parts environment made of ``files`` ({path: bytes}) published under ``envs``,
    exactly as publish_env lays it out: the pool, the manifest, no file at the path."""
    tree = envs / f".{name}-tree"
    for rel, data in files.items():
        (tree / rel).parent.mkdir(parents=True, exist_ok=True)
        (tree / rel).write_bytes(data)
        (tree / rel).chmod(0o755 if rel == "__main__.py" else 0o644)
    listed = parts.list_parts(tree, parts.HashCache(envs / ".hashes.json"))
    package_path = str(envs / f"{name}.pex")
    store, path = Store.for_url(package_path)
    parts_pool.publish(store, path, listed, Reporter())
    found = [part for part, _ in listed]
    manifest = Manifest("f" * 64, f"{name}.pex", sum(p.size for p in found),
                        parts.tree_sha256(found), ["six==1.17.0"], "p", "3.11",
                        run_info_for(f"{name}.pex", LAYOUT_PARTS), layout=LAYOUT_PARTS,
                        parts=found)
    store.publish_bytes(manifest.to_json(), str(envs / f"{name}.json"))
    return package_path, {p.path: p for p in found}


FAKE = {"PEX-INFO": b"{}", "__main__.py": b"print('hi')\n",
        ".deps/a-1-py3-none-any.whl": b"a" * 100}


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


def test_contradictory_layout_flags_are_one_error_line_and_exit_2(capsys, tmp_path):
    assert cli.main(["upload", "--package-path", str(tmp_path / "e.pex"), "--layout", "parts",
                     "--allow-large-pex"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "the parts layout publishes no single file" in err[0]
    assert list(tmp_path.iterdir()) == []


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
    env = {"C_PACK_CACHE_DIR": str(store_dir), "PATH": "/usr/bin:/bin"}
    up = subprocess.run([packed_venv.cli, "upload", "--json", "--only-packages", "six"],
                        env=env, capture_output=True, text=True, check=True)
    data = json.loads(up.stdout)
    assert data["built"] and data["distributions"] == 1
    info = json.loads(subprocess.run([packed_venv.cli, "info", "--json", data["path"]], env=env,
                                     capture_output=True, text=True, check=True).stdout)
    assert info["package_installed"] == ["six==1.17.0"] or info["package_installed"][0].startswith("six==")
    assert info["layout"] == "parts" and info["exists"] and info["missing_parts"] == []
    assert info["parts_count"] == len(info["parts"]) >= 4
    assert info["file_size"] == Path(data["path"]).stat().st_size  # the original's file too
    listing = json.loads(subprocess.run([packed_venv.cli, "ls", "--json"], env=env,
                                        capture_output=True, text=True, check=True).stdout)
    assert [(r["path"], r["layout"]) for r in listing] == [(data["path"], "pex")]
    assert listing[0]["size"] == info["file_size"]
    run = subprocess.run([packed_venv.cli, "run", "--local", "--package-path", data["path"],
                          "--", "python", "-c", "import six, sys; print(six.__name__, sys.argv[1:])",
                          "a b", "$HOME"], env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert "six ['a b', '$HOME']" in run.stdout
    # --layout chooses what is published: the parts alone leave nothing at the path
    target = store_dir / "parts-only.pex"
    parts_only = json.loads(subprocess.run(
        [packed_venv.cli, "upload", "--json", "--only-packages", "six", "--layout", "parts",
         "--package-path", str(target)], env=env, capture_output=True, text=True,
        check=True).stdout)
    assert parts_only["built"] and not target.exists()
    assert json.loads(target.with_suffix(".json").read_text())["file_sha256"] is None


def test_ls_lists_parts_environments_and_single_files_but_no_other_json(capsys, tmp_path):
    path, _ = publish_fake_parts(tmp_path, "env", FAKE)
    (tmp_path / "single.pex").write_bytes(b"zip")
    (tmp_path / "notes.json").write_text("{}")  # not a manifest
    (tmp_path / "broken.json").write_text("{")  # a damaged one
    assert cli.main(["ls", "--json", str(tmp_path)]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["name"], r["layout"]) for r in rows] == [("env.pex", "parts"),
                                                         ("single.pex", "pex")]
    assert rows[0]["path"] == path and rows[0]["size"] == sum(len(v) for v in FAKE.values())


def test_info_names_the_parts_missing_from_the_store(capsys, tmp_path):
    path, found = publish_fake_parts(tmp_path, "env", FAKE)
    assert cli.main(["info", path]) == 0
    out = capsys.readouterr().out
    assert "layout      parts" in out and "parts       3" in out and "WARNING" not in out
    os.unlink(parts_pool.part_url(path, found[".deps/a-1-py3-none-any.whl"]))
    assert cli.main(["info", "--json", path]) == 0
    data = json.loads(capsys.readouterr().out)
    assert not data["exists"] and data["missing_parts"] == [".deps/a-1-py3-none-any.whl"]
    assert cli.main(["info", path]) == 0
    assert "1 part(s) missing from the store: .deps/a-1-py3-none-any.whl" in capsys.readouterr().out


def test_fetch_writes_the_packed_directory_with_verified_real_files(capsys, tmp_path):
    path, found = publish_fake_parts(tmp_path / "envs", "env", FAKE)
    dest = tmp_path / "out"
    assert cli.main(["fetch", "--json", path, str(dest)]) == 0
    data = json.loads(capsys.readouterr().out)
    local = dest / "env.pex"
    assert data["path"] == str(local) and data["layout"] == "parts" and data["parts"] == 3
    for rel, content in FAKE.items():
        assert not (local / rel).is_symlink() and (local / rel).read_bytes() == content
    assert found["__main__.py"].executable and os.access(local / "__main__.py", os.X_OK)
    assert not os.access(local / "PEX-INFO", os.X_OK)
    assert [p.name for p in dest.iterdir()] == ["env.pex"]  # no temporary left
    (local / "stale").write_text("from an earlier fetch")
    assert cli.main(["fetch", path, str(dest)]) == 0  # replaces an earlier fetch
    assert not (local / "stale").exists() and "run it with: python" in capsys.readouterr().out


def test_fetch_errors_are_one_line_naming_the_url_or_the_part(capsys, tmp_path):
    path, found = publish_fake_parts(tmp_path / "envs", "env", FAKE)
    dest = tmp_path / "out"

    def error(*argv):
        code = cli.main(["fetch", *argv])
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("Error: "), err
        return code, err[0]

    code, message = error(str(tmp_path / "envs" / "nothing.pex"), str(dest))
    assert code == 2 and str(tmp_path / "envs" / "nothing.json") in message

    wheel = found[".deps/a-1-py3-none-any.whl"]
    part_file = Path(parts_pool.part_url(path, wheel))
    part_file.chmod(0o640)
    part_file.write_bytes(b"b" * 100)  # same size, other content
    code, message = error(path, str(dest))
    assert code == 1 and "part .deps/a-1-py3-none-any.whl" in message and "sha256" in message
    part_file.unlink()
    code, message = error(path, str(dest))
    assert code == 1 and str(part_file) in message and "missing" in message
    assert not dest.exists() or list(dest.iterdir()) == []  # nothing half-written is left

    manifest = tmp_path / "envs" / "env.json"
    tampered = json.loads(manifest.read_text())
    tampered["parts"][0]["sha256"] = "0" * 64
    manifest.write_text(json.dumps(tampered))
    code, message = error(path, str(dest))
    assert code == 1 and "does not match the parts it lists" in message


def test_fetch_refuses_to_write_over_its_own_published_path(capsys, tmp_path):
    path, _ = publish_fake_parts(tmp_path, "env", FAKE)
    assert cli.main(["fetch", path, str(tmp_path)]) == 2
    assert "its own published path" in capsys.readouterr().err
    assert not Path(path).exists()


PROBE = ("import importlib.util, json, six, sys; print(json.dumps([six.__file__, "
         "importlib.util.find_spec('cluster_pack') is None, sys.argv[1:]]))")


@pytest.mark.parametrize("layout", ["parts", "pex"])
def test_fetched_environment_runs_with_plain_python_and_no_cluster_pack(
        packed_venv, store_dir, tmp_path, layout):
    env = {"C_PACK_CACHE_DIR": str(store_dir), "PATH": "/usr/bin:/bin", "C_PACK_LAYOUT": layout}
    up = subprocess.run([packed_venv.cli, "upload", "--json", "--only-packages", "six"],
                        env=env, capture_output=True, text=True, check=True)
    published = json.loads(up.stdout)["path"]
    dest = tmp_path / "fetched"
    fetched = subprocess.run([packed_venv.cli, "fetch", "--json", published, str(dest)],
                             env=env, capture_output=True, text=True)
    assert fetched.returncode == 0, fetched.stderr
    local = Path(json.loads(fetched.stdout)["path"])
    assert local == dest / Path(published).name
    assert local.is_dir() == (layout == "parts")
    # the base interpreter, outside any venv, with nothing of cluster-pack on its path
    python = getattr(sys, "_base_executable", sys.executable)
    run = subprocess.run([python, str(local), "-c", PROBE, "a b"], capture_output=True,
                         text=True, cwd=tmp_path,
                         env={"PATH": "/usr/bin:/bin", "PEX_ROOT": str(tmp_path / "pex_root"),
                              "HOME": str(tmp_path)})
    assert run.returncode == 0, run.stderr
    six_file, no_cluster_pack, argv = json.loads(run.stdout)
    assert six_file.startswith(str(tmp_path / "pex_root")) and no_cluster_pack
    assert argv == ["a b"]


def _single_file_env(tmp_path):
    """``tmp_path/envs/one.pex`` (bytes that are not a zipapp) and its manifest."""
    envs = tmp_path / "envs"
    envs.mkdir()
    data = b"not really a zipapp"
    (envs / "one.pex").write_bytes(data)
    manifest = Manifest("f" * 64, "one.pex", len(data), hashlib.sha256(data).hexdigest(), [],
                        "p", "3.11", run_info_for("one.pex"))
    (envs / "one.json").write_bytes(manifest.to_json())
    return envs, data


def test_fetch_of_a_single_file_checks_it_against_its_manifest(capsys, tmp_path):
    envs, data = _single_file_env(tmp_path)
    assert cli.main(["fetch", str(envs / "one.pex"), str(tmp_path / "out")]) == 0
    local = tmp_path / "out" / "one.pex"
    assert local.read_bytes() == data and os.access(local, os.X_OK)
    capsys.readouterr()

    (envs / "one.pex").write_bytes(data.upper())  # same size, other content
    assert cli.main(["fetch", str(envs / "one.pex"), str(tmp_path / "out2")]) == 1
    assert f"{envs / 'one.pex'}: sha256" in capsys.readouterr().err
    (envs / "one.pex").unlink()
    assert cli.main(["fetch", str(envs / "one.pex"), str(tmp_path / "out2")]) == 1
    err = capsys.readouterr().err
    assert f"{envs / 'one.pex'} is missing" in err and len(err.strip().splitlines()) == 1
    assert local.read_bytes() == data  # an earlier fetch elsewhere is untouched


def test_a_malformed_fs_arg_is_one_error_line_with_status_2(capsys, tmp_path):
    assert cli.main(["info", "--fs-arg", "no-equal-sign", str(tmp_path / "x.pex")]) == 2
    assert capsys.readouterr().err.splitlines() == [
        "Error: --fs-arg expects key=value, got 'no-equal-sign'"]


# -- bad input: every command answers with one "Error:" line naming the culprit, exit 2 ----

@pytest.fixture
def bad_input_paths(tmp_path):
    """{tmp}: a directory; {file}: a plain file; {env}: a published single-file environment;
    {tar}: a file that is not an environment."""
    envs, data = _single_file_env(tmp_path)
    (tmp_path / "afile").write_text("x")
    (tmp_path / "env.tar").write_text("x")
    return {"tmp": str(tmp_path), "file": str(tmp_path / "afile"),
            "env": str(envs / "one.pex"), "tar": str(tmp_path / "env.tar")}


def assert_one_error_line(capsys, argv, culprit, code=2):
    assert cli.main(argv) == code
    captured = capsys.readouterr()
    err = captured.err.splitlines()
    assert len(err) == 1 and err[0].startswith("Error: "), captured.err
    assert culprit in err[0], err[0]
    return err[0]


BAD_INPUT = {
    "upload": [
        (["upload", "--package-path", "hdfs://nn:notaport/envs/e.pex"], "hdfs://nn:notaport"),
        (["upload", "--layout", "zip"], "--layout"),
        (["upload", "--package-path", ""], "--package-path"),
        (["upload", "--package-path", "{file}/e.pex"], "{file}"),
        (["upload", "--not-an-option"], "--not-an-option"),
    ],
    "upload-zip": [
        (["upload-zip", "{tmp}/missing.pex", "--package-path", "{tmp}/out.pex"],
         "{tmp}/missing.pex"),
        (["upload-zip", "{env}", "--package-path", "{tmp}/out.pex", "--sha256", "xyz"],
         "--sha256"),
        (["upload-zip", "http://[::1/e.pex", "--package-path", "{tmp}/out.pex"],
         "http://[::1/e.pex"),
        (["upload-zip", "{env}", "--package-path", "{file}/out.pex"], "{file}"),
    ],
    "info": [
        (["info", "hdfs://[::1/envs/e.pex"], "hdfs://[::1/envs/e.pex"),
        (["info", "{file}/e.pex"], "{file}/e.json"),
        (["info"], "path"),
    ],
    "ls": [
        (["ls", "{tmp}/nowhere"], "{tmp}/nowhere"),
        (["ls", "{file}"], "{file}"),
        (["ls", "ftp://host/envs"], "ftp://"),
    ],
    "gc": [
        (["gc", "--min-age-days", "-1", "{tmp}"], "--min-age-days"),
        (["gc", "--min-age-days", "a week", "{tmp}"], "a week"),
        (["gc", "{tmp}/nowhere"], "{tmp}/nowhere"),
        (["gc", "{file}"], "{file}"),
    ],
    "run": [
        (["run", "--local", "--package-path", "{tmp}/nothing.pex", "--", "python", "-c", "1"],
         "{tmp}/nothing.pex"),
        (["run", "--local", "--env", "NOEQUALS", "--package-path", "{env}", "--", "python"],
         "NOEQUALS"),
        (["run", "--local", "--node-dir", "{file}", "--package-path", "{env}", "--", "python"],
         "{file}"),
        (["run", "--local", "--package-path", "{tar}", "--", "python"], "env.tar"),
    ],
    "fetch": [
        (["fetch", "{env}", "{file}"], "{file}"),
        (["fetch", "ftp://host/e.pex", "{tmp}/out"], "ftp://host/e.pex"),
        (["fetch", "{tmp}/nothing.pex", "{tmp}/out"], "{tmp}/nothing.json"),
    ],
    "spark-args": [
        (["spark-args", "{tmp}/nothing.pex"], "{tmp}/nothing.pex"),
        (["spark-args", "{tar}"], "env.tar"),
        (["spark-args", "{env}", "--deploy-mode", "both"], "--deploy-mode"),
    ],
    "cluster-pack": [
        (["bogus"], "'bogus'"),
        ([], "required"),
    ],
}


@pytest.mark.parametrize("command", sorted(BAD_INPUT))
def test_bad_input_of_each_command_is_one_error_line_with_status_2(
        capsys, bad_input_paths, command):
    for argv, culprit in BAD_INPUT[command]:
        argv = [arg.format(**bad_input_paths) for arg in argv]
        assert_one_error_line(capsys, argv, culprit.format(**bad_input_paths))


def test_a_storage_option_the_filesystem_refuses_is_named(capsys):
    pytest.importorskip("s3fs")
    assert_one_error_line(capsys, ["info", "--fs-arg", "bogus_option=1", "s3://bucket/e.pex"],
                          "bogus_option")


def test_a_multi_line_message_is_one_line_and_verbose_adds_the_traceback(capsys, monkeypatch):
    from cluster_pack.errors import BuildError

    def fail(args):
        raise BuildError("pex failed:\nerror: first\n\n  cause: second\n")

    monkeypatch.setattr(cli, "_cmd_ls", fail)
    assert assert_one_error_line(capsys, ["ls"], "pex failed", code=1) == \
        "Error: pex failed: | error: first | cause: second"
    assert cli.main(["ls", "--verbose"]) == 1
    assert "Traceback" in capsys.readouterr().err


def test_the_installed_command_reports_bad_input_on_one_line(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "cluster_pack", "gc", "--min-age-days", "x",
                           str(tmp_path)], capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.splitlines() == [
        "Error: cluster-pack gc: argument --min-age-days: expects a number of days >= 0, got "
        "'x' (see cluster-pack gc --help)"]


# -- list_environments: what `cluster-pack ls` shows ----------------------------------------

def test_list_environments_finds_each_layout_and_skips_everything_else(tmp_path):
    from cluster_pack.store import publish
    from cluster_pack.store.storage import TMP_MARKER

    parts_path, _ = publish_fake_parts(tmp_path, "env", FAKE)
    data = b"zip"
    (tmp_path / "single.pex").write_bytes(data)
    manifest = Manifest("f" * 64, "single.pex", len(data), hashlib.sha256(data).hexdigest(), [],
                        "p", "3.11", run_info_for("single.pex"), created_by="cluster-pack 9.9")
    (tmp_path / "single.json").write_bytes(manifest.to_json())
    (tmp_path / "big.pex.zip").write_bytes(b"zipzip")
    (tmp_path / "original.pex").write_bytes(b"z")
    (tmp_path / "original.json").write_text('{"package_installed": []}')  # the original's
    (tmp_path / "notes.json").write_text("{}")
    (tmp_path / "broken.json").write_text("{")
    (tmp_path / f".next.pex{TMP_MARKER}123").write_bytes(b"partial")
    (tmp_path / "fetched.pex").mkdir()  # a directory is not a published environment

    found = publish.list_environments(str(tmp_path))
    assert [(e.name, e.layout, e.size, e.version) for e in found] == [
        ("big.pex.zip", "pex.zip", 6, None),
        ("env.pex", "parts", sum(len(v) for v in FAKE.values()), None),
        ("original.pex", "pex", 1, None),
        ("single.pex", "pex", 3, "cluster-pack 9.9"),
    ]
    assert found[1].path == parts_path and found[3].path == str(tmp_path / "single.pex")
    assert found[3].modified == pytest.approx((tmp_path / "single.pex").stat().st_mtime)
    assert found[1].modified == pytest.approx((tmp_path / "env.json").stat().st_mtime)


def test_list_environments_of_a_missing_directory(tmp_path, monkeypatch):
    from cluster_pack.errors import ConfigurationError
    from cluster_pack.store import publish

    # the default directory before anything was published there: nothing, no error
    monkeypatch.setattr(publish, "default_env_dir", lambda: str(tmp_path / "default"))
    assert publish.list_environments() == []
    with pytest.raises(ConfigurationError, match=f"{tmp_path / 'other'}: no such directory"):
        publish.list_environments(str(tmp_path / "other"))
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigurationError, match=f"{tmp_path / 'file'} is a file"):
        publish.list_environments(str(tmp_path / "file"))


def test_ls_shows_what_list_environments_returns(capsys, tmp_path):
    data = b"zip"
    (tmp_path / "single.pex").write_bytes(data)
    manifest = Manifest("f" * 64, "single.pex", len(data), hashlib.sha256(data).hexdigest(), [],
                        "p", "3.11", run_info_for("single.pex"), created_by="cluster-pack 9.9")
    (tmp_path / "single.json").write_bytes(manifest.to_json())
    assert cli.main(["ls", "--json", str(tmp_path)]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows == [{"name": "single.pex", "path": str(tmp_path / "single.pex"), "size": 3,
                     "modified": (tmp_path / "single.pex").stat().st_mtime, "layout": "pex",
                     "version": "cluster-pack 9.9"}]
    assert cli.main(["ls", str(tmp_path)]) == 0
    line, = capsys.readouterr().out.splitlines()
    assert line.endswith(f"  pex      {tmp_path / 'single.pex'}  (cluster-pack 9.9)")
