"""An address's rows out of the archive (events and their raw bodies), without racing the writer.

The writer takes ERASE_LOCK shared at the start of each batch's transaction;
`ArchiveEraser.lock()` takes it exclusively, so an erasure waits for the
batches being written and holds back the next ones while it runs. The
caller scrubs the Redis backlog inside that lock (store/erasure.py), and
the writer, once it has the lock, writes only the backlog entries that still
exist: a batch read before the scrub but written after the erasure is
dropped rather than bringing the address back.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

from archive.rows import is_email, normalize_address

ERASE_LOCK = 0x7473_7069_7065_0004
LOCK_SHARED = "SELECT pg_advisory_xact_lock_shared(%s)"


class ArchiveEraser:
    """Erases one address in one transaction on `conn` (autocommit connection)."""

    def __init__(self, conn: psycopg.Connection, address: str) -> None:
        self.conn = conn
        self.address = address
        self.normalized = normalize_address(address)

    @contextmanager
    def lock(self) -> Iterator[None]:
        """The transaction of the erasure: writers wait until it commits."""
        with self.conn.transaction():
            self.conn.execute("SELECT pg_advisory_xact_lock(%s)", (ERASE_LOCK,))
            yield

    def references(self) -> list[str]:
        """The reference ids of the address's messages (whose Redis state must go too)."""
        column = "email" if is_email(self.address) else "phone_number"
        rows = self.conn.execute(
            f"SELECT DISTINCT reference_id FROM events WHERE {column} = %s AND reference_id IS NOT NULL",
            (self.normalized,),
        ).fetchall()
        return [r[0] for r in rows]

    def delete(self) -> int:
        """Delete every archived event of the address (by the indexed phone_number or email); returns how many."""
        if self.normalized is None:
            return 0
        column = "email" if is_email(self.address) else "phone_number"
        return self.conn.execute(f"DELETE FROM events WHERE {column} = %s", (self.normalized,)).rowcount
