#!/usr/bin/env bash
# Install what the real-parts test harness (cluster_pack_harness) needs, idempotently:
#   - a JDK (17 preferred) with javac, and Maven  -> apt-get only if missing
#   - moto[server] in the project's Python        -> pip/uv only if missing
#   - krb5-user (kinit, klist) and libgssapi-krb5-2 for the secure (Kerberos) mode -> apt-get if missing
#   - the MiniHadoop Java program: Maven fetches hadoop-minicluster into ~/.m2 and compiles into
#     ~/.cache/cluster-pack-harness/build-<hash> (skipped when that build is already complete)
# Works non-interactively (CI=true, no stdin). Re-running when everything is there takes ~1 s.
#
# Env: PYTHON (default: <repo>/.venv/bin/python, else python3),
#      CLUSTER_PACK_HARNESS_CACHE, CLUSTER_PACK_HARNESS_JAVA_HOME, CLUSTER_PACK_HARNESS_MAVEN_ARGS.
set -euo pipefail
exec </dev/null

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
log() { echo "[install-harness] $*" >&2; }

if [[ -z "${PYTHON:-}" ]]; then
  if [[ -x "$ROOT/.venv/bin/python" ]]; then PYTHON="$ROOT/.venv/bin/python"; else PYTHON="$(command -v python3)"; fi
fi

APT_UPDATED=0
apt_install() {
  if ! command -v apt-get >/dev/null 2>&1; then
    log "missing $*, and no apt-get to install it"; exit 1
  fi
  local sudo=""
  if [[ "$(id -u)" != 0 ]]; then sudo="sudo -n"; fi
  if [[ $APT_UPDATED == 0 ]]; then
    log "apt-get update"
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    APT_UPDATED=1
  fi
  log "apt-get install $*"
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# ---- JDK with javac (Hadoop 3.4 runs on 8/11/17/21; 17 preferred)
have_jdk() {
  local d
  # JAVA_HOME is not trusted here: it may point at a JDK too new for Hadoop (e.g. 25)
  for d in "${CLUSTER_PACK_HARNESS_JAVA_HOME:-}" /usr/lib/jvm/java-17-openjdk-* /usr/lib/jvm/java-11-openjdk-* /usr/lib/jvm/java-21-openjdk-*; do
    if [[ -n "$d" && -x "$d/bin/javac" ]]; then echo "$d"; return 0; fi
  done
  return 1
}
if ! JDK="$(have_jdk)"; then
  apt_install openjdk-17-jdk-headless
  JDK="$(have_jdk)" || { log "no JDK after apt-get install"; exit 1; }
fi
log "JDK: $JDK"

# ---- Maven
if ! command -v mvn >/dev/null 2>&1 && [[ -z "${CLUSTER_PACK_HARNESS_MVN:-}" ]]; then
  apt_install maven
fi

# ---- Kerberos client tools for the secure mode (kinit/klist/kdestroy) and libgssapi_krb5,
#      which hdfs-native loads at run time for GSSAPI (the KDC itself is Hadoop's MiniKdc, in Java)
if ! command -v kinit >/dev/null 2>&1 || ! command -v klist >/dev/null 2>&1 \
   || ! ldconfig -p 2>/dev/null | grep -q 'libgssapi_krb5\.so\.2'; then
  # krb5-config asks for a default realm: preseed nothing, answer nothing (noninteractive)
  apt_install krb5-user libgssapi-krb5-2
fi

# ---- Python side: moto server (the S3 part); the test extra normally brings it
if ! "$PYTHON" -c "import moto.server, boto3, flask" >/dev/null 2>&1; then
  log "installing moto[server] into $PYTHON"
  if [[ -x "$(dirname "$PYTHON")/uv" ]]; then
    "$(dirname "$PYTHON")/uv" pip install --quiet --python "$PYTHON" "moto[server]>=5"
  else
    "$PYTHON" -m pip install --quiet "moto[server]>=5"
  fi
fi

# ---- Maven build (cached by content hash; a no-op when already complete)
export PYTHONPATH="$ROOT/src${PYTHONPATH:+:$PYTHONPATH}"
for attempt in 1 2 3; do
  if "$PYTHON" -m cluster_pack_harness build; then
    log "harness ready"
    exit 0
  fi
  log "build attempt $attempt failed; retrying in $((attempt * 10))s"
  sleep $((attempt * 10))
done
log "harness build failed"
exit 1
