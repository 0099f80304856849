"""Locate a JDK and Maven, and build the MiniHadoop Java program (cached).

The Maven project lives in ``cluster_pack_harness/java``. Its build output does not go to
``java/target`` but to a cache directory keyed by a hash of the pom and the Java sources:

    ${CLUSTER_PACK_HARNESS_CACHE:-~/.cache/cluster-pack-harness}/build-<hash>/
        classes/          compiled MiniHadoop
        classpath.txt     runtime classpath (jars in the Maven local repository, ~/.m2)
        .complete         written last

Dependencies are fetched into the normal Maven local repository (``~/.m2/repository``, or
whatever ``-Dmaven.repo.local`` in ``MAVEN_OPTS`` / ``CLUSTER_PACK_HARNESS_MAVEN_ARGS`` says).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from cluster_pack_harness._proc import HarnessError, HarnessUnavailable

JAVA_DIR = Path(__file__).resolve().parent / "java"
MAIN_CLASS = "com.criteo.clusterpack.harness.MiniHadoop"
# JDK majors Hadoop 3.4 runs on (it breaks on JDK 23+: Subject/SecurityManager removals).
SUPPORTED_JAVA = (8, 11, 17, 21)
PREFERRED_JAVA = (17, 11, 21)

# JPMS options Hadoop needs on JDK 9+ (HADOOP-19219 / HADOOP-19310 list).
ADD_OPENS = [
    "java.base/java.lang",
    "java.base/java.lang.reflect",
    "java.base/java.io",
    "java.base/java.net",
    "java.base/java.nio",
    "java.base/java.util",
    "java.base/java.util.concurrent",
    "java.base/java.util.concurrent.atomic",
    "java.base/java.util.regex",
    "java.base/java.util.zip",
    "java.base/sun.nio.ch",
    "java.base/sun.nio.cs",
    "java.base/sun.security.action",
    "java.base/sun.util.calendar",
    "java.security.jgss/sun.security.krb5",
]


def java_module_options(java_major: int) -> List[str]:
    if java_major < 9:
        return []
    return [f"--add-opens={m}=ALL-UNNAMED" for m in ADD_OPENS]


def cache_dir() -> Path:
    env = os.environ.get("CLUSTER_PACK_HARNESS_CACHE")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "cluster-pack-harness"


# --------------------------------------------------------------------------- Java


def java_major(java_home: Path) -> Optional[int]:
    java = java_home / "bin" / "java"
    if not os.access(java, os.X_OK):
        return None
    release = java_home / "release"
    text = ""
    if release.exists():
        m = re.search(r'JAVA_VERSION="([^"]+)"', release.read_text(errors="replace"))
        text = m.group(1) if m else ""
    if not text:
        try:
            out = subprocess.run([str(java), "-version"], capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            return None
        m = re.search(r'version "([^"]+)"', out.stderr + out.stdout)
        text = m.group(1) if m else ""
    if not text:
        return None
    parts = text.split(".")
    try:
        return int(parts[1]) if parts[0] == "1" else int(parts[0])
    except (ValueError, IndexError):
        return None


def find_java_home() -> Tuple[Path, int]:
    """Pick the JDK for the harness.

    Order: $CLUSTER_PACK_HARNESS_JAVA_HOME (taken as is), $JAVA_HOME if its major is supported,
    a JDK 17/11/21 under /usr/lib/jvm, the ``java`` on PATH.
    """
    forced = os.environ.get("CLUSTER_PACK_HARNESS_JAVA_HOME")
    if forced:
        major = java_major(Path(forced))
        if major is None:
            raise HarnessUnavailable(f"CLUSTER_PACK_HARNESS_JAVA_HOME={forced} has no usable bin/java")
        return Path(forced), major
    candidates: List[Path] = []
    if os.environ.get("JAVA_HOME"):
        candidates.append(Path(os.environ["JAVA_HOME"]))
    jvm = Path("/usr/lib/jvm")
    if jvm.is_dir():
        found: Dict[int, Path] = {}
        for d in sorted(jvm.iterdir()):
            if d.is_symlink() or not d.is_dir():
                continue
            major = java_major(d)
            if major is not None:
                found.setdefault(major, d)
        candidates.extend(found[m] for m in PREFERRED_JAVA if m in found)
    java = shutil.which("java")
    if java:
        candidates.append(Path(os.path.realpath(java)).parent.parent)
    seen = set()
    for c in candidates:
        if c in seen:
            continue
        seen.add(c)
        major = java_major(c)
        if major in SUPPORTED_JAVA:
            return c, major
    raise HarnessUnavailable(
        "no supported JDK found (need Java 8/11/17/21; looked at JAVA_HOME, /usr/lib/jvm, PATH). "
        "Run .ci/install-harness.sh or set CLUSTER_PACK_HARNESS_JAVA_HOME."
    )


# --------------------------------------------------------------------------- Maven build


def source_hash() -> str:
    h = hashlib.sha256()
    files = [JAVA_DIR / "pom.xml"] + sorted((JAVA_DIR / "src").rglob("*.java"))
    for f in files:
        h.update(str(f.relative_to(JAVA_DIR)).encode())
        h.update(b"\0")
        h.update(f.read_bytes())
        h.update(b"\0")
    return h.hexdigest()[:16]


@dataclass
class Build:
    directory: Path

    @property
    def classes(self) -> Path:
        return self.directory / "classes"

    @property
    def classpath_file(self) -> Path:
        return self.directory / "classpath.txt"

    def jars(self) -> List[str]:
        return [p for p in self.classpath_file.read_text().strip().split(os.pathsep) if p]

    def jvm_classpath(self) -> str:
        return os.pathsep.join([str(self.classes)] + self.jars())

    def is_complete(self) -> bool:
        if not (self.directory / ".complete").exists() or not self.classpath_file.exists():
            return False
        if not (self.classes / (MAIN_CLASS.replace(".", "/") + ".class")).exists():
            return False
        # ~/.m2 may have been cleaned since.
        return all(os.path.exists(j) for j in self.jars())


def build_dir() -> Build:
    return Build(cache_dir() / f"build-{source_hash()}")


def maven_command() -> List[str]:
    mvn = os.environ.get("CLUSTER_PACK_HARNESS_MVN") or shutil.which("mvn")
    if not mvn:
        raise HarnessUnavailable(
            "Maven (mvn) not found: needed once to build the Hadoop minicluster program. "
            "Run .ci/install-harness.sh (installs it with apt-get if missing)."
        )
    return [mvn]


def ensure_built(*, build: bool = True, offline: bool = False, quiet: bool = True,
                 java_home: Optional[Path] = None, log=None) -> Build:
    """Return a complete build; run Maven if needed (and allowed by ``build``)."""
    b = build_dir()
    if b.is_complete():
        return b
    if not build:
        raise HarnessUnavailable(
            f"harness Java program not built ({b.directory} missing); run .ci/install-harness.sh "
            "or `python -m cluster_pack_harness build`"
        )
    if not (JAVA_DIR / "pom.xml").exists():
        raise HarnessUnavailable(f"{JAVA_DIR / 'pom.xml'} missing (package installed without its Java sources?)")
    if java_home is None:
        java_home, _ = find_java_home()
    mvn = maven_command()
    b.directory.parent.mkdir(parents=True, exist_ok=True)
    lock_path = b.directory.parent / f".{b.directory.name}.lock"
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if b.is_complete():
            return b
        (b.directory / ".complete").unlink(missing_ok=True)
        cmd = mvn + ["-B"]
        if quiet:
            cmd.append("-q")
        if offline:
            cmd.append("-o")
        cmd += shlex.split(os.environ.get("CLUSTER_PACK_HARNESS_MAVEN_ARGS", ""))
        cmd += [f"-Dharness.build.dir={b.directory}", "-f", str(JAVA_DIR / "pom.xml"), "compile"]
        env = dict(os.environ, JAVA_HOME=str(java_home))
        if log:
            log(f"building harness Java program: {shlex.join(cmd)}")
        proc = subprocess.run(cmd, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True)
        if proc.returncode != 0:
            out = (proc.stdout + proc.stderr).strip().splitlines()
            raise HarnessError(
                f"Maven build of the harness failed (exit {proc.returncode}): {shlex.join(cmd)}\n"
                + "\n".join(out[-60:])
            )
        if not b.classpath_file.exists():
            raise HarnessError(f"Maven build did not write {b.classpath_file}")
        (b.directory / ".complete").write_text(source_hash() + "\n")
    return b
