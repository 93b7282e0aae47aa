"""WebSocket fan-out of one run's events: commit-to-receipt latency at 100 clients.

Setup: a real server process (``flareflow serve --local --port 0 --token T -C <temp project>``)
on loopback, and a temp project whose workflow ``fanout`` takes ``{"steps": N, "rate": R}``:

    await run.wait_for_event("go")             # so every client is connected before emission
    for i in range(N):                         # paced on a monotonic schedule: step i is due at
        sleep until start + i * 2 / R          #   start + i*2/R, so ~R events/s are committed
        await run.step("tick", time.time)      # 2 events per step: step.started + step.completed

Clients: --clients WebSocket connections to /runs/{id}/ws (websockets' asyncio client, spread over
--client-procs separate processes), each counted as connected only once it has received the run's
first stored event (the server subscribes the socket to live events *before* it reads the backlog,
so from then on nothing it commits can miss or be replayed to that socket). Then the parent POSTs
the "go" event. A client stores (time.time() at receipt, raw text) and decodes nothing until the
run has finished, with Python's cyclic GC off while receiving (its full collections over the
growing list of frames would otherwise pause the client and inflate the measured latency), so
measuring adds as little as possible to the client's own latency.

Latency = client receipt time.time() - commit time (same machine, same wall clock):
  * precise (the verdict): step.completed frames only. The step function is ``time.time`` itself,
    so its result is a µs wall-clock stamp taken just before the engine commits step.completed
    (the commit, its listeners, queueing and sending all come after it). This over-states the
    true commit-to-receipt time by the commit itself (tens of µs): a conservative figure.
  * at-based (cross-check, all step events): receipt - the event's ``at`` (commit time, ISO 8601
    truncated to the millisecond, so this over-states latency by 0..1 ms).

Throughput: delivered frames/s = step-event frames received by all clients / (last receipt - first
commit); the achieved event rate is measured from the commit stamps, not taken from the request.

Phases: (1) the main one: --events events (default 10,000) at --rate events/s (default 200) to
--clients clients (default 100); target p99 < 20 ms. (2) a search for the highest event rate whose
p99 stays under 50 ms: shorter runs (--search-seconds each) at increasing rates (x2 per phase from
the main rate, or halving when the main rate already misses), then one geometric bisection between
the last passing and the first failing rate (a main phase that missed while other processes were
busy does not set the direction: its rate is re-measured first). A phase that falls far behind
its schedule is cut off (clients disconnect, the run is cancelled) and counts as a miss; a phase
that misses while other processes kept > 0.25 core busy (and still committed at its rate) is
measured once more and the better of the two counts (both are listed).

Compression: by default the clients offer permessage-deflate, as flareflow.client (websockets'
default) and browsers do; the server accepts it, so every frame is compressed once per client.
--compression none measures the same without it.

Shared machines: before each phase (clients connected and idle) the script waits up to
--quiet-wait seconds for a moment when other processes use < --quiet-threshold cores, and the
table shows the cores other processes used during each phase ("others"); latency on a 2-core
box is only meaningful when that is near 0. A 0.5 s sampler records that load during the phase:
"quiet p50/p99 (share)" is the latency of the events committed in windows where other processes
used < 0.25 cores, with the share of events that qualified (information only: the verdicts use
every event). "µs/frame" (server CPU per delivered frame) is the load-robust cost figure.

    python benchmarks/fanout.py [--events 10000] [--rate 200] [--clients 100] [--client-procs 2]
                                [--search-seconds 4] [--search-budget 75] [--skip-search]
                                [--compression deflate|none] [--quiet-wait 5]
                                [--sync normal|full] [--profile] [--dir PATH]
"""

from __future__ import annotations

import argparse
import array
import asyncio
import bisect
import gc
import json
import math
import secrets
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (
    busy_cores,
    environment,
    load_average,
    percentile,
    print_env,
    proc_cpu_seconds,
    start_py_spy,
    start_server,
    stop_py_spy,
    stop_server,
    summarize_collapsed,
    system_cpu_seconds,
    table,
    wait_for_quiet,
    write_project,
)

P99_TARGET_MS = 20.0
SEARCH_TARGET_MS = 50.0

WORKFLOW_SOURCE = '''\
"""Benchmark workflow written by benchmarks/fanout.py (temporary project)."""
import asyncio
import time

from flareflow import Run, workflow


@workflow("fanout")
async def fanout(run: Run, cfg=None):
    cfg = cfg or {}
    steps = int(cfg.get("steps", 100))
    rate = float(cfg.get("rate", 200.0))  # events/s; every step commits 2 events
    if cfg.get("wait_go", True):
        await run.wait_for_event("go")
    interval = 2.0 / rate
    start = time.monotonic()
    for i in range(steps):
        delay = start + i * interval - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        await run.step("tick", time.time)  # result: wall-clock stamp just before the commit
    return steps
'''


# ================================================================================================
# client worker process
# ================================================================================================
def _parse_at(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


async def _worker_main(cfg: dict[str, Any]) -> None:
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed

    url = cfg["ws_url"]
    headers = {"authorization": f"Bearer {cfg['token']}"}
    compression = "deflate" if cfg["compression"] == "deflate" else None
    n = cfg["clients"]
    inbox: list[list[tuple[float, str | bytes]]] = [[] for _ in range(n)]
    ready = 0
    all_ready = asyncio.Event()
    closed_codes: list[int | None] = [None] * n
    stop = asyncio.Event()

    async def client(i: int) -> None:
        nonlocal ready
        sink = inbox[i]
        append = sink.append
        clock = time.time
        async with connect(url, additional_headers=headers, max_size=None, compression=compression,
                           ping_interval=None, open_timeout=30, max_queue=None) as ws:
            first = await ws.recv()
            append((clock(), first))
            ready += 1
            if ready == n:
                all_ready.set()
            try:
                async for message in ws:
                    append((clock(), message))
            except ConnectionClosed:
                pass
            closed_codes[i] = ws.close_code

    tasks = [asyncio.ensure_future(client(i)) for i in range(n)]
    connecting = asyncio.ensure_future(all_ready.wait())
    done, _ = await asyncio.wait([connecting, *tasks], return_when=asyncio.FIRST_COMPLETED)
    if connecting not in done:
        for task in done:
            if task.exception() is not None:
                print("error " + repr(task.exception()), flush=True)
                return
    await connecting
    # A client keeps every frame until the end: with the cyclic GC on, its full collections over a
    # growing heap would pause the receiving loop (and show up as server latency). Nothing here
    # makes reference cycles, so the GC is off while measuring.
    gc.collect()
    gc.disable()
    print("ready", flush=True)
    cpu0, wall0 = time.process_time(), time.perf_counter()

    async def deadline() -> None:
        await asyncio.sleep(cfg["max_seconds"])
        stop.set()

    watchdog = asyncio.ensure_future(deadline())
    waiter = asyncio.ensure_future(stop.wait())
    everything = asyncio.ensure_future(asyncio.gather(*tasks, return_exceptions=True))
    await asyncio.wait({everything, waiter}, return_when=asyncio.FIRST_COMPLETED)
    aborted = not everything.done()
    if aborted:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    watchdog.cancel()
    cpu = (time.process_time() - cpu0) / max(1e-9, time.perf_counter() - wall0)
    print("finished", flush=True)
    errors = [repr(r) for r in (everything.result() if everything.done() else [])
              if isinstance(r, BaseException)]

    # -- decode after the fact ------------------------------------------------------------------
    precise = array.array("d")   # step.completed: receipt - step result stamp (ms)
    at_based = array.array("d")  # every step event: receipt - at (ms)
    completed_at = array.array("d")  # commit stamps of step.completed (for the rate and timeline)
    gaps = dupes = frames = step_frames = 0
    finished = 0
    first_commit, last_commit, first_recv, last_recv = math.inf, -math.inf, math.inf, -math.inf
    for sink in inbox:
        last_seq = 0
        for t, raw in sink:
            frames += 1
            event = json.loads(raw)
            seq = event.get("seq", 0)
            if seq != last_seq + 1:
                if seq <= last_seq:
                    dupes += 1
                else:
                    gaps += 1
            last_seq = max(last_seq, seq)
            kind = event.get("type")
            if kind in ("run.completed", "run.failed", "run.cancelled"):
                finished += 1
            if kind not in ("step.started", "step.completed"):
                continue
            step_frames += 1
            at = _parse_at(event["at"])
            at_based.append((t - at) * 1000)
            if kind == "step.completed":
                stamp = float(event["result"])
                precise.append((t - stamp) * 1000)
                completed_at.append(stamp)
                first_commit = min(first_commit, stamp)
                last_commit = max(last_commit, stamp)
            first_recv = min(first_recv, t)
            last_recv = max(last_recv, t)
    out = Path(cfg["out"])
    with open(out.with_suffix(".precise"), "wb") as handle:
        precise.tofile(handle)
    with open(out.with_suffix(".at"), "wb") as handle:
        at_based.tofile(handle)
    with open(out.with_suffix(".stamps"), "wb") as handle:
        completed_at.tofile(handle)
    print("result " + json.dumps({
        "frames": frames, "step_frames": step_frames, "gaps": gaps, "dupes": dupes, "finished": finished,
        "clients": n, "aborted": aborted, "errors": errors[:3], "cpu": cpu,
        "close_codes": sorted({str(c) for c in closed_codes}),
        "first_commit": first_commit, "last_commit": last_commit,
        "first_recv": first_recv, "last_recv": last_recv,
    }), flush=True)


def worker_entry(raw: str) -> int:
    asyncio.run(_worker_main(json.loads(raw)))
    return 0


# ================================================================================================
# parent
# ================================================================================================
@dataclass
class Phase:
    label: str
    rate: float            # requested events/s
    steps: int
    events: int = 0        # step events committed (2 per step)
    achieved: float = 0.0  # committed step events/s, from the commit stamps
    delivered: float = 0.0  # step-event frames/s received by all clients together
    precise: array.array[float] = field(default_factory=lambda: array.array("d"))
    at_based: array.array[float] = field(default_factory=lambda: array.array("d"))
    stamps: array.array[float] = field(default_factory=lambda: array.array("d"))
    duration: float = 0.0
    server_cpu: float = 0.0  # share of one core
    client_cpu: list[float] = field(default_factory=list)  # share of one core, per client process
    machine_busy: float = 0.0  # cores busy on the whole machine during the phase
    server_cpu_s: float = 0.0  # server CPU seconds during the phase
    frames: int = 0  # step-event frames received by all clients
    windows: list[tuple[float, float, float]] = field(default_factory=list)  # (start, end, others' cores)
    complete: bool = False
    aborted: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def others(self) -> float:
        """Cores used by other processes (the whole machine minus the server and the clients)."""
        return self.machine_busy - self.server_cpu - sum(self.client_cpu)

    def quiet(self, threshold: float) -> tuple[array.array[float], float]:
        """Precise latencies of events committed while other processes used < ``threshold`` cores.

        Returns (those latencies, their share of all samples). Windows come from a 0.5 s sampler.
        """
        out: array.array[float] = array.array("d")
        if not self.windows or not len(self.stamps):
            return out, 0.0
        starts = [w[0] for w in self.windows]
        quiet = [w[2] < threshold for w in self.windows]
        for stamp, latency in zip(self.stamps, self.precise, strict=True):
            i = bisect.bisect_right(starts, stamp) - 1
            if 0 <= i < len(quiet) and stamp < self.windows[i][1] and quiet[i]:
                out.append(latency)
        return out, len(out) / len(self.precise)

    def p(self, pct: float, which: str = "precise") -> float:
        values = self.precise if which == "precise" else self.at_based
        return percentile(values, pct) if len(values) else math.inf

    @property
    def ok_p99(self) -> float:
        return self.p(99) if self.complete and not self.aborted else math.inf


class Bench:
    def __init__(self, args: argparse.Namespace, root: Path) -> None:
        self.args = args
        self.root = root
        self.token = "bench-" + secrets.token_hex(12)
        self.project = write_project(root / "project", WORKFLOW_SOURCE, sync=args.sync)
        self.server: Any = None
        self.url = ""
        self.http: Any = None

    async def __aenter__(self) -> Bench:
        import httpx

        self.server, self.url, self.server_log = start_server(self.project, self.token)
        self.http = httpx.AsyncClient(base_url=self.url, headers={"authorization": f"Bearer {self.token}"},
                                      timeout=30)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.http is not None:
            await self.http.aclose()
        if self.server is not None:
            code = stop_server(self.server)
            if code not in (0, None, -2, 130):
                print(f"  (server exited with {code}; last output: {self.server_log[-5:]})")

    @staticmethod
    async def _sample_others(pids: list[int], windows: list[tuple[float, float, float]],
                             period: float = 0.5) -> None:
        """Every ``period`` s: (start, end, cores used by processes other than ``pids``) into ``windows``."""
        def snapshot() -> tuple[float, float, float]:
            return time.time(), system_cpu_seconds()[0], sum(proc_cpu_seconds(p) for p in pids)

        last = snapshot()
        while True:
            await asyncio.sleep(period)
            now = snapshot()
            span = now[0] - last[0]
            if span > 0:
                windows.append((last[0], now[0], ((now[1] - last[1]) - (now[2] - last[2])) / span))
            last = now

    async def phase(self, label: str, rate: float, steps: int, *, profile: Path | None = None) -> Phase:
        args = self.args
        ph = Phase(label, rate, steps)
        self.phases_run = getattr(self, "phases_run", 0) + 1
        tag = f"phase{self.phases_run}"
        response = await self.http.post("/runs", json={"workflow": "fanout", "input": {"steps": steps, "rate": rate}})
        response.raise_for_status()
        run_id = response.json()["id"]
        ws_url = "ws" + self.url[4:] + f"/runs/{run_id}/ws?after=0"
        planned = steps * 2 / rate
        max_seconds = planned * 3 + 15
        procs = max(1, min(args.client_procs, args.clients))
        shares = [args.clients // procs + (1 if i < args.clients % procs else 0) for i in range(procs)]
        workers = []
        for i, share in enumerate(shares):
            cfg = {"ws_url": ws_url, "token": self.token, "clients": share, "compression": args.compression,
                   "max_seconds": max_seconds, "out": str(self.root / f"w{i}-{tag}.bin")}
            proc = await asyncio.create_subprocess_exec(
                sys.executable, __file__, "--client-worker", json.dumps(cfg),
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
            workers.append(proc)
        try:
            for proc in workers:
                assert proc.stdout is not None
                line = (await asyncio.wait_for(proc.stdout.readline(), 60)).decode().strip()
                if line != "ready":
                    err = (await proc.stderr.read()).decode() if proc.stderr else ""
                    raise RuntimeError(f"client worker failed to connect: {line} {err[-2000:]}")
            if args.quiet_wait > 0:  # all clients connected and idle: start in a quiet moment
                waited, busy = await asyncio.to_thread(wait_for_quiet, args.quiet_wait, args.quiet_threshold)
                ph.notes.append(f"waited {waited:.1f} s for quiet ({busy:.2f} cores busy)")
            spy = start_py_spy(self.server.pid, profile) if profile is not None else None
            cpu0 = proc_cpu_seconds(self.server.pid)
            busy0, _ = system_cpu_seconds()
            sampler = asyncio.ensure_future(self._sample_others([self.server.pid] + [w.pid for w in workers],
                                                                ph.windows))
            t0 = time.perf_counter()
            go = await self.http.post(f"/runs/{run_id}/events", json={"type": "go", "payload": None})
            go.raise_for_status()
            for proc in workers:  # "finished": sockets closed; the workers decode after this line
                assert proc.stdout is not None
                line = (await asyncio.wait_for(proc.stdout.readline(), max_seconds + 60)).decode().strip()
                if line != "finished":
                    err = (await proc.stderr.read()).decode() if proc.stderr else ""
                    raise RuntimeError(f"client worker failed: {line} {err[-2000:]}")
            ph.duration = time.perf_counter() - t0
            sampler.cancel()
            cpu1 = proc_cpu_seconds(self.server.pid)
            busy1, _ = system_cpu_seconds()
            if spy is not None:
                err = stop_py_spy(spy)
                if profile is not None and not profile.exists():
                    ph.notes.append(f"py-spy wrote nothing: {err.strip()[-300:]}")
            results = []
            for proc in workers:
                assert proc.stdout is not None
                line = (await asyncio.wait_for(proc.stdout.readline(), 120)).decode().strip()
                if not line.startswith("result "):
                    err = (await proc.stderr.read()).decode() if proc.stderr else ""
                    raise RuntimeError(f"client worker failed: {line} {err[-2000:]}")
                results.append(json.loads(line[7:]))
            for proc in workers:
                await proc.wait()
        finally:
            for proc in workers:
                if proc.returncode is None:
                    proc.kill()
                    await proc.wait()
        status = (await self.http.get("/runs?limit=5")).json()
        run_status = next((r["status"] for r in status["runs"] if r["id"] == run_id), "?")
        if run_status not in ("completed", "failed", "cancelled"):
            await self.http.post(f"/runs/{run_id}/cancel", json={"reason": "benchmark phase cut off"})
        for i in range(len(workers)):
            base = self.root / f"w{i}-{tag}.bin"
            for suffix, target in ((".precise", ph.precise), (".at", ph.at_based), (".stamps", ph.stamps)):
                path = base.with_suffix(suffix)
                count = path.stat().st_size // 8
                with open(path, "rb") as handle:
                    target.fromfile(handle, count)
                path.unlink()
        ph.aborted = any(r["aborted"] for r in results)
        gaps = sum(r["gaps"] for r in results)
        dupes = sum(r["dupes"] for r in results)
        finished = sum(r["finished"] for r in results)
        ph.events = steps * 2
        expected_frames = ph.events * args.clients
        step_frames = sum(r["step_frames"] for r in results)
        ph.complete = (not ph.aborted and gaps == 0 and dupes == 0 and finished == args.clients
                       and step_frames == expected_frames)
        if not ph.complete:
            ph.notes.append(f"INCOMPLETE: {step_frames}/{expected_frames} step frames, gaps={gaps}, "
                            f"dupes={dupes}, finished={finished}/{args.clients}, aborted={ph.aborted}, "
                            f"run={run_status}, errors={[e for r in results for e in r['errors']][:2]}")
        first_commit = min(r["first_commit"] for r in results)
        last_commit = max(r["last_commit"] for r in results)
        first_recv = min(r["first_recv"] for r in results)
        last_recv = max(r["last_recv"] for r in results)
        # step.completed stamps: N stamps span N-1 intervals of 2 events each
        ph.achieved = (2 * (steps - 1)) / (last_commit - first_commit) if last_commit > first_commit else math.nan
        ph.delivered = step_frames / (last_recv - min(first_commit, first_recv))
        ph.server_cpu = (cpu1 - cpu0) / ph.duration
        ph.server_cpu_s = cpu1 - cpu0
        ph.frames = step_frames
        ph.client_cpu = [r["cpu"] for r in results]
        ph.machine_busy = (busy1 - busy0) / ph.duration
        return ph


def fmt_us(ph: Phase) -> str:
    """Server CPU µs per delivered frame: a machine-load-robust cost figure."""
    return f"{ph.server_cpu_s / ph.frames * 1e6:.1f}" if ph.frames else "-"


def fmt_ms(value: float) -> str:
    return "-" if not math.isfinite(value) else f"{value:.2f}"


def timeline(ph: Phase, segments: int = 10) -> list[list[str]]:
    """p50/p99 of the precise latency over consecutive slices of the run (by commit time), beside
    the cores other processes used then (mean of the 0.5 s sampler windows in the slice)."""
    if not len(ph.stamps):
        return []
    pairs = sorted(zip(ph.stamps, ph.precise, strict=True))
    size = max(1, len(pairs) // segments)
    t_start = pairs[0][0]
    rows = []
    for s in range(segments):
        chunk = pairs[s * size:(s + 1) * size] if s < segments - 1 else pairs[s * size:]
        if not chunk:
            continue
        lat = [c[1] for c in chunk]
        lo, hi = chunk[0][0], chunk[-1][0]
        others = [w[2] for w in ph.windows if w[1] > lo and w[0] < hi]
        rows.append([f"{lo - t_start:6.1f}-{hi - t_start:.1f} s", fmt_ms(percentile(lat, 50)),
                     fmt_ms(percentile(lat, 99)), fmt_ms(max(lat)),
                     f"{max(0.0, sum(others) / len(others)):.2f}" if others else "-"])
    return rows


QUIET_CORES = 0.25  # "quiet" windows: other processes used fewer cores than this


def quiet_cell(ph: Phase) -> str:
    values, share = ph.quiet(QUIET_CORES)
    if not len(values):
        return "- (0%)"
    return f"{fmt_ms(percentile(values, 50))} / {fmt_ms(percentile(values, 99))} ({share * 100:.0f}%)"


def phase_row(ph: Phase, clients: int) -> list[str]:
    return [ph.label, f"{ph.rate:,.0f}", f"{ph.achieved:,.0f}", f"{ph.events:,}", f"{ph.delivered:,.0f}",
            fmt_ms(ph.p(50)), fmt_ms(ph.p(99)), fmt_ms(ph.p(99.9)), fmt_ms(ph.p(100)), fmt_ms(ph.p(99, "at")),
            quiet_cell(ph), f"{ph.server_cpu * 100:.0f}%", fmt_us(ph),
            "/".join(f"{c * 100:.0f}%" for c in ph.client_cpu), f"{max(0.0, ph.others):.2f}",
            "yes" if ph.complete else "NO"]


PHASE_HEADERS = ["phase", "req ev/s", "achieved ev/s", "events", "delivered frames/s",
                 "p50 ms", "p99 ms", "p99.9 ms", "max ms", "at-p99", "quiet p50/p99 (share)",
                 "server CPU", "µs/frame", "client CPU", "others", "complete"]


async def run(args: argparse.Namespace, root: Path) -> int:
    async with Bench(args, root) as bench:
        print(f"server: {bench.url} (pid {bench.server.pid}), project {bench.project}\n")
        # warm-up: a small run so imports, first sqlite files and the clients' code paths are hot
        await bench.phase("warmup", args.rate, 50)

        steps = max(1, args.events // 2)
        profile = root / "server-profile.txt" if args.profile else None
        print(f"main phase: {steps * 2:,} step events at {args.rate:g} events/s to {args.clients} clients "
              f"(~{steps * 2 / args.rate:.0f} s) ...", flush=True)
        main = await bench.phase("main", args.rate, steps, profile=profile)
        phases = [main]
        print()
        print(table(PHASE_HEADERS, [phase_row(main, args.clients)]))
        for note in main.notes:
            print("  " + note)
        print("\nmain phase, latency over time (precise, by commit time)")
        print(table(["slice", "p50 ms", "p99 ms", "max ms", "others' cores"], timeline(main)))
        print()

        best: Phase | None = None
        if not args.skip_search:
            print(f"search: highest rate with p99 < {SEARCH_TARGET_MS:g} ms "
                  f"(phases of ~{args.search_seconds:g} s) ...", flush=True)
            tried: dict[float, Phase] = {}

            retried: list[Phase] = []

            async def attempt(rate: float) -> Phase:
                steps_r = int(max(args.search_min_events, min(args.search_max_events,
                                                              rate * args.search_seconds)) // 2)
                ph = await bench.phase(f"{rate:,.0f}/s", rate, steps_r)
                report(rate, ph)
                saturated = ph.achieved < 0.95 * rate  # the server could not even commit at this rate
                if (ph.ok_p99 >= SEARCH_TARGET_MS and ph.others > QUIET_CORES and not saturated
                        and args.search_retry):
                    # missed while other processes were busy: measure once more, keep the better one
                    again = await bench.phase(f"{rate:,.0f}/s (retry)", rate, steps_r)
                    report(rate, again)
                    if again.ok_p99 < ph.ok_p99:
                        ph, again = again, ph
                    retried.append(again)
                tried[rate] = ph
                return ph

            def report(rate: float, ph: Phase) -> None:
                print(f"  {rate:8,.0f} ev/s requested -> {ph.achieved:8,.0f} achieved, "
                      f"p99 {fmt_ms(ph.ok_p99)} ms, server CPU {ph.server_cpu * 100:.0f}%, "
                      f"others {max(0.0, ph.others):.2f} cores"
                      + ("" if ph.complete else "  (incomplete/cut off)"), flush=True)

            deadline = time.monotonic() + args.search_budget
            passing: Phase | None = None
            failing: Phase | None = None
            if main.ok_p99 < SEARCH_TARGET_MS:
                passing = main
            elif main.others > QUIET_CORES and main.complete:
                # the main phase missed while other processes were busy: do not let that set the
                # direction; re-measure its rate as a short search phase (which retries once itself)
                first = await attempt(args.rate)
                passing, failing = (first, None) if first.ok_p99 < SEARCH_TARGET_MS else (None, first)
            else:
                failing = main
            rate = args.rate
            for _ in range(args.search_phases):
                if time.monotonic() > deadline:
                    print("  (search time budget used up)")
                    break
                rate = rate * 2 if failing is None else rate / 2
                ph = await attempt(rate)
                if ph.ok_p99 < SEARCH_TARGET_MS:
                    passing = ph
                    if failing is not None:
                        break
                else:
                    failing = ph
                    if passing is not None:
                        break
            if passing is not None and failing is not None and time.monotonic() < deadline:
                mid = math.sqrt(passing.rate * failing.rate)
                ph = await attempt(mid)
                if ph.ok_p99 < SEARCH_TARGET_MS:
                    passing = ph
            best = passing
            phases += [tried[r] for r in sorted(tried)] + retried
            print()
            print(table(PHASE_HEADERS, [phase_row(ph, args.clients) for ph in phases]))
            for ph in phases[1:]:
                for note in ph.notes:
                    print(f"  {ph.label}: {note}")
            print()

        if profile is not None and profile.exists():
            rows = summarize_collapsed(profile, args.profile_top)
            print("server profile during the main phase (py-spy, % of the server's busy samples)")
            print(table(["function", "self %", "total %"], [[n, f"{s:.1f}", f"{t:.1f}"] for n, s, t in rows]))
            if args.keep_profile:
                kept = Path(args.keep_profile)
                shutil.copy(profile, kept)
                print(f"  raw stacks kept in {kept}")
            print()

        print("Targets")
        verdicts = []
        ok_main = main.complete and main.p(99) < P99_TARGET_MS
        verdicts.append([f"p99 latency at {args.rate:g} ev/s x {args.clients} clients "
                         f"({main.delivered:,.0f} frames/s delivered)",
                         f"{fmt_ms(main.p(99))} ms", f"< {P99_TARGET_MS:g} ms", "PASS" if ok_main else "FAIL"])
        quiet_values, quiet_share = main.quiet(QUIET_CORES)
        if len(quiet_values):
            quiet_p99 = percentile(quiet_values, 99)
            verdicts.append([f"  (info) same, only events committed while others used < {QUIET_CORES:g} cores "
                             f"({quiet_share * 100:.0f}% of them)", f"{fmt_ms(quiet_p99)} ms",
                             f"< {P99_TARGET_MS:g} ms", "pass" if quiet_p99 < P99_TARGET_MS else "fail"])
        if not args.skip_search:
            if best is not None:
                verdicts.append([f"highest rate with p99 < {SEARCH_TARGET_MS:g} ms (achieved ev/s; "
                                 f"x{args.clients} = frames/s)",
                                 f"{best.achieved:,.0f} ev/s ({best.achieved * args.clients:,.0f} frames/s)",
                                 "(report)", f"p99 {fmt_ms(best.p(99))} ms"])
            else:
                verdicts.append([f"highest rate with p99 < {SEARCH_TARGET_MS:g} ms", "none found", "(report)",
                                 "-"])
        print(table(["measure", "value", "target", "verdict"], verdicts))
        busy_note = [ph for ph in phases if ph.others > 0.25]
        if busy_note:
            print(f"\nWARNING: other processes kept > 0.25 core busy during {', '.join(p.label for p in busy_note)} "
                  "(column 'others'): on a 2-core box that delays the server, so latencies there are "
                  "pessimistic; the µs/frame column is much less affected.")
        print(f"load average at the end: {load_average()}")
        return 0 if ok_main else 1


def main() -> int:
    if len(sys.argv) == 3 and sys.argv[1] == "--client-worker":
        return worker_entry(sys.argv[2])
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=10_000, help="step events in the main run (default 10000)")
    parser.add_argument("--rate", type=float, default=200.0, help="main run: committed events/s (default 200)")
    parser.add_argument("--clients", type=int, default=100, help="WebSocket clients (default 100)")
    parser.add_argument("--client-procs", type=int, default=2,
                        help="processes the clients are spread over (default 2)")
    parser.add_argument("--compression", choices=("deflate", "none"), default="deflate",
                        help="offer permessage-deflate like flareflow.client and browsers do (default), "
                             "or not")
    parser.add_argument("--sync", choices=("normal", "full"), default="normal",
                        help="[tool.flareflow.local].sync of the temp project (default normal, the default)")
    parser.add_argument("--quiet-wait", type=float, default=5.0,
                        help="before each phase, wait up to this many seconds for the machine to be quiet "
                             "(shared boxes; 0 = never wait; default 5)")
    parser.add_argument("--quiet-threshold", type=float, default=0.3,
                        help="'quiet' = fewer busy cores than this over 0.5 s (default 0.3)")
    parser.add_argument("--skip-search", action="store_true", help="only the main phase")
    parser.add_argument("--search-seconds", type=float, default=4.0, help="planned length of a search phase")
    parser.add_argument("--search-min-events", type=int, default=1000)
    parser.add_argument("--search-max-events", type=int, default=4000)
    parser.add_argument("--search-phases", type=int, default=5, help="most doubling/halving phases (default 5)")
    parser.add_argument("--search-budget", type=float, default=75.0,
                        help="start no new search phase after this many seconds of searching (default 75)")
    parser.add_argument("--no-search-retry", dest="search_retry", action="store_false",
                        help="do not re-measure a search phase that missed while other processes were busy")
    parser.add_argument("--profile", action="store_true", help="py-spy the server during the main phase")
    parser.add_argument("--profile-top", type=int, default=30)
    parser.add_argument("--keep-profile", default=None, help="copy py-spy's raw stacks to this file")
    parser.add_argument("--dir", default=None, help="parent directory for temp state (default: system temp)")
    args = parser.parse_args()
    if args.events < 2 or args.rate <= 0 or args.clients < 1 or args.client_procs < 1:
        parser.error("sizes must be positive")

    root = Path(tempfile.mkdtemp(prefix="flareflow-fanout-", dir=args.dir))
    try:
        import importlib.metadata as md

        env = environment(root)
        env.append(("server libs", ", ".join(f"{p} {md.version(p)}" for p in
                                             ("uvicorn", "starlette", "websockets"))))
        env.append(("load average", f"{load_average()} (before start); other processes busy: "
                                    f"{busy_cores():.2f} cores (1 s sample)"))
        print_env(env)
        print(f"Workload: one run, {args.events:,} step events at {args.rate:g} events/s, {args.clients} WebSocket "
              f"clients in {args.client_procs} process(es), compression={args.compression}, sync={args.sync}\n")
        return asyncio.run(run(args, root))
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
