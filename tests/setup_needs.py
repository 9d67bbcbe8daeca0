"""What the test command needs from the machine, checked before it is used.

The first run installs what some tests need (Debian's ``redis-server`` with apt-get as
root, n8n with npm into ``.cache/``, about 2 GB in all). When something it needs is
missing, the check raises :class:`MissingNeed`, whose message is one line saying what
to install or free; the fixtures turn it into a failed test showing that line alone
(:func:`or_fail`), not a traceback from deep inside a subprocess.

    need_root("Installing redis-server with apt-get", otherwise="sudo apt-get install -y redis-server")
    need_free_disk(cache_folder, gigabytes=2, purpose="Installing n8n", otherwise="free some space")
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Callable, TypeVar

T = TypeVar("T")


class MissingNeed(RuntimeError):
    """The machine lacks something the tests need; the message says what, in one line."""


def need_root(purpose: str, *, otherwise: str) -> None:
    """Refuse to go on unless running as root (``purpose`` needs it); ``otherwise`` says what else to do."""
    if os.geteuid() != 0:
        raise MissingNeed(f"{purpose} needs root, and the tests run as uid {os.geteuid()}: {otherwise}")


def need_free_disk(folder: Path, *, gigabytes: float, purpose: str, otherwise: str) -> None:
    """Refuse to go on unless the disk holding ``folder`` (or its nearest existing parent) has room."""
    existing = Path(folder)
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    free = shutil.disk_usage(existing).free / 1e9
    if free < gigabytes:
        raise MissingNeed(f"{purpose} needs about {gigabytes:g} GB free under {existing}, and {free:.1f} GB are: "
                          f"{otherwise}")


def or_fail(prepare: Callable[[], T]) -> T:
    """In a fixture: ``prepare()``, or a failed test showing a :class:`MissingNeed`'s one line, no traceback."""
    import pytest

    try:
        return prepare()
    except MissingNeed as missing:
        message = str(missing)
    pytest.fail(message, pytrace=False)  # outside the except: no "during handling of" chain is shown
