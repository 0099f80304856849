#!/usr/bin/env bash
# Fetch Hadoop's s3a connector for pyspark into the Maven local repository (~/.m2):
# org.apache.hadoop:hadoop-aws in the version of pyspark's bundled Hadoop jars
# (pyspark/jars/hadoop-client-api-<v>.jar; 3.4.1 for pyspark 4.0.x) and its runtime
# dependencies (the AWS SDK v2 bundle, ~530 MB, and wildfly-openssl), resolved from
# tests/spark/s3-jars/pom.xml.
#
# Prints the jars as one comma-separated line on stdout (for spark.jars, or joined with ":" for
# spark.driver/executor.extraClassPath, which an s3a:// environment needs) and caches that line
# in $CACHE/jars-<hadoop version>-<pom hash>.txt: a re-run whose jars are all there prints it
# without starting Maven (~0.1 s). Idempotent, non-interactive (CI=true, no stdin).
#
# Env: SPARK_S3_PYTHON (the python whose pyspark decides the Hadoop version; default: the first
#      of <repo>/.venv/bin/python, $PYTHON, python3 with pyspark, else 3.4.1),
#      SPARK_S3_HADOOP_VERSION (override), CLUSTER_PACK_SPARK_S3_CACHE (cache dir),
#      CLUSTER_PACK_HARNESS_MAVEN_ARGS (extra mvn args, e.g. -Dmaven.repo.local=...),
#      CLUSTER_PACK_HARNESS_MVN (mvn binary).
set -euo pipefail
exec </dev/null

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
POM="$ROOT/tests/spark/s3-jars/pom.xml"
log() { echo "[install-spark-s3] $*" >&2; }

# ---- the Hadoop version of pyspark's jars: the first of SPARK_S3_PYTHON, <repo>/.venv/bin/python,
# $PYTHON, python3 that has pyspark
version="${SPARK_S3_HADOOP_VERSION:-}"
if [[ -z "$version" ]]; then
  for py in "${SPARK_S3_PYTHON:-}" "$ROOT/.venv/bin/python" "${PYTHON:-}" python3; do
    [[ -n "$py" ]] && command -v "$py" >/dev/null 2>&1 || continue
    jars_dir="$("$py" -c 'import os, pyspark; print(os.path.join(os.path.dirname(pyspark.__file__), "jars"))' 2>/dev/null || true)"
    [[ -n "$jars_dir" ]] || continue
    api="$(ls "$jars_dir"/hadoop-client-api-*.jar 2>/dev/null | head -n1 || true)"
    if [[ -n "$api" ]]; then
      version="$(basename "$api" .jar)"; version="${version#hadoop-client-api-}"
      break
    fi
  done
  if [[ -z "$version" ]]; then
    version=3.4.1
    log "no pyspark with Hadoop jars found: assuming Hadoop $version (pyspark 4.0.x)"
  fi
fi

CACHE="${CLUSTER_PACK_SPARK_S3_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/cluster-pack-spark-s3}"
mkdir -p "$CACHE"
pom_hash="$(cat "$POM" <(echo "${CLUSTER_PACK_HARNESS_MAVEN_ARGS:-}") | sha256sum | cut -c1-12)"
list="$CACHE/jars-$version-$pom_hash.txt"

all_there() {
  local jar
  [[ -s "$1" ]] || return 1
  IFS=, read -r -a jars < "$1"
  [[ ${#jars[@]} -gt 0 ]] || return 1
  for jar in "${jars[@]}"; do [[ -s "$jar" ]] || return 1; done
}

if all_there "$list"; then
  cat "$list"
  exit 0
fi

# ---- Maven (the harness installer normally brought it)
MVN="${CLUSTER_PACK_HARNESS_MVN:-mvn}"
if ! command -v "$MVN" >/dev/null 2>&1; then
  sudo=""; [[ "$(id -u)" != 0 ]] && sudo="sudo -n"
  log "apt-get install maven"
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends maven >/dev/null
fi

log "resolving org.apache.hadoop:hadoop-aws:$version (+ AWS SDK bundle) into the Maven repository"
started=$SECONDS
tmp="$(mktemp "$CACHE/.cp.XXXXXX")"
trap 'rm -f "$tmp"' EXIT
# shellcheck disable=SC2086
"$MVN" -B -q -Dstyle.color=never -f "$POM" ${CLUSTER_PACK_HARNESS_MAVEN_ARGS:-} -Dhadoop.version="$version" \
  dependency:build-classpath -DincludeScope=runtime -Dmdep.outputFile="$tmp" >&2
# build-classpath writes a ':'-separated list (jar paths hold no ':')
{ tr -d '\n' < "$tmp" | tr ':' ','; echo; } > "$tmp.list"
mv "$tmp.list" "$list"
all_there "$list" || { log "Maven resolved no usable jar list: $(cat "$list")"; exit 1; }
grep -q "hadoop-aws-$version.jar" "$list" || { log "hadoop-aws-$version.jar missing from $(cat "$list")"; exit 1; }
log "done in $((SECONDS - started)) s: $(tr ',' ' ' < "$list")"
cat "$list"
