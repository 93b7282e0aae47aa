# _flareflow_harness: the harness's only Python code inside Pyodide. Test-only, never shipped.
#
# It mirrors what workerd's Python entrypoint helper does around a Python Worker's handlers
# (src/pyodide/python-entrypoint-helper.ts + introspection.py `wrapper_func` in workerd):
#   * `fetch` is called "relaxed" (extra positional args dropped), its argument goes through
#     `workers.python_from_rpc` (a JS Request becomes a `workers.Request`) and its result through
#     `workers.python_to_rpc` (a `workers.Response` becomes its `.js_object`; a JS Response passes).
#   * Durable Object handlers `alarm`, `webSocketMessage`, `webSocketClose`, `webSocketError` get the
#     raw JS arguments (relaxed call), exactly as in production.
#   * `scheduled` / `queue` of the default entrypoint get (event, env, ctx), relaxed (see README).
import sys
from inspect import isawaitable

from pyodide.code import relaxed_call
from workers import python_from_rpc, python_to_rpc


def add_path(path):
    if path not in sys.path:
        sys.path.insert(0, path)


def construct(cls, ctx, env):
    return cls(ctx, env)


def has_method(inst, name):
    return callable(getattr(inst, name, None))


async def call_fetch(inst, request, *rest):
    result = relaxed_call(inst.fetch, python_from_rpc(request), *rest)
    if isawaitable(result):
        result = await result
    return python_to_rpc(result)


async def call_event(inst, name, event, *rest):
    """scheduled/queue on the default entrypoint: the event converted like an RPC argument."""
    result = relaxed_call(getattr(inst, name), event, *rest)
    if isawaitable(result):
        result = await result
    return None if result is None else python_to_rpc(result)


async def call_raw(inst, name, *args):
    """Durable Object handlers: raw JS arguments, relaxed call, result returned as is."""
    result = relaxed_call(getattr(inst, name), *args)
    if isawaitable(result):
        result = await result
    return None if result is None else python_to_rpc(result)
