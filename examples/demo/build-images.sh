#!/usr/bin/env bash
# Builds the demo images locally from Debian's static busybox (apt-get install busybox-static).
# fleetwire-demo/web:1.0.0 and 1.1.0 are healthy; 1.2.0-broken fails its health check, to
# show an upgrade rolling back.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
cp "$here/image/Dockerfile" "$ctx/"
cp "$(command -v busybox || echo /bin/busybox)" "$ctx/busybox"
build() {
    docker build -q -t "fleetwire-demo/web:$1" --build-arg "VERSION=$1" --build-arg "HEALTHY=$2" "$ctx" >/dev/null
    echo "built fleetwire-demo/web:$1"
}
build 1.0.0 true
build 1.1.0 true
build 1.2.0-broken false
