"""The shared state layer: one suite over every store backend (memory, SQLite, a real Redis),
then approvals and idempotency records on top, across threads and processes."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import threading
import time

import pytest

from gen_nodes.safety.approvals import APPROVED, DENIED, DONE, EXPIRED, PENDING, RUNNING, ApprovalError, Approvals
from gen_nodes.safety.idempotency import IdempotencyRecords
from gen_nodes.core.redact import Secret
from gen_nodes.state import StoreError, open_store
from gen_nodes.state.secretbox import SecretBox, SecretBoxError, box_for


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["memory", "sqlite", "redis"])
def backend(request, tmp_path):
    """(store, advance): advance(seconds) moves time on (a real wait for Redis, whose clock is its own)."""
    if request.param == "redis":
        url = request.getfixturevalue("redis_db")
        store = open_store(url)
        yield store, time.sleep, time.time
    else:
        clock = Clock()
        url = "memory://" if request.param == "memory" else f"sqlite:///{tmp_path}/state.db"
        store = open_store(url, clock=clock)

        def advance(seconds: float) -> None:
            clock.now += seconds

        yield store, advance, clock
    store.close()


# -- the store -----------------------------------------------------------------------


def test_add_stores_only_when_absent(backend):
    store, _, _ = backend
    assert store.add("k", {"a": 1}, ttl=60)
    assert not store.add("k", {"a": 2}, ttl=60)
    assert store.get("k") == {"a": 1}


def test_entries_expire(backend):
    store, advance, _ = backend
    store.set("k", {"a": 1}, ttl=0.3)
    assert store.get("k") == {"a": 1}
    advance(0.5)
    assert store.get("k") is None
    assert store.add("k", {"a": 2}, ttl=60), "an expired key is free again"


def test_replace_is_compare_and_swap_on_the_whole_value(backend):
    store, _, _ = backend
    store.set("k", {"state": "pending", "n": [1, 2]}, ttl=60)
    assert not store.replace("k", {"state": "approved", "n": [1, 2]}, {"state": "x"})
    assert store.replace("k", {"n": [1, 2], "state": "pending"}, {"state": "approved"}), "key order is irrelevant"
    assert store.get("k") == {"state": "approved"}
    assert not store.replace("missing", {}, {"a": 1})


def test_replace_without_ttl_keeps_the_expiry(backend):
    store, advance, _ = backend
    store.set("k", {"v": 1}, ttl=0.4)
    assert store.replace("k", {"v": 1}, {"v": 2})
    advance(0.6)
    assert store.get("k") is None


def test_pop_returns_once(backend):
    store, _, _ = backend
    store.set("k", {"v": 1}, ttl=60)
    assert store.pop("k") == {"v": 1}
    assert store.pop("k") is None
    store.delete("k")  # deleting nothing is fine


def test_bad_ttl_and_values_are_refused(backend):
    store, _, _ = backend
    for ttl in (0, -1, float("nan"), float("inf"), "5"):
        with pytest.raises(ValueError):
            store.set("k", {}, ttl=ttl)
    with pytest.raises(TypeError):
        store.set("k", ["not", "an", "object"], ttl=5)


def race(count: int, attempt) -> list:
    """Run ``attempt(n)`` in ``count`` threads released at once; the results, in no order."""
    results, barrier = [], threading.Barrier(count)

    def run(n):
        barrier.wait()
        results.append(attempt(n))

    threads = [threading.Thread(target=run, args=(n,)) for n in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_concurrent_add_has_exactly_one_winner(backend):
    store, _, _ = backend
    wins = [n for n, won in zip(range(8), race(8, lambda n: store.add("race", {"by": n}, ttl=60))) if won]
    assert len(wins) == 1 and store.get("race")["by"] in range(8)


def test_concurrent_replace_has_exactly_one_winner(backend):
    store, _, _ = backend
    store.set("cas", {"state": "pending"}, ttl=60)
    won = race(8, lambda n: store.replace("cas", {"state": "pending"}, {"state": "taken", "by": n}))
    assert won.count(True) == 1


_ADD_IN_A_PROCESS = """
import sys
from gen_nodes.state import open_store
store = open_store(sys.argv[1])
print("won" if store.add("proc-race", {"pid": int(sys.argv[2])}, ttl=60) else "lost")
"""


@pytest.mark.parametrize("kind", ["sqlite", "redis"])
def test_processes_on_one_store_have_one_winner(kind, tmp_path, request):
    url = request.getfixturevalue("redis_db") if kind == "redis" else f"sqlite:///{tmp_path}/shared.db"
    procs = [subprocess.Popen([sys.executable, "-c", _ADD_IN_A_PROCESS, url, str(n)], stdout=subprocess.PIPE,
                              text=True) for n in range(4)]
    outcomes = [p.communicate(timeout=60)[0].strip() for p in procs]
    assert sorted(outcomes) == ["lost", "lost", "lost", "won"]


def test_sqlite_file_is_private_and_a_planted_link_is_refused(tmp_path):
    store = open_store(f"sqlite:///{tmp_path}/db/state.db")
    store.set("k", {"v": 1}, ttl=5)
    assert stat.S_IMODE(os.stat(tmp_path / "db" / "state.db").st_mode) == 0o600
    store.close()
    target = tmp_path / "victim"
    target.write_text("keep me")
    os.symlink(target, tmp_path / "link.db")
    with pytest.raises(StoreError):
        open_store(f"sqlite:///{tmp_path}/link.db")
    assert target.read_text() == "keep me"


def test_sqlite_connections_use_wal_with_normal_sync_in_every_thread(tmp_path):
    """WAL with synchronous=NORMAL (the store's docstring says what it keeps across which crash):
    FULL would fsync on every commit, two per idempotent create. Set on each thread's connection."""
    store = open_store(f"sqlite:///{tmp_path}/state.db")
    seen = []

    def look():
        db = store._db()
        seen.append((db.execute("PRAGMA journal_mode").fetchone()[0], db.execute("PRAGMA synchronous").fetchone()[0]))

    look()
    worker = threading.Thread(target=look)
    worker.start()
    worker.join()
    store.close()
    assert seen == [("wal", 1), ("wal", 1)]  # 1 is NORMAL (2 is FULL, SQLite's default)


def test_unknown_scheme_and_unreachable_redis_say_what_to_do():
    with pytest.raises(StoreError, match="memory://, sqlite:///"):
        open_store("postgres://x")
    with pytest.raises(StoreError, match="Cannot reach Redis") as info:
        open_store("redis://:hunter2-password@127.0.0.1:1/0")
    assert "hunter2" not in str(info.value)


# -- secretbox -----------------------------------------------------------------------


def test_secretbox_round_trip_rotation_and_tampering():
    old = SecretBox("old-secret-0123456789")
    sealed = old.seal("gen_pat_abc")
    assert "gen_pat_abc" not in sealed and old.open(sealed) == "gen_pat_abc"
    rotated = SecretBox("new-secret-0123456789,old-secret-0123456789")
    assert rotated.open(sealed) == "gen_pat_abc"
    with pytest.raises(SecretBoxError):
        SecretBox("another-secret-0123456789").open(sealed)
    with pytest.raises(SecretBoxError):
        old.open(sealed[:-4] + "AAAA")
    with pytest.raises(SecretBoxError, match="at least 16"):
        SecretBox("short")
    assert "secret" not in repr(old)


def test_shared_store_needs_the_secret_in_the_environment(redis_db, monkeypatch, tmp_path):
    monkeypatch.delenv("GEN_NODES_STATE_SECRET", raising=False)
    with pytest.raises(SecretBoxError, match="GEN_NODES_STATE_SECRET"):
        box_for(open_store(redis_db))
    sqlite = open_store(f"sqlite:///{tmp_path}/s.db")
    sealed = box_for(sqlite).seal("x")
    assert box_for(open_store(f"sqlite:///{tmp_path}/s.db")).open(sealed) == "x", "same file, same local key"
    assert stat.S_IMODE(os.stat(f"{tmp_path}/s.db.key").st_mode) == 0o600


# -- approvals -----------------------------------------------------------------------


@pytest.fixture
def approvals(backend):
    store, advance, clock = backend
    return Approvals(store, ttl=1.0, keep=30, clock=clock), advance


def _ask(approvals, **kw):
    return approvals.request(action="revoke_api_key", arguments={"id": 6}, principal="alice-digest",
                             preview=[{"id": 6, "name": "ci"}], context={"surface": "test"}, **kw)


def test_an_approval_runs_once_with_the_stored_arguments(approvals):
    approvals, _ = approvals
    a = _ask(approvals)
    assert len(a.id) >= 32 and approvals.get(a.id).state == PENDING
    assert approvals.claim(a.id) is None, "nothing runs before a person decides"
    decided = approvals.decide(a.id, approve=True, by="alice")
    assert decided.state == APPROVED and decided.decided_by == "alice"
    claimed = approvals.claim(a.id)
    assert claimed.state == RUNNING and claimed.arguments == {"id": 6}
    assert approvals.claim(a.id) is None, "a second claim gets nothing"
    done = approvals.finish(a.id, result={"id": 6, "revoked": True}, ok=True)
    assert done.state == DONE and approvals.get(a.id).result == {"id": 6, "revoked": True}


def test_a_decision_is_final(approvals):
    approvals, _ = approvals
    a = _ask(approvals)
    assert approvals.decide(a.id, approve=False).state == DENIED
    with pytest.raises(ApprovalError) as info:
        approvals.decide(a.id, approve=True)
    assert info.value.reason == "decided"
    assert approvals.claim(a.id) is None


def test_only_the_requester_may_decide_when_asked_to_check(approvals):
    approvals, _ = approvals
    a = _ask(approvals)
    with pytest.raises(ApprovalError) as info:
        approvals.decide(a.id, approve=True, principal="mallory-digest")
    assert info.value.reason == "not_yours" and approvals.get(a.id).state == PENDING
    assert approvals.decide(a.id, approve=True, principal="alice-digest").state == APPROVED


def test_pending_approvals_expire(approvals):
    approvals, advance = approvals
    a = _ask(approvals)
    advance(1.2)
    assert approvals.get(a.id).state == EXPIRED
    with pytest.raises(ApprovalError) as info:
        approvals.decide(a.id, approve=True)
    assert info.value.reason == "expired"


def test_unknown_and_malformed_handles(approvals):
    approvals, _ = approvals
    assert approvals.get("nope-nope-nope") is None and approvals.get("x" * 5000) is None
    with pytest.raises(ApprovalError) as info:
        approvals.decide("nope-nope-nope", approve=True)
    assert info.value.reason == "unknown" and info.value.to_dict()["type"] == "approval"


def test_a_double_click_decides_and_runs_once(approvals):
    approvals, _ = approvals
    a = _ask(approvals)

    def click(_):
        try:
            approvals.decide(a.id, approve=True)
            outcome = ["won"]
        except ApprovalError as exc:
            outcome = [exc.reason]
        return outcome + (["ran"] if approvals.claim(a.id) is not None else [])

    outcomes = sum(race(6, click), [])
    assert outcomes.count("won") == 1 and outcomes.count("decided") == 5 and outcomes.count("ran") == 1


def test_wait_returns_when_decided(approvals):
    approvals, _ = approvals
    a = _ask(approvals)
    threading.Timer(0.2, lambda: approvals.decide(a.id, approve=False)).start()
    assert approvals.wait(a.id, timeout=5, poll=0.02).state == DENIED


# -- idempotency records ------------------------------------------------------------------


@pytest.fixture
def records(backend):
    store, advance, clock = backend
    records = IdempotencyRecords(store, ttl=30, lease=1.0, box=SecretBox("test-secret-0123456789"), clock=clock)
    return records, advance, store


def _created(token="gen_pat_" + "s" * 40):
    return {"status": 201, "body": {"id": 7, "name": "ci", "token": token}}


def test_a_repeat_replays_the_first_response_and_its_secret_once(records):
    records, _, store = records
    fp = records.fingerprint("create_api_key", {"name": "ci"})
    assert records.begin(scope="s", key="k1", fingerprint=fp).state == "new"
    records.finish(scope="s", key="k1", response=_created())
    stored = json.dumps(store.get(next_key(records, "s", "k1")))
    assert "s" * 40 not in stored, "the secret is sealed at rest"
    first = records.begin(scope="s", key="k1", fingerprint=records.fingerprint("create_api_key", {"name": "ci"}))
    assert first.state == "replay" and not first.secrets_withheld
    assert first.response["body"]["token"] == "gen_pat_" + "s" * 40
    assert isinstance(first.response["body"]["token"], Secret), "replayed secrets still print masked"
    second = records.begin(scope="s", key="k1", fingerprint=fp)
    assert second.state == "replay" and second.secrets_withheld
    assert second.response["body"]["token"].endswith("ssss") and "s" * 40 not in json.dumps(second.response)
    assert second.response["body"]["id"] == 7


def next_key(records, scope, key):
    from gen_nodes.safety.idempotency import _name

    return _name(scope, key)


def test_the_same_key_for_another_request_is_a_conflict(records):
    records, _, _ = records
    assert records.begin(scope="s", key="k", fingerprint="a").state == "new"
    assert records.begin(scope="s", key="k", fingerprint="b").state == "conflict"
    assert records.begin(scope="other-caller", key="k", fingerprint="b").state == "new", "scopes are separate"


def test_a_call_in_progress_is_not_run_twice_and_a_lost_one_is_never_resent(records):
    records, advance, _ = records
    assert records.begin(scope="s", key="k", fingerprint="a").state == "new"
    assert records.begin(scope="s", key="k", fingerprint="a").state == "in_progress"
    advance(1.5)  # past the lease: the first caller died mid-call
    assert records.begin(scope="s", key="k", fingerprint="a").state == "lost"


def test_an_outcome_unknown_is_replayed_as_such(records):
    records, _, _ = records
    records.begin(scope="s", key="k", fingerprint="a")
    unknown = {"status": 502, "body": {"error": {"type": "outcome_unknown", "candidates": []}}}
    records.finish(scope="s", key="k", response=unknown)
    again = records.begin(scope="s", key="k", fingerprint="a")
    assert again.state == "replay" and again.response == unknown


def test_abandon_lets_a_retry_run(records):
    records, _, _ = records
    records.begin(scope="s", key="k", fingerprint="a")
    records.abandon(scope="s", key="k")
    assert records.begin(scope="s", key="k", fingerprint="a").state == "new"


def test_concurrent_begins_run_once_and_waiters_get_the_replay(records):
    records, _, _ = records

    def call(_):
        begin = records.begin(scope="s", key="k", fingerprint="a")
        if begin.state != "new":
            return records.wait(scope="s", key="k", fingerprint="a", timeout=10, poll=0.02).state
        time.sleep(0.2)
        records.finish(scope="s", key="k", response=_created())
        return "ran"

    outcomes = race(6, call)
    assert outcomes.count("ran") == 1 and outcomes.count("replay") == 5


def test_records_made_by_one_redis_client_replay_through_another(redis_db, monkeypatch):
    monkeypatch.setenv("GEN_NODES_STATE_SECRET", "shared-secret-0123456789")
    one, two = IdempotencyRecords(open_store(redis_db)), IdempotencyRecords(open_store(redis_db))
    assert one.begin(scope="s", key="k", fingerprint="a").state == "new"
    one.finish(scope="s", key="k", response=_created())
    replay = two.begin(scope="s", key="k", fingerprint="a")
    assert replay.state == "replay" and replay.response["body"]["token"] == "gen_pat_" + "s" * 40
