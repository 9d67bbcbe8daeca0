"""gen-nodes: GEN's public REST API as declarative actions.

Quick use::

    import gen_nodes
    key = gen_nodes.run("create_api_key", {"name": "ci", "expires_in": "30d"})

``run`` validates the input, calls GEN (``GEN_API_KEY``, ``GEN_BASE_URL``) and
returns the action's JSON output, or raises a typed error from ``gen_nodes.errors``.
Heavier parts are imported on first use, so ``import gen_nodes`` stays cheap.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = ["run", "Registry", "GenClient", "RetryPolicy", "ActionSpec", "default_registry", "__version__"]


def run(action: str, arguments: dict[str, Any] | None = None, *, client: Any = None, **client_options: Any) -> dict[str, Any]:
    """Run the action ``action`` with ``arguments`` and return its output.

    Pass a :class:`GenClient` to reuse its connection across calls; otherwise one is
    made from ``client_options`` (``api_key``, ``base_url``, ``timeout``, ``retry``)
    and the environment, and closed afterwards.
    """
    from .registry import default_registry

    return default_registry().run(action, arguments or {}, client=client, **client_options)


def __getattr__(name: str) -> Any:
    if name in ("Registry", "default_registry"):
        from . import registry

        return getattr(registry, name)
    if name in ("GenClient", "RetryPolicy"):
        from . import client

        return getattr(client, name)
    if name == "ActionSpec":
        from .spec import ActionSpec

        return ActionSpec
    raise AttributeError(f"module 'gen_nodes' has no attribute {name!r}")
