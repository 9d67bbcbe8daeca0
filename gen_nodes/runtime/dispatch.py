"""The tool dispatcher: run a model's tool call and always answer with JSON, never raise.

Given a tool name and the model's arguments (a JSON string or a dict), the
dispatcher drops the ``null`` that OpenAI strict mode sends for optional fields,
validates, holds a destructive call until a person agrees, runs the action, and
applies the secret policy to the result. Every failure becomes
``{"error": {type, message, hint, ...}}`` that tells the model what to fix.
Hand-written tool loops use it directly; the MCP and LangChain adapters wrap it.

A person approves, never the model: nothing that approves a call travels through the
model's context (tool results, tool arguments). By ``confirmation`` policy:

- ``elicit`` (default): ``confirm(tool, arguments, preview)`` asks the person now;
  without a ``confirm`` callback the call is refused (nothing is sent).
- ``approval`` (two phases, for hosts that ask asynchronously: a web app, a chat button):
  the call returns ``confirmation_required`` with ``awaiting_approval: true`` and a
  preview, and nothing that approves it. The handle is on ``result.approval`` (host
  only: not in ``.content``/``.text``); the host shows ``approval.preview`` to the
  person and calls :meth:`Dispatcher.approve` or :meth:`Dispatcher.deny` with
  ``approval.id``. The call then runs once, with the arguments that were previewed.
- ``host``: the host asks the person before every destructive call itself; gen-nodes acts.
- ``none``: nobody asks.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Callable

import orjson

from gen_nodes.safety.approvals import Approval, ApprovalError, Approvals
from gen_nodes.core.engine import too_deep
from gen_nodes.core.errors import ConfirmationRequired, GenError, InvalidInput, unexpected_failure
from gen_nodes.core.terms import TOOL_TERMS, Terms
from gen_nodes.core.redact import masked_copy
from gen_nodes.core.registry import Registry, default_registry
from gen_nodes.core.validation import shown
from gen_nodes.safety.secret_delivery import DEFAULT_POLICY, deliver
from gen_nodes.runtime.tools import DEFAULT_PREFIX, Tool, build_tools

log = logging.getLogger("gen_nodes.runtime.dispatch")

#: Asks a person; gets the tool, the validated arguments and the (masked) preview; True to go ahead.
ConfirmCallback = Callable[[Tool, dict[str, Any], list[dict[str, Any]] | None], bool]


@dataclass(frozen=True)
class ToolResult:
    """What a tool call returns: the JSON for the model, and whether it is an error.

    ``approval`` is for the host only (never in ``content`` or ``text``): the pending
    :class:`~gen_nodes.safety.approvals.Approval` of a call held under the ``approval`` policy.
    """

    content: dict[str, Any]
    is_error: bool = False
    approval: Approval | None = field(default=None, repr=False, compare=False)

    @property
    def text(self) -> str:
        return dumps(self.content)

    @classmethod
    def failure(cls, error: GenError, terms: Terms | None = None) -> "ToolResult":
        """The error as the model reads it, its hint in ``terms`` (default: a tool loop's, ``gen_`` tools)."""
        return cls({"error": error.to_dict(terms or TOOL_TERMS)}, is_error=True)

    @classmethod
    def unexpected(cls, tool: str, exc: BaseException) -> "ToolResult":
        """A bug, not the caller's fault: say so without passing on its text (it may hold data)."""
        log.error("tool %s failed unexpectedly: %s", tool, type(exc).__name__)
        return cls.failure(unexpected_failure(exc))


class Dispatcher:
    """Runs tool calls against a registry.

    ``confirmation``: a policy of :data:`~gen_nodes.runtime.tools.CONFIRMATION_POLICIES` (see the module
    doc); ``confirm``: the callback of ``elicit``; ``approvals``: where ``approval`` keeps pending
    calls (default: in memory). ``terms``: how hints name settings (see ``gen_nodes.core.terms.Terms``; tools are
    named with ``prefix``; a server whose requests bring their own key passes
    :data:`~gen_nodes.core.terms.HTTP_TOOL_TERMS`). ``secret_policy``: how a created key's secret is
    returned (see ``secret_delivery``). ``client``: a :class:`~gen_nodes.client.http.GenClient` to use
    when a call names none (made from the environment on first use).
    """

    def __init__(
        self,
        registry: Registry | None = None,
        *,
        prefix: str = DEFAULT_PREFIX,
        client: Any = None,
        confirmation: str = "elicit",
        confirm: ConfirmCallback | None = None,
        secret_policy: str = DEFAULT_POLICY,
        secrets_folder: Any = None,
        approvals: Approvals | None = None,
        terms: Terms | None = None,
    ) -> None:
        self.registry = registry or default_registry()
        self.confirmation = confirmation
        self.tools = build_tools(self.registry, prefix=prefix, confirmation=confirmation)
        self._by_name = {tool.name: tool for tool in self.tools}
        self._client = client
        self._confirm = confirm
        self.secret_policy = secret_policy
        self.secrets_folder = secrets_folder
        self._approvals = approvals
        #: How hints name tools and settings for whoever reads the results.
        self.terms = (terms or TOOL_TERMS).for_tools(prefix)
        self._lock = threading.Lock()
        deliver({}, secret_policy)  # fail now, not at the first create, on a bad policy name

    @property
    def approvals(self) -> Approvals:
        """Where pending calls of the ``approval`` policy wait (in memory unless one was given)."""
        with self._lock:
            if self._approvals is None:
                from gen_nodes.state import open_store

                self._approvals = Approvals(open_store("memory://"))
            return self._approvals

    def tool(self, name: str) -> Tool:
        try:
            return self._by_name[name]
        except KeyError:
            raise InvalidInput(
                f"No tool named {shown(name)}.",
                hint=f"Call one of: {', '.join(self._by_name)}.",
                errors=[{"path": "$", "message": f"unknown tool {shown(name)}"}],
            ) from None

    def call(self, name: str, arguments: Any = None, *, client: Any = None, confirmed: bool = False) -> ToolResult:
        """Run one tool call. ``confirmed=True`` says a person already approved it (host code only)."""
        try:
            tool, args = self.parse(name, arguments)
        except GenError as exc:
            return self._failure(exc)
        return self.run_parsed(tool, args, client=client, confirmed=confirmed)

    def parse(self, name: str, arguments: Any) -> tuple[Tool, dict[str, Any]]:
        """The tool and its validated arguments (nulls for optional fields dropped)."""
        tool = self.tool(name)
        args = _decode(arguments)
        # Strict mode sends null for an optional field left out; an unknown field stays, to be refused.
        optional = set(tool.input_schema.get("properties", {})) - set(tool.input_schema.get("required", ()))
        args = {k: v for k, v in args.items() if v is not None or k not in optional}
        return tool, self.registry.validate(tool.spec.id, args)

    def run_parsed(self, tool: Tool, args: dict[str, Any], *, client: Any = None,
                   confirmed: bool = False) -> ToolResult:
        """Run what :meth:`parse` returned: hold it for a person if needed, run, apply the secret policy."""
        try:
            client = client or self.default_client()
            if tool.needs_approval and not confirmed:
                held = self._hold(tool, args, client)
                if held is not None:
                    return held
            return self._run(tool.spec.id, args, client)
        except GenError as exc:
            return self._failure(exc)
        except Exception as exc:  # the agent loop must go on; the details stay in our log
            return ToolResult.unexpected(tool.name, exc)

    # -- the approval policy's second phase (host code, never the model) -----------------

    def approve(self, handle: str, *, by: str = "", client: Any = None) -> ToolResult:
        """A person approved the pending call ``handle``: run it now, once, with its previewed arguments.

        ``client`` must act as the same GEN key as the original call (default: the dispatcher's).
        Raises nothing: an unknown, expired or already decided handle is an ``approval`` error result.
        """
        try:
            self.approvals.decide(handle, approve=True, by=by)
            return self.run_approved(handle, client=client)
        except GenError as exc:
            return self._failure(exc)

    def deny(self, handle: str, *, by: str = "") -> ToolResult:
        """A person said no: the pending call ``handle`` never runs. The result says so (for the model)."""
        try:
            approval = self.approvals.decide(handle, approve=False, by=by)
        except GenError as exc:
            return self._failure(exc)
        return self._failure(ConfirmationRequired(
            f"The user denied {approval.context.get('tool', approval.action)}; nothing was changed.",
            hint="Do not retry unless the user asks for it again.", declined=True))

    def run_approved(self, handle: str, *, client: Any = None) -> ToolResult:
        """Run an approved call once (whoever calls first gets it); its result is kept on the approval."""
        try:
            current = self.approvals.get(handle)
            resumable = current is not None and current.action in self.registry and \
                self.registry.get(current.action).resumable
            approval = self.approvals.claim(handle, resumable=resumable)
        except Exception as exc:  # the store failed: nothing ran
            return ToolResult.unexpected("approval", exc)
        if approval is None:
            current = self.approvals.get(handle)
            state = current.state if current else "unknown"
            return self._failure(ApprovalError(f"This call cannot run: its approval is {state}.", reason=state))
        tool = approval.context.get("tool", approval.action)
        try:
            return ToolResult(self.approvals.run_claimed(approval, partial(self._approved, client=client),
                                                         terms=self.terms))
        except GenError as exc:
            return self._failure(exc)
        except Exception as exc:
            return ToolResult.unexpected(tool, exc)

    def _approved(self, approval: Approval, *, client: Any) -> dict[str, Any]:
        """What an approved call returns: the action's output, the secret policy applied."""
        client = client or self.default_client()
        if principal_of(client) != approval.principal:
            raise ApprovalError("This approval belongs to another GEN key; it did not run.", reason="not_yours")
        return self._delivered(approval.action, approval.arguments, client, once=self.approvals.steps(approval))

    def default_client(self) -> Any:
        """The client for calls that name none: made from the environment on first use."""
        with self._lock:
            if self._client is None:
                from gen_nodes.client.http import GenClient

                self._client = GenClient()
            return self._client

    def close(self) -> None:
        """Close the default client, if one was made or given."""
        if self._client is not None:
            self._client.close()

    def _failure(self, error: GenError) -> ToolResult:
        return ToolResult.failure(error, self.terms)

    def _run(self, action: str, args: dict[str, Any], client: Any) -> ToolResult:
        return ToolResult(self._delivered(action, args, client))

    def _delivered(self, action: str, args: dict[str, Any], client: Any, once: Any = None) -> dict[str, Any]:
        output = self.registry.run(action, args, client=client, once=once)
        return deliver(output, self.secret_policy, self.secrets_folder)

    def _hold(self, tool: Tool, args: dict[str, Any], client: Any) -> ToolResult | None:
        """None if a person agreed just now; else the result that holds the call (nothing was sent)."""
        if self.confirmation == "elicit":
            if self._confirm is None:
                raise self.unavailable(tool)
            preview = masked_copy(self.registry.preview(tool.spec.id, args, client=client))
            if self._confirm(tool, args, preview):
                return None
            raise ConfirmationRequired(
                f"The user declined {tool.name}; nothing was changed.",
                hint="Do not retry unless the user asks again.", declined=True,
            )
        preview = masked_copy(self.registry.preview(tool.spec.id, args, client=client))
        approval = self.approvals.request(action=tool.spec.id, arguments=args, principal=principal_of(client),
                                          preview=preview, context={"tool": tool.name})
        return awaiting(tool.name, approval)

    def unavailable(self, tool: Tool) -> ConfirmationRequired:
        """The refusal when no person can be asked here: nothing was sent."""
        return ConfirmationRequired(
            f"{tool.name} is irreversible and needs a person's approval, but this app has no way to ask "
            "one; nothing was sent.",
            hint="Tell the user it could not be done from here. The app's developer can let a person approve: "
                 "a confirm= callback (policy elicit), confirmation='approval' with approve()/deny() by handle, "
                 "or confirmation='host' if the app itself asks before every irreversible call.",
        )


def awaiting(tool: str, approval: Approval) -> ToolResult:
    """The model's view of a call held for a person: what waits, nothing that approves it."""
    waiting = ConfirmationRequired(
        f"{tool} is waiting for the user's approval; nothing has changed yet.",
        hint="Tell the user what you asked for; they approve or deny it outside this conversation. "
             "Do not call it again: you will be told the outcome.",
        awaiting_approval=True, preview=approval.preview)
    return ToolResult({"error": waiting.to_dict(TOOL_TERMS)}, is_error=True, approval=approval)


def dumps(data: Any) -> str:
    """Compact JSON (UTF-8 text, not ``\\u`` escapes): orjson, ``json`` for what orjson refuses
    (integers past 64 bits, non-string keys)."""
    try:
        return orjson.dumps(data).decode()
    except TypeError:  # orjson.JSONEncodeError is a TypeError
        return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def principal_of(client: Any) -> str:
    """Who a client acts as, for binding confirmations (a hash, never the key)."""
    return getattr(client, "identity", "")


def _decode(arguments: Any) -> dict[str, Any]:
    if arguments is None or arguments == "":
        return {}
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments)
        except json.JSONDecodeError as exc:
            raise InvalidInput(
                f"The tool arguments are not valid JSON: {exc.msg} at position {exc.pos}.",
                errors=[{"path": "$", "message": "not JSON"}],
                hint="Send the arguments as one JSON object, e.g. {\"id\": 6}.",
            ) from None
        except RecursionError:
            raise too_deep() from None
    if not isinstance(arguments, dict):
        raise InvalidInput(
            f"The tool arguments must be a JSON object, not {type(arguments).__name__}.",
            errors=[{"path": "$", "message": "not an object"}],
        )
    return arguments
