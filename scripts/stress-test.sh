#!/usr/bin/env bash
# The busy-machine check: run `make test`'s pytest stage while `stress-ng --cpu 2` keeps both
# cores busy. Tests must not depend on timing; this is how we find the ones that do.
#
# Usage: scripts/stress-test.sh [RUNS] [-- PYTEST ARGS]   (default: 1 run of the whole suite)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

runs=1
if [[ $# -gt 0 && $1 != "--" ]]; then
    runs=$1
    shift
fi
[[ ${1:-} == "--" ]] && shift

command -v stress-ng >/dev/null 2>&1 || { echo "stress: stress-ng missing (scripts/bootstrap.sh installs it)" >&2; exit 1; }

stress-ng --cpu 2 --timeout 0 --quiet &
stress_pid=$!
trap 'kill "$stress_pid" 2>/dev/null; wait "$stress_pid" 2>/dev/null || true' EXIT

for ((run = 1; run <= runs; run++)); do
    echo "stress: run $run of $runs (stress-ng --cpu 2 beside it)"
    start=$SECONDS
    uv run pytest "$@"
    echo "stress: run $run passed in $((SECONDS - start)) s"
done
