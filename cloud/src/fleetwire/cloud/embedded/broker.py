"""The embedded amqtt broker: Fleetwire's no-setup default.

The broker runs in a background thread with its own event loop (amqtt wants ``Broker(cfg)``
constructed inside a running loop), configured from the template ``amqtt.yaml`` beside this
module (``broker-config/amqtt/embedded.yaml`` links to it): argon2 password file, per-user topic
ACLs, sessions persisted in SQLite. ``stop()``/``start()`` restart it on the same port with the
same database.

amqtt 0.12.1 speaks MQTT 3.1.1 only and queues messages only for authenticated clients with
``clean_session=False``: that is why even the embedded broker has a password per identity.
"""

import asyncio
import contextlib
import copy
import gc
import secrets
import string
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Final, cast

import yaml
from argon2 import PasswordHasher

CLOUD_USER: Final = "fleetwire-cloud"
DRAIN_TIMEOUT_S: Final = 2.0
"""How long a stop waits for amqtt to deliver what it has acknowledged."""
INTEGRATOR_USER: Final = "fleetwire-integrator"
DEVICE_ACL_KEY: Final = "fleetwire_device_acl"
ACL_PLUGIN: Final = "amqtt.plugins.topic_checking.TopicAccessControlListPlugin"


class EmbeddedBrokerError(RuntimeError):
    """The embedded broker failed to start or to stop."""


@dataclass(frozen=True)
class MqttCredentials:
    """A broker identity: user name and password."""

    username: str
    password: str

    def __repr__(self) -> str:
        return f"MqttCredentials(username={self.username!r}, password='**********')"

    @classmethod
    def generate(cls, username: str) -> "MqttCredentials":
        """A new identity with a random password."""
        return cls(username, secrets.token_urlsafe(18))


def load_template() -> dict[str, Any]:
    """The packaged amqtt configuration template."""
    text = resources.files(__package__).joinpath("amqtt.yaml").read_text(encoding="utf-8")
    return cast("dict[str, Any]", yaml.safe_load(text))


def _substitute(value: Any, mapping: Mapping[str, str]) -> Any:
    if isinstance(value, str):
        return string.Template(value).substitute(mapping)
    if isinstance(value, list):
        return [_substitute(item, mapping) for item in value]
    if isinstance(value, dict):
        return {key: _substitute(item, mapping) for key, item in value.items()}
    return value


def render_config(
    template: dict[str, Any],
    *,
    bind: str,
    password_file: Path,
    db_path: Path,
    device_ids: Sequence[str],
) -> dict[str, Any]:
    """Turn the template into an amqtt config dict (see the template's header)."""
    raw = copy.deepcopy(template)
    device_acl: dict[str, list[str]] = raw.pop(DEVICE_ACL_KEY)
    config = cast(
        "dict[str, Any]",
        _substitute(
            raw, {"bind": bind, "password_file": str(password_file), "db_path": str(db_path)}
        ),
    )
    acl_plugin: dict[str, dict[str, list[str]]] = config["plugins"][ACL_PLUGIN]
    for device_id in device_ids:
        for section, topics in device_acl.items():
            rendered = cast("list[str]", _substitute(topics, {"device_id": device_id}))
            acl_plugin.setdefault(section, {})[device_id] = rendered
    return config


def write_password_file(
    path: Path, users: Sequence[MqttCredentials], *, hasher: PasswordHasher | None = None
) -> Path:
    """Write ``user:$argon2id$...`` lines, the format amqtt's FileAuthPlugin reads (mode 0600)."""
    hasher = hasher or PasswordHasher()
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)
    path.write_text("".join(f"{u.username}:{hasher.hash(u.password)}\n" for u in users), "utf-8")
    return path


class EmbeddedBroker:
    """An amqtt broker in a background thread; restartable with the same port and database."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        config: dict[str, Any],
        startup_timeout: float = 15.0,
    ) -> None:
        self.host = host
        self.port = port
        self.config = config
        self.startup_timeout = startup_timeout
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_requested: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    @property
    def url(self) -> str:
        """``mqtt://host:port``."""
        return f"mqtt://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        """True while the broker thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Start the broker (again) and wait until its listener is bound."""
        if self.running:
            return
        self._ready.clear()
        self._error = None
        self._thread = threading.Thread(
            target=self._run, name=f"amqtt-broker-{self.port}", daemon=True
        )
        self._thread.start()
        if not self._ready.wait(self.startup_timeout):
            self.stop()
            msg = f"amqtt broker did not start within {self.startup_timeout} s"
            raise EmbeddedBrokerError(msg)
        error = self._take_error()
        if error is not None:
            self._thread.join(5)
            self._thread = None
            msg = f"amqtt broker failed to start on {self.host}:{self.port}: {error!r}"
            raise EmbeddedBrokerError(msg) from error

    def stop(self, timeout: float = 15.0) -> None:
        """Shut the broker down cleanly and join its thread (bounded)."""
        thread = self._thread
        if thread is None:
            return
        loop, stop_requested = self._loop, self._stop_requested
        if loop is not None and stop_requested is not None:
            # The loop may have finished on its own (a failure): nothing to wake then.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(stop_requested.set)
        thread.join(timeout)
        if thread.is_alive():
            msg = f"amqtt broker thread did not stop within {timeout} s"
            raise EmbeddedBrokerError(msg)
        self._thread = None
        self._loop = None
        self._stop_requested = None
        error = self._take_error()
        if error is not None:
            msg = f"amqtt broker failed: {error!r}"
            raise EmbeddedBrokerError(msg) from error

    def restart(self) -> None:
        """``stop()`` then ``start()``."""
        self.stop()
        self.start()

    def _take_error(self) -> BaseException | None:
        # Set by the broker thread; read here after it signalled or ended.
        error, self._error = self._error, None
        return error

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # noqa: BLE001 (handed to the caller's thread by start/stop)
            self._error = exc
        finally:
            self._ready.set()

    async def _serve(self) -> None:
        # Only the embedded broker needs amqtt (about half a second to import): API, relay and
        # projector processes against Mosquitto never load it, and this module is imported by
        # every `fleetwire` command (through dev and dev_cli).
        from amqtt.broker import Broker  # noqa: PLC0415

        self._loop = asyncio.get_running_loop()
        self._stop_requested = asyncio.Event()
        broker = Broker(copy.deepcopy(self.config))
        await broker.start()
        self._ready.set()
        try:
            await self._stop_requested.wait()
        finally:
            await _drain(broker)
            await broker.shutdown()
            await _close_leftovers()


async def _drain(broker: object) -> None:
    """Let amqtt deliver what it has already acknowledged before it shuts down (bounded).

    amqtt 0.12's shutdown persists and closes the sessions first and then drops what is still
    in its broadcast queue ("N messages not broadcasted") and cancels the deliveries under way:
    a QoS 1 message whose PUBACK the publisher already has would be lost, which a busy machine
    showed as a missing event seq.
    """
    queued = getattr(broker, "_broadcast_queue", None)
    delivering = getattr(broker, "_tasks_queue", None)
    if queued is None or delivering is None:  # another amqtt version: nothing we can see
        return

    def busy() -> bool:
        return not queued.empty() or any(not task.done() for task in delivering)

    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(DRAIN_TIMEOUT_S):
            # amqtt offers nothing to await for "delivered": poll its queues on its loop.
            while busy():  # noqa: ASYNC110
                await asyncio.sleep(0.01)


async def _close_leftovers() -> None:
    """Cancel the tasks and close the sockets that amqtt's shutdown leaves behind.

    amqtt 0.12 closes only established sessions: a connection still in its CONNECT phase (an
    MQTT 5 CONNECT, which it never answers, or a client that sent nothing yet) keeps its task
    and socket, which then warn as unclosed once the loop is gone.
    """
    current = asyncio.current_task()
    tasks = [t for t in asyncio.all_tasks() if t is not current]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    loop = asyncio.get_running_loop()
    for obj in gc.get_objects():
        if (
            isinstance(obj, asyncio.Transport)
            and getattr(obj, "_loop", None) is loop
            and not obj.is_closing()
        ):
            obj.close()
    # Let the transports' close callbacks run while the loop is still alive.
    await asyncio.sleep(0)
