# Fleetwire edge agent image: `fleetwire-edge run`, driving the Docker Engine whose socket is
# mounted at /var/run/docker.sock (run it with the socket's group: --group-add).
#
# Built by scripts/build-images.sh, which prepares the build context first; by hand:
#   scripts/build-images.sh --prepare-only edge
#   docker build -f docker/cloud.Dockerfile --build-arg VERSION="$(cat VERSION)" \
#     --build-arg REVISION="$(git rev-parse HEAD)" -t fleetwire/edge:dev .fleetwire/build/edge
#
# The context (.fleetwire/build/edge) holds everything the build installs, so the build needs
# no network and no registry:
#   requirements.txt  `uv export --frozen --no-dev --package fleetwire-edge`: uv.lock's pins
#                     and hashes for the third-party dependencies
#   wheels/           those wheels (hash-checked on install)
#   dist/             the workspace members' wheels (fleetwire-protocol, fleetwire-edge):
#                     the cloud package is not in this image
#   uv/               the uv wheel
# BASE_IMAGE: any Debian-like image with python3 (3.11+) on PATH and useradd; the default is
# made locally by scripts/build-base-image.sh. python:3.11-slim-bookworm works where a
# registry is reachable.
ARG BASE_IMAGE=fleetwire/base:bookworm-python3.11

FROM ${BASE_IMAGE} AS build
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_PYTHON_DOWNLOADS=never UV_NO_CACHE=1 \
    UV_OFFLINE=1 VIRTUAL_ENV=/opt/fleetwire
# uv itself: a wheel is a zip; its binary is all we need (no pip in the base).
COPY uv/ /tmp/uv/
RUN python3 -m zipfile -e /tmp/uv/uv-*.whl /tmp/uv/x \
    && install -m 0755 /tmp/uv/x/uv-*.data/scripts/uv /usr/local/bin/uv \
    && rm -rf /tmp/uv && uv --version
# Dependencies first: this layer is rebuilt only when uv.lock changes, not on a source change.
# The venv is made where it will run (/opt/fleetwire): its scripts' shebangs name that path.
COPY requirements.txt /build/requirements.txt
COPY wheels/ /build/wheels/
RUN uv venv --python "$(command -v python3)" /opt/fleetwire \
    && uv pip install --no-index --find-links /build/wheels --require-hashes \
        -r /build/requirements.txt
# Then Fleetwire itself (non-editable), and a check that every requirement is met.
COPY dist/ /build/dist/
RUN uv pip install --no-index --no-deps /build/dist/*.whl && uv pip check

FROM ${BASE_IMAGE} AS runtime
RUN groupadd --system --gid 10001 fleetwire \
    && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/fleetwire \
        --no-create-home --shell /usr/sbin/nologin fleetwire \
    && install -d -o 10001 -g 10001 -m 0750 /var/lib/fleetwire
COPY --from=build /opt/fleetwire /opt/fleetwire
ENV PATH=/opt/fleetwire/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 \
    FLEETWIRE_EDGE_DATA_DIR=/var/lib/fleetwire
# Not root: the agent needs only the Docker socket, reached through the socket's group.
USER 10001:10001
WORKDIR /var/lib/fleetwire
ENTRYPOINT ["fleetwire-edge"]
CMD ["run"]
# Last, so that a new commit (REVISION, CREATED) reuses every layer above from the cache.
ARG VERSION=0.0.0
ARG REVISION=unknown
ARG CREATED=1970-01-01T00:00:00Z
ARG SOURCE=https://github.com/fleetwire/fleetwire
ARG BASE_IMAGE
LABEL org.opencontainers.image.title="fleetwire-edge" \
      org.opencontainers.image.description="Fleetwire edge agent: runs deployments on the Docker Engine" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.base.name="${BASE_IMAGE}"
