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


class ActionNotAllowed(Conflict):
    """A deployment's state (or its deletion) forbids the action asked for."""


class NotAnnounced(Unprocessable):
    """A device did not announce a command type in its birth message, so it cannot receive it."""


class BrokerUnavailable(CloudError):
    """The MQTT broker cannot be reached or did not acknowledge in time."""

    status = 503
    title = "Broker unavailable"


class PublishRejected(BrokerUnavailable):
    """The broker acknowledged a publish with a failure reason code (MQTT 5 PUBACK >= 0x80).

    The message was not accepted (not authorized, quota exceeded, ...): retry it like a timeout.
    """

    def __init__(self, reason: object) -> None:
        code = getattr(reason, "value", None)
        self.code: int | None = code if isinstance(code, int) else None
        shown = f"0x{self.code:02X} {reason}" if self.code is not None else str(reason)
        super().__init__(f"publish rejected by the broker: {shown}")
