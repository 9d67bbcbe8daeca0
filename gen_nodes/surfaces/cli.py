"""The ``gen-nodes`` command line: list, describe and run actions; start the sandbox; the demo.

Every command works on the registry, so a plugin's actions show up here too.
``run`` prints the action's output as JSON on stdout; on failure it prints
``{"error": {...}}`` on stderr and exits with the error's code (see ``core/errors.py``
and the README). Heavy modules are imported only by the commands that need them,
so listing actions starts fast.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any, Sequence

from gen_nodes.core.version import __version__
from gen_nodes.core.errors import ConfirmationRequired, GenError, InvalidInput
from gen_nodes.core.spec import CONFIRMATIONS, ELICIT
from gen_nodes.core.terms import CLI_TERMS
from gen_nodes.net.options import add_server_options, seconds

GLOBAL_HELP = {
    "--base-url": "GEN API base URL (default: $GEN_BASE_URL or https://api.gen.pro/v1)",
    "--api-key": "GEN API key (prefer $GEN_API_KEY: a command-line argument is visible to other local users)",
    "--timeout": "seconds to wait for each read (default 30; connect timeout 5)",
    "--deadline": "seconds one call may take in all, retries and waits included "
                  "(default: $GEN_NODES_DEADLINE or 60)",
    "--sandbox": "run against a local sandbox whose state persists in a file (see `gen-nodes sandbox --help`)",
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args, extra = parser.parse_known_args(argv)
    if args.command == "mcp":  # everything after `mcp` belongs to its own parser
        args.mcp_args = [*extra, *args.mcp_args]
    elif args.command == "serve":  # the same for `serve`
        args.serve_args = [*extra, *args.serve_args]
    elif args.command == "chatops":  # and for `chatops`
        args.chatops_args = [*extra, *args.chatops_args]
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        return args.handler(args) or 0
    except GenError as exc:
        print(json.dumps({"error": exc.to_dict(CLI_TERMS)}, indent=2, default=str), file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # e.g. `gen-nodes demo | head`: the reader has all it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gen-nodes", description="GEN's API-key endpoints as ready-made actions.")
    parser.add_argument("--version", action="version", version=f"gen-nodes {__version__}")
    _add_globals(parser, argparse_default=None)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_action_commands(sub)
    _add_sandbox_command(sub)
    _add_tool_commands(sub)
    _add_server_commands(sub)
    p = sub.add_parser("demo", help="walk through the whole API-key lifecycle against an embedded sandbox")
    p.set_defaults(handler=cmd_demo)
    return parser


def _add_action_commands(sub: Any) -> None:
    """``actions``, ``describe`` and ``run``: the registry's actions."""
    p = sub.add_parser("actions", help="list the installed actions with their hints")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(handler=cmd_actions)

    p = sub.add_parser("describe", help="print an action's description, hints and schemas as JSON")
    p.add_argument("action")
    p.set_defaults(handler=cmd_describe)

    p = sub.add_parser("run", help="run an action and print its JSON output", formatter_class=_RunHelp,
                       description="Run ACTION with the --input JSON and print its output as JSON.")
    p.add_argument("action")
    p.add_argument("--input", "-i", default="{}", metavar="JSON",
                   help="the input: JSON text, @FILE to read a file, or - to read stdin (default {})")
    p.add_argument("--yes", "-y", action="store_true", help="confirm a destructive action without asking")
    _add_globals(p, argparse_default=argparse.SUPPRESS)
    p.set_defaults(handler=cmd_run)


def _add_sandbox_command(sub: Any) -> None:
    """``sandbox``: the local GEN, served in the foreground."""
    p = sub.add_parser(
        "sandbox",
        help="run the local GEN sandbox in the foreground",
        description="Serve a local, faithful GEN API on loopback. The first output line is JSON with "
        "base_url and a bootstrap api_key. --reset instead deletes the state that --sandbox uses.",
    )
    add_server_options(p, port=8765, log_level=None)
    p.add_argument("--db", default=":memory:", help="SQLite file for the state (default: in memory)")
    p.add_argument("--variant", choices=["reference", "openapi"], default="reference",
                   help="answer as GEN's reference page (int ids, 204) or its OpenAPI file (string ids, 200)")
    p.add_argument("--reset", action="store_true",
                   help="delete the persistent state behind --sandbox ($GEN_NODES_SANDBOX_DIR, by default "
                   "$XDG_STATE_HOME/gen-nodes/sandbox or ~/.local/state/gen-nodes/sandbox) and exit")
    p.set_defaults(handler=cmd_sandbox)


def _add_tool_commands(sub: Any) -> None:
    """``tools`` and ``export``: the actions in other formats."""
    p = sub.add_parser("tools", help="print the actions as LLM tool definitions (JSON)")
    p.add_argument("--format", choices=["openai", "openai-responses", "anthropic", "mcp"], default="openai")
    p.add_argument("--prefix", default="gen_", help="tool name prefix (default gen_)")
    p.add_argument("--confirmation", choices=CONFIRMATIONS, default=ELICIT,
                   help="who approves destructive tools (sets their descriptions; no tool has an input that approves it)")
    p.add_argument("--no-strict", dest="strict", action="store_false",
                   help="plain schemas instead of OpenAI strict mode (OpenAI formats; Anthropic is plain unless --strict)")
    p.add_argument("--strict", dest="anthropic_strict", action="store_true", help="strict schemas for Anthropic")
    p.set_defaults(handler=cmd_tools)

    p = sub.add_parser("export", help="write a package for another runner, generated from the actions (n8n)",
                       description="Write an installable package generated from the installed actions. "
                       "n8n: the community node package n8n-nodes-gen (plain JavaScript, no build step).")
    p.add_argument("format", choices=["n8n"])
    p.add_argument("--out", required=True, metavar="DIR", help="folder to write the package into")
    p.set_defaults(handler=cmd_export)


def _add_server_commands(sub: Any) -> None:
    """``mcp``, ``serve`` and ``chatops``: each parses the rest of the line with its own parser."""
    p = sub.add_parser("mcp", help="serve the actions over MCP (needs gen-nodes[mcp]); see `gen-nodes mcp --help`",
                       add_help=False)
    p.add_argument("mcp_args", nargs=argparse.REMAINDER)
    p.set_defaults(handler=cmd_mcp)

    p = sub.add_parser("serve", help="serve the actions over HTTP with an OpenAPI 3.1 document (needs "
                       "gen-nodes[gateway]); see `gen-nodes serve --help`", add_help=False)
    p.add_argument("serve_args", nargs=argparse.REMAINDER)
    p.set_defaults(handler=cmd_serve)

    p = sub.add_parser("chatops", help="serve /gen slash commands for Slack or Discord, bind users' GEN keys; "
                       "see `gen-nodes chatops --help`", add_help=False)
    p.add_argument("chatops_args", nargs=argparse.REMAINDER)
    p.set_defaults(handler=cmd_chatops)


class _RunHelp(argparse.HelpFormatter):
    """`run --help` ends with the installed actions (read only when the help is shown)."""

    def format_help(self) -> str:
        specs = list(_registry())
        width = max((len(s.id) for s in specs), default=0)
        lines = [f"  {s.id:<{width}}  {s.title}{' (destructive)' if s.hints.destructive else ''}" for s in specs]
        return (super().format_help() + "\nactions (`gen-nodes describe ACTION` prints one's schemas):\n"
                + "\n".join(lines) + "\n")


def _add_globals(parser: argparse.ArgumentParser, argparse_default: Any) -> None:
    # Given again on `run` (with SUPPRESS) so they may follow the action too.
    parser.add_argument("--base-url", default=argparse_default, help=GLOBAL_HELP["--base-url"])
    parser.add_argument("--api-key", default=argparse_default, help=GLOBAL_HELP["--api-key"])
    parser.add_argument("--timeout", type=seconds, default=argparse_default, help=GLOBAL_HELP["--timeout"])
    parser.add_argument("--deadline", type=seconds, default=argparse_default, help=GLOBAL_HELP["--deadline"])
    parser.add_argument("--sandbox", action="store_true", default=argparse_default or False,
                        help=GLOBAL_HELP["--sandbox"])


def _registry():
    from gen_nodes.core.registry import default_registry

    return default_registry()


def cmd_actions(args: argparse.Namespace) -> int:
    specs = list(_registry())
    if args.json:
        rows = [{"id": s.id, "title": s.title, "description": s.description, "hints": _hints(s)} for s in specs]
        print(json.dumps(rows, indent=2))
        return 0
    width = max(len(s.id) for s in specs)
    for s in specs:
        flags = [name for name, on in _hints(s).items() if on and name != "open_world"] or ["-"]
        print(f"{s.id:<{width}}  {s.title:<22}  {', '.join(flags)}")
    return 0


def cmd_describe(args: argparse.Namespace) -> int:
    from gen_nodes.core.validation import bundled

    spec = _registry().get(args.action)
    print(json.dumps({
        "id": spec.id,
        "title": spec.title,
        "description": spec.description,
        # A composite action sends no request of its own: its steps say what it runs.
        **({"steps": [{"name": step.name, "action": step.action} for step in spec.steps]} if spec.composite
           else {"method": spec.method, "path": spec.path}),
        "hints": _hints(spec),
        "input_schema": bundled(spec.input_schema),
        "output_schema": bundled(spec.output_schema),
    }, indent=2))
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    registry = _registry()
    spec = registry.get(args.action)
    arguments = _read_input(args.input)
    registry.validate(spec.id, arguments)
    with _client(args) as client:
        if spec.hints.destructive and not args.yes:
            _confirm(spec, arguments, client, registry, stdin_used=args.input == "-", sandbox=args.sandbox)
        output = registry.run(spec.id, arguments, client=client)
    print_json(output)
    return 0


def print_json(data: Any) -> None:
    """``json.dumps(data, indent=2)`` on stdout, by orjson when the text is ASCII (the same layout,
    ~30 times faster on a 100,000-key list); ``json`` otherwise, for its ``\\u`` escapes."""
    import orjson

    try:
        out = orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE)
    except TypeError:  # what orjson cannot write (integers past 64 bits, non-string keys)
        out = b""
    buffer = getattr(sys.stdout, "buffer", None)
    if not (out and out.isascii()):
        print(json.dumps(data, indent=2))
    elif buffer is None:
        sys.stdout.write(out.decode())
    else:
        sys.stdout.flush()
        buffer.write(out)
        buffer.flush()


def cmd_sandbox(args: argparse.Namespace) -> int:
    if args.reset:
        from gen_nodes.sandbox.persistent import reset

        print(f"removed {reset()}")
        return 0
    from gen_nodes.sandbox import Sandbox

    sandbox = Sandbox(db_path=args.db, host=args.host, port=args.port, variant=args.variant,
                      allow_remote=args.allow_remote, allowed_hosts=args.allowed_host)
    sandbox.bind()
    print(json.dumps({"base_url": sandbox.base_url, "api_key": sandbox.api_key}), flush=True)
    from gen_nodes.net.guard import is_loopback

    exposed = "" if is_loopback(args.host) else (
        f" It is reachable from other machines: anyone who reaches it can read and change this sandbox's "
        f"keys with a key of it (the one above included); it answers only to Host "
        f"{', '.join(sandbox.allowed_hosts)}, and POST /_sandbox/users only to loopback clients.")
    print(f"GEN sandbox on {sandbox.base_url} ({args.variant} variant).{exposed} Ctrl-C stops it.",
          file=sys.stderr, flush=True)
    sandbox.serve_forever()
    return 0


def cmd_tools(args: argparse.Namespace) -> int:
    from gen_nodes.runtime.tools import build_tools

    try:
        tools = build_tools(_registry(), prefix=args.prefix, confirmation=args.confirmation)
    except ValueError as exc:
        raise InvalidInput(str(exc), errors=[{"path": "--prefix", "message": str(exc)}],
                           hint="Use a prefix of letters, digits, _ or - that keeps names within 64 characters.") from None
    if args.format == "mcp":
        from gen_nodes.runtime.tools import mcp_definition

        out = [mcp_definition(tool) for tool in tools]
    elif args.format == "anthropic":
        from gen_nodes.surfaces.llm.anthropic import anthropic_tools

        out = anthropic_tools(tools, strict=args.anthropic_strict)
    else:
        from gen_nodes.surfaces.llm import openai

        export = openai.responses_tools if args.format == "openai-responses" else openai.chat_completions_tools
        out = export(tools, strict=args.strict)
    print(json.dumps(out, indent=2))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from gen_nodes.surfaces.n8n.node import PACKAGE_NAME, write_package

    out = write_package(_registry(), args.out)
    print(json.dumps({"format": args.format, "package": PACKAGE_NAME, "path": str(out.resolve())}))
    return 0


def cmd_mcp(args: argparse.Namespace) -> int:
    try:
        from gen_nodes.surfaces.mcp.server import main as mcp_main
    except ImportError as exc:
        from gen_nodes.surfaces.mcp.options import INSTALL, parser

        if "-h" in args.mcp_args or "--help" in args.mcp_args:
            parser().print_help()
            print(f"\nThe MCP server needs the mcp extra ({exc.name} is missing here): {INSTALL}")
            return 0
        raise GenError(
            f"The MCP server needs the mcp extra ({exc.name} is missing).",
            hint=f"Install it with: {INSTALL}",
        ) from None
    if not args.sandbox:
        return mcp_main(args.mcp_args, base_url=args.base_url, api_key=args.api_key, timeout=args.timeout)
    from gen_nodes.surfaces.mcp.options import parser as mcp_parser
    from gen_nodes.sandbox.persistent import running

    over_http = mcp_parser().parse_known_args(args.mcp_args)[0].transport == "http"
    with running() as sandbox:
        # Over HTTP each request brings its own key, so the person wiring a client must find it.
        use = "send it with each request as `Authorization: Bearer <key>`" if over_http else "the server signs in with it"
        _announce_sandbox("gen-nodes MCP server on", sandbox.base_url, use)
        return mcp_main(args.mcp_args, base_url=sandbox.base_url, api_key=sandbox.api_key, timeout=args.timeout)


def _announce_sandbox(what: str, base_url: str, use: str) -> None:
    """The stderr line of a server started with --sandbox: where it runs and where its key is (never the key)."""
    from gen_nodes.sandbox.persistent import KEY_FILE, state_dir

    print(f"{what} the persistent sandbox at {base_url}; its key is in {state_dir() / KEY_FILE} ({use})",
          file=sys.stderr, flush=True)


def cmd_chatops(args: argparse.Namespace) -> int:
    from gen_nodes.surfaces.chatops.cli import main as chatops_main

    if not args.sandbox:
        return chatops_main(args.chatops_args, base_url=args.base_url, timeout=args.timeout)
    from gen_nodes.sandbox.persistent import running

    with running() as sandbox:
        print(f"gen-nodes chatops on the persistent sandbox at {sandbox.base_url}", file=sys.stderr, flush=True)
        return chatops_main(args.chatops_args, base_url=sandbox.base_url, timeout=args.timeout,
                            sandbox_key=sandbox.api_key)


def cmd_serve(args: argparse.Namespace) -> int:
    try:
        from gen_nodes.surfaces.gateway.app import main as serve_main
    except ImportError as exc:
        if "-h" in args.serve_args or "--help" in args.serve_args:
            print("usage: gen-nodes serve [--host HOST] [--port PORT] [--store URL] [--confirmation none|approval] "
                  "...\n(install the gateway extra for the full help: pip install 'gen-nodes[gateway]')")
            return 0
        raise GenError(
            f"The HTTP gateway needs the gateway extra ({exc.name} is missing).",
            hint="Install it with: pip install 'gen-nodes[gateway]'",
        ) from None
    if args.api_key:
        print("gen-nodes serve: --api-key is ignored; each HTTP request brings its own GEN key.", file=sys.stderr)
    if not args.sandbox:
        return serve_main(args.serve_args, base_url=args.base_url, timeout=args.timeout)
    from gen_nodes.sandbox.persistent import running

    with running() as sandbox:
        _announce_sandbox("gen-nodes gateway in front of", sandbox.base_url,
                          "send it with each request as `X-API-Key: <key>`")
        return serve_main(args.serve_args, base_url=sandbox.base_url, timeout=args.timeout)


def cmd_demo(args: argparse.Namespace) -> int:
    from gen_nodes.surfaces.demo import run_demo

    return run_demo()


def _hints(spec) -> dict[str, bool]:
    h = spec.hints
    return {"read_only": h.read_only, "destructive": h.destructive, "idempotent": h.idempotent,
            "open_world": h.open_world}


def _read_input(raw: str) -> Any:
    source = "--input"
    try:
        if raw == "-":
            source, raw = "stdin", sys.stdin.read()
        elif raw.startswith("@"):
            source = raw[1:]
            with open(raw[1:], encoding="utf-8") as fh:
                raw = fh.read()
        return json.loads(raw)
    except OSError as exc:
        raise InvalidInput(f"Cannot read the input file: {exc.strerror}: {source}",
                           errors=[{"path": "$", "message": f"cannot read {source}"}]) from None
    except json.JSONDecodeError as exc:
        raise InvalidInput(
            f"The input from {source} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
            errors=[{"path": "$", "message": f"not JSON: {exc.msg}"}],
            hint='Give the input as a JSON object, e.g. --input \'{"name": "ci"}\'; no request was sent.',
        ) from None
    except RecursionError:
        from gen_nodes.core.engine import too_deep

        raise too_deep() from None


def _client(args: argparse.Namespace):
    from gen_nodes.client.http import GenClient, timeouts

    limits = {"timeout": timeouts(args.timeout), "deadline": args.deadline}
    if args.sandbox:
        from gen_nodes.sandbox.persistent import open_client

        return open_client(**limits)
    return GenClient(api_key=args.api_key, base_url=args.base_url, **limits)


#: The answers that confirm at the prompt, as the prompt names them.
YES_ANSWERS = ("yes", "y")


def _confirm(spec, arguments: Any, client, registry, *, stdin_used: bool, sandbox: bool = False) -> None:
    """Ask a person on a terminal; without one, refuse: nothing is sent."""
    interactive = not stdin_used and sys.stdin.isatty() and sys.stderr.isatty()
    if not interactive:
        list_command = "gen-nodes run list_api_keys" + (" --sandbox" if sandbox else "")
        raise ConfirmationRequired(
            f"{spec.id} is destructive and needs confirmation; nothing was sent.",
            hint=f"Re-run with --yes to confirm (check the ids with `{list_command}` first).",
            action=spec.id,
        )
    from gen_nodes.safety.display import confirmation_lines

    preview = registry.preview(spec.id, arguments, client=client)
    for line in confirmation_lines(spec.title, spec.description, spec.id, arguments, preview):
        print(line, file=sys.stderr)
    print(f"Type {' or '.join(repr(word) for word in YES_ANSWERS)} to go ahead: ", end="", file=sys.stderr, flush=True)
    answer = sys.stdin.readline()
    if answer.strip().lower() not in YES_ANSWERS:
        raise ConfirmationRequired(f"{spec.id} was not confirmed; nothing was changed.", action=spec.id)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
