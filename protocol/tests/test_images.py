"""Image references: the Docker reference grammar, with readable errors."""

import pytest
from pydantic import BaseModel, ValidationError

from fleetwire.protocol.errors import ImageReferenceError, ProtocolError
from fleetwire.protocol.images import ImageRef, ImageReference, parse_image_reference

DIGEST = "sha256:" + "3134997edb04277814aa51a4175a588d45eb4299272f8eff2307bbf8b39e4d43"

VALID = [
    ("nginx", ImageReference(None, "nginx", None, None)),
    ("nginx:1.25", ImageReference(None, "nginx", "1.25", None)),
    ("library/nginx:latest", ImageReference(None, "library/nginx", "latest", None)),
    (
        "docker.io/library/nginx:1.25-alpine",
        ImageReference("docker.io", "library/nginx", "1.25-alpine", None),
    ),
    (
        "registry.example.com:5000/acme/app:1.0",
        ImageReference("registry.example.com:5000", "acme/app", "1.0", None),
    ),
    ("localhost/app", ImageReference("localhost", "app", None, None)),
    ("localhost:5000/app:dev", ImageReference("localhost:5000", "app", "dev", None)),
    ("127.0.0.1:5000/team/app", ImageReference("127.0.0.1:5000", "team/app", None, None)),
    ("[::1]:5000/app:v1", ImageReference("[::1]:5000", "app", "v1", None)),
    ("Registry.Example.COM/app", ImageReference("Registry.Example.COM", "app", None, None)),
    (f"ghcr.io/org/sub/app@{DIGEST}", ImageReference("ghcr.io", "org/sub/app", None, DIGEST)),
    (f"redis:7.2-alpine@{DIGEST}", ImageReference(None, "redis", "7.2-alpine", DIGEST)),
    ("a__b/c-d.e_f--g:V1.2.3_rc-1", ImageReference(None, "a__b/c-d.e_f--g", "V1.2.3_rc-1", None)),
    ("app:" + "t" * 128, ImageReference(None, "app", "t" * 128, None)),
]

INVALID = [
    ("", "empty"),
    (" nginx", "white space"),
    ("nginx ", "white space"),
    ("Nginx", "lowercase"),
    ("acme/Nginx", "lowercase"),
    ("nginx:", "tag ''"),
    ("nginx:-bad", "tag"),
    ("nginx:.bad", "tag"),
    ("nginx:" + "t" * 129, "tag"),
    ("nginx:bad tag", "tag"),
    ("nginx@sha256:abc", "digest"),
    ("nginx@md5", "digest"),
    (f"nginx@{DIGEST}x", "digest"),
    ("a//b", "component ''"),
    ("app/", "component ''"),
    ("-app", "component '-app'"),
    ("app-", "component 'app-'"),
    ("a...b", "component"),
    ("registry.example.com:abc/app", "registry"),
    ("-registry.example.com/app", "registry"),
    ("registry.example.com:5000/", "component ''"),
    ("a" * 200 + "/" + "b" * 60, "longer than 255"),
]


@pytest.mark.parametrize(("reference", "expected"), VALID, ids=[r for r, _ in VALID])
def test_valid_references(reference, expected):
    parsed = parse_image_reference(reference)
    assert parsed == expected
    assert str(parsed) == reference
    assert parse_image_reference(str(parsed)) == parsed


@pytest.mark.parametrize(("reference", "message"), INVALID, ids=[r[:40] for r, _ in INVALID])
def test_invalid_references(reference, message):
    with pytest.raises(ImageReferenceError) as info:
        parse_image_reference(reference)
    assert message in str(info.value)
    assert repr(reference[:20])[:-1] in str(info.value)  # the error names the reference
    assert isinstance(info.value, ProtocolError)
    assert isinstance(info.value, ValueError)


def test_name_and_pull_tag():
    pinned = parse_image_reference(f"registry.example.com:5000/acme/app:1.0@{DIGEST}")
    assert pinned.name == "registry.example.com:5000/acme/app"
    assert pinned.pull_tag == DIGEST
    assert parse_image_reference("nginx:1.25").pull_tag == "1.25"
    assert parse_image_reference("nginx").pull_tag == "latest"
    assert parse_image_reference("nginx").name == "nginx"


class _Holder(BaseModel):
    image: ImageRef


def test_image_ref_field():
    assert _Holder(image="nginx:1.25").image == "nginx:1.25"
    with pytest.raises(ValidationError, match="tag"):
        _Holder(image="nginx:-1")
