"""The error tree: every class has a type, an exit code and an HTTP status, and the module
docstring's tree says exactly what the classes say."""

from __future__ import annotations

import re

import pytest

from gen_nodes.core import errors
from gen_nodes.core.errors import GenError, InvalidInput, UnknownAction


def error_classes() -> list[type[GenError]]:
    return [obj for obj in vars(errors).values()
            if isinstance(obj, type) and issubclass(obj, GenError)]


def test_the_docstring_tree_matches_the_classes():
    rows = re.findall(r"^    [ |+-]*(\w+)\s+(\w+)\s+(\d)\s+(\d{3})\b", errors.__doc__, re.M)
    documented = {name: (type_, int(exit_code), int(status)) for name, type_, exit_code, status in rows}
    actual = {cls.__name__: (cls.type, cls.exit_code, cls.http_status) for cls in error_classes()}
    assert documented == actual


def test_the_tree_draws_each_class_under_its_base():
    lines = [line for line in errors.__doc__.splitlines() if re.match(r"^    [ |+-]*\w+\s+\w+\s+\d\s+\d{3}", line)]
    stack: list[tuple[int, str]] = []
    for line in lines:
        name = re.search(r"\w+", line).group()
        depth = len(line) - len(line.lstrip(" |+-"))
        while stack and stack[-1][0] >= depth:
            stack.pop()
        if stack:
            assert getattr(errors, name).__bases__[0] is getattr(errors, stack[-1][1]), name
        stack.append((depth, name))


def test_unknown_action_is_invalid_input_so_handlers_keyed_by_class_agree_with_its_type():
    error = UnknownAction("No action named 'x'.", hint="Available actions: a, b.")
    assert isinstance(error, InvalidInput)
    assert (error.type, error.exit_code, error.http_status) == ("invalid_input", 2, 422)
    assert error.to_dict()["errors"] == [{"path": "$.action", "message": "No action named 'x'."}]
    assert error.hint == "Available actions: a, b."


@pytest.mark.parametrize("cls", error_classes(), ids=lambda cls: cls.__name__)
def test_every_status_is_an_error_status(cls):
    assert 400 <= cls.http_status <= 599
    # A create that may have happened must not invite the automatic retries clients make on 5xx.
    if cls is errors.OutcomeUnknown:
        assert cls.http_status < 500
