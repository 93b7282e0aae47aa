"""Fault injection at named points of the storage ports, for tests of every host.

A `Faults` holds rules; ``faults.sql(inner, name)`` and ``faults.blobs(inner)`` wrap a host's `Sql`
and `Blobs` ports (the local runtime takes ``LocalRuntime(..., faults=faults)``; the Durable Object
shell takes a ``faults`` class attribute). A rule fails one *site* at one *point*:

Sites are the coordinator's named commits (`flareflow.durable_objects.coordinator.COMMIT_SITES`:
``"step.complete"``, ``"status.change"``, ...), ``"migrate"``, `READ` (a statement outside any
transaction), `BLOB_PUT` and `BLOB_GET`; ``"*"`` matches every site. Points of a commit site:

- ``before``: before the transaction begins; nothing is written.
- ``during``: after the first statement of the write ran, before the others (a multi-statement write
  interrupted half-way); the host rolls the transaction back.
- ``commit``: every statement ran and the COMMIT fails; rolled back, as SQLite does on SQLITE_FULL.
- ``after``: the COMMIT succeeded, then the caller sees the error: an ambiguous outcome, which the
  coordinator must not take for either "written" or "not written".

`READ` and `BLOB_GET` have ``before``; `BLOB_PUT` has ``before`` (nothing stored) and ``after``
(stored, then the error). The error raised is ``StorageError("database or disk is full")`` unless
the rule names another. A rule fires ``times`` times; ``times=None`` keeps firing until `clear`
(the disk stays full until someone frees it). ``fired`` records (site, point, name) of every fault.

Standard library only and beside the ports it wraps, so the same wrapper serves the local runtime
and the Durable Object shell under workerd. It is inert unless a host is handed a `Faults`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from ..engine.errors import StorageError
from .ports import Blobs, Row, Sql

T = TypeVar("T")

ANY = "*"
#: A statement outside any transaction (reads, mostly).
READ = "read"
BLOB_PUT = "blob.put"
BLOB_GET = "blob.get"
POINTS = ("before", "during", "commit", "after")
DISK_FULL = "database or disk is full"


def disk_full() -> BaseException:
    """What a full store raises through the ports: a `StorageError`."""
    return StorageError(DISK_FULL)


@dataclass
class Rule:
    """Fail ``site`` at ``point`` (for objects named ``name``, or any), ``times`` times (None: always)."""

    site: str
    point: str
    times: int | None = 1
    name: str | None = None
    error: Callable[[], BaseException] = disk_full
    fired: int = 0

    def matches(self, site: str, point: str, name: str) -> bool:
        return (self.site in (ANY, site) and self.point == point
                and (self.name is None or self.name == name)
                and (self.times is None or self.fired < self.times))


@dataclass
class Faults:
    """The rules, and the record of every fault that fired."""

    rules: list[Rule] = field(default_factory=list)
    fired: list[tuple[str, str, str]] = field(default_factory=list)

    def fail(self, site: str, point: str = "commit", *, times: int | None = 1, name: str | None = None,
             error: Callable[[], BaseException] | None = None) -> Rule:
        """Add a rule; see the module docstring for sites and points."""
        if point not in POINTS:
            raise ValueError(f"point must be one of {', '.join(POINTS)}, got {point!r}")
        rule = Rule(site, point, times, name, error if error is not None else disk_full)
        self.rules.append(rule)
        return rule

    def clear(self) -> None:
        """Remove every rule: the store accepts writes again."""
        self.rules.clear()

    def take(self, site: str, point: str, name: str) -> Rule | None:
        """The first matching rule, counted as fired; None when nothing fails here."""
        for rule in self.rules:
            if rule.matches(site, point, name):
                rule.fired += 1
                self.fired.append((site, point, name))
                return rule
        return None

    def check(self, site: str, point: str, name: str) -> None:
        """Raise the error of a matching rule, if any."""
        rule = self.take(site, point, name)
        if rule is not None:
            raise rule.error()

    def sql(self, inner: Sql, name: str = "") -> FaultySql:
        return FaultySql(inner, self, name)

    def blobs(self, inner: Blobs, name: str = "") -> FaultyBlobs:
        return FaultyBlobs(inner, self, name)


class FaultySql:
    """A `Sql` port that fails where its `Faults` say and otherwise forwards to ``inner``."""

    def __init__(self, inner: Sql, faults: Faults, name: str = "") -> None:
        self.inner = inner
        self.faults = faults
        self.name = name
        self._depth = 0
        self._during: Rule | None = None

    def exec(self, sql: str, *params: object) -> list[Row]:
        if self._depth == 0:
            self.faults.check(READ, "before", self.name)
        rows = self.inner.exec(sql, *params)
        rule, self._during = self._during, None
        if rule is not None:  # the first statement of the write ran; the rest never will
            raise rule.error()
        return rows

    def transaction(self, fn: Callable[[], T], *, durable: bool = True, site: str = "") -> T:
        if self._depth:  # nested: part of the enclosing write
            return self.inner.transaction(fn, durable=durable, site=site)
        self.faults.check(site, "before", self.name)
        during = self.faults.take(site, "during", self.name)
        failing = self.faults.take(site, "commit", self.name)

        def body() -> T:
            self._depth += 1
            self._during = during
            try:
                result = fn()
                late, self._during = self._during, None
                for rule in (late, failing):  # a write of no statements fails "during" at its end
                    if rule is not None:
                        raise rule.error()
                return result
            finally:
                self._during = None
                self._depth -= 1

        result = self.inner.transaction(body, durable=durable, site=site)
        self.faults.check(site, "after", self.name)
        return result


class FaultyBlobs:
    """A `Blobs` port that fails where its `Faults` say and otherwise forwards to ``inner``."""

    def __init__(self, inner: Blobs, faults: Faults, name: str = "") -> None:
        self.inner = inner
        self.faults = faults
        self.name = name

    def put(self, key: str, text: str) -> None:
        self.faults.check(BLOB_PUT, "before", self.name)
        self.inner.put(key, text)
        self.faults.check(BLOB_PUT, "after", self.name)

    def get(self, key: str) -> str:
        self.faults.check(BLOB_GET, "before", self.name)
        return self.inner.get(key)


__all__ = ["ANY", "BLOB_GET", "BLOB_PUT", "DISK_FULL", "POINTS", "READ", "Faults", "FaultyBlobs",
           "FaultySql", "Rule", "disk_full"]
