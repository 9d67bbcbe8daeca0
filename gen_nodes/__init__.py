"""gen-nodes: GEN's public REST API as declarative actions.

Quick use::

    import gen_nodes
    key = gen_nodes.run("create_api_key", {"name": "ci", "expires_in": "30d"})

``run`` validates the input, calls GEN (``GEN_API_KEY``, ``GEN_BASE_URL``) and
returns the action's JSON output, or raises a typed error from ``gen_nodes.core.errors``.
The public API below is re-exported lazily (PEP 562), so ``import gen_nodes`` and
``import gen_nodes.sandbox`` stay cheap and pull in no other layer. The layers:
``core`` < ``client`` < ``state`` < ``safety`` < ``runtime`` < ``web`` < ``surfaces``
(``net`` for the HTTP surfaces and the sandbox); lint-imports enforces the order.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from gen_nodes.core.version import __version__

#: Each public name and the module that defines it.
_EXPORTS = {
    "ActionSpec": "gen_nodes.core.spec", "Hints": "gen_nodes.core.spec", "Input": "gen_nodes.core.spec",
    "Lookup": "gen_nodes.core.spec", "Response": "gen_nodes.core.spec", "Chat": "gen_nodes.core.spec",
    "Registry": "gen_nodes.core.registry", "default_registry": "gen_nodes.core.registry",
    "GenClient": "gen_nodes.client", "RetryPolicy": "gen_nodes.client",
    "Dispatcher": "gen_nodes.runtime.dispatch", "ToolResult": "gen_nodes.runtime.dispatch",
    "open_store": "gen_nodes.state", "Sandbox": "gen_nodes.sandbox",
    "GenError": "gen_nodes.core.errors",
    "InvalidInput": "gen_nodes.core.errors",
    "InvalidSetting": "gen_nodes.core.errors",
    "AuthenticationError": "gen_nodes.core.errors",
    "PermissionDenied": "gen_nodes.core.errors",
    "NotFound": "gen_nodes.core.errors",
    "Rejected": "gen_nodes.core.errors",
    "RateLimited": "gen_nodes.core.errors",
    "ServerError": "gen_nodes.core.errors",
    "ConnectionFailed": "gen_nodes.core.errors",
    "RequestTimeout": "gen_nodes.core.errors",
    "ResponseTooLarge": "gen_nodes.core.errors",
    "OutcomeUnknown": "gen_nodes.core.errors",
    "ConfirmationRequired": "gen_nodes.core.errors",
    "ApprovalDenied": "gen_nodes.core.errors",
    "ApprovalExpired": "gen_nodes.core.errors",
    "NobodyToAsk": "gen_nodes.core.errors",
    "TooManyApprovals": "gen_nodes.core.errors",
    "UnknownAction": "gen_nodes.core.errors",
    "BodyTooLarge": "gen_nodes.core.errors",
    "IdempotencyConflict": "gen_nodes.core.errors",
    "RequestInProgress": "gen_nodes.core.errors",
    "MalformedRequest": "gen_nodes.core.errors",
    "ApprovalError": "gen_nodes.core.errors",
    "CannotServe": "gen_nodes.core.errors",
}

__all__ = ["run", "__version__", *_EXPORTS]


def run(action: str, arguments: dict[str, Any] | None = None, *, client: Any = None, **client_options: Any) -> dict[str, Any]:
    """Run the action ``action`` with ``arguments`` and return its output.

    Pass a :class:`GenClient` to reuse its connection across calls; otherwise one is
    made from ``client_options`` (``api_key``, ``base_url``, ``timeout``, ``retry``)
    and the environment, and closed afterwards.
    """
    from gen_nodes.core.registry import default_registry

    return default_registry().run(action, arguments or {}, client=client, **client_options)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'gen_nodes' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
