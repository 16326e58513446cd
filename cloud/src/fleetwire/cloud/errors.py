"""The cloud's exception tree: routes turn these into problem+json answers."""


class CloudError(Exception):
    """Base of every error the cloud package raises on purpose."""

    status: int = 500
    title: str = "Internal error"


class NotFound(CloudError):
    """A resource does not exist."""

    status = 404
    title = "Not found"


class Conflict(CloudError):
    """The request contradicts the current state (duplicate, immutable, bad transition)."""

    status = 409
    title = "Conflict"


class Unprocessable(CloudError):
    """The request is well-formed but cannot be carried out (unsupported device, bad spec)."""

    status = 422
    title = "Unprocessable request"

    def __init__(self, detail: str, errors: list[str] | None = None) -> None:
        super().__init__(detail)
        self.errors = errors or []


class BrokerUnavailable(CloudError):
    """The MQTT broker cannot be reached or did not acknowledge in time."""

    status = 503
    title = "Broker unavailable"
