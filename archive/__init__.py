"""The event archive: every event kept in PostgreSQL, searchable, with retention and erasure.

Redis holds what the hot path needs for a few days; this package is the
system of record. It stands beside `store/` at the bottom of the layers: it
imports neither Celery nor aiohttp, and `workers/`, `ingest/` and `tspipe/`
use it. psycopg 3 throughout.

- migrate.py     versioned schema changes (plain SQL files in migrations/)
- rows.py        what one archived row holds, and the address normalization
- partitions.py  day partitions: created ahead, dropped for retention
- writer.py      one batch in one transaction, idempotent on event_id
- rollups.py     the hourly figures, kept in the writer's transaction; stats.py reads them
- message_generations.py  retention for the figures' per-message table (whole partitions)
- search.py      the keyset-paged search behind GET /v1/events
- erase.py       an address's rows out of the archive
- embedded.py    PostgreSQL from the pgserver wheel, for `tspipe run` and tests
"""
