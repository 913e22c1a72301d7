"""Versioned schema changes: plain SQL files in migrations/, applied in order, recorded in a table.

Why not a migration tool (yoyo, Alembic): tspipe needs forward-only
migrations applied at start-up by whichever process comes first (the
archive writer, the web process, a test), and nothing else. That is a
version table, the files in order and an advisory lock so two processes
starting together do not both apply one: forty lines, no second
configuration file, no SQLAlchemy. A file is named NNNN_what.sql; NNNN is
its version, never reused or edited once released.
"""

from __future__ import annotations

from importlib import resources

import psycopg

# pg_advisory_xact_lock key: any constant no other application on the database uses.
_LOCK = 0x7473_7069_7065_0001  # "tspipe" + 1

_VERSION_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    integer PRIMARY KEY,
    name       text        NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""


def available() -> list[tuple[int, str, str]]:
    """(version, file name, SQL) of every migration shipped with tspipe, in order."""
    found = []
    for entry in resources.files("archive.migrations").iterdir():
        name = entry.name
        if name.endswith(".sql"):
            found.append((int(name.split("_", 1)[0]), name, entry.read_text()))
    return sorted(found)


def migrate(conn: psycopg.Connection) -> list[str]:
    """Apply the migrations this database lacks, in one transaction; returns their file names."""
    applied: list[str] = []
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK,))
        conn.execute(_VERSION_TABLE)
        done = {version for (version,) in conn.execute("SELECT version FROM schema_migrations")}
        for version, name, sql in available():
            if version in done:
                continue
            conn.execute(sql)
            conn.execute("INSERT INTO schema_migrations (version, name) VALUES (%s, %s)", (version, name))
            applied.append(name)
    return applied
