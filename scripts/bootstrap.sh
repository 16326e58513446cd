#!/usr/bin/env bash
# Install and start what Fleetwire's tests need on Debian bookworm (CI and fresh machines):
# Docker Engine, Mosquitto (binary only: tests start their own brokers on free ports),
# PostgreSQL 15 with a password for TCP logins, busybox-static (test images), uv, and the fault
# tools the tests and the busy-machine check use (stress-ng, faketime).
#
# Idempotent and quiet: prints one line per thing it installs, starts or changes, nothing when
# everything is already there. Runs as root (CI is root); needs no stdin.
#
# Environment:
#   FLEETWIRE_TEST_PG_PASSWORD  password set for the postgres role (default: fleetwire)
#   FLEETWIRE_TEST_PG_PORT      port of the cluster (default: 5432, as the tests expect)
#   FLEETWIRE_PG_CLUSTER        name of the PostgreSQL 15 cluster (default: main)
#   DOCKERD_LOG                 where a dockerd started here logs (default: /var/log/dockerd.log)
set -euo pipefail

PG_VERSION=15
PG_CLUSTER="${FLEETWIRE_PG_CLUSTER:-main}"
PG_PORT="${FLEETWIRE_TEST_PG_PORT:-5432}"
PG_PASSWORD="${FLEETWIRE_TEST_PG_PASSWORD:-fleetwire}"
DOCKERD_LOG="${DOCKERD_LOG:-/var/log/dockerd.log}"
WAIT_SECONDS=30
APT_PACKAGES=(docker.io mosquitto mosquitto-clients postgresql busybox-static debootstrap docker-compose
    stress-ng faketime)

export DEBIAN_FRONTEND=noninteractive

say() { printf 'bootstrap: %s\n' "$*"; }
die() { printf 'bootstrap: error: %s\n' "$*" >&2; exit 1; }

# Run "$@" until it succeeds, at most WAIT_SECONDS; returns its last status.
wait_until() {
    local deadline=$((SECONDS + WAIT_SECONDS))
    until "$@" >/dev/null 2>&1; do
        if ((SECONDS >= deadline)); then
            return 1
        fi
        sleep 0.2
    done
}

need_root() {
    if [[ "$(id -u)" -ne 0 ]]; then
        die "$1 needs root (CI runs as root); run: sudo $0"
    fi
}

install_packages() {
    local missing=() pkg
    for pkg in "${APT_PACKAGES[@]}"; do
        if ! dpkg -s "$pkg" >/dev/null 2>&1; then
            missing+=("$pkg")
        fi
    done
    if ((${#missing[@]} == 0)); then
        return
    fi
    need_root "installing ${missing[*]}"
    say "installing ${missing[*]} (apt-get)"
    apt-get update -qq </dev/null >/dev/null
    apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null >/dev/null
}

install_uv() {
    if command -v uv >/dev/null 2>&1; then
        return
    fi
    say "installing uv (pip)"
    local python
    python="$(command -v python3 || command -v python || true)"
    [[ -n "$python" ]] || die "no python3 to install uv with"
    if ! "$python" -m pip --version >/dev/null 2>&1; then
        need_root "installing python3-pip"
        apt-get install -y -qq python3-pip </dev/null >/dev/null
    fi
    # Debian's own python refuses pip installs outside a venv (PEP 668); pyenv's does not.
    "$python" -m pip install -q uv </dev/null ||
        "$python" -m pip install -q --break-system-packages uv </dev/null
    hash -r
    if command -v pyenv >/dev/null 2>&1; then
        pyenv rehash || true
    fi
    command -v uv >/dev/null 2>&1 || die "uv installed but not on PATH (check ~/.local/bin)"
}

start_docker() {
    if docker info >/dev/null 2>&1; then
        return
    fi
    need_root "starting dockerd"
    command -v dockerd >/dev/null 2>&1 || die "dockerd not found (is docker.io installed?)"
    say "starting dockerd (log: $DOCKERD_LOG)"
    mkdir -p "$(dirname "$DOCKERD_LOG")"
    # setsid: the daemon outlives this script and make; no stdin, output to the log.
    setsid dockerd >>"$DOCKERD_LOG" 2>&1 </dev/null &
    wait_until docker info ||
        die "dockerd not ready after ${WAIT_SECONDS}s; last log lines:
$(tail -n 20 "$DOCKERD_LOG" 2>/dev/null)"
}

pg_ready() { pg_isready -q -h 127.0.0.1 -p "$PG_PORT"; }

start_postgres() {
    if ! pg_lsclusters -h 2>/dev/null | awk '{print $1"/"$2}' | grep -qx "$PG_VERSION/$PG_CLUSTER"; then
        need_root "creating the PostgreSQL cluster"
        say "creating PostgreSQL $PG_VERSION cluster $PG_CLUSTER"
        pg_createcluster -p "$PG_PORT" "$PG_VERSION" "$PG_CLUSTER" >/dev/null
    fi
    if ! pg_ready; then
        need_root "starting PostgreSQL"
        say "starting PostgreSQL $PG_VERSION/$PG_CLUSTER"
        pg_ctlcluster "$PG_VERSION" "$PG_CLUSTER" start
        wait_until pg_ready || die "PostgreSQL not ready after ${WAIT_SECONDS}s
(see /var/log/postgresql/postgresql-$PG_VERSION-$PG_CLUSTER.log)"
    fi
    # TCP logins use scram: the tests connect as postgres with a known password.
    if ! PGPASSWORD="$PG_PASSWORD" PGCONNECT_TIMEOUT=5 psql -h 127.0.0.1 -p "$PG_PORT" -U postgres \
        -d postgres -qAtc 'SELECT 1' >/dev/null 2>&1; then
        need_root "setting the postgres password"
        say "setting the password of PostgreSQL role postgres (for TCP logins)"
        local escaped=${PG_PASSWORD//\'/\'\'}
        su postgres -c "psql -q -v ON_ERROR_STOP=1 -p $PG_PORT -d postgres" >/dev/null <<SQL
ALTER ROLE postgres WITH PASSWORD '${escaped}';
SQL
    fi
}

check_binaries() {
    # Mosquitto is only needed as a binary: tests start brokers on free ports themselves.
    [[ -x /usr/sbin/mosquitto ]] || die "/usr/sbin/mosquitto missing after install"
    [[ -x /usr/bin/mosquitto_passwd ]] || die "/usr/bin/mosquitto_passwd missing after install"
    [[ -x /bin/busybox ]] || die "/bin/busybox missing after install (busybox-static)"
}

install_packages
install_uv
check_binaries
start_docker
start_postgres
