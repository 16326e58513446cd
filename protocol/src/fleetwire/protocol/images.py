"""Image references: ``[registry[:port]/][repo/]name[:tag][@digest]``.

The grammar follows the distribution project's reference grammar that the Docker Engine uses,
so a reference Fleetwire accepts is one the engine accepts too.
"""

import re
from dataclasses import dataclass
from typing import Annotated, Final

from pydantic import AfterValidator

from fleetwire.protocol.errors import ImageReferenceError

DEFAULT_REGISTRY: Final = "docker.io"
MAX_NAME_LENGTH: Final = 255

_COMPONENT = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")
_DOMAIN_LABEL = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = re.compile(
    rf"^(?:{_DOMAIN_LABEL}(?:\.{_DOMAIN_LABEL})*|\[[0-9a-fA-F:]+\])(?::[0-9]{{1,5}})?$"
)
_TAG = re.compile(r"^[\w][\w.-]{0,127}$")
_DIGEST = re.compile(r"^[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}$")


@dataclass(frozen=True)
class ImageReference:
    """A parsed image reference; ``registry`` is ``None`` when the reference names none."""

    registry: str | None
    repository: str
    tag: str | None
    digest: str | None

    @property
    def name(self) -> str:
        """Registry and repository, without tag or digest."""
        return f"{self.registry}/{self.repository}" if self.registry else self.repository

    def __str__(self) -> str:
        out = self.name
        if self.tag:
            out += f":{self.tag}"
        if self.digest:
            out += f"@{self.digest}"
        return out

    @property
    def pull_tag(self) -> str:
        """What to hand the engine's pull as tag: the digest when pinned, else the tag or latest."""
        return self.digest or self.tag or "latest"


def _is_domain(component: str) -> bool:
    return (
        "." in component
        or ":" in component
        or component == "localhost"
        or (component.lower() != component)
    )


def _split_digest(reference: str) -> tuple[str, str | None]:
    """``reference`` without its ``@digest``, and the digest."""
    if "@" not in reference:
        return reference, None
    rest, digest = reference.split("@", 1)
    if not _DIGEST.fullmatch(digest):
        raise ImageReferenceError(
            f"image reference {reference!r}: digest {digest!r} is not algorithm:hex"
        )
    return rest, digest


def _split_tag(reference: str, rest: str) -> tuple[str, str | None]:
    """``rest`` without its ``:tag``, and the tag; a colon before the last slash is a port."""
    colon = rest.rfind(":")
    if colon <= rest.rfind("/"):
        return rest, None
    rest, tag = rest[:colon], rest[colon + 1 :]
    if not _TAG.fullmatch(tag):
        raise ImageReferenceError(
            f"image reference {reference!r}: tag {tag!r} must be 1-128 of [A-Za-z0-9_.-], "
            "not starting with . or -"
        )
    return rest, tag


def _split_registry(reference: str, rest: str) -> tuple[str | None, list[str]]:
    """The registry ``rest`` names (if any) and its repository's path components."""
    parts = rest.split("/")
    if len(parts) == 1 or not _is_domain(parts[0]):
        return None, parts
    registry = parts.pop(0)
    if not _DOMAIN.fullmatch(registry):
        raise ImageReferenceError(
            f"image reference {reference!r}: registry {registry!r} is not host[:port]"
        )
    return registry, parts


def parse_image_reference(reference: str) -> ImageReference:
    """Parse ``reference`` or raise :class:`ImageReferenceError` saying what is wrong."""
    if not reference or reference != reference.strip():
        raise ImageReferenceError(f"image reference {reference!r} is empty or has white space")
    rest, digest = _split_digest(reference)
    rest, tag = _split_tag(reference, rest)
    registry, parts = _split_registry(reference, rest)
    for part in parts:
        if not _COMPONENT.fullmatch(part):
            raise ImageReferenceError(
                f"image reference {reference!r}: repository component {part!r} must be lowercase "
                "letters and digits, separated by '.', '_', '__' or '-'"
            )
    repository = "/".join(parts)
    if len(repository) + len(registry or "") > MAX_NAME_LENGTH:
        raise ImageReferenceError(f"image reference {reference!r}: name longer than 255")
    return ImageReference(registry=registry, repository=repository, tag=tag, digest=digest)


def _validate(value: str) -> str:
    parse_image_reference(value)
    return value


ImageRef = Annotated[str, AfterValidator(_validate)]
"""A string field that must hold a valid image reference."""
