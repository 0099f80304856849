"""examples/interactive-mode/interactive-mode.ipynb executed by nbclient + ipykernel against
the minicluster: a function defined in the notebook runs on YARN with the notebook's venv."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

nbclient = pytest.importorskip("nbclient")
nbformat = pytest.importorskip("nbformat")

pytestmark = [pytest.mark.yarn, pytest.mark.hdfs, pytest.mark.timeout(900)]

NOTEBOOK = Path(__file__).resolve().parents[2] / "examples" / "interactive-mode" / \
    "interactive-mode.ipynb"


def test_interactive_mode_notebook(yarn_venv, driver_env, monkeypatch, tmp_path):
    # a kernelspec running the test venv's python: the notebook's venv is what gets packed
    kernel_dir = tmp_path / "jupyter" / "kernels" / "cpack-test"
    kernel_dir.mkdir(parents=True)
    (kernel_dir / "kernel.json").write_text(json.dumps({
        "argv": [yarn_venv.python, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "cluster-pack test venv", "language": "python"}))
    for key, value in driver_env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.chdir(tmp_path)
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(nb, kernel_name="cpack-test", timeout=600,
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    outputs = "\n".join(
        out.get("text", "") for cell in nb.cells if cell.cell_type == "code"
        for out in cell.get("outputs", []))
    assert "succeeded: True" in outputs, outputs
    assert "compute returned 285" in outputs, outputs
    assert ".pex" in outputs and "hdfs://" in outputs
