"""The tool dispatcher: run a model's tool call and always answer with JSON, never raise.

Given a tool name and the model's arguments (a JSON string or a dict), the
dispatcher drops the ``null`` that OpenAI strict mode sends for optional fields,
validates, asks for confirmation when the tool is destructive, runs the action,
and applies the secret policy to the result. Every failure becomes
``{"error": {type, message, hint, ...}}`` that tells the model what to fix.
Hand-written tool loops use it directly; the MCP and LangChain adapters wrap it.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass
from typing import Any, Callable

from .confirm import ConfirmationTokens
from .engine import too_deep
from .errors import TOOL_TERMS, ConfirmationRequired, GenError, InvalidInput, Terms
from .redact import masked_copy
from .registry import Registry, default_registry
from .schemas import shown
from .secret_delivery import DEFAULT_POLICY, deliver
from .tools import CONFIRMATION_FIELD, DEFAULT_PREFIX, Tool, build_tools

log = logging.getLogger("gen_nodes.dispatch")

#: Asks a person; gets the tool, the validated arguments and the preview; True to go ahead.
ConfirmCallback = Callable[[Tool, dict[str, Any], list[dict[str, Any]] | None], bool]


@dataclass(frozen=True)
class ToolResult:
    """What a tool call returns: the JSON for the model, and whether it is an error."""

    content: dict[str, Any]
    is_error: bool = False

    @property
    def text(self) -> str:
        return json.dumps(self.content, ensure_ascii=False)

    @classmethod
    def failure(cls, error: GenError, terms: Terms = TOOL_TERMS) -> "ToolResult":
        """The error as a model reads it: its hint in ``terms`` (tool names, how the key is given)."""
        return cls({"error": error.to_dict(terms)}, is_error=True)

    @classmethod
    def unexpected(cls, tool: str, exc: BaseException) -> "ToolResult":
        """A bug, not the caller's fault: say so without passing on its text (it may hold data)."""
        log.error("tool %s failed unexpectedly: %s", tool, type(exc).__name__)
        return cls({"error": {
            "type": "api_error",
            "message": f"Unexpected failure in gen-nodes ({type(exc).__name__}).",
            "hint": "This is a bug in gen-nodes or a plugin, not in your input; try again or report it.",
        }}, is_error=True)


class Dispatcher:
    """Runs tool calls against a registry.

    ``confirmation``: ``token`` (default) or ``elicit`` (ask through ``confirm``, else a token),
    or ``none``. ``secret_policy``: how a created key's secret is returned (see ``secret_delivery``).
    ``client``: a :class:`~gen_nodes.client.GenClient` to use when a call names none (made from
    the environment on first use). ``terms``: how hints name tools and settings for the model
    (:data:`~gen_nodes.errors.TOOL_TERMS`; a server whose requests bring their own key passes
    :data:`~gen_nodes.errors.HTTP_TOOL_TERMS`).
    """

    def __init__(
        self,
        registry: Registry | None = None,
        *,
        prefix: str = DEFAULT_PREFIX,
        client: Any = None,
        confirmation: str = "token",
        confirm: ConfirmCallback | None = None,
        secret_policy: str = DEFAULT_POLICY,
        secrets_folder: Any = None,
        tokens: ConfirmationTokens | None = None,
        terms: Terms = TOOL_TERMS,
    ) -> None:
        self.registry = registry or default_registry()
        self.confirmation = confirmation
        self.tools = build_tools(self.registry, prefix=prefix, confirmation=confirmation)
        self._by_name = {tool.name: tool for tool in self.tools}
        self._client = client
        self._confirm = confirm
        self.secret_policy = secret_policy
        self.secrets_folder = secrets_folder
        self.tokens = tokens or ConfirmationTokens()
        #: The words of hints: tools named with this dispatcher's prefix (HTTP servers pass HTTP_TOOL_TERMS).
        self.terms = terms.for_tools(prefix)
        self._lock = threading.Lock()
        deliver({}, secret_policy)  # fail now, not at the first create, on a bad policy name

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
        """Run one tool call. ``confirmed=True`` says a person already approved it."""
        try:
            tool, args, token = self.parse(name, arguments)
        except GenError as exc:
            return ToolResult.failure(exc, self.terms)
        return self.run_parsed(tool, args, token, client=client, confirmed=confirmed)

    def parse(self, name: str, arguments: Any) -> tuple[Tool, dict[str, Any], str | None]:
        """The tool, its validated arguments (nulls for optional fields dropped) and any confirmation token."""
        tool = self.tool(name)
        args = _decode(arguments)
        # Strict mode sends null for an optional field left out; an unknown field stays, to be refused.
        optional = set(tool.input_schema.get("properties", {})) - set(tool.input_schema.get("required", ()))
        args = {k: v for k, v in args.items() if v is not None or k not in optional}
        token = args.pop(CONFIRMATION_FIELD, None) if tool.takes_confirmation else None
        return tool, self.registry.validate(tool.spec.id, args), token

    def run_parsed(self, tool: Tool, args: dict[str, Any], token: str | None = None, *,
                   client: Any = None, confirmed: bool = False) -> ToolResult:
        """Run what :meth:`parse` returned: confirm if needed, run, apply the secret policy."""
        try:
            client = client or self.default_client()
            if tool.takes_confirmation and not confirmed:
                self._require_confirmation(tool, args, token, client)
            output = self.registry.run(tool.spec.id, args, client=client)
            return ToolResult(deliver(output, self.secret_policy, self.secrets_folder))
        except GenError as exc:
            return ToolResult.failure(exc, self.terms)
        except Exception as exc:  # the agent loop must go on; the details stay in our log
            return ToolResult.unexpected(tool.name, exc)

    def default_client(self) -> Any:
        """The client for calls that name none: made from the environment on first use."""
        with self._lock:
            if self._client is None:
                from .client import GenClient

                self._client = GenClient()
            return self._client

    def close(self) -> None:
        """Close the default client, if one was made or given."""
        if self._client is not None:
            self._client.close()

    def _require_confirmation(self, tool: Tool, args: dict[str, Any], token: str | None, client: Any) -> None:
        if self.confirmation == "elicit" and self._confirm is not None:
            # A person can be asked, so they always are: a token from the model counts for nothing.
            preview = self.registry.preview(tool.spec.id, args, client=client)
            if self._confirm(tool, args, masked_copy(preview)):
                return
            raise ConfirmationRequired(
                f"The user declined {tool.name}; nothing was changed.",
                hint="Do not retry unless the user asks again.", declined=True,
            )
        reason = self.tokens.redeem(token, tool.name, args, principal_of(client))
        if reason is not None:
            raise self.confirmation_request(tool, args, client, reason=reason)

    def confirmation_request(self, tool: Tool, args: dict[str, Any], client: Any,
                             reason: str = "missing") -> ConfirmationRequired:
        """The ``confirmation_required`` error: a preview and a fresh single-use token."""
        preview = self.registry.preview(tool.spec.id, args, client=client)
        token = self.tokens.issue(tool.name, args, principal_of(client))
        told = "" if reason == "missing" else f" The confirmation token given was refused ({reason})."
        return ConfirmationRequired(
            f"{tool.name} is destructive and was not run.{told}",
            hint=(
                "Show the user what would change (`preview`) and ask them. Only if they agree, call "
                f"{tool.name} again with the same arguments plus \"{CONFIRMATION_FIELD}\": the token below. "
                f"It works once and expires in {int(self.tokens.ttl)} seconds."
            ),
            preview=masked_copy(preview),
            confirmation_token=token,
            expires_in_seconds=int(self.tokens.ttl),
        )


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
