"""What a step attempt prints and logs, captured per attempt on both hosts.

The engine opens a `StepOutput` around every attempt (`capturing`), in a context variable, so two
steps running in parallel -- on the event loop, or in the local runtime's step threads, which run each
call in a copy of the caller's context -- never mix their output. While one is open:

* ``print()`` and anything else written to ``sys.stdout`` / ``sys.stderr`` goes to it, one entry per
  line, instead of to the process's streams (so it never mixes into ``flareflow run --json`` output);
* every `logging` record created -- at the levels your logging configuration lets through (the root
  logger's default is WARNING: ``logging.basicConfig(level=logging.INFO)`` captures INFO too) -- is
  added to it. Records still reach your own handlers; Python's ``lastResort`` (what prints a warning
  when no handler is configured) leaves captured ones out, since the step's logs show them.

An entry is ``{"at": ISO time, "stream": "stdout" | "stderr", "text": line}`` or, for a record,
``{"at", "stream": "log", "level": "WARNING", "logger": name, "text": message}`` (with the formatted
exception when the record has one). An attempt keeps at most `MAX_OUTPUT` bytes of text; past that,
entries are dropped and a last ``log`` entry from the ``flareflow`` logger says how much was left out.

Output written outside any step (the workflow body, other code) passes through unchanged. With
``install(echo=True)`` (the Cloudflare shell: ``wrangler tail`` shows it) captured text is also written
to the process's stream. Only the standard library.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any, Final, TextIO

from .errors import _text
from .events import iso

#: Bytes of text (UTF-8) one attempt keeps.
MAX_OUTPUT: Final = 16 * 1024

STDOUT: Final = "stdout"
STDERR: Final = "stderr"
LOG: Final = "log"
STREAMS: Final = (STDOUT, STDERR, LOG)

#: The attribute marking a `logging.LogRecord` that a step's output took.
_MARK: Final = "flareflow_captured"

_current: contextvars.ContextVar[StepOutput | None] = contextvars.ContextVar("flareflow_output", default=None)
_echo = False
_logging_installed = False


class StepOutput:
    """The entries of one attempt. Thread-safe: a sync step may write from a step thread."""

    def __init__(self, now: Callable[[], float], limit: int = MAX_OUTPUT,
                 listener: Callable[[dict[str, Any]], None] | None = None) -> None:
        self._now = now
        self._limit = limit
        #: called with a copy of every entry as it is kept (any thread; it must be quick): live output
        self._listener = listener
        self._lock = threading.Lock()
        self._entries: list[dict[str, Any]] = []
        self._partial: dict[str, tuple[float, str]] = {}
        self._size = 0
        self._dropped = 0
        self.closed = False

    def write(self, stream: str, text: str) -> None:
        """Text written to ``stream``: each completed line is an entry; a partial line waits for the rest."""
        with self._lock:
            if self.closed or not text:
                return
            at, pending = self._partial.pop(stream, (self._now(), ""))
            lines = (pending + text).split("\n")
            for line in lines[:-1]:
                self._add({"at": at, "stream": stream, "text": line})
                at = self._now()
            if lines[-1]:
                if len(lines[-1]) > self._limit:  # a huge write without a newline: no need to hold it all
                    self._add({"at": at, "stream": stream, "text": lines[-1]})
                else:
                    self._partial[stream] = (at, lines[-1])

    def log(self, record: logging.LogRecord) -> None:
        """A logging record, with its formatted exception if it carries one."""
        try:
            text = record.getMessage()
        except Exception:  # the record's own arguments failed to format: keep what we can
            text = f"{record.msg!r} {record.args!r}"
        if record.exc_info:
            with contextlib.suppress(Exception):
                text += "\n" + logging.Formatter().formatException(record.exc_info)
        with self._lock:
            if not self.closed:
                self._add({"at": self._now(), "stream": LOG, "level": record.levelname, "logger": record.name,
                           "text": text})

    def _add(self, entry: dict[str, Any]) -> None:
        text = _text(str(entry["text"]))
        size = len(text.encode("utf-8"))
        room = self._limit - self._size
        if size > room:
            self._dropped += size - max(room, 0)
            if room <= 0:
                return
            text = text.encode("utf-8")[:room].decode("utf-8", "ignore")
            size = room
        self._size += size
        entry["text"] = text
        entry["at"] = iso(entry["at"])
        self._entries.append(entry)
        if self._listener is not None:
            self._listener(dict(entry))

    def close(self) -> list[dict[str, Any]]:
        """The attempt ended: its entries (pending partial lines included). Later writes are dropped."""
        with self._lock:
            if not self.closed:
                self.closed = True
                for stream, (at, pending) in sorted(self._partial.items()):
                    self._add({"at": at, "stream": stream, "text": pending})
                self._partial.clear()
                if self._dropped:
                    self._entries.append({
                        "at": iso(self._now()), "stream": LOG, "level": "WARNING", "logger": "flareflow",
                        "text": f"output cut at {self._limit:,} bytes: {self._dropped:,} more bytes were not kept"})
            return list(self._entries)


class _Stream:
    """Stands in for ``sys.stdout`` / ``sys.stderr``: text goes to the open `StepOutput`, if any."""

    def __init__(self, name: str, wrapped: TextIO) -> None:
        self._name = name
        self._wrapped = wrapped

    def write(self, text: str) -> int:
        output = _current.get()
        if output is None:
            return self._wrapped.write(text)
        output.write(self._name, str(text))
        if _echo and not output.closed:
            self._wrapped.write(text)
        return len(text)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        if _current.get() is None or _echo:
            self._wrapped.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._wrapped, name)


class _SkipCaptured(logging.Handler):
    """``logging.lastResort`` without the records a step's output took."""

    def __init__(self, inner: logging.Handler) -> None:
        super().__init__(inner.level)
        self.inner = inner

    def handle(self, record: logging.LogRecord) -> bool:
        if getattr(record, _MARK, False):
            return False
        return bool(self.inner.handle(record))


def _wrap_factory(previous: Callable[..., logging.LogRecord]) -> Callable[..., logging.LogRecord]:
    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        output = _current.get()
        if output is not None and not getattr(record, _MARK, False):
            setattr(record, _MARK, True)
            output.log(record)
        return record

    return factory


def install(*, echo: bool | None = None) -> None:
    """Put the stand-ins in place (again, if something replaced ``sys.stdout`` / ``sys.stderr`` since);
    ``echo`` (when given) says whether captured text is also written to the process's streams."""
    global _echo, _logging_installed
    if echo is not None:
        _echo = echo
    for name in (STDOUT, STDERR):
        stream = getattr(sys, name)
        if stream is not None and not isinstance(stream, _Stream):
            setattr(sys, name, _Stream(name, stream))
    if not _logging_installed:
        _logging_installed = True
        logging.setLogRecordFactory(_wrap_factory(logging.getLogRecordFactory()))
        if logging.lastResort is not None and not isinstance(logging.lastResort, _SkipCaptured):
            logging.lastResort = _SkipCaptured(logging.lastResort)


@contextlib.contextmanager
def capturing(output: StepOutput) -> Iterator[StepOutput]:
    """Route this context's output (and that of the step threads it starts) to ``output``."""
    install()
    token = _current.set(output)
    try:
        yield output
    finally:
        _current.reset(token)


__all__ = ["LOG", "MAX_OUTPUT", "STDERR", "STDOUT", "STREAMS", "StepOutput", "capturing", "install"]
