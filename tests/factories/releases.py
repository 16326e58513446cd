"""Release specs for tests: the JSON form the API takes, and the validated ``ReleaseSpec``.

One builder for both: :func:`release` validates what :func:`release_dict` builds, so a test that
needs an invalid body (the API's 422s) and a test that needs a typed spec share their defaults.
Package support modules wrap these to fix their own defaults (application, image, volumes).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from fleetwire.protocol.release import ContainerSpec, ReleaseSpec

APPLICATION = "app"
VERSION = "1.0.0"
REGISTRY = "registry.example.com"


def image_ref(repository: str, version: str = VERSION, *, name: str = "web") -> str:
    """``registry.example.com/<repository>/<name>:<version>``: an image no test ever pulls."""
    return f"{REGISTRY}/{repository}/{name}:{version}"


def container_dict(name: str = "web", image: str | None = None, **fields: Any) -> dict[str, Any]:
    """One container of a release body; ``fields`` are ``ContainerSpec`` fields, unvalidated."""
    return {"name": name, "image": image or image_ref(APPLICATION, name=name), **fields}


def release_dict(
    application: str = APPLICATION,
    version: str = VERSION,
    *,
    containers: Sequence[Mapping[str, Any] | ContainerSpec] | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """A release body as the API takes it: one ``web`` container by default.

    The default image is ``registry.example.com/<application>/web:<version>``. Nothing is
    validated, so ``fields`` may also make a body the API must refuse.
    """
    body: dict[str, Any] = {
        "application": application,
        "version": version,
        "containers": (
            list(containers)
            if containers is not None
            else [container_dict(image=image_ref(application, version))]
        ),
    }
    body.update(fields)
    return body


def container(name: str = "web", image: str | None = None, **fields: Any) -> ContainerSpec:
    """A validated :class:`ContainerSpec` (see :func:`container_dict`)."""
    return ContainerSpec.model_validate(container_dict(name, image, **fields))


def release(
    application: str = APPLICATION,
    version: str = VERSION,
    *,
    containers: Sequence[Mapping[str, Any] | ContainerSpec] | None = None,
    **fields: Any,
) -> ReleaseSpec:
    """A validated :class:`ReleaseSpec` of :func:`release_dict`'s body."""
    return ReleaseSpec.model_validate(
        release_dict(application, version, containers=containers, **fields)
    )
