#!/usr/bin/env bash
# Build Fleetwire's base image locally, without any container registry: Debian bookworm
# (minbase) with Python 3.11 and ca-certificates, made with debootstrap from the host's Debian
# mirror and imported with `docker import`. No pip and no venv module: uv makes the venvs.
# A cold build takes about 45 s; the image is about 105 MB.
#
#   scripts/build-base-image.sh                            # build if missing or outdated
#   FLEETWIRE_BASE_REBUILD=1 scripts/build-base-image.sh   # build even if up to date
#
# The image carries the label io.fleetwire.base.recipe, a hash of this script and the
# architecture: when the tag exists with that label, nothing is done (a few milliseconds).
# Prints the image reference on stdout; progress goes to stderr. Needs root (debootstrap) and
# installs debootstrap with apt-get when it is missing.
#
# Environment:
#   FLEETWIRE_BASE_IMAGE     tag to build (default: fleetwire/base:bookworm-python3.11)
#   FLEETWIRE_DEBIAN_MIRROR  Debian mirror (default: the first one in /etc/apt/sources.list(.d))
#   FLEETWIRE_BASE_REBUILD   1 to rebuild even when an up-to-date image exists
set -euo pipefail

IMAGE="${FLEETWIRE_BASE_IMAGE:-fleetwire/base:bookworm-python3.11}"
SUITE=bookworm
PACKAGES=python3,ca-certificates
RECIPE_LABEL=io.fleetwire.base.recipe
LOCK_FILE="${TMPDIR:-/tmp}/fleetwire-base-image.lock"

say() { printf 'build-base-image: %s\n' "$*" >&2; }
die() { printf 'build-base-image: error: %s\n' "$*" >&2; exit 1; }

# Any change to this script (packages, trimming, image settings) changes the recipe.
recipe_hash="$({ cat "${BASH_SOURCE[0]}"; dpkg --print-architecture; } | sha256sum | cut -c1-16)"

up_to_date() {
    local existing
    existing="$(docker image inspect --format "{{ index .Config.Labels \"$RECIPE_LABEL\" }}" \
        "$IMAGE" 2>/dev/null)" || return 1
    [[ "$existing" == "$recipe_hash" && "${FLEETWIRE_BASE_REBUILD:-0}" != 1 ]]
}

if up_to_date; then
    say "$IMAGE is up to date (recipe $recipe_hash)"
    printf '%s\n' "$IMAGE"
    exit 0
fi
docker info >/dev/null 2>&1 || die "the Docker Engine is not reachable (docker info failed)"

# One build at a time (parallel CI jobs, test sessions): the others wait, then find it built.
exec 9>"$LOCK_FILE"
flock 9
if up_to_date; then
    say "$IMAGE was built meanwhile (recipe $recipe_hash)"
    printf '%s\n' "$IMAGE"
    exit 0
fi

# The first Debian (not security) mirror in the host's APT sources, one-line or deb822 format.
host_mirror() {
    local files=() f
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
        [[ -f "$f" ]] && files+=("$f")
    done
    ((${#files[@]})) || return 0
    {
        awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^https?:\/\//) { print $i; break } }' \
            "${files[@]}"
        awk 'tolower($1) == "uris:" { for (i = 2; i <= NF; i++) print $i }' "${files[@]}"
    } | grep -v -- '-security' | grep -E '/debian/?$' | head -n 1
}

MIRROR="${FLEETWIRE_DEBIAN_MIRROR:-$(host_mirror)}"
MIRROR="${MIRROR:-http://deb.debian.org/debian}"

[[ "$(id -u)" -eq 0 ]] || die "debootstrap needs root; run: sudo $0"
if ! command -v debootstrap >/dev/null 2>&1; then
    say "installing debootstrap (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq --no-install-recommends debootstrap </dev/null >/dev/null ||
        { apt-get update -qq </dev/null >/dev/null &&
            apt-get install -y -qq --no-install-recommends debootstrap </dev/null >/dev/null; } ||
        die "could not install debootstrap"
fi

rootfs="$(mktemp -d "${TMPDIR:-/tmp}/fleetwire-base.XXXXXX")"
trap 'rm -rf "$rootfs"' EXIT

say "debootstrap $SUITE ($PACKAGES) from $MIRROR"
log="$rootfs.log"
if ! debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$rootfs" "$MIRROR" \
    >"$log" 2>&1; then
    tail -n 20 "$log" >&2
    die "debootstrap failed (log: $log)"
fi
rm -f "$log"

# Trim: package lists, caches, logs, docs (the copyright files stay), man pages, translations.
# The standard library's bytecode stays: the images run as non-root and could not write it,
# so without it every start would compile the imported modules again.
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/* "$rootfs"/var/cache/debconf/*-old \
    "$rootfs"/var/log/* "$rootfs"/tmp/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* \
    "$rootfs"/usr/share/locale/* "$rootfs"/usr/share/lintian "$rootfs"/usr/share/linda
find "$rootfs"/usr/share/doc -mindepth 1 -not -name copyright -not -type d -delete
find "$rootfs"/usr/share/doc -mindepth 1 -type d -empty -delete
# The host's resolver settings must not leak into the image (Docker mounts its own).
: >"$rootfs"/etc/resolv.conf
: >"$rootfs"/etc/hostname
# Keep future apt-get installs inside derived images as lean as this one.
cat >"$rootfs"/etc/apt/apt.conf.d/90fleetwire <<'EOF'
APT::Install-Recommends "false";
APT::Install-Suggests "false";
EOF

old_id="$(docker image inspect --format '{{.Id}}' "$IMAGE" 2>/dev/null || true)"
python_version="$(chroot "$rootfs" python3 -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])')"
say "importing $IMAGE (Python $python_version)"
tar --numeric-owner -C "$rootfs" -c . | docker import \
    --change "LABEL $RECIPE_LABEL=$recipe_hash" \
    --change "LABEL io.fleetwire.base.python=$python_version" \
    --change "LABEL org.opencontainers.image.title=fleetwire-base" \
    --change "LABEL org.opencontainers.image.description=\"Debian $SUITE minbase, Python $python_version\"" \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["python3"]' \
    - "$IMAGE" >/dev/null
# The replaced image would linger untagged: remove it unless something still uses it.
if [[ -n "$old_id" ]]; then
    docker image rm "$old_id" >/dev/null 2>&1 || true
fi
printf '%s\n' "$IMAGE"
