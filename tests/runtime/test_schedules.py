"""The local scheduler on a manual clock: cron schedules fire like Cloudflare's triggers, once per minute.

Tried: a ``*/10`` schedule over 35 minutes fires at 00:00, 00:10, 00:20, 00:30 and nowhere else,
each run keyed by its minute and with ``trigger: "cron"`` on ``run.started`` (API starts carry no
trigger); three hours of downtime over many due minutes starts exactly one catch-up per schedule (the
most recent missed minute) and none for a schedule that missed nothing; a restart in the same minute,
and a "crash" between a start and its mark, start nothing new; day-of-month OR day-of-week through
`Cron.matches` over five weeks of daily wakes; a manual firing (`LocalScheduler.fire` and the
``/cdn-cgi/handler/scheduled`` handler: auth, errors naming the parameter, ``time=``) meets the
tick's run for the same minute; a scheduled workflow that cannot start without input does not stop
the others; a changed schedule starts from the current minute.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from flareflow import Run, workflow
from flareflow.engine.registry import Registry
from flareflow.local import LocalRuntime, ManualClock
from flareflow.local.backend import LocalBackend
from flareflow.local.scheduler import LocalScheduler, handle_scheduled, scheduled_url
from flareflow.worker.http import Request
from flareflow.worker.router import Router

from .helpers import idle, wait_until

START = dt.datetime(2026, 1, 1, tzinfo=dt.UTC).timestamp()  # a Thursday, 00:00 UTC
TOKEN = "sched-token"


def stamp(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, tz=dt.UTC).strftime("%Y-%m-%dT%H:%MZ")


def _registry(**schedules: str) -> Registry:
    reg = Registry()
    for name, schedule in schedules.items():
        async def fn(run: Run) -> str:
            return await run.step("tick", lambda: "ticked")

        fn.__qualname__ = f"fn_{name}"
        workflow(name.replace("_", "-"), schedule=schedule, registry=reg)(fn)
    return reg


def cron_runs(rt: LocalRuntime) -> dict[str, str]:
    """idempotency key -> workflow of every run the index holds."""
    return {str(r["idempotency_key"]): str(r["workflow"]) for r in rt.index.list(limit=1000)}


async def started(sched: LocalScheduler, ticks: int) -> None:
    await wait_until(lambda: sched.ticks >= ticks, f"scheduler tick {ticks}")
    await idle(sched.runtime)


async def step(clock: ManualClock, sched: LocalScheduler, seconds: float) -> None:
    """Move the clock; wait for the scheduler's next tick and the runs it started."""
    ticks = sched.ticks
    clock.advance(seconds)
    await started(sched, ticks + 1)


def test_fires_once_per_matching_minute(runtime):
    runtime.registry = _registry(ten="*/10 * * * *", weekly="0 9 * * 1")
    clock = runtime.clock = ManualClock(START)

    async def main(rt: LocalRuntime) -> None:
        sched = LocalScheduler(rt)
        sched.start()
        await started(sched, 1)
        for _ in range(35):
            await step(clock, sched, 60)
        await sched.close()
        runs = cron_runs(rt)
        assert runs == {f"cron:ten:2026-01-01T00:{m}0Z": "ten" for m in range(4)}
        for row in rt.index.list(limit=100):
            obj = await rt.until_finished(row["id"])
            first = obj.events()[0]
            assert first["type"] == "run.started" and first["trigger"] == "cron", first
            assert obj.info["output"] == "ticked"
        api = await rt.start_run("ten")
        assert "trigger" not in api.events()[0]  # an API start's wire event is unchanged
        marks = sched.marks()
        assert marks["ten"] == ("*/10 * * * *", START + 35 * 60, START + 30 * 60)
        assert marks["weekly"] == ("0 9 * * 1", START + 35 * 60, None)

    runtime.run(main)


def test_downtime_catches_up_once_per_schedule(runtime):
    runtime.registry = _registry(ten="*/10 * * * *", daily="30 1 * * *", weekly="0 9 * * 1")
    clock = runtime.clock = ManualClock(START + 5 * 60)  # 00:05: nothing due at start-up

    async def main(rt: LocalRuntime) -> None:
        sched = LocalScheduler(rt)
        sched.start()
        await started(sched, 1)
        await step(clock, sched, 5 * 60)  # 00:10 fires
        await sched.close()
        assert set(cron_runs(rt)) == {"cron:ten:2026-01-01T00:10Z"}

        # down from 00:10 to 03:07: ten missed 17 minutes, daily missed 01:30, weekly missed nothing
        later = ManualClock(START + 3 * 3600 + 7 * 60 + 12)
        rt = await runtime.restart(clock=later)
        sched = LocalScheduler(rt)
        assert {s.workflow: s.created for s in await sched.tick()} == {"ten": True, "daily": True}
        await idle(rt)
        assert set(cron_runs(rt)) == {"cron:ten:2026-01-01T00:10Z", "cron:ten:2026-01-01T03:00Z",
                                      "cron:daily:2026-01-01T01:30Z"}

        # restarted in the same minute: nothing again
        rt = await runtime.restart()
        sched = LocalScheduler(rt)
        assert await sched.tick() == []
        assert len(cron_runs(rt)) == 3
        # a crash between a start and its mark: the next tick re-plans that minute and meets the run
        rt.index.sql.exec("UPDATE schedules SET checked_through = checked_through - 7200")
        again = await sched.tick()
        assert [(s.workflow, s.created) for s in again] == [("daily", False), ("ten", False)]
        assert len(cron_runs(rt)) == 3
        sched.start()
        await started(sched, 3)
        await step(later, sched, 3 * 60)  # 03:10 fires as usual
        await sched.close()
        assert "cron:ten:2026-01-01T03:10Z" in cron_runs(rt)
        assert len(cron_runs(rt)) == 4

    runtime.run(main)


def test_day_of_month_or_weekday(runtime):
    runtime.registry = _registry(either="0 9 13 * 5")  # the 13th OR a Friday
    begin = dt.datetime(2026, 3, 11, 9, 0, tzinfo=dt.UTC).timestamp()
    clock = runtime.clock = ManualClock(begin)

    async def main(rt: LocalRuntime) -> list[str]:
        sched = LocalScheduler(rt)
        sched.start()
        await started(sched, 1)
        for _ in range(35):  # one wake a day at 09:00 (the machine sleeps in between)
            await step(clock, sched, 86400)
        await sched.close()
        return sorted(key.split(":", 2)[2][:10] for key in cron_runs(rt))

    days = runtime.run(main)
    assert days == ["2026-03-13", "2026-03-20", "2026-03-27", "2026-04-03", "2026-04-10", "2026-04-13"]


def test_manual_firing_meets_the_ticks_run(runtime):
    runtime.registry = _registry(ten="*/10 * * * *", weekly="0 9 * * MON")
    clock = runtime.clock = ManualClock(START + 9 * 60 + 30)  # 00:09:30

    async def main(rt: LocalRuntime) -> None:
        sched = LocalScheduler(rt)
        router = Router(LocalBackend(rt), token=TOKEN)

        async def ask(query: dict[str, str], token: str = TOKEN, method: str = "GET") -> tuple[int, Any]:
            headers = {"authorization": f"Bearer {token}"}
            response = await handle_scheduled(sched, router, Request(method, "/cdn-cgi/handler/scheduled",
                                                                     query, headers))
            return response.status, response.body

        assert (await ask({"cron": "*/10 * * * *"}, token="wrong"))[0] == 401
        assert (await ask({"cron": "*/10 * * * *"}, method="POST"))[0] == 405
        status, body = await ask({})
        assert status == 400 and body["error"]["field"] == "cron"
        status, body = await ask({"cron": "0 9 * *"})
        assert status == 400 and body["error"]["field"] == "cron" and "5" in body["error"]["message"]
        status, body = await ask({"cron": "*/10 * * * *", "time": "soon"})
        assert status == 400 and body["error"]["field"] == "time"
        assert await ask({"cron": "0 0 * * *"}) == (200, {"outcome": "ok", "cron": "0 0 * * *",
                                                         "scheduled_time": "2026-01-01T00:09:00.000Z",
                                                         "started": []})
        # the same trigger however it is spelt; the time is the caller's (wrangler's time=MS)
        monday = dt.datetime(2026, 1, 5, 9, 0, 17, tzinfo=dt.UTC).timestamp()
        status, body = await ask({"cron": "0 9 * * 1", "time": str(int(monday * 1000))})
        assert status == 200 and [(s["workflow"], s["idempotency_key"], s["created"]) for s in body["started"]] \
            == [("weekly", "cron:weekly:2026-01-05T09:00Z", True)]
        # fired by hand at 00:10, then the tick for 00:10 comes: one run
        clock.advance(30)
        status, body = await ask({"cron": "*/10 * * * *"})
        assert [(s["workflow"], s["created"]) for s in body["started"]] == [("ten", True)]
        assert [(s.workflow, s.created) for s in await sched.tick()] == [("ten", False)]
        assert [(s.workflow, s.created) for s in await sched.fire("*/10 * * * *")] == [("ten", False)]
        await idle(rt)
        assert sorted(cron_runs(rt)) == ["cron:ten:2026-01-01T00:10Z", "cron:weekly:2026-01-05T09:00Z"]
        run = rt.get(body["started"][0]["run_id"])
        assert run.events()[0]["trigger"] == "cron"

    runtime.run(main)
    assert scheduled_url("http://127.0.0.1:8787/", "0 9 * * 1") == \
        "http://127.0.0.1:8787/cdn-cgi/handler/scheduled?cron=0+9+*+*+1"
    assert scheduled_url("http://h:1", "*/10 1-5,7 * * *").endswith("?cron=*/10+1-5,7+*+*+*")


def test_a_failing_start_does_not_stop_the_others(runtime):
    runtime.registry = _registry(ten="*/10 * * * *")

    @workflow("needs-input", schedule="*/10 * * * *", registry=runtime.registry)
    async def needs_input(run: Run, data: dict[str, Any]) -> dict[str, Any]:
        return data

    runtime.clock = ManualClock(START)

    async def main(rt: LocalRuntime) -> None:
        sched = LocalScheduler(rt)
        assert [s.workflow for s in await sched.tick()] == ["ten"]
        assert sched.marks()["needs-input"][2] == START  # tried, logged, not retried every minute
        assert await sched.tick() == []
        assert list(cron_runs(rt).values()) == ["ten"]
        await idle(rt)

    runtime.run(main)


def test_a_changed_schedule_starts_from_now(runtime):
    runtime.registry = _registry(job="0 * * * *")
    runtime.clock = ManualClock(START + 60)  # 00:01

    async def main(rt: LocalRuntime) -> None:
        assert await LocalScheduler(rt).tick() == []
        # 03:01; "0 * * * *" missed 01:00..03:00, but the schedule is new now
        rt = await runtime.restart(advance=3 * 3600, registry=_registry(job="30 * * * *"))
        sched = LocalScheduler(rt)
        assert await sched.tick() == []
        assert sched.marks()["job"] == ("30 * * * *", START + 60 + 3 * 3600, None)
        await idle(rt)

    runtime.run(main)
