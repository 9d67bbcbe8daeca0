"""The options every server shares (add_server_options, the seconds type), the one logging set-up,
and the one confirmation vocabulary."""

from __future__ import annotations

import argparse
import logging

import pytest

from gen_nodes.core import spec
from gen_nodes.core.registry import default_registry
from gen_nodes.net.logs import configure_logging
from gen_nodes.net.options import seconds
from gen_nodes.surfaces import cli
from gen_nodes.surfaces.chatops import cli as chatops_cli
from gen_nodes.surfaces.gateway import app as gateway
from gen_nodes.surfaces.gateway import openapi
from gen_nodes.surfaces.mcp import options as mcp_options

SHARED = ("--host", "--port", "--allow-remote", "--allowed-host")


def _subparser(parser: argparse.ArgumentParser, name: str) -> argparse.ArgumentParser:
    choices = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    return choices[name]


def _gateway_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser()
    gateway.add_arguments(parser)
    return parser


def _servers() -> dict[str, argparse.ArgumentParser]:
    return {"gateway": _gateway_parser(), "mcp": mcp_options.parser(),
            "chatops slack": _subparser(chatops_cli._parser(), "slack"),
            "sandbox": _subparser(cli._parser(), "sandbox")}


def _option(parser: argparse.ArgumentParser, flag: str) -> argparse.Action:
    return next(a for a in parser._actions if flag in a.option_strings)


def test_every_server_declares_the_listening_options_the_same_way():
    servers = _servers()
    ports = {name: _option(parser, "--port").default for name, parser in servers.items()}
    assert ports == {"gateway": 8080, "mcp": 8000, "chatops slack": 3000, "sandbox": 8765}
    for flag in SHARED:
        helps = {_option(p, flag).help.removeprefix("HTTP: ").replace(str(ports[n]), "N")
                 for n, p in servers.items()}
        assert len(helps) == 1, (flag, helps)
        assert len({repr((_option(p, flag).default if flag != "--port" else 0, _option(p, flag).metavar))
                    for p in servers.values()}) == 1


@pytest.mark.parametrize("text", ["0", "-5", "nan", "inf", "soon", ""])
def test_seconds_refuses_what_is_not_a_time(text):
    with pytest.raises(argparse.ArgumentTypeError, match="must be a number of seconds above 0"):
        seconds(text)
    assert seconds("2.5") == 2.5


@pytest.mark.parametrize("parser", ["gateway", "mcp", "chatops slack"])
def test_every_servers_timeout_uses_the_one_seconds_type(parser):
    assert _option(_servers()[parser], "--timeout").type is seconds


def test_chatops_refuses_a_timeout_that_is_not_a_number_of_seconds(capsys):
    with pytest.raises(SystemExit) as done:
        chatops_cli._parser().parse_args(["bind", "--platform", "slack", "--user", "U1", "--timeout", "nan"])
    assert done.value.code == 2 and "must be a number of seconds above 0" in capsys.readouterr().err


@pytest.fixture
def saved_levels():
    names = ("gen_nodes", "mcp", "sse_starlette", "client", "gen_nodes.chatops.slack")
    levels = {name: logging.getLogger(name).level for name in names}
    yield
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


def test_configure_logging_sets_gen_nodes_level_and_caps_the_chatty_libraries(saved_levels):
    configure_logging("debug")
    assert logging.getLogger("gen_nodes").level == logging.DEBUG
    assert logging.getLogger("mcp").level == logging.WARNING
    assert logging.getLogger("client").level == logging.ERROR
    assert logging.getLogger("gen_nodes.chatops.slack").level == logging.INFO  # Bolt's DEBUG lines hold bodies
    configure_logging("error")
    assert logging.getLogger("gen_nodes.chatops.slack").level == logging.ERROR


def test_no_server_sets_up_logging_its_own_way():
    from pathlib import Path

    root = Path(gateway.__file__).resolve().parents[2]
    setting_up = [str(path.relative_to(root)) for path in (root / "gen_nodes").rglob("*.py")
                  if "basicConfig" in path.read_text() and path.name != "logs.py"]
    assert setting_up == []


def test_the_gateway_speaks_the_one_confirmation_vocabulary_and_still_takes_direct():
    parser = _gateway_parser()
    assert _option(parser, "--confirmation").choices == (spec.NONE, spec.APPROVAL)
    assert parser.parse_args([]).confirmation == spec.NONE
    assert parser.parse_args(["--confirmation", "direct"]).confirmation == spec.NONE
    assert "none" in _option(parser, "--confirmation").help
    specs = list(default_registry())
    assert openapi.document(specs, confirmation="direct") == openapi.document(specs, confirmation="none")
    with pytest.raises(ValueError, match="confirmation must be one of none, approval"):
        openapi.document(specs, confirmation="host")


def test_every_confirmation_list_comes_from_the_one_vocabulary():
    from gen_nodes.runtime.tools import CONFIRMATION_POLICIES

    assert CONFIRMATION_POLICIES == spec.CONFIRMATIONS
    assert set(mcp_options.MCP_POLICIES) <= set(spec.CONFIRMATIONS)
    assert set(openapi.CONFIRMATION_MODES) <= set(spec.CONFIRMATIONS)
    assert tuple(_option(_subparser(cli._parser(), "tools"), "--confirmation").choices) == spec.CONFIRMATIONS
    assert spec.confirmation("direct") == spec.NONE
