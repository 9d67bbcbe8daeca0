"""Shared fixtures: a real sandbox server on loopback and clients signed in to it."""

from __future__ import annotations

import logging

import pytest

from gen_nodes.client.http import GenClient
from gen_nodes.core import settings
from gen_nodes.core.registry import default_registry
from gen_nodes.sandbox import Sandbox
from client_support import FAST_RETRY
from redis_support import redis_db, redis_url  # noqa: F401  (fixtures: a real redis-server)


@pytest.fixture(autouse=True)
def fresh_settings():
    """gen-nodes reads the environment once per process: each test starts from its own."""
    settings.current.cache_clear()
    yield
    settings.current.cache_clear()


@pytest.fixture
def monkeypatch(monkeypatch):
    """pytest's monkeypatch, whose setenv/delenv also make gen-nodes read the environment again."""
    for name in ("setenv", "delenv"):
        change = getattr(monkeypatch, name)

        def and_forget(*args, _change=change, **kwargs):
            _change(*args, **kwargs)
            settings.current.cache_clear()
        setattr(monkeypatch, name, and_forget)
    yield monkeypatch
    settings.current.cache_clear()


@pytest.fixture
def sandbox():
    with Sandbox() as sb:
        yield sb


@pytest.fixture(scope="module")
def sb():
    """One sandbox for a whole module, for modules that start servers (MCP, gateway) in front of it."""
    with Sandbox() as sandbox:
        yield sandbox


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.fixture
def client(sandbox):
    with GenClient(api_key=sandbox.api_key, base_url=sandbox.base_url, retry=FAST_RETRY, timeout=(2.0, 5.0)) as c:
        yield c


@pytest.fixture
def gen_log(caplog):
    """Every log record of the process, DEBUG and up (secrets must appear in none)."""
    caplog.set_level(logging.DEBUG)
    # A server started earlier in this process may have set gen-nodes' loggers' levels (configure_logging).
    for name in ("gen_nodes", "gen_nodes.chatops.slack"):
        caplog.set_level(logging.DEBUG, logger=name)
    return caplog


@pytest.fixture
def registry():
    return default_registry()


# ---- cassette tests (pytest-recording); see tests/cassette_support.py --------------
# Record:  python -m pytest tests/test_cassettes.py --record-mode=rewrite
# Replay:  python -m pytest tests/test_cassettes.py        (default mode "none", network blocked)
from cassette_support import CASSETTE_DIR, Scrubber, open_gen_target  # noqa: E402


@pytest.fixture(scope="module")
def vcr_cassette_dir():
    """Every cassette lives in the top-level cassettes/ folder."""
    return str(CASSETTE_DIR)


@pytest.fixture
def cassette_scrubber():
    """The record-time filters of the current cassette (learns the secrets it sees)."""
    return Scrubber()


@pytest.fixture
def vcr_config(cassette_scrubber):
    return cassette_scrubber.vcr_config()


@pytest.fixture
def gen_target(request, record_mode, cassette_scrubber):
    """Where a cassette test's requests go: sandbox or real GEN when recording, the cassette in replay.

    Parametrize indirectly with "openapi" for the sandbox's OpenAPI variant.
    """
    variant = getattr(request, "param", "reference")
    with open_gen_target(record_mode, cassette_scrubber, retry=FAST_RETRY, variant=variant) as target:
        yield target
# ---- end of cassette tests block ----------------------------------------------------


# ---- a real headless n8n (installed once into .cache/n8n/; see tests/n8n_support.py) ----
@pytest.fixture(scope="session")
def n8n():
    """The installed n8n (an :class:`n8n_support.N8nInstall`); installs it on first use (~4 min)."""
    from n8n_support import ensure_installed
    from setup_needs import or_fail

    return or_fail(ensure_installed)


@pytest.fixture
def chat(sandbox):
    """A chat-ops core on a memory store, talking to the sandbox (a module may define its own)."""
    from chat_support import chatops_on

    with chatops_on(sandbox) as core:
        yield core
