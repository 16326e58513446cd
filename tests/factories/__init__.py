"""The one place tests build protocol messages: release specs, command and event envelopes.

Importable from every package's tests (pytest ``pythonpath = ["."]``). Package support modules
(``edge/tests/agent_support.py``, ``edge/tests/engine/support.py``, ``edge/tests/e2e_support.py``,
``cloud/tests/support.py``) keep thin wrappers that fix their own defaults; the building is here.

- :mod:`tests.factories.releases`: ``release_dict`` (the API's JSON body), ``release``
  (a validated ``ReleaseSpec``), ``container``/``container_dict``, ``image_ref``.
- :mod:`tests.factories.commands`: ``deploy``, ``upgrade``, ``simple`` (start, stop, redeploy,
  delete, sync), ``credential``, ``expired``.
- :mod:`tests.factories.events`: ``accepted``, ``succeeded``, ``deployment_state``,
  ``container_state``, ``inventory`` (with ``inventory_deployment`` and ``running``), ``birth``.
"""

from tests.factories.commands import CommandKind, credential, deploy, expired, simple, upgrade
from tests.factories.events import (
    accepted,
    birth,
    container_state,
    deployment_state,
    inventory,
    inventory_deployment,
    running,
    succeeded,
)
from tests.factories.releases import (
    APPLICATION,
    REGISTRY,
    VERSION,
    container,
    container_dict,
    image_ref,
    release,
    release_dict,
)

__all__ = [
    "APPLICATION",
    "REGISTRY",
    "VERSION",
    "CommandKind",
    "accepted",
    "birth",
    "container",
    "container_dict",
    "container_state",
    "credential",
    "deploy",
    "deployment_state",
    "expired",
    "image_ref",
    "inventory",
    "inventory_deployment",
    "release",
    "release_dict",
    "running",
    "simple",
    "succeeded",
    "upgrade",
]
