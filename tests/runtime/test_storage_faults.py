"""A refusing store (disk full, I/O error) is never the workflow's error (issue #10 item 4).

Faults are injected through `flareflow.durable_objects.faults` at every named commit site of the
coordinator, at each point (before the transaction, half-way through a multi-statement write, at
COMMIT, after a COMMIT that went through), on the local runtime with a manual clock and real SQLite.
For every case: the run stays unfinished (never ``failed`` with the storage error), the workflow's
``try/except Exception`` never sees the fault, nothing half-committed is visible, and once the
store accepts writes again the run completes with exactly the output of a fault-free run. The
last test fills a real (tmpfs) file system from inside a step, so its completion commit meets a
real SQLITE_FULL.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from flareflow import Retry, Run, StepFailed, workflow
from flareflow.durable_objects import coordinator as co
from flareflow.durable_objects.faults import BLOB_GET, BLOB_PUT, DISK_FULL, POINTS, READ, Faults
from flareflow.engine.errors import StorageError
from flareflow.engine.registry import Registry
from flareflow.local import LocalRuntime, ManualClock

from ..smallfs import fill, small_fs
from .helpers import ManualRuntime, idle

#: The sites an activation commits at; each is reached by the `guarded` workflow.
ACTIVATION_SITES = (co.STEP_START, co.STEP_COMPLETE, co.STEP_RETRY, co.STEP_FAIL, co.WAIT_BEGIN,
                    co.WAIT_END, co.STATUS_CHANGE, co.RUN_FINISH)
UNFINISHED = ("running", "waiting")


def _guarded(calls: Counter[str], seen: list[str], *, big: bool = False, hook: Any = None) -> Registry:
    """Steps inside ``try/except Exception`` (a storage fault must never land there), a retried
    step, a sleep, an event wait, a parallel pair, tracked state and a real step failure it catches."""
    reg = Registry()

    def double(i: int) -> Any:
        calls[f"double{i}"] += 1
        if hook is not None:
            hook(i)
        return ("x" * 3000 + str(i)) if big else i * 2

    def flaky() -> str:
        calls["flaky"] += 1
        if calls["flaky"] == 1:
            raise RuntimeError("first attempt fails")
        return "flaky ok"

    def doomed() -> None:
        calls["doomed"] += 1
        raise RuntimeError("always fails")

    @workflow("guarded", registry=reg)
    async def guarded(run: Run) -> Any:
        out: list[Any] = []
        for i in range(2):
            try:
                out.append(await run.step(f"s{i}", double, i))
                run.state[f"s{i}"] = "done"
            except Exception as exc:  # what a careless workflow does; a storage fault must not end here
                seen.append(repr(exc))
                out.append("swallowed")
        try:
            out.append(await run.step("flaky", flaky, retry=Retry(limit=3, delay="5s")))
        except Exception as exc:
            seen.append(repr(exc))
            out.append("swallowed")
        await run.sleep("nap", "10s")
        got = await run.wait_for_event("go")
        pair = await run.parallel(run.step("left", double, 10), run.step("right", double, 11))
        try:
            await run.step("doomed", doomed, retry=Retry(limit=1))
        except StepFailed as exc:  # a real step failure: the workflow's own business
            out.append(f"caught {exc.step}")
        except Exception as exc:
            seen.append(repr(exc))
        run.state["finished"] = True
        return {"out": out, "got": got, "pair": pair}

    return reg


async def _drive(rt: LocalRuntime, clock: ManualClock, run_id: str, faults: Faults | None = None,
                 on_fault: Any = None) -> dict[str, Any]:
    """Drive a `guarded` run to its end: follow alarms on the manual clock, send ``go`` once it waits.

    ``on_fault(obj)`` is called once, the first time the run is idle after a fault fired."""
    sent = False
    reported = False
    for _ in range(200):
        await idle(rt)
        obj = rt.get(run_id)
        if faults is not None and faults.fired and not reported:
            reported = True
            if on_fault is not None:
                on_fault(obj)
        if obj.status in co.TERMINAL:
            return obj.describe()
        waits = obj.open_waits()
        if not sent and any(w["kind"] == "event" for w in waits):
            sent = True
            await rt.send_event(run_id, "go", {"n": 1})
            continue
        due = rt.next_alarm()
        assert due is not None, f"run {run_id} is {obj.status} with nothing to wake it: {obj.events()[-3:]}"
        clock.advance(max(0.0, due - clock.now()) + 0.001)
    raise AssertionError("run never finished")


def _reference(tmp_path: Path) -> tuple[dict[str, Any], list[str], Counter[str]]:
    """The fault-free run: output, event types and step calls."""
    calls: Counter[str] = Counter()
    seen: list[str] = []

    runtime = ManualRuntime(tmp_path / "ref", _guarded(calls, seen))

    async def main(rt: LocalRuntime) -> tuple[dict[str, Any], list[str]]:
        run_id = (await rt.start_run("guarded")).run_id
        final = await _drive(rt, runtime.clock, run_id)
        return final, [e["type"] for e in rt.get(run_id).events()]

    final, kinds = runtime.run(main)
    assert seen == [] and final["status"] == "completed"
    return final, kinds, calls


def _assert_consistent(obj: co.RunCoordinator) -> None:
    """Nothing half-committed: a gapless log, and every recorded outcome has its event (and back)."""
    events = obj.events()
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    completed_events = {e["step"] for e in events if e["type"] == "step.completed"}
    completed_steps = {s["step"] for s in obj.describe()["steps"]
                       if s["kind"] == "step" and s["status"] == "completed"}
    assert completed_steps == completed_events
    assert obj.describe()["last_seq"] == len(events)
    assert not [e for e in events if e["type"] == "run.failed"]
    assert not any(DISK_FULL in str(e) for e in events)


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], list[str], Counter[str]]:
    return _reference(tmp_path_factory.mktemp("reference"))


@pytest.mark.parametrize("point", POINTS)
@pytest.mark.parametrize("site", ACTIVATION_SITES)
def test_a_refused_commit_abandons_the_activation_and_the_run_completes_as_without_it(
        runtime, site, point, reference, caplog):
    ref_final, _, ref_calls = reference
    calls: Counter[str] = Counter()
    seen: list[str] = []
    faults = Faults()
    faults.fail(site, point)
    after_fault: dict[str, Any] = {}

    def check(obj: co.RunCoordinator) -> None:
        after_fault.update(status=obj.status, abandoned=obj.abandoned)
        _assert_consistent(obj)

    runtime.registry = _guarded(calls, seen)
    clock = runtime.clock

    async def main(rt: LocalRuntime) -> dict[str, Any]:
        run_id = (await rt.start_run("guarded")).run_id
        watcher = asyncio.ensure_future(rt.until_finished(run_id))  # a live listener sees the end too
        final = await _drive(rt, clock, run_id, faults, check)
        assert (await asyncio.wait_for(watcher, 2)).status == "completed"
        _assert_consistent(rt.get(run_id))
        rt.evict(run_id)  # and the same from SQL alone
        _assert_consistent(rt.get(run_id))
        return final

    with caplog.at_level(logging.WARNING, logger="flareflow.local"):
        final = runtime.run(main, faults=faults)
    assert faults.fired == [(site, point, final["id"])], "the fault did not fire where it was aimed"
    if (site, point) == (co.RUN_FINISH, "after"):  # the finish went through; only the caller was told otherwise
        assert after_fault["status"] == "completed"
    else:
        assert after_fault["status"] in UNFINISHED, f"after the fault the run was {after_fault['status']}"
    assert isinstance(after_fault["abandoned"], StorageError)
    assert seen == [], f"the workflow's except clause saw the storage fault: {seen}"
    assert final["status"] == "completed", final
    assert final["output"] == ref_final["output"]
    assert final["state"] == ref_final["state"]
    assert final["error"] is None
    abandoned = [r.getMessage() for r in caplog.records if "activation abandoned" in r.getMessage()]
    assert len(abandoned) == 1 and DISK_FULL in abandoned[0] and "retrying in 1s" in abandoned[0]
    # A step whose completion was not committed runs again (at-least-once), never more than that.
    for name, count in calls.items():
        assert ref_calls[name] <= count <= ref_calls[name] + 1, (name, count, ref_calls[name])


def test_a_full_disk_for_a_while_only_delays_the_run_with_growing_backoff(runtime, reference, caplog):
    """Every commit refused (the disk stays full) from the first step completion on, four retries
    long (1 s, 2 s, 4 s, 8 s apart); then the disk is freed and the run finishes as without faults."""
    ref_final, _, _ = reference
    calls: Counter[str] = Counter()
    seen: list[str] = []
    faults = Faults()
    faults.fail(co.STEP_COMPLETE, "commit", times=1)

    runtime.registry = _guarded(calls, seen)
    clock = runtime.clock

    async def main(rt: LocalRuntime) -> dict[str, Any]:
        run_id = (await rt.start_run("guarded")).run_id
        await idle(rt)
        faults.fail("*", "commit", times=None)  # and now nothing gets written at all
        waits = []
        for _ in range(4):
            due = rt.next_alarm()
            assert due is not None
            waits.append(round(due - clock.now(), 3))
            clock.advance(due - clock.now())
            await idle(rt)
            assert rt.get(run_id).status == "running"
        assert waits == [1.0, 2.0, 4.0, 8.0]
        faults.clear()
        return await _drive(rt, clock, run_id)

    with caplog.at_level(logging.WARNING, logger="flareflow.local"):
        final = runtime.run(main, faults=faults)
    assert seen == []
    assert final["status"] == "completed" and final["output"] == ref_final["output"]
    assert sum("activation abandoned" in r.getMessage() for r in caplog.records) == 5


def test_payloads_in_the_blob_store_refused_on_put_or_get_only_delay_the_run(runtime):
    """Step results over the payload threshold go to the blob store inside the step's commit: a
    refused put abandons that commit; a refused get on the replay that reads it back abandons too."""
    calls: Counter[str] = Counter()
    seen: list[str] = []
    faults = Faults()
    faults.fail(BLOB_PUT, "before")
    faults.fail(BLOB_PUT, "after")

    runtime.registry = _guarded(calls, seen, big=True)
    clock = runtime.clock

    async def main(rt: LocalRuntime) -> dict[str, Any]:
        run_id = (await rt.start_run("guarded")).run_id
        await idle(rt)
        assert [f[:2] for f in faults.fired] == [(BLOB_PUT, "before")]
        assert rt.next_alarm() == pytest.approx(clock.now() + 1.0)  # the retry of the refused commit
        clock.advance(1.0)
        await idle(rt)
        assert [f[:2] for f in faults.fired] == [(BLOB_PUT, "before"), (BLOB_PUT, "after")]
        faults.fail(BLOB_GET, "before")  # a later activation's replay reads s0's result back
        for _ in range(5):
            clock.advance(rt.next_alarm() - clock.now())
            await idle(rt)
            if faults.fired[-1][0] == BLOB_GET:
                break
        assert [f[:2] for f in faults.fired][-1] == (BLOB_GET, "before")
        assert rt.get(run_id).status in UNFINISHED
        final = await _drive(rt, clock, run_id)
        rt.evict(run_id)
        assert rt.get(run_id).describe()["output"] == final["output"]
        return final

    final = runtime.run(main, faults=faults, payload_threshold=1024)
    assert [f[:2] for f in faults.fired] == [(BLOB_PUT, "before"), (BLOB_PUT, "after"), (BLOB_GET, "before")]
    assert seen == []
    assert final["status"] == "completed"
    assert final["output"]["out"][:2] == ["x" * 3000 + "0", "x" * 3000 + "1"]
    assert not list((runtime.state_dir / "blobs").rglob("*.tmp"))


def test_a_refused_read_while_opening_a_run_is_retried(runtime, caplog):
    """The store refuses even the reads that open a run (an I/O error): the run is tried again
    after the backoff instead of the activation crashing."""
    calls: Counter[str] = Counter()
    seen: list[str] = []
    faults = Faults()

    runtime.registry = _guarded(calls, seen)
    clock = runtime.clock

    async def main(rt: LocalRuntime) -> dict[str, Any]:
        run_id = (await rt.start_run("guarded", activate=False)).run_id
        rt.evict(run_id)
        faults.fail(READ, "before", error=lambda: StorageError("disk I/O error"))
        rt.schedule(run_id)
        await idle(rt)
        assert faults.fired and rt.next_alarm() == pytest.approx(clock.now() + 1.0)
        return await _drive(rt, clock, run_id)

    with caplog.at_level(logging.WARNING, logger="flareflow.local"):
        final = runtime.run(main, faults=faults)
    assert final["status"] == "completed" and seen == []
    assert any("disk I/O error; retrying in 1s" in r.getMessage() for r in caplog.records)


# -- commits a request makes: the caller gets the StorageError, nothing is stored -------------------
def test_a_refused_start_creates_nothing_and_its_idempotency_key_stays_free(runtime):
    calls: Counter[str] = Counter()
    faults = Faults()

    runtime.registry = _guarded(calls, [])

    async def main(rt: LocalRuntime) -> None:
        for point in POINTS:
            faults.fail(co.RUN_CREATE, point)
            with pytest.raises(StorageError, match=DISK_FULL):
                await rt.start_run("guarded", idempotency_key="k1")
            assert rt.index.list() == []
            assert rt.run_files() == set()
            assert rt.objects == {}
        obj = await rt.start_run("guarded", idempotency_key="k1")
        again = await rt.start_run("guarded", idempotency_key="k1")
        assert again.run_id == obj.run_id
        assert [r["id"] for r in rt.index.list()] == [obj.run_id]

    runtime.run(main, faults=faults)


async def _waiting_for_go(rt: LocalRuntime, clock: ManualClock, run_id: str) -> co.RunCoordinator:
    """Drive a fresh `guarded` run to its event wait (past the flaky retry and the nap)."""
    for _ in range(10):
        await idle(rt)
        obj = rt.get(run_id)
        if any(w["kind"] == "event" for w in obj.open_waits()):
            return obj
        clock.advance(rt.next_alarm() - clock.now())
    raise AssertionError("the run never waited for its event")


@pytest.mark.parametrize("point", ("before", "during", "commit"))
def test_a_refused_delivery_or_command_is_the_callers_error_and_changes_nothing(runtime, point, reference):
    ref_final, _, _ = reference
    calls: Counter[str] = Counter()
    seen: list[str] = []
    faults = Faults()

    runtime.registry = _guarded(calls, seen)
    clock = runtime.clock

    async def main(rt: LocalRuntime) -> dict[str, Any]:
        run_id = (await rt.start_run("guarded")).run_id
        before = (await _waiting_for_go(rt, clock, run_id)).events()
        for site, call in ((co.DELIVERY, lambda: rt.send_event(run_id, "go", {"n": 1})),
                           (co.CONTROL, lambda: rt.pause(run_id)),
                           (co.RUN_FINISH, lambda: rt.cancel(run_id))):
            faults.fail(site, point)
            with pytest.raises(StorageError, match=DISK_FULL):
                await call()
            await idle(rt)
            obj = rt.get(run_id)
            assert obj.status == "waiting" and obj.events() == before
            _assert_consistent(obj)
        return await _drive(rt, clock, run_id)

    final = runtime.run(main, faults=faults)
    assert seen == []
    assert final["status"] == "completed" and final["output"] == ref_final["output"]


def test_a_delivery_committed_before_its_error_is_not_lost(runtime, reference):
    """An "after" fault: the delivery went through but its caller got the StorageError (a client
    would retry). The run still takes the event and finishes: nothing is left in the inbox unseen."""
    ref_final, _, _ = reference
    calls: Counter[str] = Counter()
    seen: list[str] = []
    faults = Faults()

    runtime.registry = _guarded(calls, seen)
    clock = runtime.clock

    async def main(rt: LocalRuntime) -> dict[str, Any]:
        run_id = (await rt.start_run("guarded")).run_id
        await _waiting_for_go(rt, clock, run_id)
        faults.fail(co.DELIVERY, "after")
        with pytest.raises(StorageError, match=DISK_FULL):
            await rt.send_event(run_id, "go", {"n": 1})
        await idle(rt)
        final = rt.get(run_id).describe()
        _assert_consistent(rt.get(run_id))
        return final

    final = runtime.run(main, faults=faults)
    assert seen == []
    assert final["status"] == "completed" and final["output"] == ref_final["output"]


def test_a_pause_and_a_cancel_committed_before_their_error_take_effect(runtime):
    calls: Counter[str] = Counter()
    faults = Faults()

    runtime.registry = _guarded(calls, [])
    clock = runtime.clock

    async def main(rt: LocalRuntime) -> None:
        run_id = (await rt.start_run("guarded")).run_id
        await _waiting_for_go(rt, clock, run_id)
        faults.fail(co.CONTROL, "after")
        with pytest.raises(StorageError):
            await rt.pause(run_id)
        assert rt.get(run_id).status == "paused"
        faults.fail(co.RUN_FINISH, "after")
        with pytest.raises(StorageError):
            await rt.cancel(run_id)
        obj = rt.get(run_id)
        assert obj.status == "cancelled"
        assert [e["type"] for e in obj.events()][-2:] == ["run.paused", "run.cancelled"]
        _assert_consistent(obj)

    runtime.run(main, faults=faults)


# -- a real full file system ----------------------------------------------------------------------
def test_a_real_full_disk_on_a_step_commit_is_retried_and_the_output_is_unchanged(tmp_path, reference, caplog):
    """State directory on a 2 MB tmpfs. The step ``s1`` fills the file system from inside (once), so
    its completion commit meets a real SQLITE_FULL ("database or disk is full"). The run waits,
    unfinished, with the workflow's ``except`` untouched; the test frees the space and the run
    completes with the fault-free output."""
    ref_final, _, _ = reference
    calls: Counter[str] = Counter()
    seen: list[str] = []
    with small_fs(tmp_path / "fs", "2m") as root:
        filler = root / "filler"

        def fill_once(i: int) -> None:
            if i == 1 and not calls["filled"]:
                calls["filled"] += fill(filler) > 0

        runtime = ManualRuntime(root / "state", _guarded(calls, seen, hook=fill_once))

        async def main(rt: LocalRuntime) -> dict[str, Any]:
            run_id = (await rt.start_run("guarded")).run_id
            await idle(rt)
            obj = rt.get(run_id)
            assert filler.exists()
            assert obj.status in UNFINISHED and isinstance(obj.abandoned, StorageError)
            assert "database or disk is full" in str(obj.abandoned)
            assert str(root) not in str(obj.abandoned)  # no absolute server path in the message
            _assert_consistent(obj)
            filler.unlink()
            return await _drive(rt, runtime.clock, run_id)

        with caplog.at_level(logging.WARNING, logger="flareflow.local"):
            final = runtime.run(main)
    assert seen == []
    assert final["status"] == "completed" and final["output"] == ref_final["output"]
    assert calls["double1"] == 2  # its completion was refused once: it ran again, once
