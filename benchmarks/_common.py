"""Helpers shared by the benchmark scripts (environment banner, statistics, tables)."""

from __future__ import annotations

import os
import platform
import sqlite3
import statistics
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
                if len(parts) >= 3 and (real == parts[1] or real.startswith(parts[1].rstrip("/") + "/")):
                    if len(parts[1]) > len(best):
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
