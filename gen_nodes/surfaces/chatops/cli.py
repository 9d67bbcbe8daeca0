"""``gen-nodes chatops``: serve Slack or Discord, print Discord's commands, bind and unbind keys.

    gen-nodes chatops slack [--host 127.0.0.1] [--port 3000] [--store URL] [--digest-at HH:MM]
    gen-nodes chatops discord [--host 127.0.0.1] [--port 3001] [--store URL] [--digest-at HH:MM]
    gen-nodes chatops discord commands
    gen-nodes chatops bind --platform slack --user U123 < key.txt
    gen-nodes chatops unbind --platform slack --user U123
    gen-nodes --sandbox chatops ...   # against the persistent sandbox, bindings in its own store

Servers print, as the first stdout line, ``{"url": ...}`` with the real address once
bound. Configuration comes from the environment: ``GEN_NODES_CHATOPS_SECRET`` (seals
the bound keys), ``SLACK_SIGNING_SECRET``, ``SLACK_BOT_TOKEN``, ``SLACK_API_URL``,
``DISCORD_PUBLIC_KEY``, ``DISCORD_API_URL``, plus ``GEN_BASE_URL``. Bindings and
approvals live in ``--store`` (default ``sqlite://``, a file in the state folder;
``redis://...`` for several processes or machines). Under ``gen-nodes --sandbox`` every
command acts against the persistent sandbox: the default store is then a file beside
the sandbox's (sandbox keys and real ones never share a store), and ``bind`` with
nothing on stdin binds the sandbox's own key. ``--digest-at`` (or
``GEN_NODES_CHATOPS_DIGEST_AT``) starts the daily expiry digest in the server process
(``schedule.py``; a Discord server then also needs ``DISCORD_BOT_TOKEN`` to send DMs).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from typing import Any, Sequence

from gen_nodes.core import settings
from gen_nodes.net.logs import configure_logging
from gen_nodes.net.options import add_server_options, seconds
from gen_nodes.core.errors import AuthenticationError, ConnectionFailed, GenError, InvalidInput

SECRET_ENV = "GEN_NODES_CHATOPS_SECRET"
DEFAULT_STORE = "sqlite://"
#: Under ``gen-nodes --sandbox``: the chat-ops store, in the persistent sandbox's folder.
SANDBOX_STORE_FILE = "chatops.sqlite3"


def main(argv: Sequence[str] | None = None, **defaults: Any) -> int:
    """``defaults`` are ``gen-nodes``' global options (``base_url``, ``timeout``, and ``sandbox_key``
    under ``--sandbox``); None is ignored."""
    parser = _parser()
    parser.set_defaults(**{k: v for k, v in defaults.items() if v is not None})
    args = parser.parse_args(argv)
    return args.handler(args) or 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gen-nodes chatops",
                                     description="GEN slash commands for Slack and Discord.")
    sub = parser.add_subparsers(dest="chatops_command", required=True, metavar="COMMAND")

    p = sub.add_parser("slack", help="serve /gen for Slack (Bolt, HTTP mode at /slack/events)")
    _server_options(p, port=3000)
    p.add_argument("--command", default="/gen", help="the slash command (default /gen)")
    p.set_defaults(handler=cmd_slack)

    p = sub.add_parser("discord", help="serve /gen for Discord (HTTP interactions at /interactions), "
                       "or print its application commands")
    p.add_argument("what", nargs="?", choices=["serve", "commands"], default="serve",
                   help="commands: print the application-command JSON to register, and exit")
    _server_options(p, port=3001)
    p.set_defaults(handler=cmd_discord)

    for name, text in (("bind", "bind a chat user to a GEN key read from stdin (checked with GEN first)"),
                       ("unbind", "forget a chat user's GEN key")):
        p = sub.add_parser(name, help=text)
        p.add_argument("--platform", choices=["slack", "discord"], required=True)
        p.add_argument("--user", required=True, help="the platform's user id (Slack U..., Discord snowflake)")
        _common(p)
        p.set_defaults(handler=cmd_bind if name == "bind" else cmd_unbind)
    return parser


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--store", default=None,
                   help="where bindings and approvals live (default: $GEN_NODES_CHATOPS_STORE, else sqlite://, a "
                   "file in the state folder): sqlite:///path.db, or redis://host:port/db for several processes")
    p.add_argument("--base-url", default=argparse.SUPPRESS,
                   help="GEN API base URL (default: $GEN_BASE_URL or https://api.gen.pro/v1)")
    p.add_argument("--timeout", type=seconds, default=argparse.SUPPRESS, help="GEN read timeout in seconds")


def _server_options(p: argparse.ArgumentParser, port: int) -> None:
    add_server_options(p, port=port, log_level="info", log_help=": the audit lines")
    p.add_argument("--allow", action="append", default=[], metavar="ID",
                   help="a Slack workspace (T...) or Discord guild id allowed to use the bot; repeat for "
                   "more (default: any workspace the app is installed in)")
    p.add_argument("--digest-at", default=None, metavar="HH:MM",
                   help="send each person who ran `/gen alerts on` a private daily digest of their expiring "
                   "keys at this UTC time (HH:MM, or HH:MM:SS; default: $GEN_NODES_CHATOPS_DIGEST_AT, else no "
                   "digest). Every process may set it: the store makes each digest go out once")
    _common(p)


# -- commands -------------------------------------------------------------------------


def cmd_slack(args: argparse.Namespace) -> int:
    _needs("slack", "slack_bolt")
    from slack_sdk import WebClient

    from gen_nodes.surfaces.chatops.slack import PATH, build_app, build_asgi, platform_log

    signing_secret, token = _env("SLACK_SIGNING_SECRET"), _env("SLACK_BOT_TOKEN")
    at = _digest_time(args)
    _check_host(args)
    configure_logging(args.log_level)
    api_url = settings.current().slack_api_url
    base_url = api_url.rstrip("/") + "/" if api_url else WebClient.BASE_URL
    _check_bot_token(token, base_url)
    chatops = _chatops(args)
    digest = _digest(chatops, "slack", at)
    client = WebClient(token=token, base_url=base_url, logger=platform_log)
    app = build_app(chatops, signing_secret=signing_secret, client=client, command=args.command,
                    token_verification_enabled=False)  # checked just above, with errors people can read
    return _serve(build_asgi(app, chatops, signing_secret=signing_secret), args, PATH, "gen-nodes chatops slack",
                  digest)


def _check_bot_token(token: str, base_url: str) -> None:
    """Slack's ``auth.test`` for the bot token, before anything is served: Slack unreachable or the
    token refused become one clear error instead of slack_sdk's error line and a traceback."""
    from slack_sdk import WebClient
    from slack_sdk.errors import SlackApiError, SlackClientError

    quiet = logging.getLogger("gen_nodes.chatops.slack.start")  # slack_sdk logs the failure before raising it
    quiet.propagate = False
    quiet.addHandler(logging.NullHandler())
    try:
        WebClient(token=token, base_url=base_url, logger=quiet, timeout=15).auth_test()
    except SlackApiError as exc:
        raise AuthenticationError(f"Slack refused SLACK_BOT_TOKEN: {exc.response.get('error') or 'auth.test failed'}.",
                                  hint=_ENV_HINTS["SLACK_BOT_TOKEN"] + " Check that the app is installed in "
                                  "the workspace and the token is current.") from None
    except (OSError, SlackClientError, ValueError) as exc:  # URLError, refused, timed out, not Slack's answer
        raise ConnectionFailed(f"Cannot reach Slack to check SLACK_BOT_TOKEN ({type(exc).__name__}).",
                               hint="Check this machine's network and proxy settings (and SLACK_API_URL, if "
                               "set), then start it again.") from None


def cmd_discord(args: argparse.Namespace) -> int:
    from gen_nodes.surfaces.chatops.discord import PATH, application_commands, build_app

    if args.what == "commands":  # generated from the registry; needs no extra
        from gen_nodes.surfaces.chatops.grammar import Grammar
        from gen_nodes.core.registry import default_registry

        print(json.dumps(application_commands(Grammar(default_registry())), indent=2))
        return 0
    _needs("discord", "nacl")
    public_key = _env("DISCORD_PUBLIC_KEY")
    try:
        bytes.fromhex(public_key)
    except ValueError:
        raise InvalidInput("DISCORD_PUBLIC_KEY is not hexadecimal.", errors=[{"path": "DISCORD_PUBLIC_KEY",
                           "message": "not hex"}], hint="Copy the Public Key from the Discord developer "
                           "portal's General Information page.") from None
    at = _digest_time(args)
    _check_host(args)
    configure_logging(args.log_level)
    chatops = _chatops(args)
    digest = _digest(chatops, "discord", at)
    return _serve(build_app(chatops, public_key=public_key), args, PATH, "gen-nodes chatops discord", digest)


def cmd_bind(args: argparse.Namespace) -> int:
    sandbox_key = getattr(args, "sandbox_key", None)
    if sys.stdin.isatty():
        print("Paste the GEN API key, then press Enter" + (" (Enter alone binds the sandbox's own key):"
              if sandbox_key else ":"), file=sys.stderr)
    key = sys.stdin.readline().strip() or sandbox_key or ""
    chatops = _chatops(args)
    me = chatops.bind(args.platform, args.user, key)
    chatops.audit(_operator(args), "bind", ids=[me.get("id")], outcome="ok")
    print(json.dumps({"platform": args.platform, "user": args.user, "gen_user": me.get("id"),
                      "email": me.get("email")}))
    return 0


def cmd_unbind(args: argparse.Namespace) -> int:
    chatops = _chatops(args)
    removed = chatops.bindings.unbind(args.platform, args.user)
    chatops.audit(_operator(args), "unbind", outcome="ok" if removed else "not_bound")
    print(json.dumps({"platform": args.platform, "user": args.user, "unbound": removed}))
    return 0


# -- helpers --------------------------------------------------------------------------


def _chatops(args: argparse.Namespace):
    from gen_nodes.client.http import timeouts
    from gen_nodes.core.registry import default_registry
    from gen_nodes.state import open_store
    from gen_nodes.state.secretbox import SecretBox
    from gen_nodes.surfaces.chatops.core import ChatOps

    from gen_nodes.state import StoreError
    from gen_nodes.state.secretbox import SecretBoxError

    _env(SECRET_ENV)
    try:
        box = SecretBox.from_env(SECRET_ENV)
    except SecretBoxError as exc:
        raise InvalidInput(str(exc), errors=[{"path": SECRET_ENV, "message": "too short"}],
                           hint=_ENV_HINTS[SECRET_ENV]) from None
    try:
        store = open_store(_store_url(args))
    except StoreError as exc:
        raise GenError(str(exc), hint="Check --store (or $GEN_NODES_CHATOPS_STORE): sqlite:// for one machine, "
                       "redis://host:port/db for several; a Redis server must be running and reachable.") from None
    return ChatOps(default_registry(), store, box,
                   base_url=getattr(args, "base_url", None), timeout=timeouts(getattr(args, "timeout", None)),
                   allow=getattr(args, "allow", ()), prefix=getattr(args, "command", "/gen"))


def _store_url(args: argparse.Namespace) -> str:
    """--store, else $GEN_NODES_CHATOPS_STORE, else the default file: under --sandbox, one beside the
    sandbox's own, so bindings of sandbox keys never mix with bindings of real GEN keys."""
    chosen = args.store or settings.current().chatops_store
    if chosen:
        return chosen
    if getattr(args, "sandbox_key", None):
        from gen_nodes.core.paths import private_folder
        from gen_nodes.sandbox.persistent import state_dir

        return f"sqlite:///{private_folder(state_dir()) / SANDBOX_STORE_FILE}"
    return DEFAULT_STORE


def _operator(args: argparse.Namespace):
    from gen_nodes.surfaces.chatops.messages import ChatUser

    return ChatUser(args.platform, "", args.user, "")


def _env(name: str) -> str:
    value = settings.current().value(name) or ""
    if not value:
        raise InvalidInput(f"{name} is not set.", errors=[{"path": name, "message": "missing"}],
                           hint=_ENV_HINTS.get(name, f"Set {name} in the environment."))
    return value


_ENV_HINTS = {
    SECRET_ENV: f"Set {SECRET_ENV} to a long random string (e.g. `python -c 'import secrets; "
                "print(secrets.token_urlsafe(32))'`); it seals the bound GEN keys, so keep it and use the same "
                "one on every process.",
    "SLACK_SIGNING_SECRET": "Copy the Signing Secret from your Slack app's Basic Information page.",
    "SLACK_BOT_TOKEN": "Copy the Bot User OAuth Token (xoxb-...) from your Slack app's OAuth & Permissions page.",
    "DISCORD_PUBLIC_KEY": "Copy the Public Key from the Discord developer portal's General Information page.",
}


def _needs(extra: str, module: str) -> None:
    try:
        __import__(module)
    except ImportError:
        raise GenError(f"Chat-ops for {extra} needs the {extra} extra ({module} is missing).",
                       hint=f"Install it with: pip install 'gen-nodes[{extra}]'") from None


def _check_host(args: argparse.Namespace) -> None:
    """Refuse a non-loopback --host without opt-in before opening anything (``serve`` checks again)."""
    from gen_nodes.net.guard import guard_hosts

    guard_hosts(args.host, allow_remote=args.allow_remote, allowed_hosts=args.allowed_host)


def _serve(app: Any, args: argparse.Namespace, path: str, name: str, digest: Any = None) -> int:
    """Serve through ``net.serve``: the first stdout line is ``{"url": ...}`` once the port is bound.
    The daily digest (if any) starts once the server is about to serve, and stops with it."""
    from gen_nodes.net.serve import serve

    if digest is not None:
        digest.start()
    try:
        serve(app, host=args.host, port=args.port, path=path, allow_remote=args.allow_remote,
              allowed_hosts=args.allowed_host, name=name)
    except KeyboardInterrupt:
        pass
    finally:
        if digest is not None:
            digest.stop()
    return 0


def _digest_time(args: argparse.Namespace) -> int | None:
    """``--digest-at`` (else $GEN_NODES_CHATOPS_DIGEST_AT) in seconds after midnight UTC, checked
    before anything is opened; None for no digest."""
    from gen_nodes.surfaces.chatops.schedule import time_of_day

    chosen = args.digest_at or settings.current().chatops_digest_at
    return time_of_day(chosen) if chosen else None


def _digest(chatops: Any, platform: str, at: int | None) -> Any:
    """The daily expiry digest at ``at`` (not started yet), or None; its DM sender is built here, so
    a missing bot token stops the start-up."""
    from gen_nodes.surfaces.chatops.approver import discord_sender, slack_sender
    from gen_nodes.surfaces.chatops.schedule import DailyRound, describe, round_for

    if at is None:
        return None
    send = slack_sender() if platform == "slack" else discord_sender()
    chatops.digest_at = describe(at)
    return DailyRound(round_for(chatops, platform, send), at)


