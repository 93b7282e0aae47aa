"""Retry policies for steps.

A policy is a small frozen value so it can be shared between steps, hashed,
compared and stored with a run: the engine persists ``to_json()`` so a run
resumed after a restart keeps the policy it started with, even if the
workflow code has changed since.  Delays accept human strings ("30s",
"5 minutes") and are normalised to seconds once, at construction, so a typo
fails when the workflow is defined rather than on the first failure.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal, cast, get_args

from flareflow.engine.durations import DurationError, parse_duration

__all__ = ["NO_RETRY", "Backoff", "Retry"]

Backoff = Literal["constant", "linear", "exponential"]
_BACKOFFS: tuple[str, ...] = get_args(Backoff)
_FIELDS = ("limit", "delay", "backoff", "max_delay", "factor")


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
    """

    limit: int = 3
    delay: float | str = 1.0
    backoff: Backoff = "exponential"
    max_delay: float | str | None = None
    factor: float = 2.0

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
        """A plain-JSON form for storing with a run; see :meth:`from_json`."""
        return {
            "limit": self.limit,
            "delay": self.delay,
            "backoff": self.backoff,
            "max_delay": self.max_delay,
            "factor": self.factor,
        }

    @classmethod
    def from_json(cls, d: Any) -> Retry:
        """Rebuild a policy from :meth:`to_json`; missing fields take defaults.

        Unknown fields are rejected: they mean the data came from a newer or
        different format, and guessing would silently change retry behaviour.
        """
        if not isinstance(d, dict):
            raise ValueError(f"Retry data must be an object, got {type(d).__name__}")
        unknown = sorted(str(k) for k in d if k not in _FIELDS)
        if unknown:
            raise ValueError(f"unknown Retry field(s): {', '.join(unknown)}")
        return cls(**d)


NO_RETRY = Retry(limit=1, delay=0, backoff="constant")
