"""One workflow, ``order``, as three releases of a user's project (the held-run, check and deploy tests).

* `V1`  -- reserve, a nap (``input["nap"]``, default 2 s), bill.
* `V2`  -- the change "bill-first" (bill early, then nap) behind ``run.patched``: runs recorded on V1
  past the reserve step keep V1's path.
* `V3`  -- the same change without the guard: a run recorded on V1 diverges at the nap (position 1).
"""

from __future__ import annotations

from pathlib import Path

HEAD = '''\
from flareflow import Run, workflow


def act(name):
    return name

'''

V1 = HEAD + '''
@workflow("order")
async def order(run: Run, inp=None):
    a = await run.step("reserve", act, "reserve")
    await run.sleep("nap", (inp or {}).get("nap", "2s"))
    return [a, await run.step("bill", act, "bill")]
'''

V2 = HEAD + '''
@workflow("order")
async def order(run: Run, inp=None):
    a = await run.step("reserve", act, "reserve")
    if run.patched("bill-first"):
        b = await run.step("bill-early", act, "bill-early")
        await run.sleep("nap", (inp or {}).get("nap", "2s"))
    else:
        await run.sleep("nap", (inp or {}).get("nap", "2s"))
        b = await run.step("bill", act, "bill")
    return [a, b]
'''

V3 = HEAD + '''
@workflow("order")
async def order(run: Run, inp=None):
    a = await run.step("reserve", act, "reserve")
    b = await run.step("bill-early", act, "bill-early")
    await run.sleep("nap", (inp or {}).get("nap", "2s"))
    return [a, b]
'''

PYPROJECT = '[project]\nname = "shop"\nversion = "0.1.0"\n\n[tool.flareflow]\nworkflows = ["workflows"]\n'

#: What `flareflow check` (and a refused deploy) says about a V1 run replayed on V3.
V3_DIVERGENCE = ("diverges at step 'nap#1' (position 1)", "recorded sleep 'nap'",
                 "the code now calls step 'bill-early' (key 'bill-early#1')")


def write_shop(root: Path, code: str, tool: str = "") -> Path:
    """A project whose only workflow module is ``workflows/order.py`` with ``code``."""
    (root / "workflows").mkdir(parents=True, exist_ok=True)
    (root / "pyproject.toml").write_text(PYPROJECT + tool, encoding="utf-8")
    release(root, code)
    return root


def release(root: Path, code: str) -> None:
    """Replace the workflow module (a new release of the code)."""
    (root / "workflows" / "order.py").write_text(code, encoding="utf-8")
