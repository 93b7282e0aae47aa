"""Helpers shared by the benchmark scripts (environment banner, statistics, tables)."""

from __future__ import annotations

import os
import platform
import sqlite3
import statistics
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path


def fs_type(path: str | Path) -> str:
    """The filesystem type of ``path`` (from /proc/mounts; '?' when unknown)."""
    try:
        real = os.path.realpath(path)
        best, kind = "", "?"
        with open("/proc/mounts", encoding="utf-8") as mounts:
            for line in mounts:
                parts = line.split()
                inside = len(parts) >= 3 and (real == parts[1] or real.startswith(parts[1].rstrip("/") + "/"))
                if inside and len(parts[1]) > len(best):
                    best, kind = parts[1], parts[2]
        return kind
    except OSError:
        return "?"


def environment(temp_root: str | Path) -> list[tuple[str, str]]:
    try:
        import flareflow

        ff = f"{getattr(flareflow, '__version__', '?')} ({Path(flareflow.__file__).parent})"
    except ImportError:  # pragma: no cover
        ff = "not installed"
    return [
        ("python", f"{platform.python_version()} ({platform.python_implementation()}, {sys.executable})"),
        ("sqlite", f"{sqlite3.sqlite_version} (python module sqlite3)"),
        ("flareflow", ff),
        ("platform", f"{platform.platform()}, {os.cpu_count()} CPUs"),
        ("temp dir", f"{temp_root} (filesystem: {fs_type(temp_root)})"),
    ]


def print_env(rows: Sequence[tuple[str, str]]) -> None:
    print("Environment")
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"  {key.ljust(width)}  {value}")
    print()


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (pct in 0..100)."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(1, -(-len(ordered) * pct // 100))  # ceil
    return ordered[int(rank) - 1]


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def table(headers: Sequence[str], rows: Sequence[Sequence[object]], *, right: Sequence[bool] | None = None) -> str:
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    align = right if right is not None else [False] + [True] * (len(headers) - 1)
    lines = []
    for n, row in enumerate(cells):
        parts = [c.rjust(w) if a else c.ljust(w) for c, w, a in zip(row, widths, align, strict=True)]
        lines.append("  " + "  ".join(parts))
        if n == 0:
            lines.append("  " + "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def fsync_probe(directory: str | Path, count: int = 100) -> float:
    """Mean µs of write(4 KiB)+fsync on a scratch file in ``directory`` (what one durable commit costs)."""
    import time

    path = Path(directory) / ".fsync-probe"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        block = b"x" * 4096
        start = time.perf_counter()
        for _ in range(count):
            os.write(fd, block)
            os.fsync(fd)
        return (time.perf_counter() - start) / count * 1e6
    finally:
        os.close(fd)
        path.unlink(missing_ok=True)


# -- helpers for the benchmarks that drive a real `flareflow serve --local` process -------------
# (added for fanout.py and throughput.py; functions only, nothing above changed)

SERVER_URL_PATTERN = r"https?://[0-9.]+:[0-9]+"


def write_project(root: str | Path, workflows_source: str, *, sync: str = "normal",
                  name: str = "flareflow-bench") -> Path:
    """A throw-away flareflow project: pyproject with [tool.flareflow] and workflows/bench.py."""
    root = Path(root)
    (root / "workflows").mkdir(parents=True, exist_ok=True)
    (root / "pyproject.toml").write_text(
        f'[project]\nname = "{name}"\nversion = "0"\n\n'
        '[tool.flareflow]\nworkflows = ["workflows"]\n\n'
        f'[tool.flareflow.local]\nsync = "{sync}"\n',
        encoding="utf-8",
    )
    (root / "workflows" / "bench.py").write_text(workflows_source, encoding="utf-8")
    return root


#: ``wrangler`` with ``dev`` swapped for the real-workerd harness (harness/README.md); test-only.
HARNESS_WRANGLER = Path(__file__).resolve().parents[1] / "harness" / "bin" / "wrangler"


def start_server(project: str | Path, token: str, *, timeout: float = 30.0, env: dict[str, str] | None = None,
                 host: str = "local") -> tuple[subprocess.Popen[str], str, list[str]]:
    """Start a server on loopback on a free port; return (Popen, base URL, output lines).

    ``host="local"``: ``flareflow serve --local``. ``host="workerd"``: ``flareflow serve`` -- the
    user's command, which writes the token into ``.dev.vars`` and migrates the local D1 -- with only
    ``wrangler dev`` swapped for the real-workerd harness (needs ``harness/node_modules``).
    The server runs in its own process group (`stop_server` ends all of it: wrangler, node, workerd),
    and its output keeps being drained into the returned list by a daemon thread (so a chatty server
    can never block on a full pipe); show it when something goes wrong.
    """
    import re
    import shutil
    import threading
    import time

    exe = shutil.which("flareflow", path=str(Path(sys.executable).parent)) or shutil.which("flareflow")
    serve = ["serve", "--local"] if host == "local" else ["serve"]
    cmd = ([exe] if exe else [sys.executable, "-m", "flareflow"]) + [
        *serve, "--host", "127.0.0.1", "--port", "0", "--token", token, "-C", str(project)]
    child_env = {**os.environ, "COLUMNS": "300", "NO_COLOR": "1", "PYTHONUNBUFFERED": "1", **(env or {})}
    pattern = SERVER_URL_PATTERN
    if host == "workerd":
        child_env.update(FLAREFLOW_WRANGLER=str(HARNESS_WRANGLER), WRANGLER_SEND_METRICS="false")
        pattern = r"(?<=flareflow-harness listening on )" + SERVER_URL_PATTERN  # after Pyodide is warm
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            text=True, env=child_env, cwd=str(project), start_new_session=True)
    lines: list[str] = []
    found = threading.Event()
    url: list[str] = []

    def drain() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))
            match = re.search(pattern, line)
            if match and not url:
                url.append(match.group(0))
                found.set()
        found.set()

    threading.Thread(target=drain, daemon=True).start()
    deadline = time.monotonic() + timeout
    while not found.wait(0.05):
        if time.monotonic() > deadline:
            break
    if not url:
        stop_server(proc)
        raise RuntimeError("flareflow serve did not print its URL:\n  " + "\n  ".join(lines[-30:]))
    base = url[0]
    import urllib.request

    while True:  # the URL is printed before uvicorn listens: wait for /health
        try:
            with urllib.request.urlopen(base + "/health", timeout=2) as response:
                if response.status == 200:
                    break
        except OSError:
            pass
        if time.monotonic() > deadline or proc.poll() is not None:
            stop_server(proc)
            raise RuntimeError("flareflow serve never answered /health:\n  " + "\n  ".join(lines[-30:]))
        time.sleep(0.05)
    return proc, base, lines


def stop_server(proc: subprocess.Popen[str], timeout: float = 10.0) -> int | None:
    """SIGINT (graceful: uvicorn shutdown + runtime.close, or wrangler dev stopped), then SIGKILL if it
    hangs; whatever is left of its process group (node, workerd) is killed too. Returns the exit code."""
    import contextlib
    import signal

    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)  # every process a benchmark starts ends with it
    return proc.returncode


def proc_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used so far (Linux /proc; nan if unavailable)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return float("nan")


def system_cpu_seconds() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, all cores summed (from /proc/stat)."""
    try:
        with open("/proc/stat", encoding="ascii") as handle:
            values = [int(v) for v in handle.readline().split()[1:]]
    except (OSError, ValueError):
        return float("nan"), float("nan")
    tick = os.sysconf("SC_CLK_TCK")
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    total = sum(values[:8])
    return (total - idle) / tick, total / tick


def load_average() -> str:
    try:
        with open("/proc/loadavg", encoding="ascii") as handle:
            return " ".join(handle.read().split()[:3])
    except OSError:
        return "?"


def start_py_spy(pid: int, out: str | Path, rate: int = 250) -> subprocess.Popen[str] | None:
    """Sample ``pid`` with py-spy (collapsed stacks into ``out``); None when py-spy is missing."""
    import shutil

    exe = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    if exe is None:
        return None
    return subprocess.Popen([exe, "record", "--pid", str(pid), "--rate", str(rate), "--format", "raw",
                             "--output", str(out), "--nonblocking"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def stop_py_spy(proc: subprocess.Popen[str], timeout: float = 20.0) -> str:
    """Stop a py-spy recorder (SIGINT makes it write its output); returns its stderr."""
    import signal

    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
    try:
        _, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
    return err or ""


def summarize_collapsed(path: str | Path, top: int = 25) -> list[tuple[str, float, float]]:
    """From py-spy raw (collapsed) stacks: [(function, self %, total %)], the ``top`` highest self %.

    ``function`` is ``name (file:line)`` with the file shortened to its last two path parts.
    py-spy (without --idle) keeps only samples where the thread was on CPU, so the percentages are
    shares of the process's busy time, not of wall time.
    """
    import re

    self_count: dict[str, int] = {}
    total_count: dict[str, int] = {}
    samples = 0
    frame_re = re.compile(r"^(.*) \((.*?)(?::(\d+))?\)$")

    def short(frame: str) -> str:
        match = frame_re.match(frame)
        if not match:
            return frame
        name, file, _line = match.groups()
        parts = Path(file).parts
        return f"{name} ({'/'.join(parts[-2:])})"

    with open(path, encoding="utf-8", errors="replace") as handle:
        for line in handle:
            line = line.rstrip("\n")
            if not line:
                continue
            stack, _, count_text = line.rpartition(" ")
            try:
                count = int(count_text)
            except ValueError:
                continue
            samples += count
            frames = [short(f) for f in stack.split(";") if f]
            if not frames:
                continue
            self_count[frames[-1]] = self_count.get(frames[-1], 0) + count
            for frame in set(frames):
                total_count[frame] = total_count.get(frame, 0) + count
    if not samples:
        return []
    names = set(self_count) | set(total_count)
    rows = [(n, 100 * self_count.get(n, 0) / samples, 100 * total_count.get(n, 0) / samples) for n in names]
    rows.sort(key=lambda r: (r[1], r[2]), reverse=True)
    return rows[:top]


def busy_cores(seconds: float = 1.0) -> float:
    """Cores the whole machine kept busy over the next ``seconds`` (call while the benchmark idles)."""
    import time

    busy0, _ = system_cpu_seconds()
    time.sleep(seconds)
    busy1, _ = system_cpu_seconds()
    return (busy1 - busy0) / seconds


def wait_for_quiet(max_wait: float, threshold: float = 0.3, sample: float = 0.5) -> tuple[float, float]:
    """Wait (up to ``max_wait`` s) until the machine uses < ``threshold`` cores over a ``sample`` window.

    For shared machines: starting each batch in a quiet moment makes figures far less noisy. Call
    it while the benchmark itself is idle. Returns (seconds waited, busy cores of the last sample).
    """
    import time

    start = time.monotonic()
    while True:
        busy = busy_cores(sample)
        waited = time.monotonic() - start
        if busy < threshold or waited >= max_wait:
            return waited, busy
