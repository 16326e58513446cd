"""The engine's exception tree.

Docker SDK and ``requests`` errors are wrapped at the boundary (:mod:`.executors`,
:mod:`.observed`, :mod:`.images`) so the reconciler handles one family with a wire ``code``
(the ``code`` of :class:`~fleetwire.protocol.events.ErrorInfo`).
"""

from collections.abc import Iterator
from contextlib import contextmanager

import docker.errors
import requests.exceptions


class EngineError(Exception):
    """Base of every error the engine raises; ``code`` goes on the wire."""

    code: str = "engine_error"


class EngineUnreachable(EngineError):
    """The Docker Engine did not answer (socket missing, daemon down or restarting)."""

    code = "engine_unreachable"


class PullFailed(EngineError):
    """An image could not be pulled; the message never holds credentials."""

    code = "pull_failed"


class ImageMissing(EngineError):
    """An image is neither local nor pullable (an offline device needs an import)."""

    code = "image_missing"


class ImageImportFailed(EngineError):
    """An offline image package could not be loaded."""

    code = "image_import_failed"


class StepFailed(EngineError):
    """The engine refused a step (create, start, stop, remove...)."""

    code = "step_failed"


class Unhealthy(EngineError):
    """A container did not become healthy (or stay running) in time."""

    code = "unhealthy"


class Superseded(EngineError):
    """A newer desired state arrived while this one was being applied."""

    code = "superseded"


class NotConverging(EngineError):
    """The plan did not become empty after the maximum number of rounds."""

    code = "not_converging"


@contextmanager
def engine_errors(what: str) -> Iterator[None]:
    """Translate Docker SDK and transport errors raised inside the block into this tree.

    ``what`` names the operation for the message (``"create container web"``).
    """
    try:
        yield
    except EngineError:
        raise
    except docker.errors.APIError as exc:
        raise StepFailed(f"{what}: {_explain(exc)}") from exc
    except (requests.exceptions.ConnectionError, requests.exceptions.Timeout, OSError) as exc:
        raise EngineUnreachable(
            f"{what}: Docker Engine unreachable ({type(exc).__name__})"
        ) from exc
    except docker.errors.DockerException as exc:
        raise StepFailed(f"{what}: {exc}") from exc


def _explain(exc: docker.errors.APIError) -> str:
    explanation: object = exc.explanation
    if isinstance(explanation, bytes):
        explanation = explanation.decode(errors="replace")
    return str(explanation or exc)
