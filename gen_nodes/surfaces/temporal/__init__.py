"""Temporal activities, one per action in the registry (plugin actions included).

    from gen_nodes.temporal import activities
    worker = Worker(client, task_queue="gen", activities=activities())

Each activity is named ``gen.<action id>`` and takes the action's input dict;
it returns the action's output dict. A workflow calls it by name::

    key = await workflow.execute_activity("gen.create_api_key", {"name": "ci"},
                                          start_to_close_timeout=timedelta(seconds=30))

The GEN key and base URL are the worker's (``GEN_API_KEY``, ``GEN_BASE_URL``, or
``activities(api_key=..., base_url=...)``), never workflow input, which Temporal
keeps in its history. Steps run through :class:`gen_nodes.runtime.steps.StepRunner`: a
create retried by Temporal yields one key, keyed by (namespace, workflow id, run
id, activity id). Failures become ``ApplicationError`` with ``type`` set to the
gen-nodes error type (``not_found``, ``outcome_unknown``, ...) and the error's
JSON as details; only rate limits, 5xx and network faults are retryable, with
GEN's ``Retry-After`` as ``next_retry_delay``. A composite action that ends ``partial``
(``gen.rotate_api_key`` whose revoke failed after the new key was made) returns that output,
``status`` ``"partial"``, instead of failing: Temporal does not retry it, the new key is kept,
and the workflow branches on ``status``.

Secrets and the event history: by default a created key's ``token`` is written to
a 0600 file on the worker (secret policy ``file``) and the result carries its
path, so the history never holds it. ``secret_policy="reveal"`` returns the token
in the result: use it only with :func:`data_converter`, a payload codec that
encrypts every payload (``SecretBox``) before it reaches the server.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import threading
from datetime import timedelta
from typing import Any, Callable, Sequence

from temporalio import activity
from temporalio.api.common.v1 import Payload
from temporalio.converter import DataConverter, PayloadCodec
from temporalio.exceptions import ApplicationError

from gen_nodes.core.errors import GenError

from gen_nodes.core.terms import TEMPORAL_TERMS
from gen_nodes.core.registry import Registry, default_registry
from gen_nodes.safety.secret_delivery import DEFAULT_POLICY, deliver
from gen_nodes.core.spec import ActionSpec
from gen_nodes.runtime.steps import StepRunner, engine_client

#: Activity names are this prefix and the action id.
PREFIX = "gen."


def activities(registry: Registry | None = None, *, api_key: str | None = None, base_url: str | None = None,
               store: Any = "sqlite://", secret_policy: str = DEFAULT_POLICY, secrets_folder: Any = None,
               prefix: str = PREFIX, client_options: dict[str, Any] | None = None) -> list[Callable[..., Any]]:
    """One activity per action of ``registry`` (default: every installed action).

    ``store``: where the exactly-once records live, a ``Store`` or a URL for
    ``open_store`` (``sqlite://``: a file on this machine; ``redis://...`` for workers on
    several machines; ``None`` turns exactly-once creates off).
    """
    registry = registry or default_registry()
    deliver({}, secret_policy)  # a bad policy name fails now, not at the first create
    runner = StepRunner("temporal", _records(store), registry=registry,
                        deliver=lambda output: deliver(output, secret_policy, secrets_folder))
    clients = _Clients(api_key, base_url, client_options or {})
    return [_activity(spec, prefix, runner, clients) for spec in registry]


def _activity(spec: ActionSpec, prefix: str, runner: StepRunner, clients: "_Clients") -> Callable[..., Any]:
    async def run(input: dict[str, Any]) -> dict[str, Any]:
        info = activity.info()
        step = f"{info.workflow_namespace}/{info.workflow_id}/{info.workflow_run_id}/{info.activity_id}"
        try:
            return await asyncio.to_thread(lambda: runner.run(spec.id, input, clients.get(), step=step))
        except GenError as exc:
            raise application_error(exc) from None

    run.__name__ = run.__qualname__ = f"gen_{spec.id}"
    run.__doc__ = f"{spec.title}: {spec.description}"
    return activity.defn(name=prefix + spec.id)(run)


def application_error(error: GenError) -> ApplicationError:
    """Temporal's form of a gen-nodes error: typed, retryable only where safe, with GEN's wait."""
    retry_after = error.details.get("retry_after")
    details = error.to_dict(TEMPORAL_TERMS)
    return ApplicationError(
        f"{error.message} (hint: {details['hint']})",
        details,
        type=error.type,
        non_retryable=not error.retryable,
        next_retry_delay=timedelta(seconds=retry_after) if error.retryable and retry_after else None,
    )


class _Clients:
    """One client per worker thread: connections are reused, a session is never shared between threads."""

    def __init__(self, api_key: str | None, base_url: str | None, options: dict[str, Any]) -> None:
        self._args = (api_key, base_url, options)
        self._local = threading.local()

    def get(self) -> Any:
        client = getattr(self._local, "client", None)
        if client is None:
            api_key, base_url, options = self._args
            client = self._local.client = engine_client(api_key, base_url, **options)
        return client


def _records(store: Any) -> Any:
    if store is None:
        return None
    from gen_nodes.safety.idempotency import IdempotencyRecords
    from gen_nodes.state import open_store

    return IdempotencyRecords(open_store(store) if isinstance(store, str) else store)


# -- payload encryption ---------------------------------------------------------------

_ENCODING = b"binary/gen-nodes-encrypted"


class EncryptionCodec(PayloadCodec):
    """Encrypts every payload with a ``SecretBox`` (Fernet), so Temporal's server stores no plain text."""

    def __init__(self, box: Any) -> None:
        self.box = box

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [Payload(metadata={"encoding": _ENCODING}, data=self._seal(p.SerializeToString())) for p in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        out = []
        for p in payloads:
            if p.metadata.get("encoding") != _ENCODING:
                out.append(p)  # written before encryption was turned on
                continue
            decoded = Payload()
            decoded.ParseFromString(base64.b64decode(self.box.open(p.data.decode("ascii"))))
            out.append(decoded)
        return out

    def _seal(self, data: bytes) -> bytes:
        return self.box.seal(base64.b64encode(data).decode("ascii")).encode("ascii")


#: Where :func:`data_converter` reads its secret when given none.
SECRET_ENV = "GEN_NODES_TEMPORAL_SECRET"


def data_converter(secret: Any = None) -> DataConverter:
    """Temporal's default data converter plus :class:`EncryptionCodec`, for the client and the worker.

    ``secret``: a ``SecretBox``, the secret string to make one from (16 characters or more;
    a comma-separated list rotates keys), or None for ``$GEN_NODES_TEMPORAL_SECRET``. The
    worker and every client that starts workflows or reads their results need the same one.
    """
    from gen_nodes.state.secretbox import SecretBox

    if secret is None:
        box = SecretBox.from_env(SECRET_ENV)
    else:
        box = SecretBox(secret) if isinstance(secret, str) else secret
    return dataclasses.replace(DataConverter.default, payload_codec=EncryptionCodec(box))
