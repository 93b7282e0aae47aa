"""Apply the ordered SQL files of ``flareflow/migrations/<set>/`` once, recording each version.

Refuses a database written by a newer flareflow or one that is not ours, instead of guessing.
"""

from __future__ import annotations

import re
from importlib import resources

from ..engine.errors import StorageError
from .ports import Sql

_FILE = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
_cache: dict[str, list[tuple[int, str, str]]] = {}
VERSIONS_TABLE = "_flareflow_migrations"


def migrations(name: str) -> list[tuple[int, str, str]]:
    """(version, file name, SQL) of one migration set, in order. Read once per process."""
    found = _cache.get(name)
    if found is None:
        root = resources.files("flareflow.migrations").joinpath(name)
        found = []
        for entry in root.iterdir():
            match = _FILE.match(entry.name)
            if match:
                found.append((int(match.group(1)), entry.name, entry.read_text(encoding="utf-8")))
        found.sort()
        _cache[name] = found
    return found


def migrate(sql: Sql, name: str) -> int:
    """Bring ``sql`` up to the newest version of set ``name``; return that version.

    An up-to-date database costs two reads and no write. A fresh one gets the versions table and
    every file in one transaction; it need not be fsynced on its own, since the run's first durable
    commit follows it in the same (ordered) WAL.
    """
    wanted = migrations(name)
    latest = wanted[-1][0] if wanted else 0
    applied = _applied(sql)
    if applied is not None and _check(applied, latest) >= latest:
        return latest

    def apply() -> None:
        done = _applied(sql)
        if done is None:
            sql.exec(f"CREATE TABLE {VERSIONS_TABLE} (version INTEGER PRIMARY KEY, name TEXT NOT NULL)")
            done = set()
        _check(done, latest)
        for version, filename, script in wanted:
            if version in done:
                continue
            for statement in _statements(script):
                sql.exec(statement)
            sql.exec(f"INSERT INTO {VERSIONS_TABLE} (version, name) VALUES (?, ?)", version, filename)

    sql.transaction(apply, durable=False, site="migrate")
    return latest


def _applied(sql: Sql) -> set[int] | None:
    """Applied versions; None when there is no versions table yet. Refuses a foreign database."""
    tables = {str(row[0]) for row in sql.exec("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if VERSIONS_TABLE not in tables:
        foreign = {t for t in tables if not t.startswith("sqlite_") and not t.startswith("_cf_")}
        if foreign:
            raise StorageError(
                "not a flareflow state database: it has tables "
                + ", ".join(sorted(foreign)[:5])
                + f" but no {VERSIONS_TABLE}"
            )
        return None
    return {int(row[0]) for row in sql.exec(f"SELECT version FROM {VERSIONS_TABLE}")}


def _check(applied: set[int], latest: int) -> int:
    """The newest applied version; refuses one newer than this flareflow knows."""
    newest = max(applied) if applied else 0
    if newest > latest:
        raise StorageError(
            f"state database has schema version {newest}, newer than this flareflow knows "
            f"({latest}); upgrade flareflow"
        )
    return newest


def _statements(script: str) -> list[str]:
    """Split a migration into statements (no semicolons inside literals in our files)."""
    lines = [line for line in script.splitlines() if not line.strip().startswith("--")]
    return [part.strip() for part in "\n".join(lines).split(";") if part.strip()]
