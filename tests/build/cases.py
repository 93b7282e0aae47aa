"""The example projects of the golden tests (and of the real-wrangler dry runs)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .helpers import write_tree

HELLO = '''\
"""A single workflow with one step."""

from flareflow import Run, workflow


def shout(text: str) -> str:
    return text.upper()


@workflow("hello")
async def hello(run: Run, name: str = "world") -> dict[str, str]:
    """Greets someone."""
    loud = await run.step("shout", shout, f"hello {name}")
    return {"greeting": loud}
'''

SCHEDULED = '''\
"""Scheduled workflows; two share a schedule, one has none."""

from flareflow import Run, workflow


@workflow("a-every-five", schedule="*/5 * * * *")
async def every_five(run: Run) -> int:
    """Every five minutes."""
    return 5


@workflow("b-weekly", schedule="0 9 * * 1")
async def weekly(run: Run) -> str:
    return "monday"


@workflow("c-also-every-five", schedule="*/5 * * * *")
async def also_every_five(run: Run) -> int:
    """Same schedule as a-every-five."""
    return 55
'''

MORE_SCHEDULED = '''\
from flareflow import Run, workflow


@workflow("d-unscheduled")
async def unscheduled(run: Run, data: dict | None = None) -> dict | None:
    return data


@workflow("e-monthly", schedule="30 2 1 * *")
async def monthly(run: Run) -> str:
    """First of the month, 02:30 UTC."""
    return "monthly"


@workflow("f-spaced-every-five", schedule=" */5  *  * * * ")
async def spaced(run: Run) -> str:
    """The same trigger as a-every-five, written with extra spaces."""
    return "spaced"
'''


AI_STEPS = '''\
"""A workflow that calls run.ai (the build binds Workers AI for it)."""

from flareflow import Run, workflow


@workflow("summarise")
async def summarise(run: Run, text: str) -> str:
    """One model call."""
    return await run.ai.generate(f"Summarise: {text}")
'''

AI_SETTINGS = '''
[tool.flareflow.ai]
base_url = "http://127.0.0.1:11434/v1"
model = "chat"
cache_ttl = 600

[tool.flareflow.ai.models]
chat = { local = "llama3.2", cloudflare = "@cf/meta/llama-3.1-8b-instruct" }
'''


def pyproject(name: str, tool: str = "") -> str:
    return f'[project]\nname = "{name}"\nversion = "0.1.0"\ndependencies = ["flareflow>=0.1"]\n\n' \
           f'[tool.flareflow]\nworkflows = ["workflows"]\n{tool}'


NO_RESOURCES = "\n[tool.flareflow.resources]\nd1 = false\nr2 = false\nkv = false\nqueues = false\n"
ALL_RESOURCES = "\n[tool.flareflow.resources]\nd1 = true\nr2 = true\nkv = true\nqueues = true\n"

OVERRIDE_TOML = '''\
# my own wrangler config: D1 and the Durable Object, but no R2 bucket, KV namespace or queue
name = "hand-made"
main = "src/entry.py"
compatibility_date = "2025-10-01"
compatibility_flags = ["python_workers"]

[[durable_objects.bindings]]
name = "RUNS"
class_name = "RunObject"

[[migrations]]
tag = "v1"
new_sqlite_classes = ["RunObject"]

[[d1_databases]]
binding = "INDEX"
database_name = "hand-made-index"
database_id = "11111111-2222-3333-4444-555555555555"
'''

OVERRIDE_JSONC = '''\
// my own wrangler config, JSON with comments: R2, KV and the queue,
// but no Durable Object binding, no migration and no D1 database
{
  "name": "hand-made-jsonc", /* the Worker */
  "main": "src/entry.py",
  "compatibility_date": "2025-10-01",
  "compatibility_flags": ["python_workers"],
  "routes": ["https://example.com/api/*"], // a string with // inside is not a comment
  "r2_buckets": [
    { "binding": "PAYLOADS", "bucket_name": "hand-made-payloads" }, // trailing comma next
  ],
  "kv_namespaces": [{ "binding": "CACHE", "id": "0123456789abcdef0123456789abcdef" }],
  "queues": {
    "producers": [{ "binding": "DISPATCH", "queue": "hand-made-dispatch" }],
    /* "durable_objects": {"bindings": [{"name": "RUNS", "class_name": "RunObject"}]}, */
  },
}
'''


@dataclass
class Case:
    """One golden project: its files, and what its wrangler config must contain."""

    name: str
    files: dict[str, str]
    resources: dict[str, Any] = field(default_factory=dict)  # d1/r2/kv/queues -> expected names (and ids)
    crons: list[str] = field(default_factory=list)
    config: str = "wrangler.toml"
    warnings: list[str] = field(default_factory=list)  # a needle per expected warning
    not_warned: list[str] = field(default_factory=list)

    def make(self, root: Path) -> Path:
        return write_tree(root, self.files)


def _defaults(name: str) -> dict[str, Any]:
    return {
        "d1": {"name": f"{name}-index", "id": "00000000-0000-0000-0000-000000000000"},
        "r2": {"name": f"{name}-payloads"},
        "kv": {"name": f"{name}-cache", "id": "00000000000000000000000000000000"},
        "queues": {"name": f"{name}-dispatch", "dlq": f"{name}-dispatch-dlq"},
    }


NAMED_IDS = {"d1": {"my-index": "3f1e2d4c-5b6a-4798-8a7b-6c5d4e3f2a1b"},
             "kv": {"my-cache": "a1b2c3d4e5f60718293a4b5c6d7e8f90"},
             "r2": {"my-bucket": "my-bucket"}, "queues": {"jobs": "jobs", "jobs-dlq": "jobs-dlq"}}

CASES: dict[str, Case] = {
    "no_resources": Case(
        "no_resources",
        {"pyproject.toml": pyproject("plain-app", NO_RESOURCES), "workflows/hello.py": HELLO},
    ),
    "all_resources": Case(
        "all_resources",
        {"pyproject.toml": pyproject("full-app", ALL_RESOURCES), "workflows/hello.py": HELLO},
        resources=_defaults("full-app"),
    ),
    "named_resources": Case(
        "named_resources",
        {"pyproject.toml": pyproject("named-app", '\n[tool.flareflow.resources]\nd1 = "my-index"\n'
                                                  'r2 = "my-bucket"\nkv = "my-cache"\nqueues = "jobs"\n'),
         "workflows/hello.py": HELLO,
         ".flareflow/resources.json": json.dumps(NAMED_IDS, indent=2)},
        resources={"d1": {"name": "my-index", "id": NAMED_IDS["d1"]["my-index"]}, "r2": {"name": "my-bucket"},
                   "kv": {"name": "my-cache", "id": NAMED_IDS["kv"]["my-cache"]},
                   "queues": {"name": "jobs", "dlq": "jobs-dlq"}},
    ),
    "crons": Case(
        "crons",
        {"pyproject.toml": pyproject("cron-app", "\n[tool.flareflow.resources]\nkv = false\n"),
         "workflows/scheduled.py": SCHEDULED, "workflows/more.py": MORE_SCHEDULED},
        resources={k: v for k, v in _defaults("cron-app").items() if k != "kv"},
        # distinct schedules in workflow-name order: a (*/5), b (weekly), c (dup), d (none), e (monthly),
        # f (a dup of a, with extra spaces)
        crons=["*/5 * * * *", "0 9 * * 1", "30 2 1 * *"],
    ),
    "worker_settings": Case(
        "worker_settings",
        {"pyproject.toml": pyproject("Settings App", '''
[tool.flareflow.worker]
name = "edge-flows"
compatibility_date = "2026-01-15"
routes = ["example.com/api/*", "api.example.com/*"]
secrets = ["STRIPE_KEY", "SLACK_TOKEN"]
payload_threshold = 4096

[tool.flareflow.worker.vars]
GREETING = 'say "hi" <b> & \\ bye'
API_BASE = "https://example.com/v1"
"lower.key" = "x"

[tool.flareflow.dev]
max_body = 65536
'''), "workflows/hello.py": HELLO},
        resources=_defaults("edge-flows"),
    ),
    "ai_steps": Case(
        "ai_steps",
        {"pyproject.toml": pyproject("ai-steps-app"), "workflows/summarise.py": AI_STEPS},
        resources=_defaults("ai-steps-app"),
    ),
    "ai_settings": Case(
        "ai_settings",
        {"pyproject.toml": pyproject("ai-settings-app", AI_SETTINGS), "workflows/summarise.py": AI_STEPS},
        resources=_defaults("ai-settings-app"),
    ),
    "override_toml": Case(
        "override_toml",
        {"pyproject.toml": pyproject("override-app"), "workflows/hello.py": HELLO, "wrangler.toml": OVERRIDE_TOML},
        warnings=["the R2 binding PAYLOADS (tool.flareflow.resources.r2)",
                  "the KV binding CACHE (tool.flareflow.resources.kv)",
                  "the queue producer binding DISPATCH (tool.flareflow.resources.queues)"],
        not_warned=["INDEX", "RUNS", "new_sqlite_classes", "main", "python_workers"],
    ),
    "override_jsonc": Case(
        "override_jsonc",
        {"pyproject.toml": pyproject("override-jsonc-app"), "workflows/hello.py": HELLO,
         "wrangler.jsonc": OVERRIDE_JSONC},
        config="wrangler.jsonc",
        warnings=["the Durable Object binding RUNS (class RunObject)",
                  'a migration with new_sqlite_classes = ["RunObject"]',
                  "the D1 binding INDEX (tool.flareflow.resources.d1)"],
        not_warned=["PAYLOADS", "CACHE", "DISPATCH", "main", "python_workers"],
    ),
}

WORKER_VARS = {"GREETING": 'say "hi" <b> & \\ bye', "API_BASE": "https://example.com/v1", "lower.key": "x"}
