#!/usr/bin/env bash
# Build the Fleetwire images from this checkout: fleetwire/cloud and fleetwire/edge, on the
# locally made base image (scripts/build-base-image.sh), with no registry and no network inside
# the builds.
#
#   scripts/build-images.sh                  # base, cloud and edge
#   scripts/build-images.sh edge             # base and edge only
#   scripts/build-images.sh --prepare-only   # only fill .fleetwire/build/<image>/ (see below)
#
# Each image is tagged <version> (from VERSION), <branch> (sanitized; none when detached),
# <short sha> (with a -dirty suffix when the sources going into the images have uncommitted
# changes) and `local` (the newest local build, which compose.dev.yaml uses). Prints every
# reference it tagged on stdout, one per line; progress goes to stderr, and each `docker build`
# log to .fleetwire/build/<image>.log (shown when it fails).
#
# The host prepares each build context in .fleetwire/build/<image>/: uv.lock's pins for the
# image's package (`uv export --frozen`), those wheels (pip download, hash-checked), the
# workspace members' wheels (`uv build`) and the uv wheel. The Dockerfiles install only from
# there: containers here cannot reach PyPI (TLS is intercepted by a proxy whose CA only the
# host trusts), and an offline build is reproducible anyway.
#
# Environment:
#   FLEETWIRE_BASE_IMAGE    base image (default fleetwire/base:bookworm-python3.11, built here
#                           when missing; any other value is used as it is)
#   FLEETWIRE_IMAGE_REPO    repository prefix (default: fleetwire)
#   FLEETWIRE_UV_VERSION    uv installed in the build stage (default: pinned below)
#   FLEETWIRE_BUILD_DIR     where the contexts are prepared (default: .fleetwire/build)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

DEFAULT_BASE=fleetwire/base:bookworm-python3.11
BASE_IMAGE="${FLEETWIRE_BASE_IMAGE:-$DEFAULT_BASE}"
REPO="${FLEETWIRE_IMAGE_REPO:-fleetwire}"
UV_VERSION="${FLEETWIRE_UV_VERSION:-0.13.9}"
BUILD_DIR="${FLEETWIRE_BUILD_DIR:-$ROOT/.fleetwire/build}"
PYTHON_VERSION=3.11
# Oldest glibc the wheels may need: bookworm has 2.36.
GLIBC_MINOR_MAX=36
# What goes into the images: a change here (not committed yet) makes the sha tag "-dirty".
IMAGE_SOURCES=(VERSION pyproject.toml uv.lock docker protocol/pyproject.toml protocol/src
    edge/pyproject.toml edge/src cloud/pyproject.toml cloud/src)

say() { printf 'build-images: %s\n' "$*" >&2; }
die() { printf 'build-images: error: %s\n' "$*" >&2; exit 1; }

prepare_only=0
images=()
for arg in "$@"; do
    case "$arg" in
        --prepare-only) prepare_only=1 ;;
        cloud | edge) images+=("$arg") ;;
        -h | --help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown argument $arg (expected cloud, edge or --prepare-only)" ;;
    esac
done
((${#images[@]})) || images=(cloud edge)

command -v uv >/dev/null 2>&1 || die "uv not found (scripts/bootstrap.sh installs it)"

# A Docker tag: [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}; anything else becomes "-".
sanitize_tag() {
    local tag
    tag="$(printf '%s' "$1" | tr -c 'A-Za-z0-9_.-' '-' | sed -E 's/^[.-]+//')"
    printf '%s' "${tag:0:128}"
}

# The platform tags pip may pick wheels for: CPython 3.11 on glibc <= 2.36, this architecture.
platform_args() {
    local arch="$1" minor
    for ((minor = GLIBC_MINOR_MAX; minor >= 17; minor--)); do
        printf -- '--platform\nmanylinux_2_%d_%s\n' "$minor" "$arch"
    done
    printf -- '--platform\nmanylinux2014_%s\n' "$arch"
}

# pip download, isolated from the host's pip configuration (its indexes and find-links are
# not the project's); only binary wheels for the image's platform, none from the host's tags.
pip_download() {
    local dest="$1"
    shift
    local platforms
    mapfile -t platforms < <(platform_args "$ARCH")
    uv tool run --quiet --from pip pip --isolated download --quiet --disable-pip-version-check \
        --index-url https://pypi.org/simple --no-deps --only-binary=:all: \
        --implementation cp --python-version "$PYTHON_VERSION" --abi "cp${PYTHON_VERSION/./}" \
        "${platforms[@]}" --dest "$dest" "$@"
}

prepare() {
    local image="$1" package="fleetwire-$1" ctx="$BUILD_DIR/$1"
    mkdir -p "$ctx/uv" "$ctx/dist"
    uv export --quiet --frozen --no-dev --no-emit-workspace --no-header --package "$package" \
        --output-file "$ctx/requirements.txt.new"
    # A new lock means a new set of wheels: start the wheel directory afresh, so that stale
    # wheels cannot change the build context (and invalidate the layer cache) for nothing.
    if ! cmp -s "$ctx/requirements.txt.new" "$ctx/requirements.txt"; then
        rm -rf "$ctx/wheels"
    fi
    mv "$ctx/requirements.txt.new" "$ctx/requirements.txt"
    # The stamp records a complete download for these requirements: pip asks the index about
    # every requirement even when its file is there (4 s), and the build checks the hashes.
    local stamp
    stamp="$(sha256sum <"$ctx/requirements.txt" | cut -d' ' -f1)"
    if [[ "$(cat "$ctx/wheels/.complete" 2>/dev/null)" != "$stamp" ]]; then
        mkdir -p "$ctx/wheels"
        pip_download "$ctx/wheels" --require-hashes -r "$ctx/requirements.txt" ||
            die "could not download the wheels of $package (is PyPI reachable?)"
        printf '%s\n' "$stamp" >"$ctx/wheels/.complete"
    fi
    if ! compgen -G "$ctx/uv/uv-$UV_VERSION-*.whl" >/dev/null; then
        rm -f "$ctx"/uv/*.whl
        pip_download "$ctx/uv" "uv==$UV_VERSION" || die "could not download uv $UV_VERSION"
    fi
    # Only this image's members: the edge image must not contain the cloud package.
    rm -f "$ctx"/dist/*.whl
    cp "$BUILD_DIR"/dist/fleetwire_protocol-*.whl "$BUILD_DIR/dist/${package//-/_}"-*.whl \
        "$ctx/dist/"
    say "prepared $ctx ($(find "$ctx/wheels" -name '*.whl' | wc -l) wheels)"
}

ARCH="$(uname -m)"
# The workspace members' wheels. hatchling builds reproducibly (fixed timestamps): unchanged
# sources give the same bytes, so Docker's layer cache holds.
rm -rf "$BUILD_DIR/dist"
uv build --quiet --all-packages --wheel --out-dir "$BUILD_DIR/dist" ||
    die "could not build the workspace members' wheels (uv build)"
for image in "${images[@]}"; do
    prepare "$image"
done
if ((prepare_only)); then
    exit 0
fi

docker info >/dev/null 2>&1 || die "the Docker Engine is not reachable (docker info failed)"
if [[ "$BASE_IMAGE" == "$DEFAULT_BASE" ]]; then
    FLEETWIRE_BASE_IMAGE="$BASE_IMAGE" "$ROOT/scripts/build-base-image.sh" >/dev/null
fi

version="$(tr -d '[:space:]' <VERSION)"
[[ -n "$version" ]] || die "VERSION is empty"
revision="$(git rev-parse HEAD)"
short="$(git rev-parse --short=12 HEAD)"
branch="$(git symbolic-ref --quiet --short HEAD || true)"
if [[ -n "$(git status --porcelain --untracked-files=all -- "${IMAGE_SOURCES[@]}")" ]]; then
    short="$short-dirty"
    created="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
else
    # The commit's time, so that rebuilding a commit gives the same image.
    created="$(TZ=UTC git log -1 --date=format-local:%Y-%m-%dT%H:%M:%SZ --format=%cd)"
fi
tags=("$(sanitize_tag "$version")" "$short" local)
if [[ -n "$branch" ]]; then
    tags+=("$(sanitize_tag "$branch")")
fi

for image in "${images[@]}"; do
    ref="$REPO/$image"
    tag_args=()
    for tag in "${tags[@]}"; do
        tag_args+=(--tag "$ref:$tag")
    done
    log="$BUILD_DIR/$image.log"
    say "building $ref on $BASE_IMAGE (log: $log)"
    start=$SECONDS
    if ! docker build --file "docker/$image.Dockerfile" \
        --build-arg BASE_IMAGE="$BASE_IMAGE" --build-arg VERSION="$version" \
        --build-arg REVISION="$revision" --build-arg CREATED="$created" \
        "${tag_args[@]}" "$BUILD_DIR/$image" >"$log" 2>&1; then
        tail -n 30 "$log" >&2
        die "docker build of $ref failed (full log: $log)"
    fi
    size="$(docker image inspect --format '{{.Size}}' "$ref:local")"
    say "built $ref ($((size / 1000000)) MB, $((SECONDS - start)) s): ${tags[*]}"
    for tag in "${tags[@]}"; do
        printf '%s:%s\n' "$ref" "$tag"
    done
done
