"""Code that ships the path ``upload_env`` returns ITSELF, as users of cluster-pack 0.3.19 did.

By default (``C_PACK_LAYOUT=pex+parts``) ``upload_env`` publishes a real single file at the
returned path, a ``.pex`` zipapp or (``allow_large_pex=True``) a ``.pex.zip``, beside the
content-addressed parts cluster-pack's own launchers use. These tests run that single file on
the harness (MiniYARN + HDFS) with NO cluster-pack launcher helper in the loop:

* their own ``skein.Service``, built as downstream code of the original does (tf-yarn, the
  original's ``skein_config_builder``): ``files={pyenv.dest_path: <the returned path>}``
  from ``get_pyenv_usage_from_archive`` and ``pyenv.interpreter_cmd -m module`` as command;
* PySpark on YARN configured by hand as the original's ``spark_config_builder`` did:
  ``spark.yarn.dist.files=<path>``, ``spark.executorEnv.PEX_ROOT=./.pex`` and
  ``PYSPARK_PYTHON=./<name>.pex``, client mode.

(``python PATH -m mod`` on a local copy of the single file is covered by tests/test_publish.py.)
"""

from __future__ import annotations

import getpass
import json
import os
import subprocess
import sys
import textwrap

import pytest

from tests.venvs import JAVA_HOME, clean_env

pytestmark = [pytest.mark.yarn, pytest.mark.hdfs, pytest.mark.timeout(900)]

USER = os.environ.get("C_PACK_USER") or getpass.getuser()

# -- 1. an own skein.Service ----------------------------------------------------------------

SKEIN_DRIVER = """
import json, time
import skein
import cluster_pack
from cluster_pack import filesystem
from cluster_pack.skein import skein_launcher  # only to read the logs afterwards

TARGET = {target!r}
LARGE = {large!r}
FILES_FORM = {files_form!r}

t0 = time.monotonic()
path, _ = cluster_pack.upload_env(package_path=TARGET, include_editable=True,
                                  allow_large_pex=LARGE)
publish_seconds = time.monotonic() - t0
fs, fs_path = filesystem.resolve_filesystem_and_path(path)
info = fs.info(fs_path)
with fs.open(fs_path, "rb") as f:
    head = f.read(64).decode("latin-1")

# -- from here on: exactly what code written for the original does with the path --
pyenv = cluster_pack.get_pyenv_usage_from_archive(path)
if FILES_FORM == "skein.File":
    files = {{pyenv.dest_path: skein.File(source=pyenv.path_to_archive,
                                         type="archive" if pyenv.must_unpack else "file")}}
else:  # 0.3.19's skein_config_builder, tf-yarn: a plain path, skein infers the type (.zip)
    files = {{pyenv.dest_path: pyenv.path_to_archive}}
script = (
    "set -e\\n"
    "export PEX_ROOT=./.pex\\n"
    'echo "CWD-LISTING $(ls -A | tr \\'\\\\n\\' \\' \\')"\\n'
    f"{{pyenv.interpreter_cmd}} -m cpack_toy.job a b\\n"
    f"{{pyenv.interpreter_cmd}} -c 'import sys, cpack_toy; "
    f"print(\\"TOY-FROM \\" + cpack_toy.__file__ + \\" \\" + sys.executable, flush=True)'\\n")
service = skein.Service(resources=skein.Resources(memory="512 MiB", vcores=1),
                        files=files, script=script)
spec = skein.ApplicationSpec(name="ships-itself", queue="default", services={{"main": service}})
shipped = {{name: [f.source, str(f.type)] for name, f in spec.services["main"].files.items()}}

t0 = time.monotonic()
with skein.Client() as client:
    app_id = client.submit(spec)
    deadline = time.monotonic() + 600
    while True:
        report = client.application_report(app_id)
        if str(report.final_status) != "UNDEFINED" or time.monotonic() > deadline:
            break
        time.sleep(1)
    run_seconds = time.monotonic() - t0
    logs = skein_launcher.get_application_logs(client, app_id, log_tries=10)
print("RESULT:" + json.dumps({{
    "path": path, "pyenv": list(pyenv), "is_file": info["type"] == "file",
    "size": info["size"], "head": head, "shipped": shipped, "app_id": app_id,
    "state": str(report.state), "final_status": str(report.final_status),
    "diagnostics": report.diagnostics, "publish_seconds": publish_seconds,
    "run_seconds": run_seconds, "logs": "\\n".join(logs.values()) if logs else ""}}), flush=True)
"""


@pytest.mark.parametrize("large, files_form", [(False, "skein.File"), (True, "str")],
                         ids=["pex-skein.File", "pex.zip-plain-path"])
def test_own_skein_service_runs_the_returned_path(run_driver, hadoop_cluster, yarn_venv,
                                                  large, files_form):
    target = f"{hadoop_cluster.default_fs}/user/{USER}/envs/ships_itself" + \
        ("_large.pex" if large else ".pex")
    result = run_driver(SKEIN_DRIVER.format(target=target, large=large, files_form=files_form))
    print(f"\n[ships itself] {os.path.basename(result['path'])}: published in "
          f"{result['publish_seconds']:.1f}s, app ran in {result['run_seconds']:.1f}s",
          file=sys.stderr)
    path, logs = result["path"], result["logs"]
    context = f"{result['state']} {result['final_status']} {result['diagnostics']}\n{logs[-6000:]}"

    # a real single file at the returned path: a zipapp (shebang) or the zipped pex directory
    name = os.path.basename(path)
    assert result["is_file"] and result["size"] > 0, result
    if large:
        assert path == target + ".zip"
        assert result["pyenv"] == [path, "pyenv/__main__.py", "pyenv", True]
        assert result["head"].startswith("PK\x03\x04"), result["head"]
    else:
        assert path == target
        assert result["pyenv"] == [path, f"./{name}", name, False]
        assert result["head"].startswith(f"#!/usr/bin/env python{sys.version_info[0]}")

    # exactly one file shipped, the returned path itself, localized as the original did
    assert result["shipped"] == {result["pyenv"][2]: [path, "ARCHIVE" if large else "FILE"]}

    assert result["final_status"] == "SUCCEEDED", context
    lines = logs.splitlines()
    job = json.loads(next(ln for ln in lines if ln.startswith("TOY-JOB "))[len("TOY-JOB "):])
    assert job["argv"] == ["a", "b"] and job["greet"] == "hello yarn", job
    # the editable project came from the single file (baked in), installed under ./.pex
    toy_file, executable = next(ln for ln in lines if ln.startswith("TOY-FROM ")).split()[1:]
    assert "/.pex/venvs/" in toy_file and "/container_" in toy_file, toy_file
    assert not toy_file.startswith(str(yarn_venv.toyproj)), toy_file
    assert "/.pex/venvs/" in executable, executable
    # nothing else in the container's directory: no parts, no editable zips
    listing = next(ln for ln in lines if ln.startswith("CWD-LISTING ")).split()[1:]
    assert result["pyenv"][2] in listing, listing
    assert not [n for n in listing if n.startswith(("cpack-", "editable_", ".cluster-pack",
                                                    "cluster_pack"))], listing


# -- 2. Spark on YARN, configured by hand ---------------------------------------------------

SPARK_DRIVER = textwrap.dedent("""
    import json, os, sys
    from pyspark.sql import SparkSession

    path, out = sys.argv[1], sys.argv[2]
    name = path.rsplit("/", 1)[-1]

    def where(_):
        import os, sys
        import cowsay  # only in the published environment
        import pyspark
        pex = os.environ.get("PEX") or ""
        return {"executable": sys.executable, "prefix": sys.prefix, "pex": pex,
                "pex_is_file": os.path.isfile(pex), "cwd": os.getcwd(),
                "listing": sorted(os.listdir(".")), "cowsay": cowsay.__file__,
                "pyspark": pyspark.__file__, "pex_root": os.environ.get("PEX_ROOT")}

    # what the original's spark_config_builder.add_packaged_environment did, by hand
    os.environ["PYSPARK_PYTHON"] = "./" + name
    spark = (SparkSession.builder.master("yarn").appName("ships-itself-spark")
             .config("spark.submit.deployMode", "client")
             .config("spark.yarn.dist.files", path)
             .config("spark.executorEnv.PEX_ROOT", "./.pex")
             .config("spark.pyspark.python", "./" + name)
             .config("spark.pyspark.driver.python", sys.executable)
             .config("spark.ui.enabled", "false")
             .config("spark.executor.instances", "2").config("spark.executor.cores", "1")
             .config("spark.executor.memory", "512m")
             .config("spark.executor.memoryOverhead", "384m")
             .config("spark.yarn.am.memory", "512m")
             .getOrCreate())
    conf = spark.sparkContext.getConf()
    rows = spark.sparkContext.parallelize(range(4), 4).map(where).collect()
    with open(out, "w") as f:
        json.dump({"rows": rows, "dist_files": conf.get("spark.yarn.dist.files"),
                   "dist_archives": conf.get("spark.yarn.dist.archives"),
                   "driver_executable": sys.executable}, f)
    spark.stop()
""")


@pytest.mark.spark
@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_spark_on_yarn_configured_by_hand_with_the_returned_path(hadoop_cluster, tmp_path,
                                                                 spark_venv):
    target = f"{hadoop_cluster.default_fs}/user/{USER}/envs/spark_ships_itself.pex"
    env = clean_env({**hadoop_cluster.env, "JAVA_HOME": JAVA_HOME,
                     "SPARK_HOME": str(spark_venv["spark_home"]),
                     "C_PACK_CACHE_DIR": str(spark_venv["base"] / "cache")},
                    drop=("PYSPARK_PYTHON", "PYSPARK_DRIVER_PYTHON"))
    # published in its own process (see test_spark_yarn.py: hdfs-native + PySpark's fork)
    publish = subprocess.run(
        [str(spark_venv["python"]), "-c",
         "import sys, cluster_pack; print('PATH ' + cluster_pack.upload_env("
         "package_path=sys.argv[1], ignored_packages=['pyspark', 'py4j'])[0])", target],
        env=env, capture_output=True, text=True, timeout=600)
    assert publish.returncode == 0, publish.stderr[-6000:]
    path = next(ln for ln in publish.stdout.splitlines() if ln.startswith("PATH "))[5:]
    assert path == target

    driver = tmp_path / "driver.py"
    driver.write_text(SPARK_DRIVER)
    out = tmp_path / "report.json"
    proc = subprocess.run([str(spark_venv["python"]), str(driver), path, str(out)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=1000)
    assert proc.returncode == 0, f"driver failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
    report = json.loads(out.read_text())

    assert report["dist_files"] == path  # the single file, nothing else shipped
    assert report["dist_archives"] is None
    assert report["driver_executable"] == str(spark_venv["python"])
    rows = report["rows"]
    assert len(rows) == 4
    for row in rows:
        # executors ran Python from the localized single file, installed under ./.pex
        # (PEX: the localized file, symlinked into the container's directory by YARN)
        assert "spark_ships_itself.pex" in row["listing"], row
        assert row["pex"].endswith("/spark_ships_itself.pex") and row["pex_is_file"], row
        assert row["executable"].startswith(os.path.join(row["cwd"], ".pex", "venvs")), row
        assert row["cowsay"].startswith(row["prefix"]), row  # from the published env
        assert "pyspark.zip" in row["pyspark"], row  # left out: Spark's own
        assert not [n for n in row["listing"] if n.startswith(("cpack-", "editable_"))], row
    assert len({row["cwd"] for row in rows}) == 2  # two YARN containers
