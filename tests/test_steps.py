"""The engine-neutral step runner: every state of an idempotency record, against the sandbox.

The Airflow and Temporal tests drive it through real engines; here each case is set
up directly (a memory store, a clock to age a record) and the sandbox counts the keys.
"""

from __future__ import annotations

import pytest

from gen_nodes.core.errors import IdempotencyConflict, NotFound, OutcomeUnknown, Rejected, RequestInProgress
from gen_nodes.safety.idempotency import IdempotencyRecords
from gen_nodes.state import open_store
from gen_nodes.runtime.steps import StepRunner, engine_client


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def records(clock) -> IdempotencyRecords:
    return IdempotencyRecords(open_store("memory://"), clock=clock)


@pytest.fixture
def gen(sandbox):
    with engine_client(sandbox.api_key, sandbox.base_url) as client:
        yield client


def names(sandbox, name: str) -> list[dict]:
    return [key for key in sandbox.store.list_keys(sandbox.user["id"]) if key["name"] == name]


def test_a_repeated_step_replays_the_first_result(sandbox, gen, records):
    runner = StepRunner("test", records)
    first = runner.run("create_api_key", {"name": "once"}, gen, step="s1")
    again = runner.run("create_api_key", {"name": "once"}, gen, step="s1")
    assert again["id"] == first["id"] and again["token"] == first["token"]  # the secret, once more
    third = runner.run("create_api_key", {"name": "once"}, gen, step="s1")
    assert third["id"] == first["id"] and third["token"] != first["token"] and "token_note" in third
    assert len(names(sandbox, "once")) == 1
    assert runner.run("create_api_key", {"name": "once"}, gen, step="s2")["id"] != first["id"]  # another step


def test_other_input_under_the_same_step_is_refused(sandbox, gen, records):
    runner = StepRunner("test", records)
    runner.run("create_api_key", {"name": "a"}, gen, step="s")
    with pytest.raises(IdempotencyConflict, match="other input"):
        runner.run("create_api_key", {"name": "b"}, gen, step="s")
    assert names(sandbox, "b") == []


def test_an_unknown_outcome_is_replayed_not_resent(sandbox, gen, records):
    sandbox.inject_fault(drop=True, after=True, method="POST", path="/persisted_tokens")
    runner = StepRunner("test", records)
    with pytest.raises(OutcomeUnknown) as first:
        runner.run("create_api_key", {"name": "dropped"}, gen, step="s")
    with pytest.raises(OutcomeUnknown) as again:
        runner.run("create_api_key", {"name": "dropped"}, gen, step="s")
    [made] = names(sandbox, "dropped")
    assert [c["id"] for c in again.value.details["candidates"]] == [made["id"]]
    assert "first try" in again.value.message and again.value.hint == first.value.hint


def test_a_failure_where_gen_did_not_act_lets_the_next_try_run(sandbox, gen, records):
    sandbox.inject_fault(422, method="POST", path="/persisted_tokens", body={"error": "Try later"})
    runner = StepRunner("test", records)
    with pytest.raises(Rejected):
        runner.run("create_api_key", {"name": "second try"}, gen, step="s")
    assert runner.run("create_api_key", {"name": "second try"}, gen, step="s")["name"] == "second try"


def test_a_try_still_running_is_waited_for_then_reported_retryable(sandbox, gen):
    records = IdempotencyRecords(open_store("memory://"))  # the real clock: the wait must end
    fingerprint = records.fingerprint("create_api_key", {"name": "busy"})
    assert records.begin(scope=f"test:{gen.identity}", key="s", fingerprint=fingerprint).state == "new"
    with pytest.raises(RequestInProgress) as caught:
        StepRunner("test", records, wait=0.05).run("create_api_key", {"name": "busy"}, gen, step="s")
    assert caught.value.retryable and names(sandbox, "busy") == []


def test_a_try_that_never_finished_is_reported_with_its_candidates(sandbox, gen, records, clock):
    fingerprint = records.fingerprint("create_api_key", {"name": "lost"})
    records.begin(scope=f"test:{gen.identity}", key="s", fingerprint=fingerprint)
    gen.request("POST", "/persisted_tokens", json={"name": "lost"}, safe_to_retry=False)  # it did act, then died
    clock.now += records.lease + 1
    with pytest.raises(OutcomeUnknown) as caught:
        StepRunner("test", records).run("create_api_key", {"name": "lost"}, gen, step="s")
    [made] = names(sandbox, "lost")
    assert [c["id"] for c in caught.value.details["candidates"]] == [made["id"]]
    assert not caught.value.retryable


def test_read_only_and_idempotent_actions_keep_no_record(sandbox, gen, records):
    runner = StepRunner("test", records)
    assert runner.run("get_me", {}, gen, step="s")["id"] == sandbox.user["id"]
    assert runner.run("list_api_keys", {}, gen, step="s")["api_keys"]  # same step id: no conflict
    with pytest.raises(NotFound):
        runner.run("revoke_api_key", {"id": 999999}, gen, step="s")
