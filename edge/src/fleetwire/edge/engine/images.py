"""Images: reference normalisation, registry pulls with in-memory credentials, offline import.

Credentials are used for one pull and never stored, logged or carried by an exception: the
Docker SDK's exception keeps the HTTP request, whose ``X-Registry-Auth`` header encodes the
password, so a failed pull is re-raised without its cause and with the secret scrubbed.
"""

import logging
from pathlib import Path

import docker
import docker.errors

from fleetwire.edge.engine.errors import (
    EngineUnreachable,
    ImageImportFailed,
    PullFailed,
    engine_errors,
)
from fleetwire.protocol.commands import RegistryCredential
from fleetwire.protocol.images import DEFAULT_REGISTRY, parse_image_reference

log = logging.getLogger(__name__)

_HUB_ALIASES = frozenset({DEFAULT_REGISTRY, "index.docker.io", "registry-1.docker.io"})


def normalize_ref(reference: str) -> str:
    """The key the engine lists a local image under (``RepoTags`` or ``RepoDigests``)."""
    ref = parse_image_reference(reference)
    if ref.registry is None or ref.registry in _HUB_ALIASES:
        name = ref.repository.removeprefix("library/")
    else:
        name = ref.name
    if ref.digest:
        return f"{name}@{ref.digest}"
    return f"{name}:{ref.tag or 'latest'}"


def local_images(client: docker.DockerClient) -> dict[str, str]:
    """Every local tag and repo digest, mapped to its image id."""
    with engine_errors("list images"):
        images = client.api.images()
    found: dict[str, str] = {}
    for image in images:
        for key in [*(image.get("RepoTags") or []), *(image.get("RepoDigests") or [])]:
            if key and not key.startswith("<none>"):
                found[key] = image["Id"]
    return found


def pull_image(
    client: docker.DockerClient, reference: str, credential: RegistryCredential | None = None
) -> str:
    """Pull ``reference``, with ``credential`` when given; return the image id."""
    ref = parse_image_reference(reference)
    repository = reference.split("@", 1)[0]
    if ref.tag:
        repository = repository[: -(len(ref.tag) + 1)]
    secret = credential.password.get_secret_value() if credential else None
    auth = (
        {"username": credential.username, "password": secret, "serveraddress": credential.registry}
        if credential and secret
        else None
    )
    failure: str | None = None
    try:
        image = client.images.pull(repository, tag=ref.pull_tag, auth_config=auth)
    except docker.errors.APIError as exc:
        failure = str(exc.explanation or exc.status_code)
    except docker.errors.DockerException as exc:
        failure = type(exc).__name__
    except OSError:
        raise EngineUnreachable(f"pull {reference}: Docker Engine unreachable") from None
    finally:
        del auth
    if failure is not None:
        if secret:
            failure = failure.replace(secret, "***")
        # `from None`: the SDK's exception holds the request and its X-Registry-Auth header.
        raise PullFailed(f"pull {reference} failed: {failure}") from None
    return str(image.id)


def import_image(client: docker.DockerClient, path: Path | str) -> list[str]:
    """Load a ``docker save`` tarball (an air-gapped device's offline package).

    The engine accepts it plain or compressed (gzip, bzip2, xz). The file is streamed to the
    engine, never read into memory whole (packages may be larger than a device's RAM).
    Returns the tags (or ids) of the loaded images.
    """
    tarball = Path(path)
    if not tarball.is_file():
        raise ImageImportFailed(f"image package {tarball} does not exist")
    with tarball.open("rb") as fh, engine_errors(f"load {tarball.name}"):
        try:
            images = client.images.load(fh)
        except (docker.errors.ImageLoadError, docker.errors.APIError) as exc:
            # The SDK leaves a refused load's response (and its socket) open.
            response = getattr(exc, "response", None)
            if response is not None:
                response.close()
            raise ImageImportFailed(
                f"image package {tarball.name} could not be loaded: {exc}"
            ) from exc
    loaded: list[str] = []
    for image in images:
        loaded.extend(image.tags or [str(image.id)])
    log.info("imported image package %s: %s", tarball.name, ", ".join(loaded))
    return loaded
