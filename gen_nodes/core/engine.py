"""The engine: runs any :class:`~gen_nodes.core.spec.ActionSpec` with a :class:`~gen_nodes.client.http.GenClient`.

One generic path for every action: validate the input against its schema (refused
locally, with JSON paths, before anything is sent), place each field where the
declaration says (path, query, body, envelope, client-side filter), send, shape
the answer into the declared output, check it against the output schema (a
warn-only drift detector, on every answer), and wrap secrets so they print masked. A call that is
not safe to repeat never ends in a plain error once GEN may have acted: it ends
in ``OutcomeUnknown`` naming what it may have created. Lookups (``spec.preview``, ``spec.orphans``)
run another declared action, found through ``resolve``.
"""

from __future__ import annotations

import logging
from email.utils import parsedate_to_datetime
import weakref
import re
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Callable, Mapping
from urllib.parse import quote, urlsplit

from gen_nodes.core import settings
from gen_nodes.core.errors import GenError, InvalidInput, NotFound, OutcomeUnknown
from gen_nodes.core.redact import hide_secrets, masked_copy, may_name_secrets
from gen_nodes.core.validation import problems, shown, validator
from gen_nodes.core.composite import StepOnce, plan, run_steps
from gen_nodes.core.spec import ActionSpec, Input, Lookup, Span, span_seconds
from gen_nodes.core.times import moment

if TYPE_CHECKING:  # annotations only: core does not import the client layer
    from gen_nodes.client.http import ApiResponse, GenClient

log = logging.getLogger("gen_nodes.core.engine")

Resolve = Callable[[str], ActionSpec]

# Actions whose output was checked once already (see _check_output): id -> the spec itself
# (weakly), since a freed spec's id can be reused by a new, unchecked one.
_CHECKED: "weakref.WeakValueDictionary[int, ActionSpec]" = weakref.WeakValueDictionary()

#: Clock difference tolerated between us and GEN when looking for keys made "since" a request.
CLOCK_SKEW = timedelta(minutes=2)


#: Levels of nesting an input may have; JSON deeper than this is refused before it is looked at.
MAX_DEPTH = 32
#: The largest id a path may carry: GEN's ids are 64-bit integers.
MAX_ID = 2**63 - 1
_SEGMENT = re.compile(r"[A-Za-z0-9_-]+")
#: A base URL path that ends in an API version, as GEN's does (/v1).
_VERSIONED = re.compile(r"/v[0-9]+/?$")


def validate_input(spec: ActionSpec, arguments: Any) -> dict[str, Any]:
    """Return ``arguments`` if they satisfy the input schema; else raise :class:`InvalidInput`."""
    found = _unreadable(arguments) or problems(spec.input_schema, arguments)
    if not found and isinstance(arguments, dict):
        found = [p for f in spec.fields_at("path") if f in arguments for p in _path_problems(f, arguments[f])]
    if found:
        summary = "; ".join(f"{p['path']}: {p['message']}" for p in found[:5])
        raise InvalidInput(f"Invalid input for {spec.id}: {summary}", errors=found, action=spec.id)
    return dict(arguments)


def too_deep() -> InvalidInput:
    """The error for JSON text nested too deeply to even parse."""
    return InvalidInput(f"The input is nested more than {MAX_DEPTH} levels deep.",
                        errors=[{"path": "$", "message": f"nested more than {MAX_DEPTH} levels deep"}])


def _unreadable(arguments: Any) -> list[dict[str, str]]:
    """What no schema should be asked to look at: nesting past :data:`MAX_DEPTH`, and text that is
    not Unicode (a lone surrogate, which cannot be sent as UTF-8). Walked without recursion."""
    stack: list[tuple[Any, str, int]] = [(arguments, "$", 0)]
    while stack:
        value, path, depth = stack.pop()
        if depth > MAX_DEPTH:
            return [{"path": path[:120] + ("…" if len(path) > 120 else ""),
                     "message": f"nested more than {MAX_DEPTH} levels deep"}]
        if isinstance(value, str) and not _is_unicode(value):
            return [{"path": path, "message": "holds a lone surrogate (\\ud800-\\udfff), which is not valid Unicode"}]
        if isinstance(value, dict):
            for key, item in value.items():
                step = f"{path}.{key}" if isinstance(key, str) and _SEGMENT.fullmatch(key) else f"{path}[{shown(key)}]"
                if isinstance(key, str) and not _is_unicode(key):
                    return [{"path": path, "message": "a field name holds a lone surrogate, which is not valid Unicode"}]
                stack.append((item, step, depth + 1))
        elif isinstance(value, (list, tuple)):
            stack.extend((item, f"{path}[{i}]", depth + 1) for i, item in enumerate(value))
    return []


def _is_unicode(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _path_problems(field: str, value: Any) -> list[dict[str, str]]:
    """Nothing but an id (or a plain word) goes into a URL path, whatever a schema let through."""
    if isinstance(value, int) and not isinstance(value, bool):
        ok = 0 <= value <= MAX_ID
    elif isinstance(value, str):
        ok = bool(_SEGMENT.fullmatch(value)) and (not value.isdigit() or int(value) <= MAX_ID)
    else:
        ok = False
    if ok:
        return []
    return [{"path": f"$.{field}", "message": f"{shown(value)} cannot go into the URL: expected an id "
             f"(ASCII digits, at most {MAX_ID}) or a word of letters, digits, _ and -"}]


def execute(spec: ActionSpec, arguments: Any, client: GenClient, *, resolve: Resolve | None = None,
            once: StepOnce | None = None) -> dict[str, Any]:
    """Run ``spec`` and return its output. ``resolve`` finds the actions that lookups and steps name;
    ``once`` runs each step of a composite action at most once (see ``composite.py``)."""
    args = validate_input(spec, arguments)
    if spec.composite:
        if resolve is None:
            raise TypeError(f"{spec.id} is a composite action: execute() needs resolve= to find its steps")
        output = run_steps(spec, args, client, resolve, execute, once)
        _check_output(spec, output)
        return hide_secrets(output)
    return _execute_one(spec, args, client, resolve)[0]


def execute_timed(spec: ActionSpec, arguments: Any, client: GenClient, *,
                  resolve: Resolve | None = None) -> tuple[dict[str, Any], datetime]:
    """:func:`execute` of a one-request action, plus GEN's clock when it answered (its ``Date``
    header): for a caller that selects from one list answer in several ways with :func:`select`
    (chat-ops' expiry digest). A composite action has no one answer: TypeError."""
    if spec.composite:
        raise TypeError(f"{spec.id} is a composite action: it has no one answer to time; use execute()")
    return _execute_one(spec, validate_input(spec, arguments), client, resolve)


def _execute_one(spec: ActionSpec, args: dict[str, Any], client: GenClient,
                 resolve: Resolve | None) -> tuple[dict[str, Any], datetime]:
    """One request for validated ``args``: the output and GEN's clock at the answer."""
    started = datetime.now(timezone.utc)
    try:
        response = client.request(
            spec.method,
            _path(spec, args),
            params={f: args[f] for f in spec.fields_at("query") if f in args} or None,
            json=_body(spec, args),
            safe_to_retry=spec.hints.safe_to_retry,
        )
    except OutcomeUnknown as exc:
        if spec.orphans is not None and resolve is not None:
            _attach_orphans(exc, spec.orphans, args, client, resolve, started)
        raise
    except NotFound as exc:
        _blame_base_url(exc, spec, getattr(client, "base_url", ""))
        raise
    try:
        output = _shape(spec, args, response)
        if not spec.hints.safe_to_retry:
            _require_fields(spec, output)
    except GenError as exc:
        if spec.hints.safe_to_retry:
            raise
        # GEN said yes but we cannot read (all of) what it made: it most likely happened.
        unknown = OutcomeUnknown(f"{exc.message} It most likely took effect.", status=response.status)
        if spec.orphans is not None and resolve is not None:
            _attach_orphans(unknown, spec.orphans, args, client, resolve, started, took_effect=True)
        raise unknown from None
    _check_output(spec, output)
    return _hide_secrets(spec, response, output), _server_now(response)


def select(spec: ActionSpec, filters: Mapping[str, Any], items: list[Any], now: datetime) -> list[Any]:
    """The ``items`` a call of ``spec`` with these ``filter`` inputs would have kept, GEN's clock
    being ``now``: the same selection as :func:`execute`'s, the filters checked against the input schema."""
    return _filtered(spec, validate_input(spec, dict(filters)), items, now)


def _hide_secrets(spec: ActionSpec, response: ApiResponse, output: dict[str, Any]) -> dict[str, Any]:
    """Wrap the secrets of ``output``; skip the walk when all of it came from a body that names none."""
    if spec.response.template is None and not may_name_secrets(response.text):
        return output
    return hide_secrets(output)


def _blame_base_url(exc: NotFound, spec: ActionSpec, base_url: str) -> None:
    """A 404 for a path that names no object (or under a base URL without a version) means the
    address is wrong, not the object: say which setting to fix."""
    if spec.fields_at("path") and _VERSIONED.search(urlsplit(base_url).path):
        return
    exc.hint = (f"GEN does not know the address {spec.method} {base_url}{spec.path}: check ${{BASE_URL}}, "
                "which must end in /v1, e.g. https://api.gen.pro/v1.")


def _require_fields(spec: ActionSpec, output: dict[str, Any]) -> None:
    """For a call that cannot be repeated, an answer without a required field (a new key's
    secret, say) is not a success: what is missing cannot be asked for again."""
    missing = [f for f in validator(spec.output_schema).schema.get("required", ()) if f not in output]
    if missing:
        raise GenError(f"GEN's answer to {spec.id} lacks {', '.join(missing)}.", status=None)


def lookup(look: Lookup, args: Mapping[str, Any], client: GenClient, resolve: Resolve,
           since: datetime | None = None) -> list[dict[str, Any]]:
    """The items of ``look.action``'s output that match ``look`` for these input ``args``."""
    listed = execute(resolve(look.action), {}, client, resolve=resolve)
    return [item for item in listed.get(look.items, []) if _matches(item, look, args, since)]


def preview(spec: ActionSpec, arguments: Any, client: GenClient, resolve: Resolve) -> list[dict[str, Any]] | None:
    """What ``spec`` would affect (validated input, nothing changed); None if it declares no preview."""
    args = validate_input(spec, arguments)
    if spec.composite:
        return plan(spec, args, client, resolve, execute, lookup)
    if spec.preview is None:
        return None
    return lookup(spec.preview, args, client, resolve)


def _path(spec: ActionSpec, args: Mapping[str, Any]) -> str:
    found = [p for f in spec.fields_at("path") for p in _path_problems(f, args.get(f))]
    if found:
        raise InvalidInput(f"Invalid input for {spec.id}: {found[0]['path']}: {found[0]['message']}",
                           errors=found, action=spec.id)
    values = {f: quote(str(args[f]), safe="") for f in spec.fields_at("path")}
    return spec.path.format(**values)


def _body(spec: ActionSpec, args: Mapping[str, Any]) -> dict[str, Any] | None:
    body = {f: args[f] for f in spec.fields_at("body") if f in args}
    if not body and spec.method in ("GET", "DELETE"):
        return None
    return {spec.body_envelope: body} if spec.body_envelope else body


def _shape(spec: ActionSpec, args: Mapping[str, Any], response: ApiResponse) -> dict[str, Any]:
    shape = spec.response
    data = response.data
    if shape.template is not None:
        out = {k: (args.get(v.name) if isinstance(v, Input) else v) for k, v in shape.template.items()}
        if isinstance(data, dict):
            out.update({k: data[k] for k in shape.keep if data.get(k) is not None})
        return out
    if shape.wrap:
        if isinstance(data, dict) and isinstance(data.get(shape.wrap), list):
            data = data[shape.wrap]
        if isinstance(data, list):
            return {shape.wrap: _filtered(spec, args, data, _server_now(response))}
    if isinstance(data, dict):
        return data
    body = "a body that is not JSON" if data is None and response.text.strip() else (
        "no body" if data is None else "an unexpected body")
    raise GenError(
        f"GEN answered {spec.id} with status {response.status} but {body}; expected a JSON object.",
        status=response.status,
        hint="This looks like a change in GEN's API or a proxy in the way; check ${BASE_URL} and report it.",
    )


def _filtered(spec: ActionSpec, args: Mapping[str, Any], items: list[Any], now: datetime) -> list[Any]:
    """The items that pass every ``filter`` input given: equal values, or times within a span."""
    given = [f for f in spec.fields_at("filter") if f in args]
    if not given:
        return items
    return [item for item in items if isinstance(item, dict) and all(
        _within(item, spec.spans[f], span_seconds(args[f]), now) if f in spec.spans
        else str(item.get(f)) == str(args[f]) for f in given)]


def _within(item: Mapping[str, Any], span: Span, seconds: int, now: datetime) -> bool:
    when = moment(item.get(span.field))
    if when is None and span.otherwise is not None:
        when = moment(item.get(span.otherwise))
    if when is None:
        return False
    if span.direction == "ahead":
        return now <= when <= now + timedelta(seconds=seconds)
    return when <= now - timedelta(seconds=seconds)


def _server_now(response: ApiResponse) -> datetime:
    """GEN's clock from its ``Date`` header: it stamped the items, so no local clock skew; else ours."""
    try:
        when = parsedate_to_datetime(response.headers.get("Date", ""))
    except (TypeError, ValueError):
        return datetime.now(timezone.utc)
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


def _check_output(spec: ActionSpec, output: dict[str, Any]) -> None:
    """Warn, never fail, when GEN's answer strays from the schema: the data must not be lost.

    A drift detector, run on every answer by default: the compiled check costs a few
    milliseconds for 10,000 keys (see the README's benchmarks). ``GEN_NODES_CHECK_OUTPUT=first``
    checks only the first answer of each action in a process, ``never`` none.
    """
    policy = _output_check_policy(settings.current().check_output)
    if policy == "never" or (policy == "first" and _CHECKED.get(id(spec)) is spec):
        return
    if not (spec.response.wrap and not output.get(spec.response.wrap)):  # an empty list proves nothing
        _CHECKED[id(spec)] = spec
    found = problems(spec.output_schema, output)
    if found:
        log.warning(
            "GEN's answer to %s does not match its output schema at %s; returning it as it is",
            spec.id, ", ".join(p["path"] for p in found[:5]),
        )


@lru_cache(maxsize=8)
def _output_check_policy(value: str) -> str:
    policy = value.strip().lower() or "always"
    if policy not in ("first", "always", "never"):
        log.warning("GEN_NODES_CHECK_OUTPUT=%r is not first, always or never; using always", value)
        return "always"
    return policy


def _matches(item: Any, look: Lookup, args: Mapping[str, Any], since: datetime | None) -> bool:
    if not isinstance(item, dict):
        return False
    for field, expected in look.match.items():
        value = args.get(expected.name) if isinstance(expected, Input) else expected
        actual = item.get(field)
        if (value is None) != (actual is None) or (value is not None and str(actual) != str(value)):
            return False
    if any(item.get(field) is not None for field in look.unset):
        return False
    if look.created_since and since is not None:
        when = moment(item.get(look.created_since))
        if when is None or when < since - CLOCK_SKEW:
            return False
    return True


def _attach_orphans(exc: OutcomeUnknown, look: Lookup, args: Mapping[str, Any], client: GenClient,
                    resolve: Resolve, started: datetime, took_effect: bool = False) -> None:
    """Add to ``exc`` the objects the uncertain request may have created, found by listing."""
    try:
        found = lookup(look, args, client, resolve, since=started)
    except GenError as lookup_error:
        exc.details["candidates"] = None
        exc.hint = (
            f"{exc.hint_template} Listing to find a possible duplicate failed too ({lookup_error.type}); "
            "call ${list_api_keys} yourself once GEN answers again."
        )
        return
    exc.details["candidates"] = masked_copy(found)
    if found:
        ids = ", ".join(str(item.get("id")) for item in found)
        exc.hint = (
            f"The request may have succeeded: {len(found)} matching key(s) created since it began and never "
            f"used: id {ids}. Its secret is lost, so revoke it with ${{revoke_api_key}} (id {ids}) and create a "
            "new one; do not simply retry."
        )
    elif took_effect:
        exc.hint = (
            "GEN answered with success, so a key was most likely created, but it does not show in "
            "${list_api_keys} yet; list again and revoke it before creating another."
        )
    else:
        exc.hint = (
            "No matching key shows up in ${list_api_keys} yet, so the request most likely did not take effect; "
            "check ${list_api_keys} once more before creating again."
        )
