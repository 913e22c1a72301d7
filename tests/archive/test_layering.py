"""archive/ sits at the bottom beside store/: PostgreSQL only, no Celery, aiohttp, Redis or upper layers."""

from __future__ import annotations

from tests.store.test_layering import _imports, _loaded_after


def test_archive_imports_only_layers_below_it():
    forbidden = ("celery", "kombu", "aiohttp", "redis", "ingest", "workers", "tspipe", "store")
    bad = [(f, m) for f, m in _imports("archive") if m.split(".")[0] in forbidden]
    assert not bad, f"archive/ imports what it must not: {bad}"


def test_archive_loads_no_celery_or_aiohttp():
    loaded = _loaded_after("import archive.writer, archive.search, archive.partitions, archive.migrate, "
                           "archive.transactions, archive.embedded, archive.rows")
    assert not loaded & {"celery", "kombu", "aiohttp", "workers", "ingest"}
