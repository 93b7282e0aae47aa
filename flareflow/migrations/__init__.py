"""Ordered SQL migrations. ``run/`` is the schema of one run's object (Durable Object SQLite or a local
sqlite3 file); files are applied in name order and recorded in ``_flareflow_migrations``."""
