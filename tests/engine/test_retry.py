"""Retry policies: delays between attempts and their stored form."""

from __future__ import annotations

import json
import math

import pytest

from flareflow.engine.retry import NO_RETRY, Retry


def test_defaults() -> None:
    r = Retry()
    assert (r.limit, r.delay, r.backoff, r.max_delay, r.factor) == (3, 1.0, "exponential", None, 2.0)


def test_human_durations_are_parsed_to_seconds() -> None:
    r = Retry(delay="30s", max_delay="5 minutes")
    assert r.delay == 30.0
    assert r.max_delay == 300.0
    assert r == Retry(delay=30, max_delay=300)


@pytest.mark.parametrize(
    ("backoff", "expected"),
    [
        ("constant", [10, 10, 10, 10]),
        ("linear", [10, 20, 30, 40]),
        ("exponential", [10, 20, 40, 80]),
    ],
)
def test_delay_for_each_backoff(backoff: str, expected: list[float]) -> None:
    r = Retry(limit=5, delay=10, backoff=backoff)  # type: ignore[arg-type]
    assert [r.delay_for(a) for a in range(1, 5)] == expected


def test_exponential_uses_factor_and_max_delay_caps() -> None:
    r = Retry(delay="1s", factor=3, max_delay="20s")
    assert [r.delay_for(a) for a in range(1, 6)] == [1, 3, 9, 20, 20]


def test_huge_attempt_numbers_do_not_crash() -> None:
    assert Retry(delay=1, max_delay="1h").delay_for(5000) == 3600
    assert math.isinf(Retry(delay=1).delay_for(5000))


def test_no_retry() -> None:
    assert NO_RETRY.limit == 1
    assert NO_RETRY.delay == 0.0
    assert NO_RETRY.backoff == "constant"
    assert NO_RETRY.delay_for(1) == 0.0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"limit": 0}, "Retry limit must be an integer >= 1, got 0"),
        ({"limit": True}, "Retry limit"),
        ({"limit": 2.5}, "Retry limit"),
        ({"delay": "soon"}, "Retry delay: invalid duration 'soon'"),
        ({"delay": -1}, "Retry delay: invalid duration -1"),
        ({"max_delay": "5 parsecs"}, "Retry max_delay: invalid duration '5 parsecs'"),
        ({"backoff": "fibonacci"}, "Retry backoff must be one of constant, linear, exponential"),
        ({"factor": 0.5}, "Retry factor must be a finite number >= 1, got 0.5"),
        ({"factor": math.inf}, "Retry factor"),
        ({"factor": "2"}, "Retry factor"),
    ],
)
def test_invalid_fields_are_named(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError) as info:
        Retry(**kwargs)  # type: ignore[arg-type]
    assert str(info.value).startswith(message)


@pytest.mark.parametrize("attempt", [0, -1, True])
def test_delay_for_rejects_bad_attempt(attempt: int) -> None:
    with pytest.raises(ValueError, match="attempt must be an integer >= 1"):
        Retry().delay_for(attempt)


@pytest.mark.parametrize(
    "policy",
    [Retry(), NO_RETRY, Retry(limit=7, delay="2m", backoff="linear", max_delay="1h", factor=1.5)],
)
def test_json_round_trip(policy: Retry) -> None:
    stored = json.loads(json.dumps(policy.to_json()))
    assert Retry.from_json(stored) == policy


def test_to_json_shape() -> None:
    assert Retry(delay="30s").to_json() == {
        "limit": 3,
        "delay": 30.0,
        "backoff": "exponential",
        "max_delay": None,
        "factor": 2.0,
    }


def test_from_json_fills_defaults_and_rejects_unknown_fields() -> None:
    assert Retry.from_json({"limit": 5}) == Retry(limit=5)
    with pytest.raises(ValueError, match="unknown Retry field"):
        Retry.from_json({"limit": 5, "jitter": True})
    with pytest.raises(ValueError, match="must be an object"):
        Retry.from_json([3])


def test_is_frozen_and_hashable() -> None:
    r = Retry()
    with pytest.raises(AttributeError):
        r.limit = 5  # type: ignore[misc]
    assert len({Retry(delay="1s"), Retry(delay=1.0)}) == 1


class Misused(TypeError):
    """Not a builtin: stored by its qualified name, and not rebuilt from it."""


def test_non_retryable_is_validated_and_stored_by_name():
    assert Retry(non_retryable=TypeError).non_retryable == (TypeError,)
    assert Retry(non_retryable=[TypeError]) == Retry(non_retryable=(TypeError,))
    for bad in ((TypeError, "KeyError"), (int,), "TypeError", (Exception(),)):
        with pytest.raises(ValueError, match="non_retryable"):
            Retry(non_retryable=bad)  # type: ignore[arg-type]
    policy = Retry(non_retryable=(TypeError, Misused))
    assert policy.to_json()["non_retryable"] == ["TypeError", f"{__name__}.Misused"]
    assert "non_retryable" not in Retry().to_json()
    builtin_only = Retry(limit=2, non_retryable=(TypeError, KeyError))
    assert Retry.from_json(builtin_only.to_json()) == builtin_only
    with pytest.raises(ValueError, match="not a builtin exception class"):
        Retry.from_json(policy.to_json())
    with pytest.raises(ValueError, match="list of class names"):
        Retry.from_json({"non_retryable": "TypeError"})
