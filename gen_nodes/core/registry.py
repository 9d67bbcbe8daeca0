"""The plugin registry: actions discovered through the ``gen_nodes.actions`` entry points.

Our own actions register through that group too (see ``pyproject.toml``), so a
plugin is a peer: a distribution that declares, in its own metadata::

    [project.entry-points."gen_nodes.actions"]
    get_balance = "my_plugin:GET_BALANCE"

adds an action to every runner, the CLI and the tool exporters without any change
here. An entry point may name an :class:`ActionSpec`, an iterable of them, or a
function returning either. A plugin that fails to load is skipped with a warning
that names it; everything else still loads.
"""

from __future__ import annotations

import difflib
from contextlib import nullcontext
import warnings
from functools import lru_cache
from importlib.metadata import entry_points
from typing import Any, Iterable, Iterator

from gen_nodes.core.errors import UnknownAction
from gen_nodes.core.spec import ActionSpec

GROUP = "gen_nodes.actions"


class PluginWarning(RuntimeWarning):
    """A plugin's actions could not be loaded."""


class Registry:
    """A set of actions, by id, that can be listed, validated and run."""

    def __init__(self, actions: Iterable[ActionSpec] = ()) -> None:
        self._actions: dict[str, ActionSpec] = {}
        for spec in actions:
            self.add(spec)

    @classmethod
    def discover(cls, group: str = GROUP) -> "Registry":
        """A registry of every action the installed distributions declare under ``group``."""
        registry = cls()
        # Our own actions first, so a plugin can add actions but never replace a built-in one.
        for ep in sorted(entry_points(group=group), key=_load_order):
            origin = f"{ep.name} = {ep.value} (from {ep.dist.name if ep.dist else 'an unknown distribution'})"
            try:
                specs = _as_specs(ep.load())
            except Exception as exc:  # a plugin's bug must not take the others down
                warnings.warn(f"gen-nodes: skipped plugin entry point {origin}: {type(exc).__name__}: {exc}",
                              PluginWarning, stacklevel=2)
                continue
            for spec in specs:
                if spec.id in registry:
                    warnings.warn(f"gen-nodes: action id {spec.id!r} from {origin} is already taken; ignored",
                                  PluginWarning, stacklevel=2)
                    continue
                registry.add(spec)
        return registry

    def add(self, spec: ActionSpec) -> None:
        if not isinstance(spec, ActionSpec):
            raise TypeError(f"expected an ActionSpec, got {type(spec).__name__}")
        self._actions[spec.id] = spec

    def __iter__(self) -> Iterator[ActionSpec]:
        return iter(self._actions.values())

    def __len__(self) -> int:
        return len(self._actions)

    def __contains__(self, action_id: object) -> bool:
        return action_id in self._actions

    def ids(self) -> list[str]:
        return list(self._actions)

    def get(self, action_id: str) -> ActionSpec:
        """The action ``action_id``, or :class:`UnknownAction` naming the close matches."""
        try:
            return self._actions[action_id]
        except KeyError:
            from gen_nodes.core.validation import shown

            close = difflib.get_close_matches(str(action_id), self.ids(), n=3)
            hint = f"Did you mean {', '.join(close)}? " if close else ""
            raise UnknownAction(
                f"No action named {shown(action_id)}.",
                hint=f"{hint}Available actions: {', '.join(self.ids())}.",
            ) from None

    def validate(self, action_id: str, arguments: Any) -> dict[str, Any]:
        """The arguments, if valid for the action; else :class:`~gen_nodes.core.errors.InvalidInput`."""
        from gen_nodes.core.engine import validate_input

        return validate_input(self.get(action_id), arguments)

    def run(self, action_id: str, arguments: Any = None, *, client: Any = None, once: Any = None,
            **client_options: Any) -> dict[str, Any]:
        """Run an action. Without ``client``, one is made from ``client_options`` and closed after.
        ``once``: runs each step of a composite action at most once (see ``core/composite.py``)."""
        from gen_nodes.core.engine import execute

        spec = self.get(action_id)
        with _client_for(client, client_options) as active:
            return execute(spec, {} if arguments is None else arguments, active, resolve=self.get, once=once)

    def preview(self, action_id: str, arguments: Any = None, *, client: Any = None,
                **client_options: Any) -> list[dict[str, Any]] | None:
        """What a destructive action would affect, found without changing anything."""
        from gen_nodes.core.engine import preview

        spec = self.get(action_id)
        with _client_for(client, client_options) as active:
            return preview(spec, {} if arguments is None else arguments, active, self.get)


def _load_order(ep: Any) -> tuple[bool, str]:
    name = (ep.dist.name if ep.dist else "").replace("_", "-").lower()
    return name != "gen-nodes", name


def _client_for(client: Any, options: dict[str, Any]) -> Any:
    if client is not None:
        return nullcontext(client)  # the caller's client: use it, leave it open
    from gen_nodes.client.http import GenClient

    return GenClient(**options)


def _as_specs(obj: Any) -> list[ActionSpec]:
    if callable(obj) and not isinstance(obj, ActionSpec):
        obj = obj()
    specs = [obj] if isinstance(obj, ActionSpec) else list(obj)
    bad = [type(s).__name__ for s in specs if not isinstance(s, ActionSpec)]
    if bad:
        raise TypeError(f"expected ActionSpec objects, got {', '.join(bad)}")
    return specs


@lru_cache(maxsize=1)
def default_registry() -> Registry:
    """The registry of all installed actions, discovered once per process."""
    return Registry.discover()
