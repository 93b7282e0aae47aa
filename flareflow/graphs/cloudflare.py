"""The Cloudflare side of task graphs: the Worker's ``fetch`` and D1 bindings behind `flareflow.graphs.ports`.

Imported only inside a Worker (it needs ``js`` and ``pyodide``): the module the build generates
(``src/flareflow_graphs.py``) calls `register_all` with the project's definitions as JSON (no YAML in
the Worker), and the generated Durable Object calls `bind` with its ``env`` so ``database`` tasks reach
their D1 binding (``binding``, default ``DB``; the project's own D1 database is ``INDEX``). ``http``
uses the global ``fetch`` (``timeout`` through ``AbortSignal.timeout``; running out of it fails with
`flareflow.graphs.ports.http_timed_out`'s message, as locally). Shell, docker and
data_processor tasks have no port here; the build refuses them before this code could meet one.
Migrations come embedded in the build (`flareflow.graphs.model.Graph.files`) and run as one D1
``batch``, which D1 applies atomically: a failing file rolls them all back.
"""

from __future__ import annotations

import json
from typing import Any

import js
from pyodide.ffi import to_js

from ..engine.errors import FlareflowError, NonRetryableError
from ..engine.registry import Registry
from .compiler import register_graph
from .model import Graph
from .ports import Ports, http_timed_out, install, sql_statements

try:
    from pyodide.ffi import jsnull
except ImportError:  # pragma: no cover - older Pyodide
    jsnull = None

__all__ = ["bind", "register_all"]

_env: Any = None


def _js(value: Any) -> Any:
    return to_js(value, dict_converter=js.Object.fromEntries)


def _py(value: Any) -> Any:
    if value is jsnull or value is None:
        return None
    return value.to_py() if hasattr(value, "to_py") else value


def _param(value: Any) -> Any:
    if value is None:
        return jsnull
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return value


async def _http(request: dict[str, Any]) -> dict[str, Any]:
    init: dict[str, Any] = {"method": request["method"], "headers": request.get("headers") or {}}
    if request.get("body") is not None:
        init["body"] = request["body"]
    options = _js(init)
    if request.get("timeout"):
        options.signal = js.AbortSignal.timeout(max(1, round(float(request["timeout"]) * 1000)))
    try:
        response = await js.fetch(request["url"], options)
        text = await response.text()
    except Exception as exc:  # AbortSignal.timeout rejects the fetch (or its body) with a TimeoutError DOMException
        if request.get("timeout") and "TimeoutError" in f"{getattr(exc, 'name', '')} {exc}":
            raise FlareflowError(http_timed_out(request)) from None
        raise
    headers = _py(js.Object.fromEntries(response.headers.entries())) or {}
    return {"status": int(response.status), "headers": dict(headers), "text": str(text)}


def _binding(request: dict[str, Any]) -> Any:
    name = str(request.get("binding") or "DB")
    db = getattr(_env, name, None) if _env is not None else None
    if db is None or db is jsnull:
        raise NonRetryableError(f"database task: this Worker has no D1 binding {name} (declare it in "
                                "wrangler.toml, or use binding INDEX, the project's D1 database)")
    return db


def _statement(db: Any, sql: str, params: Any) -> Any:
    values = params if isinstance(params, list) else [params]
    stmt = db.prepare(sql)
    return stmt.bind(*[_param(v) for v in values]) if values else stmt


def _result(raw: Any) -> Any:
    results = _py(raw.results) or []
    meta = _py(raw.meta) or {}
    if results or ("rows_read" in meta and not meta.get("changes")):
        return [dict(row) for row in results]
    return {"changes": meta.get("changes", 0), "last_row_id": meta.get("last_row_id")}


async def _database(request: dict[str, Any]) -> Any:
    db = _binding(request)
    op = request["op"]
    try:
        if op == "query":
            return _result(await _statement(db, request["sql"], request.get("params") or []).all())
        if op == "transaction":
            batch = [_statement(db, s["sql"], s.get("params") or []) for s in request["statements"]]
            return [_result(r) for r in _py_list(await db.batch(to_js(batch)))]
        await db.prepare("CREATE TABLE IF NOT EXISTS _flareflow_migrations (name TEXT PRIMARY KEY, "
                         "applied_at TEXT)").run()
        done = {row["name"] for row in (_py((await db.prepare("SELECT name FROM _flareflow_migrations").all())
                                            .results) or [])}
        files = request.get("files")
        if files is None:
            raise NonRetryableError(f"migration folder {request.get('folder')} was not embedded by the build")
        batch, applied = [], []
        for name, sql in files:
            if name in done:
                continue
            batch += [db.prepare(s) for s in sql_statements(sql)]
            batch.append(_statement(db, "INSERT INTO _flareflow_migrations VALUES (?, datetime('now'))", [name]))
            applied.append(name)
        if batch:
            await db.batch(to_js(batch))
        return {"applied": applied, "skipped": sorted(done & {f[0] for f in files})}
    except NonRetryableError:
        raise
    except Exception as exc:  # a D1_ERROR: the SQL is wrong; retrying will not help
        raise NonRetryableError(f"D1 ({op}) failed: {exc}") from None


def _py_list(value: Any) -> list[Any]:
    return list(value) if not hasattr(value, "to_py") else [item for item in value]


def _environ() -> dict[str, str]:
    """The Worker's plain-text vars and secrets (``${env.X}``): string bindings of ``env``."""
    if _env is None:
        return {}
    out: dict[str, str] = {}
    for key in _py(js.Object.keys(_env)) or []:
        value = getattr(_env, key, None)
        if isinstance(value, str):
            out[str(key)] = value
    return out


def bind(env: Any) -> None:
    """Install this Worker's ports (``env``: the raw JS bindings)."""
    global _env
    _env = env
    install(Ports(http=_http, database=_database, environ=_environ, host="cloudflare"))


def register_all(registry: Registry, graphs: list[dict[str, Any]]) -> None:
    """Register the definitions the build embedded (`Graph.to_json` each)."""
    install(Ports(http=_http, database=_database, environ=_environ, host="cloudflare"))
    for data in graphs:
        register_graph(registry, Graph.from_json(data))
