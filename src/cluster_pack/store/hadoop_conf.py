"""Reading the Hadoop client configuration (``core-site.xml``...) without a JVM.

The configuration directory is ``$HADOOP_CONF_DIR``, else ``$HADOOP_HOME/etc/hadoop``,
else ``/etc/hadoop/conf``. Only the files are read: no ``hdfs getconf`` subprocess.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Dict, Optional
from urllib.parse import urlsplit


def conf_dir(holding: str = "core-site.xml") -> Optional[Path]:
    """The Hadoop configuration directory in use (the first candidate holding the file
    ``holding``), or None when there is none."""
    candidates = []
    if os.environ.get("HADOOP_CONF_DIR"):
        candidates.append(Path(os.environ["HADOOP_CONF_DIR"]))
    if os.environ.get("HADOOP_HOME"):
        candidates.append(Path(os.environ["HADOOP_HOME"]) / "etc" / "hadoop")
    candidates.append(Path("/etc/hadoop/conf"))
    for candidate in candidates:
        if (candidate / holding).is_file():
            return candidate
    return None


def read_properties(path: Path) -> Dict[str, str]:
    """The ``name -> value`` pairs of one Hadoop XML configuration file."""
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError):
        return {}
    props = {}
    for prop in root.iter("property"):
        name = (prop.findtext("name") or "").strip()
        if name:
            props[name] = (prop.findtext("value") or "").strip()
    return props


def load(directory: Optional[Path] = None) -> Dict[str, str]:
    """core-site.xml and hdfs-site.xml merged (hdfs-site wins), or {}."""
    directory = directory or conf_dir()
    if directory is None:
        return {}
    merged: Dict[str, str] = {}
    for name in ("core-site.xml", "hdfs-site.xml"):
        merged.update(read_properties(directory / name))
    return merged


def default_fs() -> Optional[str]:
    """``fs.defaultFS`` of the Hadoop configuration (``hdfs://nn:8020``), or None."""
    value = load().get("fs.defaultFS") or load().get("fs.default.name")
    if not value or value.startswith("file:"):
        return None
    return value.rstrip("/")


def security_enabled(directory: Optional[Path] = None) -> bool:
    """Whether the Hadoop client configuration says the cluster is Kerberized
    (``hadoop.security.authentication=kerberos``); False without a configuration."""
    return load(directory).get("hadoop.security.authentication", "").strip().lower() == "kerberos"


# Schemes of Hadoop file systems that hand out delegation tokens (not s3a: no token without a
# delegation token binding, and naming it would make Spark initialize it on the driver).
TOKEN_SCHEMES = frozenset({"hdfs", "viewfs", "webhdfs", "swebhdfs"})


def token_file_system(url: str) -> Optional[str]:
    """``scheme://authority`` of ``url`` when it is on a Hadoop file system that hands out
    delegation tokens, else None. ``hdfs:///path`` (no authority) is on the default file
    system, which YARN clients get a token for anyway: None too.

    >>> token_file_system("hdfs://nn2:8020/user/me/envs/a.pex")
    'hdfs://nn2:8020'
    """
    parsed = urlsplit(url)
    if parsed.scheme in TOKEN_SCHEMES and parsed.netloc:
        return f"{parsed.scheme}://{parsed.netloc}"
    return None


def hadoop_url(url: str) -> str:
    """The URL Hadoop (YARN's localization, Spark) reads for ``url``: its S3 connector is
    ``s3a://``; other URLs are unchanged.

    >>> hadoop_url("s3://bucket/envs/me.pex")
    's3a://bucket/envs/me.pex'
    """
    return "s3a://" + url[len("s3://"):] if url.startswith("s3://") else url
