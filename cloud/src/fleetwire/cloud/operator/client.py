"""A small client of the Fleetwire HTTP API for the operator CLI.

Every error answer of the API is an RFC 9457 problem document; :class:`ApiError` carries its
title, detail and individual errors so the CLI can show them plainly.
"""

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import httpx

DEV_STATE_FILE: Final = "dev.json"
DEFAULT_DEV_DIR: Final = Path(".fleetwire") / "dev"


class ApiError(Exception):
    """The API answered with an error, or could not be reached."""

    def __init__(
        self, message: str, *, status: int | None = None, errors: list[str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.errors = errors or []

    def __str__(self) -> str:
        lines = [self.args[0], *(f"  - {e}" for e in self.errors)]
        return "\n".join(lines)


@dataclass(frozen=True)
class Target:
    """Where the API is and how to authenticate."""

    url: str
    token: str | None

    def __repr__(self) -> str:
        return f"Target(url={self.url!r}, token={'set' if self.token else None})"


def dev_dir() -> Path:
    """The data directory of ``fleetwire dev`` (``FLEETWIRE_DEV_DIR`` or ``./.fleetwire/dev``)."""
    return Path(os.environ.get("FLEETWIRE_DEV_DIR", DEFAULT_DEV_DIR))


def resolve_target(url: str | None, token: str | None) -> Target:
    """Options first, then ``FLEETWIRE_API_URL``/``FLEETWIRE_TOKEN``, then a running dev stack."""
    url = url or os.environ.get("FLEETWIRE_API_URL")
    token = token or os.environ.get("FLEETWIRE_TOKEN")
    state_file = dev_dir() / DEV_STATE_FILE
    if (url is None or token is None) and state_file.is_file():
        try:
            state = json.loads(state_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            state = {}
        if url is None or url == state.get("api_url"):
            url = url or state.get("api_url")
            token = token or state.get("admin_token")
    if url is None:
        raise ApiError(
            "no API to talk to: pass --api-url, set FLEETWIRE_API_URL, or start `fleetwire dev`"
        )
    return Target(url=url.rstrip("/"), token=token)


def _problem(response: httpx.Response) -> ApiError:
    try:
        body = response.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    title = body.get("title") or response.reason_phrase
    detail = body.get("detail")
    message = f"{response.status_code} {title}" + (f": {detail}" if detail else "")
    errors = [str(e) for e in body.get("errors") or []]
    return ApiError(message, status=response.status_code, errors=errors)


class Client:
    """Synchronous API client (one connection pool per CLI invocation)."""

    def __init__(self, target: Target, *, timeout: float = 15.0) -> None:
        headers = {"Authorization": f"Bearer {target.token}"} if target.token else {}
        self._http = httpx.Client(base_url=f"{target.url}/v1", headers=headers, timeout=timeout)
        self.target = target

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """Send a request and return the decoded JSON body (None for 204)."""
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise ApiError(f"cannot reach the API at {self.target.url}: {exc}") from None
        if response.status_code >= 400:
            raise _problem(response)
        return None if response.status_code == 204 else response.json()

    def get(self, path: str, **params: Any) -> Any:
        """GET with query parameters (None values dropped)."""
        return self.request("GET", path, params={k: v for k, v in params.items() if v is not None})

    def post(self, path: str, body: Any = None) -> Any:
        """POST a JSON body."""
        return self.request("POST", path, json=body)

    def stream_events(self, **params: Any) -> Iterator[dict[str, Any]]:
        """Follow ``/events/stream`` (Server-Sent Events) and yield each event's data."""
        query = {k: v for k, v in params.items() if v is not None}
        try:
            with self._http.stream(
                "GET", "/events/stream", params=query, timeout=httpx.Timeout(15.0, read=None)
            ) as response:
                if response.status_code >= 400:
                    response.read()
                    raise _problem(response)
                for line in response.iter_lines():
                    if line.startswith("data:"):
                        yield json.loads(line[5:].strip())
        except httpx.HTTPError as exc:
            raise ApiError(f"event stream from {self.target.url} broke: {exc}") from None
