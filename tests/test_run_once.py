"""The idempotency protocol, written once (``IdempotencyRecords.run_once``): run, replay, refuse, record
or forget, and proof that the gateway and the engine steps (Airflow, Temporal) both go through it."""

from __future__ import annotations

import pytest

from gen_nodes.core.errors import GenError, IdempotencyConflict, NotFound, OutcomeUnknown, RequestInProgress
from gen_nodes.safety.idempotency import IdempotencyRecords, Refusals
from gen_nodes.state import open_store


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


REFUSALS = Refusals(conflict=lambda: IdempotencyConflict("used for another request"),
                    in_progress=lambda: RequestInProgress("still running"),
                    lost=lambda: OutcomeUnknown("began and never finished"))


@pytest.fixture
def records():
    clock = Clock()
    return IdempotencyRecords(open_store("memory://"), lease=60.0, clock=clock), clock


def once(records, run, fingerprint="f1", **kw):
    return records.run_once(scope="s", key="k", fingerprint=fingerprint, run=run, refusals=kw.pop("refusals", REFUSALS),
                            **kw)


def test_the_first_call_runs_and_a_repeat_replays_it_without_running(records):
    records, _ = records
    runs = []
    first = once(records, lambda: runs.append(1) or {"id": 6})
    assert first.output == {"id": 6} and first.replay is None
    again = once(records, lambda: runs.append(1) or {"id": 7})
    assert again.output is None and again.replay.state == "replay"
    assert again.replay.response == {"output": {"id": 6}} and runs == [1]


def test_the_same_key_with_another_request_is_refused_in_the_callers_words(records):
    records, _ = records
    once(records, lambda: {"id": 6})
    with pytest.raises(IdempotencyConflict, match="another request"):
        once(records, lambda: pytest.fail("must not run"), fingerprint="f2")


def test_a_call_still_running_is_waited_for_then_refused(records):
    records, _ = records
    records.begin(scope="s", key="k", fingerprint="f1")  # another caller, still running
    with pytest.raises(RequestInProgress, match="still running"):
        once(records, lambda: pytest.fail("must not run"), wait=0.0)


def test_a_call_that_began_and_never_finished_is_lost_and_never_run_again(records):
    records, clock = records
    records.begin(scope="s", key="k", fingerprint="f1")  # its caller died mid-call
    clock.now += 61
    with pytest.raises(OutcomeUnknown, match="never finished"):
        once(records, lambda: pytest.fail("must not run"))


def test_an_unknown_outcome_is_recorded_and_replayed_not_run_again(records):
    records, _ = records

    def may_have_acted():
        raise OutcomeUnknown("GEN may have acted")

    with pytest.raises(OutcomeUnknown):
        once(records, may_have_acted)
    again = once(records, lambda: pytest.fail("must not run"))
    assert again.replay.response["error"]["type"] == "outcome_unknown"


def test_any_other_error_is_forgotten_so_a_retry_runs(records):
    records, _ = records

    def refused():
        raise NotFound("no such key")

    with pytest.raises(NotFound):
        once(records, refused)
    assert once(records, lambda: {"id": 6}).output == {"id": 6}


def test_a_bug_is_recorded_as_the_surfaces_unexpected_outcome_or_left_begun(records):
    records, clock = records

    def bug():
        raise ZeroDivisionError

    with pytest.raises(ZeroDivisionError):
        once(records, bug, refusals=Refusals(REFUSALS.conflict, REFUSALS.in_progress, REFUSALS.lost,
                                             unexpected=lambda exc: OutcomeUnknown(type(exc).__name__)))
    recorded = once(records, lambda: pytest.fail("must not run")).replay.response
    assert recorded == {"error": OutcomeUnknown("ZeroDivisionError").to_dict()}
    with pytest.raises(ZeroDivisionError):  # no unexpected refusal: the record stays begun
        records.run_once(scope="s", key="k2", fingerprint="f1", run=bug, refusals=REFUSALS)
    with pytest.raises(RequestInProgress):
        records.run_once(scope="s", key="k2", fingerprint="f1", run=bug, refusals=REFUSALS)


def test_record_shapes_are_the_callers(records):
    records, _ = records
    once(records, lambda: (201, {"id": 6}), record=lambda answer: {"status": answer[0], "body": answer[1]})
    assert once(records, lambda: None).replay.response == {"status": 201, "body": {"id": 6}}


def test_a_first_call_costs_two_writes_and_no_read_back():
    """The record is opened (add) and completed (set); completing it does not read it back for the
    fingerprint run_once already holds (a store round trip, a transaction on SQLite)."""
    from gen_nodes.state.memory import MemoryStore

    class Counting(MemoryStore):
        def __init__(self) -> None:
            super().__init__()
            self.calls: list[str] = []

        def add(self, key, value, *, ttl):
            self.calls.append("add")
            return super().add(key, value, ttl=ttl)

        def get(self, key):
            self.calls.append("get")
            return super().get(key)

        def set(self, key, value, *, ttl):
            self.calls.append("set")
            return super().set(key, value, ttl=ttl)

    store = Counting()
    records = IdempotencyRecords(store)
    records.run_once(scope="s", key="k", fingerprint="f1", run=lambda: {"id": 6}, refusals=REFUSALS)
    assert store.calls == ["add", "set"]
    assert records.begin(scope="s", key="k", fingerprint="f2").state == "conflict", "the fingerprint is kept"


def test_a_call_that_succeeded_is_returned_when_its_record_cannot_be_written(records, caplog):
    """GEN made the key: the caller gets it even when the store fails on the record's completion, and
    a repeat finds the record unfinished (in progress, then lost): it is never sent again."""
    from gen_nodes.state import StoreError

    records, clock = records

    def broken_set(key, value, *, ttl):
        raise StoreError("Redis at 127.0.0.1:1 failed: ConnectionError.")

    records.store.set = broken_set
    ran = once(records, lambda: {"id": 6, "token": "gen_pat_do_not_log_me"})
    assert ran.output == {"id": 6, "token": "gen_pat_do_not_log_me"}
    assert "could not be written (StoreError" in caplog.text and "gen_pat_do_not_log_me" not in caplog.text
    with pytest.raises(RequestInProgress):
        once(records, lambda: pytest.fail("must not run"))
    clock.now += 61  # past the lease
    with pytest.raises(OutcomeUnknown):
        once(records, lambda: pytest.fail("must not run"))


def test_later_takes_the_records_write_and_a_repeat_meanwhile_waits_for_it():
    """``later``: the gateway writes the record once its answer is sent. Until then a repeat finds the
    call in progress and waits (it never runs it again); once written, it gets the first answer."""
    import threading
    import time

    records = IdempotencyRecords(open_store("memory://"))
    writes = []
    first = once(records, lambda: {"id": 6}, later=writes.append)
    assert first.output == {"id": 6} and len(writes) == 1
    with pytest.raises(RequestInProgress):
        once(records, lambda: pytest.fail("must not run"), wait=0.0)
    threading.Timer(0.3, writes[0]).start()
    started = time.monotonic()
    again = once(records, lambda: pytest.fail("must not run"), wait=5.0)
    assert again.replay.response == {"output": {"id": 6}} and time.monotonic() - started >= 0.25


def test_a_resumable_call_is_recorded_before_returning_even_with_later(records):
    """A repeat does not wait for a resumable call (a composite action) that it finds in progress: it
    runs it again. So its record is never left for later, and a repeat replays it."""
    records, _ = records
    writes = []
    once(records, lambda: {"id": 6}, later=writes.append, resumable=True)
    assert writes == []
    again = once(records, lambda: pytest.fail("must not run again"), resumable=True)
    assert again.replay.response == {"output": {"id": 6}}


def test_later_is_only_for_success_an_outcome_unknown_is_recorded_at_once(records):
    records, _ = records
    writes = []

    def dropped():
        raise OutcomeUnknown("the connection dropped mid-request")

    with pytest.raises(OutcomeUnknown):
        once(records, dropped, later=writes.append)
    assert writes == []
    with pytest.raises(OutcomeUnknown, match="dropped"):
        from gen_nodes.safety.idempotency import replayed_output

        replayed_output(once(records, lambda: pytest.fail("must not run")).replay)


# -- every surface with idempotency goes through run_once ----------------------------------------


@pytest.fixture
def run_once_calls(monkeypatch):
    """The scopes run_once was called with (the real method still runs)."""
    calls, real = [], IdempotencyRecords.run_once

    def spy(self, **kw):
        calls.append(kw["scope"].split(":")[0])
        return real(self, **kw)

    monkeypatch.setattr(IdempotencyRecords, "run_once", spy)
    return calls


def test_engine_steps_use_run_once(run_once_calls, sandbox, client):
    from gen_nodes.runtime.steps import StepRunner

    runner = StepRunner("airflow", IdempotencyRecords(open_store("memory://")))
    made = runner.run("create_api_key", {"name": "step"}, client, step="dag/task/run/0")
    assert runner.run("create_api_key", {"name": "step"}, client, step="dag/task/run/0")["id"] == made["id"]
    assert run_once_calls == ["airflow", "airflow"]


def test_the_gateway_uses_run_once(run_once_calls, sandbox):
    pytest.importorskip("starlette")
    from starlette.testclient import TestClient

    from gen_nodes.surfaces.gateway.app import build_app

    with TestClient(build_app(base_url=sandbox.base_url, store_url="memory://")) as gw:
        headers = {"X-API-Key": sandbox.api_key, "Idempotency-Key": "one"}
        first = gw.post("/actions/create_api_key", headers=headers, json={"name": "gw"})
        again = gw.post("/actions/create_api_key", headers=headers, json={"name": "gw"})
    assert first.status_code == again.status_code == 200 and again.headers["idempotent-replayed"] == "true"
    assert run_once_calls == ["gateway", "gateway"]


def test_refusals_are_gen_errors():
    for make in (REFUSALS.conflict, REFUSALS.in_progress, REFUSALS.lost):
        assert isinstance(make(), GenError)
