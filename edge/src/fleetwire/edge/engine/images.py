"""Images: reference normalisation, registry pulls with in-memory credentials, offline import.

Credentials are used for one pull and never stored, logged or carried by an exception: the
Docker SDK's exception keeps the HTTP request, whose ``X-Registry-Auth`` header encodes the
password, so a failed pull is re-raised without its cause and with the secret scrubbed.
"""

import logging
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any, BinaryIO, Final

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

# What the engine says of each image a `docker load` loaded (by tag, or by id when untagged).
_LOADED: Final = re.compile(r"^Loaded image(?: ID)?: (.+)$")

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
            names, error = _load_stream(client, fh)
        except docker.errors.APIError as exc:
            # The SDK leaves a refused load's response (and its socket) open.
            if exc.response is not None:
                exc.response.close()
            raise ImageImportFailed(
                f"image package {tarball.name} could not be loaded: {exc}"
            ) from exc
    if error is not None:
        raise ImageImportFailed(f"image package {tarball.name} could not be loaded: {error}")
    loaded: list[str] = []
    for name in names:
        image = client.images.get(name)
        loaded.extend(image.tags or [str(image.id)])
    log.info("imported image package %s: %s", tarball.name, ", ".join(loaded))
    return loaded


def _load_stream(client: docker.DockerClient, fh: BinaryIO) -> tuple[list[str], str | None]:
    """The names the engine loaded from ``fh`` and its first error, reading its whole answer.

    Not ``client.images.load``: it raises at the engine's first error line and leaves the rest
    of the streamed answer unread, so the connection, and its socket, stay open (seen when the
    rest of the answer came late, on a busy machine).
    """
    names: list[str] = []
    error: str | None = None
    chunks: Iterable[dict[str, Any]] = client.api.load_image(fh)  # type: ignore[no-untyped-call]
    for chunk in chunks:
        if match := _LOADED.match(str(chunk.get("stream", ""))):
            names.append(match.group(1).strip())
        if error is None and "errorDetail" in chunk:
            error = str(chunk["errorDetail"].get("message") or chunk["errorDetail"])
    return names, error
