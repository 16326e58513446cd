# syntax=docker/dockerfile:1
# Fleetwire cloud (API, relay, projector). Build from the repository root:
#   docker build -f docker/cloud.Dockerfile --build-arg VERSION=$(cat VERSION) \
#     --build-arg VCS_REF=$(git rev-parse HEAD) -t fleetwire/cloud:$(cat VERSION) .
# BASE_IMAGE must carry Python 3.11+; uv comes from PyPI in the build stage.
ARG BASE_IMAGE=python:3.11-slim-bookworm

FROM ${BASE_IMAGE} AS build
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_PYTHON_DOWNLOADS=never
RUN python -m pip install --no-cache-dir uv
WORKDIR /app
# Dependencies first, so a source change does not invalidate them.
COPY pyproject.toml uv.lock ./
COPY protocol/pyproject.toml protocol/pyproject.toml
COPY edge/pyproject.toml edge/pyproject.toml
COPY cloud/pyproject.toml cloud/pyproject.toml
RUN uv sync --frozen --no-dev --no-install-workspace --package fleetwire-cloud
COPY protocol protocol
COPY cloud cloud
RUN uv sync --frozen --no-dev --no-editable --package fleetwire-cloud

FROM ${BASE_IMAGE} AS runtime
ARG VERSION=0.0.0
ARG VCS_REF=unknown
LABEL org.opencontainers.image.title="fleetwire-cloud" \
      org.opencontainers.image.description="Fleetwire cloud: API, command relay, projectors" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${VCS_REF}" \
      org.opencontainers.image.source="https://github.com/fleetwire/fleetwire" \
      org.opencontainers.image.licenses="Apache-2.0"
RUN groupadd --system --gid 10001 fleetwire \
    && useradd --system --uid 10001 --gid fleetwire --home-dir /var/lib/fleetwire fleetwire \
    && mkdir -p /var/lib/fleetwire && chown fleetwire:fleetwire /var/lib/fleetwire
COPY --from=build /app/.venv /opt/fleetwire
ENV PATH=/opt/fleetwire/bin:$PATH PYTHONUNBUFFERED=1
USER 10001:10001
WORKDIR /var/lib/fleetwire
EXPOSE 8000
ENTRYPOINT ["fleetwire"]
CMD ["serve", "--host", "0.0.0.0"]
