"""Shared fixtures: a real sandbox server on loopback and clients signed in to it."""

from __future__ import annotations

import pytest

from gen_nodes.client import GenClient, RetryPolicy
from gen_nodes.registry import default_registry
from gen_nodes.sandbox import Sandbox

#: Retries as in production, but with back-off in milliseconds so tests stay fast.
FAST_RETRY = RetryPolicy(attempts=3, backoff=0.001, max_backoff=0.005, max_retry_after=2.0)


@pytest.fixture
def sandbox():
    with Sandbox() as sb:
        yield sb


@pytest.fixture
def client(sandbox):
    with GenClient(api_key=sandbox.api_key, base_url=sandbox.base_url, retry=FAST_RETRY, timeout=(2.0, 5.0)) as c:
        yield c


@pytest.fixture
def registry():
    return default_registry()
