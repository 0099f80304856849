"""Builders of fake installed distributions for unit tests (no pip, no network)."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Dict, Optional


def _record_line(root: Path, path: Path) -> str:
    data = path.read_bytes()
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{path.relative_to(root).as_posix()},sha256={digest},{len(data)}"


def make_dist(site: Path, name: str, version: str, files: Optional[Dict[str, str]] = None,
              editable_url: Optional[str] = None, extra_metadata: str = "",
              top_level: Optional[str] = None) -> Path:
    """Create ``name-version.dist-info`` (+ files) in ``site``; returns the dist-info dir."""
    site.mkdir(parents=True, exist_ok=True)
    dist_info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n{extra_metadata}")
    written = [dist_info / "METADATA"]
    for rel, content in (files or {}).items():
        target = site / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content)
        written.append(target)
    if editable_url:
        (dist_info / "direct_url.json").write_text(
            json.dumps({"url": editable_url, "dir_info": {"editable": True}}))
        written.append(dist_info / "direct_url.json")
    if top_level is not None:
        (dist_info / "top_level.txt").write_text(top_level)
        written.append(dist_info / "top_level.txt")
    lines = [_record_line(site, p) for p in written]
    lines.append(f"{dist_info.name}/RECORD,,")
    (dist_info / "RECORD").write_text("\n".join(lines) + "\n")
    return dist_info


def hadoop_conf_dir(directory: Path, monkeypatch, site: str, name: str, value: str) -> Path:
    """A Hadoop client configuration directory holding one property in ``site`` (e.g.
    ``core-site.xml``), made ``HADOOP_CONF_DIR`` for the test."""
    directory.mkdir(parents=True)
    (directory / site).write_text(
        f"<configuration><property><name>{name}</name><value>{value}</value></property>"
        "</configuration>")
    monkeypatch.setenv("HADOOP_CONF_DIR", str(directory))
    return directory
