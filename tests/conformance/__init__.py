"""The host conformance suite: the same behaviour asserted on every host (``serve --local`` and real workerd).

This package holds the core engine's cases on one shared project. Each feature of round 2 brings its own
conformance module with a small project of its own, on the same hosts and under the same rule (a missing
workerd harness fails under ``CI``, see `test_workerd_never_skips_in_ci`):
``tests/graphs/test_hosts.py`` (a graph of http, python, sleep, wait_event, input and database tasks),
``tests/domains/test_domains_on_hosts.py`` (the domain example, hashes equal on CPython and Pyodide),
``tests/ai/test_both_hosts.py`` and ``tests/ai/test_workers_ai.py`` (AI steps, the KV cache with its TTL,
the D1 call log, the Workers AI stand-in binding).
"""
