"""What an action is: one GEN endpoint declared as data.

An :class:`ActionSpec` says everything the generic engine (``engine.py``) needs:
the HTTP method and path template, where each input field goes, how the answer
becomes the output, JSON Schemas for input and output, and hints for the tools
that load it. Nothing here sends a request. The built-in declarations live in
``actions.py``; a plugin declares its own the same way.

A *composite* action (``ActionSpec.steps``) is a list of steps (:class:`Step`) instead of
one endpoint: each step names another action and maps its input from the
composite's input (:class:`Input`) and earlier steps' outputs (:class:`Output`,
:class:`FirstOf`, :class:`Lifetime`); ``ActionSpec.result`` says how the steps'
outputs become the composite's output. A step may say that its failure leaves the
run ``partial`` rather than failed (``Step.partial``): what the earlier steps made
is kept and handed back, with what to do next. ``composite.py`` runs them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Mapping

#: Where an input field goes. ``filter`` fields are not sent: they select the
#: items of a list answer client-side (item field of the same name must equal the value,
#: unless the field is declared in ``ActionSpec.spans``).
Location = Literal["path", "query", "body", "filter"]

#: Seconds per unit of a span of time, written as GEN writes durations (``"7d"``, ``"12h"``).
_SPAN_UNITS = {"d": 86400, "h": 3600}


#: The longest span a filter uses, in seconds (100 years): beyond it every key is selected alike.
SPAN_LIMIT = 100 * 366 * 86400


def span_seconds(span: str | int) -> int:
    """Seconds in a span that the input schema accepted (``"7d"``, ``"12h"`` or an integer), at most
    :data:`SPAN_LIMIT`: a longer span selects the same keys, and date arithmetic would overflow."""
    seconds = span if isinstance(span, int) else int(span[:-1]) * _SPAN_UNITS[span[-1]]
    return min(seconds, SPAN_LIMIT)


@dataclass(frozen=True)
class Span:
    """A ``filter`` input holding a span of time that selects list items by one of their timestamps.

    ``ahead``: keep items whose ``field`` lies between now and now + span (keys expiring soon).
    ``ago``: keep items whose ``field`` is at least span before now; where it is null, ``otherwise``
    is used instead (a key never used counts from its creation), else the item is left out.
    "Now" is the time in GEN's ``Date`` header (the server's clock, which stamped the items).
    """

    field: str
    direction: Literal["ahead", "ago"]
    otherwise: str | None = None


@dataclass(frozen=True)
class Input:
    """A reference to an input field, used inside templates and matches."""

    name: str


@dataclass(frozen=True)
class Output:
    """A value from an earlier step's output, in a composite action: ``Output("old", "name")``;
    ``field=None`` is the whole output."""

    step: str
    field: str | None = None


@dataclass(frozen=True)
class FirstOf:
    """The first of ``values`` (refs or constants) that has a value: an input left out, else a default."""

    values: tuple[Any, ...]


@dataclass(frozen=True)
class Lifetime:
    """The time from ``start`` to ``end``, two timestamps of an earlier step's output, written as GEN
    writes a duration in whole days (``"90d"``, rounded, at least ``"1d"``); no value if either is null."""

    step: str
    start: str
    end: str


@dataclass(frozen=True)
class Pick:
    """For a step that runs a list action: the one item it must find; that item is the step's output.

    ``match``: item field -> value (a ref or a constant), compared as strings. ``require``: item
    field -> the values it may hold, else the run stops before anything is changed. ``noun`` names
    an item in messages (``"API key"``).
    """

    items: str
    match: Mapping[str, Any]
    require: Mapping[str, tuple[Any, ...]] = field(default_factory=dict)
    noun: str = "item"


@dataclass(frozen=True)
class Step:
    """One step of a composite action: run ``action`` with ``input`` (field -> ref or constant)."""

    #: How later steps and ``ActionSpec.result`` name this step's output.
    name: str
    action: str
    input: Mapping[str, Any] = field(default_factory=dict)
    pick: Pick | None = None
    #: Set on a step that runs after an earlier one changed something: its failure ends the run
    #: ``partial`` (what the earlier steps made is handed back) instead of failed. The text says
    #: what is left as it was and what to do next; ``{field}`` is filled from the composite's input.
    partial: str | None = None


#: The ``status`` of a composite action's output: every step succeeded, or a step marked
#: ``partial`` failed after earlier steps changed something (the output says what and why).
SUCCEEDED, PARTIAL = "succeeded", "partial"


@dataclass(frozen=True)
class Hints:
    """How the action behaves, for tool runners and for the retry policy."""

    read_only: bool = False
    destructive: bool = False
    idempotent: bool = False
    #: Talks to a service outside this process (always true for GEN endpoints).
    open_world: bool = True

    @property
    def safe_to_retry(self) -> bool:
        """Repeating the request cannot do anything the first one did not."""
        return self.read_only or self.idempotent


@dataclass(frozen=True)
class Response:
    """How GEN's answer becomes the action's output."""

    #: Put the decoded body under this key (a list answer becomes ``{wrap: [...]}``).
    wrap: str | None = None
    #: Output built from this template instead of the body, for answers that carry
    #: no object (204, or 200 with only a message). Values may be :class:`Input` refs.
    template: Mapping[str, Any] | None = None
    #: With ``template``: fields copied from a JSON-object body when present.
    keep: tuple[str, ...] = ()


@dataclass(frozen=True)
class Lookup:
    """Objects found by running a read-only action and matching its items.

    Used to preview what a destructive action would touch, and to find what a
    create whose outcome is unknown may have left behind.
    """

    action: str
    #: The output field of ``action`` that holds the item list.
    items: str
    #: Item field -> value it must equal (an :class:`Input` ref or a constant);
    #: compared as strings, since GEN sends ids both as numbers and as strings.
    match: Mapping[str, Any] = field(default_factory=dict)
    #: Only items whose timestamp field is at or after the request's start.
    created_since: str | None = None
    #: Only items where this field is null (e.g. a key never used).
    unset: tuple[str, ...] = ()


@dataclass(frozen=True)
class Chat:
    """How an action is typed as a chat command: ``/gen [GROUP] VERB ARGS... [field=value]``.

    One parser and one help text (``surfaces/chatops/grammar.py``) serve every chat
    platform from this. An action without one still gets a command, derived from
    its id and required inputs (see ``grammar.chat_of``).
    """

    #: The command word, e.g. ``"revoke-all"``.
    verb: str
    #: The word before the verb that groups related commands (``"keys"``); ``""`` for
    #: a top-level command such as ``/gen me``.
    group: str = ""
    #: Input fields taken by position, in this order. Any input field can also be
    #: given as ``field=value``.
    args: tuple[str, ...] = ()
    #: The last positional field takes every remaining word (a name with spaces).
    rest: bool = False
    #: Short option name -> input field, e.g. ``{"expires": "expires_in"}`` for ``expires=30d``.
    options: Mapping[str, str] = field(default_factory=dict)
    #: Input field -> how the usage line names it (default: the field name in capitals).
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ActionSpec:
    """One GEN endpoint as data. See ``actions.py`` for the built-in ones."""

    id: str
    title: str
    description: str
    method: str
    #: Path template below the base URL; ``{name}`` is filled from a ``path`` input.
    path: str
    input_schema: Mapping[str, Any]
    output_schema: Mapping[str, Any]
    hints: Hints
    #: Input field -> where it goes. Fields not named here go in the JSON body.
    inputs: Mapping[str, Location] = field(default_factory=dict)
    #: Wrap the body fields in an object under this key, e.g. ``persisted_token``.
    body_envelope: str | None = None
    response: Response = field(default_factory=Response)
    #: What a destructive action would affect, shown before asking to confirm.
    preview: Lookup | None = None
    #: For a create that is not safe to retry: how to find keys it may have made.
    orphans: Lookup | None = None
    #: How chat users type it (``/gen keys revoke 6``); None derives a command from the id.
    chat: Chat | None = None
    #: ``filter`` input -> the timestamp comparison it makes (the others compare for equality).
    spans: Mapping[str, Span] = field(default_factory=dict)
    #: A composite action: these steps instead of one request (``method`` and ``path`` are empty).
    steps: tuple[Step, ...] = ()
    #: A composite action's output: field -> an :class:`Output` ref (left out when that step did
    #: not run); ``status`` is added (:data:`SUCCEEDED` or :data:`PARTIAL`).
    result: Mapping[str, Any] = field(default_factory=dict)

    @property
    def composite(self) -> bool:
        """Runs several actions as steps (see :class:`Step`) rather than one request."""
        return bool(self.steps)

    @property
    def resumable(self) -> bool:
        """Running it again after a run that died is safe: it is safe to retry, or it is a composite
        action, whose steps keep records of their own (a create is replayed, never sent twice)."""
        return self.composite or self.hints.safe_to_retry

    def fields_at(self, location: Location) -> list[str]:
        """Names of the input fields declared for ``location``."""
        if location == "body":
            props = self.input_schema.get("properties", {})
            return [name for name in props if name not in self.inputs or self.inputs[name] == "body"]
        return [name for name, loc in self.inputs.items() if loc == location]


# -- confirmation: who says yes to a destructive call (one vocabulary on every surface) ---------

#: ``elicit``: ask the person now (MCP elicitation, the dispatcher's ``confirm=`` callback);
#: ``approval``: the call waits; a person approves or denies it by handle or on the approval page;
#: ``host``: the host (an MCP client) asks the person before every destructive call itself;
#: ``none``: nobody asks, the call runs at once.
ELICIT, APPROVAL, HOST, NONE = "elicit", "approval", "host", "none"
CONFIRMATIONS = (ELICIT, APPROVAL, HOST, NONE)
#: Older names still accepted wherever a confirmation is read: the gateway's ``direct`` is ``none``.
CONFIRMATION_ALIASES = {"direct": NONE}


def confirmation(value: str, allowed: tuple[str, ...] = CONFIRMATIONS) -> str:
    """``value`` in the one vocabulary (an old alias translated); :class:`InvalidSetting` (a ValueError)
    unless it is in ``allowed``."""
    from gen_nodes.core.errors import InvalidSetting

    name = CONFIRMATION_ALIASES.get(value, value)
    if name not in allowed:
        raise InvalidSetting(f"confirmation must be one of {', '.join(allowed)}, not {value!r}",
                             hint=f"Use one of {', '.join(allowed)}.")
    return name
