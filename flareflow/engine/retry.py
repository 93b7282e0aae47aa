"""Retry policies for steps.

A policy is a small frozen value so it can be shared between steps, hashed,
compared and stored with a run: the engine records ``to_json()`` with each
step it starts (what the policy was when the step was first reached).
Delays accept human strings ("30s",
"5 minutes") and are normalised to seconds once, at construction, so a typo
fails when the workflow is defined rather than on the first failure.
"""

from __future__ import annotations

import builtins
import math
from dataclasses import dataclass
from typing import Any, Literal, cast, get_args

from flareflow.engine.durations import DurationError, parse_duration

__all__ = ["NO_RETRY", "Backoff", "Retry"]

Backoff = Literal["constant", "linear", "exponential"]
_BACKOFFS: tuple[str, ...] = get_args(Backoff)
_FIELDS = ("limit", "delay", "backoff", "max_delay", "factor", "non_retryable")


def _seconds(field: str, value: Any) -> float:
    try:
        return parse_duration(value)
    except DurationError as exc:
        raise ValueError(f"Retry {field}: {exc}") from None


@dataclass(frozen=True)
class Retry:
    """How often and how patiently to retry a failing step.

    ``limit`` counts *all* attempts, the first included, so ``limit=1``
    means "never retry".  After ``delay``/``max_delay`` are parsed they are
    always ``float`` seconds.

    ``non_retryable`` lists exception types that fail the step at once, with
    no further attempts, as `NonRetryableError` always does: programming
    errors, say, ``Retry(non_retryable=(TypeError, KeyError))``.  Subclasses
    match too (``isinstance``); a single class is accepted for a tuple of one.
    Listing `StepTimeout` makes a timed-out attempt final.
    """

    limit: int = 3
    delay: float | str = 1.0
    backoff: Backoff = "exponential"
    max_delay: float | str | None = None
    factor: float = 2.0
    non_retryable: tuple[type[BaseException], ...] = ()

    def __post_init__(self) -> None:
        if isinstance(self.limit, bool) or not isinstance(self.limit, int) or self.limit < 1:
            raise ValueError(f"Retry limit must be an integer >= 1, got {self.limit!r}")
        object.__setattr__(self, "delay", _seconds("delay", self.delay))
        if self.max_delay is not None:
            object.__setattr__(self, "max_delay", _seconds("max_delay", self.max_delay))
        if self.backoff not in _BACKOFFS:
            raise ValueError(f"Retry backoff must be one of {', '.join(_BACKOFFS)}, got {self.backoff!r}")
        factor = self.factor
        if (
            isinstance(factor, bool)
            or not isinstance(factor, (int, float))
            or not math.isfinite(factor)
            or factor < 1
        ):
            # Below 1 the "backoff" would shrink delays, which is never what
            # anyone retrying an overloaded service wants.
            raise ValueError(f"Retry factor must be a finite number >= 1, got {factor!r}")
        object.__setattr__(self, "factor", float(factor))
        kinds = self.non_retryable
        if isinstance(kinds, type):
            kinds = (kinds,)
        if not isinstance(kinds, (tuple, list)) or not all(
            isinstance(k, type) and issubclass(k, BaseException) for k in kinds
        ):
            raise ValueError(f"Retry non_retryable must be a tuple of exception classes, got {kinds!r}")
        object.__setattr__(self, "non_retryable", tuple(kinds))

    def delay_for(self, attempt: int) -> float:
        """Seconds to wait before attempt ``attempt + 1``, after ``attempt`` failed.

        Attempts are numbered from 1.  Huge exponential delays overflow to
        ``inf`` rather than raising, and are then capped by ``max_delay``.
        """
        if isinstance(attempt, bool) or not isinstance(attempt, int) or attempt < 1:
            raise ValueError(f"attempt must be an integer >= 1, got {attempt!r}")
        base = cast(float, self.delay)  # always float after __post_init__
        if self.backoff == "constant":
            wait = base
        elif self.backoff == "linear":
            wait = base * attempt
        else:
            try:
                wait = base * self.factor ** (attempt - 1)
            except OverflowError:
                wait = math.inf if base > 0 else 0.0
        if self.max_delay is not None:
            wait = min(wait, cast(float, self.max_delay))
        return wait

    def to_json(self) -> dict[str, Any]:
        """A plain-JSON form for storing with a run; see :meth:`from_json`.

        ``non_retryable`` appears only when set, as class names (``TypeError``;
        ``module.Class`` outside the builtins)."""
        data: dict[str, Any] = {
            "limit": self.limit,
            "delay": self.delay,
            "backoff": self.backoff,
            "max_delay": self.max_delay,
            "factor": self.factor,
        }
        if self.non_retryable:
            data["non_retryable"] = [_class_name(k) for k in self.non_retryable]
        return data

    @classmethod
    def from_json(cls, d: Any) -> Retry:
        """Rebuild a policy from :meth:`to_json`; missing fields take defaults.

        Unknown fields are rejected: they mean the data came from a newer or
        different format, and guessing would silently change retry behaviour.
        So is a ``non_retryable`` name that is not a builtin exception class.
        """
        if not isinstance(d, dict):
            raise ValueError(f"Retry data must be an object, got {type(d).__name__}")
        unknown = sorted(str(k) for k in d if k not in _FIELDS)
        if unknown:
            raise ValueError(f"unknown Retry field(s): {', '.join(unknown)}")
        if "non_retryable" in d:
            names = d["non_retryable"]
            if not isinstance(names, list):
                raise ValueError(f"Retry non_retryable must be a list of class names, got {names!r}")
            d = {**d, "non_retryable": tuple(_builtin_class(n) for n in names)}
        return cls(**d)


def _class_name(kind: type[BaseException]) -> str:
    return kind.__qualname__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"


def _builtin_class(name: Any) -> type[BaseException]:
    """A builtin exception class by name. Others are not looked up: that would mean importing code
    named by stored data, so such a policy cannot be rebuilt from JSON (pass the classes to `Retry`)."""
    found = getattr(builtins, name, None) if isinstance(name, str) else None
    if not (isinstance(found, type) and issubclass(found, BaseException)):
        raise ValueError(f"Retry non_retryable: {name!r} is not a builtin exception class; a policy naming "
                         "other classes cannot be rebuilt from JSON")
    return found


NO_RETRY = Retry(limit=1, delay=0, backoff="constant")
