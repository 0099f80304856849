"""Spark properties, spark-submit arguments and the builder adapter (no JVM started)."""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from cluster_pack.launch import spark as spark_conf
from cluster_pack.launch.spec import Resource
from cluster_pack.pack.parts import Part, tree_sha256
from cluster_pack.store import hadoop_conf
from cluster_pack.store.manifest import Manifest, run_info_for
from tests.fakes import hadoop_conf_dir

# manifests the (fake) storage holds, by the URL spark_conf reads them for
MANIFESTS = {}
READS = []
REAL_READ = spark_conf.read_env_manifest
REAL_SECURITY_ENABLED = hadoop_conf.security_enabled


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("C_PACK_CACHE_DIR", str(tmp_path / "cache"))
    for var in ("PYSPARK_PYTHON", "PYSPARK_DRIVER_PYTHON", "MASTER", "AWS_ACCESS_KEY_ID",
                "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    MANIFESTS.clear()
    READS.clear()

    def fake_read(package_path, fs_args=None):
        READS.append((package_path, fs_args))
        return MANIFESTS.get(package_path)

    # no HDFS/S3 here: hdfs:// and s3:// manifests come from MANIFESTS (none: a single file)
    monkeypatch.setattr(spark_conf, "read_env_manifest", fake_read)
    # the machine's Hadoop configuration (a Kerberized HADOOP_CONF_DIR) must not change the
    # properties the tests expect; the Kerberos tests below use a configuration of their own
    monkeypatch.setattr(hadoop_conf, "security_enabled", lambda directory=None: False)


def _sha(text):
    return hashlib.sha256(text.encode()).hexdigest()


PARTS = [Part("PEX-INFO", _sha("info"), 10), Part("__main__.py", _sha("main"), 20, True),
         Part(".bootstrap", _sha("boot"), 30), Part(".deps/six-1.17.0-py2.py3-none-any.whl",
                                                     _sha("six"), 40)]


def parts_manifest(name="me.pex", parts=PARTS):
    return Manifest("fp", name, sum(p.size for p in parts), tree_sha256(parts), ["six==1.17.0"],
                    "linux_x86_64", "3.11", run_info_for(name, "parts"), layout="parts",
                    parts=list(parts))


def single_manifest(name="me.pex"):
    return Manifest("fp", name, 123, "c" * 64, ["six==1.17.0"], "linux_x86_64", "3.11",
                    run_info_for(name), layout="pex")


def test_merge_values_keeps_order_without_duplicates():
    assert spark_conf.merge_values("b,a", ["a", "c", "b", "d"]) == "b,a,c,d"
    assert spark_conf.merge_values(None, ["x"]) == "x"
    assert spark_conf.merge_values(".:lib", [".", "editable_x"], ":") == ".:lib:editable_x"


def test_merge_conf_merges_lists_and_keeps_user_scalars(caplog):
    existing = {"spark.files": "/u/a.txt", "spark.executorEnv.PEX_ROOT": "/mine",
                "spark.executorEnv.PEX_EXTRA_SYS_PATH": "lib"}
    new = {"spark.files": "hdfs:///e.pex,/u/a.txt", "spark.executorEnv.PEX_ROOT": "/other",
           "spark.executorEnv.PEX_EXTRA_SYS_PATH": ".:editable_x", "spark.pyspark.python": "./p"}
    changes = spark_conf.merge_conf(existing, new)
    assert changes == {"spark.files": "/u/a.txt,hdfs:///e.pex",
                       "spark.executorEnv.PEX_EXTRA_SYS_PATH": "lib:.:editable_x",
                       "spark.pyspark.python": "./p"}
    assert "keeping it" in caplog.text


def test_pex_on_yarn_is_a_dist_file():
    conf = spark_conf.spark_conf("hdfs:///user/me/envs/me.pex", master="yarn")
    files = conf["spark.yarn.dist.files"].split(",")
    assert files[0] == "hdfs:///user/me/envs/me.pex"
    launcher = Path(files[1])
    assert launcher.name.startswith(spark_conf.LAUNCHER_PREFIX) and os.access(launcher, os.X_OK)
    assert conf["spark.pyspark.python"] == f"./{launcher.name}"
    assert "'./me.pex'" in launcher.read_text() or "./me.pex" in launcher.read_text()
    assert "spark.files" not in conf and "spark.archives" not in conf
    assert conf["spark.executorEnv.PEX_EXTRA_SYS_PATH"] == "."
    assert conf["spark.executorEnv.C_PACK_PACKAGE_PATH"] == "hdfs:///user/me/envs/me.pex"
    assert not any(k.startswith("spark.yarn.appMasterEnv") for k in conf)
    assert "spark.executorEnv.PYTHONPATH" not in conf  # Spark owns it; the launcher forwards it


def test_large_layout_is_an_archive_everywhere():
    conf = spark_conf.spark_conf("s3://bucket/envs/me.pex.zip", master="spark://h:7077")
    assert conf["spark.archives"] == "s3a://bucket/envs/me.pex.zip#pyenv"
    assert "spark.yarn.dist.archives" not in conf
    assert "pyenv/__main__.py" in Path(conf["spark.files"]).read_text()


def test_unknown_master_ships_both_ways_and_cluster_mode_runs_the_driver_from_the_env():
    conf = spark_conf.spark_conf("/envs/me.pex", deploy_mode="cluster", pex_root="/data/pex")
    assert conf["spark.yarn.dist.files"] == conf["spark.files"]
    assert conf["spark.pyspark.driver.python"] == conf["spark.pyspark.python"]
    assert conf["spark.yarn.appMasterEnv.PEX_ROOT"] == "/data/pex"
    assert conf["spark.executorEnv.PEX_ROOT"] == "/data/pex"


def test_from_a_launch_spec_with_files_and_editables(tmp_path):
    pex = tmp_path / "env.pex"
    extra = tmp_path / "data.csv"
    spec = spark_conf.spark_launch_spec(str(pex), additional_files=[str(extra)])
    spec.resources.append(Resource("/tmp/z/proj-123.zip", "editable_proj", "archive"))
    spec.env["PEX_EXTRA_SYS_PATH"] = ".:editable_proj"
    conf = spark_conf.spark_conf(spec, master="local-cluster[2,1,1024]")
    assert conf["spark.files"].split(",")[:2] == [str(pex), str(extra)]
    assert conf["spark.archives"] == "/tmp/z/proj-123.zip#editable_proj"
    assert conf["spark.executorEnv.PEX_EXTRA_SYS_PATH"] == ".:editable_proj"


def test_editables_conf(monkeypatch):
    monkeypatch.setattr(spark_conf, "editable_resources", lambda workdir=None: [
        Resource("/c/a-1.zip", "editable_a", "archive"), Resource("/c/b-2.zip", "editable_b", "archive")])
    conf = spark_conf.editables_conf("yarn", "cluster")
    assert conf["spark.yarn.dist.archives"] == "/c/a-1.zip#editable_a,/c/b-2.zip#editable_b"
    assert conf["spark.executorEnv.PEX_EXTRA_SYS_PATH"] == ".:editable_a:editable_b"
    assert conf["spark.yarn.appMasterEnv.C_PACK_EDITABLE_DIRS"] == "editable_a,editable_b"
    monkeypatch.setattr(spark_conf, "editable_resources", lambda workdir=None: [])
    assert spark_conf.editables_conf("yarn") == {}


def test_spark_submit_args_merge_user_files_and_set_a_local_driver_python():
    args = spark_conf.spark_submit_args("hdfs:///envs/me.pex", master="yarn",
                                        files=["/home/me/conf.ini"],
                                        archives=["hdfs:///data/dict.zip#dict"])
    assert args[:2] == ["--master", "yarn"]
    files = args[args.index("--files") + 1].split(",")
    assert files[:2] == ["/home/me/conf.ini", "hdfs:///envs/me.pex"]
    assert args[args.index("--archives") + 1] == "hdfs:///data/dict.zip#dict"
    confs = dict(a.split("=", 1) for a in args[1::1] if "=" in a and a.startswith("spark."))
    assert confs["spark.pyspark.driver.python"] == sys.executable
    assert confs["spark.pyspark.python"].startswith("./cluster_pack_python-")
    assert args.count("--files") == 1


def test_spark_submit_args_large_layout_cluster_mode():
    args = spark_conf.spark_submit_args("hdfs:///envs/me.pex.zip", deploy_mode="cluster")
    assert args[args.index("--archives") + 1] == "hdfs:///envs/me.pex.zip#pyenv"
    confs = [a for a in args if a.startswith("spark.")]
    python = next(a for a in confs if a.startswith("spark.pyspark.python=")).split("=", 1)[1]
    assert f"spark.pyspark.driver.python={python}" in confs
    assert any(a.startswith("spark.yarn.appMasterEnv.PEX_EXTRA_SYS_PATH=") for a in confs)


# -- the parts layout -------------------------------------------------------------------------

def _pool(url):
    return url.rsplit("/", 1)[0] + "/.cluster-pack-parts"


def test_parts_on_yarn_ship_every_part_under_its_link_name():
    url = "hdfs:///user/me/envs/me.pex"
    MANIFESTS[url] = parts_manifest()
    conf = spark_conf.spark_conf(url, master="yarn")
    assert READS == [(url, None)]  # one small read: the manifest
    files = conf["spark.yarn.dist.files"].split(",")
    assert files[:-1] == [f"{_pool(url)}/{p.sha256}#cpack-{p.sha256[:32]}" for p in PARTS]
    assert not any(f.split("#")[0] == url for f in files)  # nothing exists at me.pex itself
    launcher = Path(files[-1])
    assert conf["spark.pyspark.python"] == f"./{launcher.name}"
    text = launcher.read_text()
    # the assembly runs before the environment starts, then ./me.pex/__main__.py is exec'd
    assert text.index("mv -T") < text.index("target=./me.pex/__main__.py")
    assert f"ln -s ../../cpack-{PARTS[3].sha256[:32]}" in text
    assert conf["spark.executorEnv.C_PACK_PACKAGE_PATH"] == url
    assert "spark.files" not in conf


def test_parts_elsewhere_are_plain_urls_linked_by_the_launcher():
    MANIFESTS["s3a://bucket/envs/me.pex"] = parts_manifest()
    conf = spark_conf.spark_conf("s3://bucket/envs/me.pex", master="local-cluster[2,1,1024]",
                                 fs_args={"endpoint_url": "http://127.0.0.1:9000"})
    assert READS == [("s3a://bucket/envs/me.pex", {"endpoint_url": "http://127.0.0.1:9000"})]
    files = conf["spark.files"].split(",")
    # spark.files refuses "#name": each part arrives under its own name, <sha256>
    assert files[:-1] == [f"s3a://bucket/envs/.cluster-pack-parts/{p.sha256}" for p in PARTS]
    assert "spark.yarn.dist.files" not in conf
    text = Path(files[-1]).read_text()
    for part in PARTS:
        assert f"ln -s {part.sha256} cpack-{part.sha256[:32]}" in text
    # unknown master: both, "#name" only for YARN
    both = spark_conf.spark_conf("s3://bucket/envs/me.pex")
    assert all("#cpack-" in f for f in both["spark.yarn.dist.files"].split(",")[:-1])
    assert not any("#" in f for f in both["spark.files"].split(","))


def test_parts_launch_spec_with_its_manifest_reads_nothing():
    spec = spark_conf.spark_launch_spec("hdfs:///e/me.pex", manifest=parts_manifest(),
                                        env_vars={"A": "1"})
    assert READS == []
    assert spec.argv == ["./me.pex/__main__.py"] and spec.artifact_name == "me.pex"
    assert [r.name for r in spec.resources] == [f"cpack-{p.sha256[:32]}" for p in PARTS]
    assert all(r.shared for r in spec.resources) and "mv -T" in spec.setup
    conf = spark_conf.spark_conf(spec, master="yarn", deploy_mode="cluster")
    assert READS == []
    # cluster mode: the driver runs the same launcher (in the AM container on YARN)
    assert conf["spark.pyspark.driver.python"] == conf["spark.pyspark.python"]
    assert conf["spark.yarn.appMasterEnv.A"] == "1"


def test_single_file_manifest_is_one_file_and_no_assembly():
    url = "hdfs:///e/me.pex"
    MANIFESTS[url] = single_manifest()
    conf = spark_conf.spark_conf(url, master="yarn")
    files = conf["spark.yarn.dist.files"].split(",")
    assert files[0] == url and len(files) == 2
    text = Path(files[1]).read_text()
    assert "target=./me.pex\n" in text and "ln -s" not in text and "mv -T" not in text


def test_the_launcher_name_follows_the_environment_version():
    url = "hdfs:///e/me.pex"
    MANIFESTS[url] = parts_manifest()
    first = spark_conf.spark_conf(url, master="yarn")["spark.pyspark.python"]
    changed = PARTS[:3] + [Part(PARTS[3].path, _sha("six, v2"), 41)]
    MANIFESTS[url] = parts_manifest(parts=changed)
    second = spark_conf.spark_conf(url, master="yarn")
    assert second["spark.pyspark.python"] != first
    assert f"{_pool(url)}/{changed[3].sha256}#cpack-" in second["spark.yarn.dist.files"]


def test_parts_read_from_a_local_store(tmp_path, monkeypatch):
    monkeypatch.setattr(spark_conf, "read_env_manifest", REAL_READ)  # on a local directory
    (tmp_path / "envs").mkdir()
    (tmp_path / "envs" / "me.json").write_bytes(parts_manifest().to_json())
    conf = spark_conf.spark_conf(str(tmp_path / "envs" / "me.pex"), master="local-cluster[1,1,512]")
    assert conf["spark.files"].split(",")[:-1] == [
        f"{tmp_path}/envs/.cluster-pack-parts/{p.sha256}" for p in PARTS]
    # no manifest (the original's artifacts, or a file published by hand): a single file
    conf = spark_conf.spark_conf(str(tmp_path / "envs" / "other.pex"), master="yarn")
    assert conf["spark.yarn.dist.files"].split(",")[0] == f"{tmp_path}/envs/other.pex"


def test_spark_submit_args_parts_fragments_only_on_yarn():
    url = "hdfs:///e/me.pex"
    MANIFESTS[url] = parts_manifest()
    for master, fragments in (("yarn", True), ("spark://h:7077", False), (None, False)):
        args = spark_conf.spark_submit_args(url, master=master, files=["/home/me/a.ini"])
        files = args[args.index("--files") + 1].split(",")
        assert files[0] == "/home/me/a.ini"
        assert len(files) == len(PARTS) + 2
        assert all(("#cpack-" in f) is fragments for f in files[1:-1]), (master, files)
        assert files[-1].rsplit("/", 1)[-1].startswith(spark_conf.LAUNCHER_PREFIX)


def test_cli_spark_args(tmp_path):
    env = dict(os.environ, C_PACK_CACHE_DIR=str(tmp_path / "cache"))
    envs = tmp_path / "envs"
    envs.mkdir()
    (envs / "parts.json").write_bytes(parts_manifest("parts.pex").to_json())
    # single files of the original tool (no manifest): spark-args refuses a path where
    # nothing is published
    (envs / "single.pex").write_bytes(b"zip")
    (envs / "big.pex.zip").write_bytes(b"zip")
    out = subprocess.run([sys.executable, "-m", "cluster_pack", "spark-args", "--json",
                          "--master", "yarn", str(envs / "single.pex")],
                         capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    args = json.loads(out.stdout)
    assert args[args.index("--files") + 1].startswith(f"{envs}/single.pex,")
    text = subprocess.run([sys.executable, "-m", "cluster_pack", "spark-args",
                           str(envs / "big.pex.zip")], capture_output=True, text=True,
                          env=env, timeout=60).stdout
    args = shlex.split(text)
    assert args[args.index("--archives") + 1] == f"{envs}/big.pex.zip#pyenv"
    out = subprocess.run([sys.executable, "-m", "cluster_pack", "spark-args", "--json",
                          "--master", "yarn", str(envs / "parts.pex")],
                         capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    files = json.loads(out.stdout)
    files = files[files.index("--files") + 1].split(",")
    assert files[:-1] == [f"{envs}/.cluster-pack-parts/{p.sha256}#cpack-{p.sha256[:32]}"
                          for p in PARTS]
    out = subprocess.run([sys.executable, "-m", "cluster_pack", "spark-args",
                          str(envs / "typo.pex")], capture_output=True, text=True, env=env,
                         timeout=60)
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr.splitlines() == [
        f"Error: {envs}/typo.pex: no environment is published there (neither the file nor its "
        f"manifest {envs}/typo.json); publish it with cluster-pack upload"]


# -- S3 --------------------------------------------------------------------------------------

FS_ARGS = {"key": "AKIDTEST", "secret": "s3cr3t-value", "token": "tok-value",
           "client_kwargs": {"endpoint_url": "http://127.0.0.1:9000", "region_name": "eu-west-1"}}


def test_s3a_conf_never_holds_secrets():
    conf = spark_conf.s3a_conf(FS_ARGS)
    blob = json.dumps(conf)
    assert "s3cr3t-value" not in blob and "AKIDTEST" not in blob and "tok-value" not in blob
    assert conf["spark.hadoop.fs.s3a.endpoint"] == "http://127.0.0.1:9000"
    assert conf["spark.hadoop.fs.s3a.endpoint.region"] == "eu-west-1"
    assert conf["spark.hadoop.fs.s3a.path.style.access"] == "true"
    assert conf["spark.hadoop.fs.s3a.aws.credentials.provider"] == spark_conf.ENV_CREDENTIALS_PROVIDER
    assert spark_conf.s3_credentials_env(FS_ARGS) == {
        "AWS_ACCESS_KEY_ID": "AKIDTEST", "AWS_SECRET_ACCESS_KEY": "s3cr3t-value",
        "AWS_SESSION_TOKEN": "tok-value"}
    store = spark_conf.s3a_conf(FS_ARGS, credential_provider_path="jceks://hdfs/u/me/s3.jceks")
    assert store["spark.hadoop.hadoop.security.credential.provider.path"] == "jceks://hdfs/u/me/s3.jceks"
    assert "spark.hadoop.fs.s3a.aws.credentials.provider" not in store


def test_import_cluster_pack_spark_conf_does_not_import_pyspark():
    code = ("import sys, cluster_pack, cluster_pack.launch.spark, cluster_pack.spark, cluster_pack.cli\n"
            "print('pyspark' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "False", out.stderr


# -- the SparkSession.Builder adapter ---------------------------------------------------------

@pytest.fixture
def ssb():
    pytest.importorskip("pyspark")
    from pyspark.sql import SparkSession

    return SparkSession.Builder()


def test_add_packaged_environment_merges_with_the_builder(ssb):
    from cluster_pack.spark import spark_config_builder as scb

    ssb.master("local-cluster[2,1,1024]").config("spark.files", "/u/a.txt")
    ssb.config("spark.executorEnv.PEX_EXTRA_SYS_PATH", "mylib")
    scb.add_packaged_environment(ssb, "/envs/me.pex")
    opts = ssb._options
    files = opts["spark.files"].split(",")
    assert files[:2] == ["/u/a.txt", "/envs/me.pex"]
    assert opts["spark.executorEnv.PEX_EXTRA_SYS_PATH"] == "mylib:."
    assert os.environ["PYSPARK_PYTHON"] == opts["spark.pyspark.python"]
    assert "PYSPARK_DRIVER_PYTHON" not in os.environ
    # idempotent
    before = dict(opts)
    scb.add_packaged_environment(ssb, "/envs/me.pex")
    assert dict(ssb._options) == before


def test_add_packaged_environment_cluster_mode_on_yarn(ssb):
    from cluster_pack.spark import spark_config_builder as scb

    ssb.master("yarn").config("spark.submit.deployMode", "cluster")
    scb.add_packaged_environment(ssb, "s3://b/envs/me.pex.zip")
    opts = ssb._options
    assert opts["spark.yarn.dist.archives"] == "s3a://b/envs/me.pex.zip#pyenv"
    assert os.environ["PYSPARK_DRIVER_PYTHON"] == opts["spark.pyspark.python"]
    assert "spark.archives" not in opts


def test_add_editable_requirements(ssb, monkeypatch):
    from cluster_pack.spark import spark_config_builder as scb

    monkeypatch.setattr(spark_conf, "editable_resources", lambda workdir=None: [
        Resource("/c/a-1.zip", "editable_a", "archive")])
    ssb.master("yarn").config("spark.yarn.dist.archives", "hdfs:///mine.zip#mine")
    scb.add_packaged_environment(ssb, "hdfs:///envs/me.pex")
    scb.add_editable_requirements(ssb)
    opts = ssb._options
    assert opts["spark.yarn.dist.archives"] == "hdfs:///mine.zip#mine,/c/a-1.zip#editable_a"
    assert opts["spark.executorEnv.PEX_EXTRA_SYS_PATH"] == ".:editable_a"


@pytest.mark.parametrize("master,executor_env", [("local-cluster[2,1,1024]", False), ("yarn", True)])
def test_add_s3_params_keeps_secrets_out_of_hadoop_properties(ssb, master, executor_env):
    from cluster_pack.spark import spark_config_builder as scb

    ssb.master(master)
    scb.add_s3_params(ssb, FS_ARGS)
    opts = {k: str(v) for k, v in ssb._options.items()}
    assert not any("s3cr3t-value" in v for k, v in opts.items() if not k.startswith("spark.executorEnv."))
    assert "spark.hadoop.fs.s3a.secret.key" not in opts and "spark.hadoop.fs.s3a.access.key" not in opts
    assert os.environ["AWS_SECRET_ACCESS_KEY"] == "s3cr3t-value"
    assert ("spark.executorEnv.AWS_SECRET_ACCESS_KEY" in opts) is executor_env
    import re
    for key in opts:
        if "SECRET" in key or "TOKEN" in key:
            assert re.search(spark_conf.SPARK_DEFAULT_REDACTION_REGEX, key), key


def test_add_packaged_environment_parts_on_s3_reads_with_the_builders_s3_settings(ssb):
    from cluster_pack.spark import spark_config_builder as scb

    MANIFESTS["s3a://b/envs/me.pex"] = parts_manifest()
    ssb.master("local-cluster[2,1,1024]")
    scb.add_s3_params(ssb, FS_ARGS)
    scb.add_packaged_environment(ssb, "s3://b/envs/me.pex")
    assert READS == [("s3a://b/envs/me.pex", {"endpoint_url": "http://127.0.0.1:9000",
                                              "client_kwargs": {"region_name": "eu-west-1"}})]
    files = ssb._options["spark.files"].split(",")
    assert files[:-1] == [f"s3a://b/envs/.cluster-pack-parts/{p.sha256}" for p in PARTS]
    # explicit fs_args win; other schemes get none
    scb.add_packaged_environment(ssb, "s3://b/envs/me.pex", fs_args={"anon": True})
    assert READS[-1] == ("s3a://b/envs/me.pex", {"anon": True})
    scb.add_packaged_environment(ssb, "hdfs:///envs/me.pex")
    assert READS[-1] == ("hdfs:///envs/me.pex", None)


def test_bad_input_is_a_configuration_error_still_caught_as_value_error():
    from cluster_pack.errors import ConfigurationError
    from cluster_pack.launch.spec import LaunchSpec

    with pytest.raises(ConfigurationError, match=r"me\.tar: unsupported artifact.*\.pex"):
        spark_conf.spark_conf("hdfs:///envs/me.tar")
    with pytest.raises(ValueError, match="neither a command nor resources"):
        spark_conf.spark_conf(LaunchSpec(argv=[]))


@pytest.mark.interpreter
def test_a_shipped_interpreter_is_one_more_part_and_starts_in_the_launcher():
    from cluster_pack.pack.interpreter import InterpreterInfo

    url = "hdfs:///user/me/envs/me.pex"
    info = InterpreterInfo(_sha("python"), 99, "3.12.1", "bin/python3.12", ("lib",), "x86_64",
                           "2.17")
    manifest = parts_manifest()
    manifest.interpreter, manifest.format_version = info, 3
    MANIFESTS[url] = manifest
    conf = spark_conf.spark_conf(url, master="yarn")
    files = conf["spark.yarn.dist.files"].split(",")
    assert f"{_pool(url)}/{info.sha256}#cpack-{info.sha256[:32]}" in files
    text = Path(files[-1]).read_text()
    # extracted and first on PATH before the environment is exec'd (its shebang finds it)
    assert text.index(f"tar -xf cpack-{info.sha256[:32]}") < text.index('export PATH="$cpack_py/bin')
    assert text.index('export LD_LIBRARY_PATH="$cpack_py/lib') < text.index("target=./me.pex/")
    subprocess.run(["sh", "-n", files[-1]], check=True)  # valid sh
    # elsewhere the part arrives as <sha256> and is linked under its name first
    MANIFESTS["s3a://bucket/envs/me.pex"] = manifest
    text = Path(spark_conf.spark_conf("s3://bucket/envs/me.pex", master="local")["spark.files"]
                .split(",")[-1]).read_text()
    assert text.index(f"ln -s {info.sha256} cpack-{info.sha256[:32]}") < text.index("tar -xf")


# -- a Kerberized cluster: delegation tokens for the environment's file system ------------------

def _hadoop_conf(tmp_path, monkeypatch, authentication):
    hadoop_conf_dir(tmp_path / f"hadoop-conf-{authentication}", monkeypatch, "core-site.xml",
                    "hadoop.security.authentication", authentication)
    monkeypatch.setattr(hadoop_conf, "security_enabled", REAL_SECURITY_ENABLED)


def test_kerberized_yarn_gets_tokens_for_the_environments_file_system(tmp_path, monkeypatch,
                                                                     ssb):
    from cluster_pack.spark import spark_config_builder as scb

    _hadoop_conf(tmp_path, monkeypatch, "kerberos")
    url = "hdfs://nn2:8020/user/me/envs/me.pex"
    MANIFESTS[url] = parts_manifest()
    key = spark_conf.TOKEN_FILE_SYSTEMS_KEY
    assert spark_conf.spark_conf(url, master="yarn")[key] == "hdfs://nn2:8020"
    assert spark_conf.spark_conf(url)[key] == "hdfs://nn2:8020"  # master unknown: YARN too
    args = spark_conf.spark_submit_args(url, master="yarn", deploy_mode="cluster")
    assert f"{key}=hdfs://nn2:8020" in args
    # none where Spark needs no list: the default file system, S3, local, other masters
    assert key not in spark_conf.spark_conf("hdfs:///user/me/envs/me.pex", master="yarn")
    assert key not in spark_conf.spark_conf("s3://bucket/envs/me.pex", master="yarn")
    assert key not in spark_conf.spark_conf(str(tmp_path / "me.pex"), master="yarn")
    assert key not in spark_conf.spark_conf(url, master="local-cluster[2,1,1024]")
    # merged with the user's own list on the builder
    ssb.master("yarn").config(key, "hdfs://other:8020")
    scb.add_packaged_environment(ssb, url)
    assert ssb._options[key] == "hdfs://other:8020,hdfs://nn2:8020"


@pytest.mark.parametrize("authentication", ["simple", None])
def test_without_kerberos_the_properties_are_those_of_the_original(tmp_path, monkeypatch,
                                                                   authentication):
    url = "hdfs://nn2:8020/user/me/envs/me.pex"
    MANIFESTS[url] = parts_manifest()
    plain = spark_conf.spark_conf(url, master="yarn")  # the autouse fixture: not secure
    if authentication:
        _hadoop_conf(tmp_path, monkeypatch, authentication)
    else:  # no Hadoop configuration at all
        monkeypatch.setattr(hadoop_conf, "security_enabled", REAL_SECURITY_ENABLED)
        monkeypatch.setattr(hadoop_conf, "conf_dir", lambda holding="core-site.xml": None)
    assert not hadoop_conf.security_enabled()
    assert spark_conf.spark_conf(url, master="yarn") == plain
    assert spark_conf.TOKEN_FILE_SYSTEMS_KEY not in plain
    _hadoop_conf(tmp_path, monkeypatch, "kerberos")
    secure = spark_conf.spark_conf(url, master="yarn")
    assert {k: v for k, v in secure.items() if k != spark_conf.TOKEN_FILE_SYSTEMS_KEY} == plain
