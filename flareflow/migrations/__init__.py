"""Ordered SQL migrations. ``run/`` is the schema of one run's object (Durable Object SQLite or a local
sqlite3 file), applied in name order and recorded in ``_flareflow_migrations``; ``index/`` is the run
index (the D1 ``INDEX`` database on Cloudflare, applied by wrangler's ``d1 migrations apply``, and the
local ``index.db``)."""
