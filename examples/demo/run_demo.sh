#!/usr/bin/env bash
# The quick-start demo: make a venv with cluster-pack, a small package and an editable
# project, pack + publish it to the local store, then run the job exactly as a cluster
# container would (fresh directory, minimal environment) with the local runner.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
work="${DEMO_DIR:-$repo/.demo}"
python="${PYTHON:-python3}"

mkdir -p "$work"
if [ ! -x "$work/tools/bin/uv" ]; then
  "$python" -m venv "$work/tools"
  "$work/tools/bin/pip" install --quiet --disable-pip-version-check uv
fi
uv="$work/tools/bin/uv"
if [ ! -x "$work/venv/bin/cluster-pack" ]; then
  "$uv" venv --quiet --python "$python" "$work/venv"
  "$uv" pip install --quiet --python "$work/venv/bin/python" "$repo" six \
    -e "$here/demo_project"
fi
export C_PACK_CACHE_DIR="$work/cache"
export C_PACK_UV="$uv"

echo "== cluster-pack upload (pack the venv, publish it to the local store)"
"$work/venv/bin/cluster-pack" upload
echo "== cluster-pack upload again (nothing changed: skipped)"
"$work/venv/bin/cluster-pack" upload
echo "== cluster-pack run --local (as a cluster container would)"
"$work/venv/bin/cluster-pack" run --local -- python -m demo_job --day 2026-11-25 "with space"
