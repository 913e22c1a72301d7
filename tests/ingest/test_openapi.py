"""The live web process against its own OpenAPI document (ingest/openapi.json), driven by schemathesis.

Schemathesis is a client nobody here wrote: it reads the document, generates
requests (examples, edge cases, random data, no auth), sends them to a real
`tspipe web` over real HTTP and checks every answer against the document:
status codes, content types, response schemas, 5xx, auth that is ignored.

A route in the document that the app does not serve yet is excluded by
NOT_SERVED_YET, explicitly, never skipped silently; a test below fails when
the list and the app disagree. Whoever makes a route live removes it here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import schemathesis
from schemathesis.config import SchemathesisConfig
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from config import load_settings
from ingest.app import create_app
from pipeline.record import Record, encode_batch
from tests.conftest import fixture_bodies
from tspipe.redis_server import RedisServer, free_port

SPEC_PATH = Path(__file__).resolve().parents[2] / "ingest" / "openapi.json"
SPEC = json.loads(SPEC_PATH.read_text())
TOKEN = "schemathesis-token"
STATUSES: dict[str, set[int]] = {}  # "METHOD /path" -> statuses seen by the schemathesis cases

# In the document (CONTRACT.md section 7 and the keyword issue), not served yet: {path: who makes it live}.
NOT_SERVED_YET = {
}

CONFIG = SchemathesisConfig.from_dict({
    # The app ignores query parameters it does not know, as HTTP APIs do: not a defect to report.
    "generation": {"allow-extra-parameters": False},
    # Schemathesis sends the token itself, so it can also check that requests without it get 401.
    "auth": {"openapi": {"bearerAuth": {"bearer": TOKEN}, "tokenQuery": {"api_key": TOKEN}}},
})
schema = schemathesis.openapi.from_dict(SPEC, config=CONFIG).exclude(path=list(NOT_SERVED_YET))


def _needs(path: str) -> set[str]:
    return {need for op in SPEC["paths"][path].values() for need in op.get("x-tspipe-requires", [])}


def _archive_with_samples(postgres) -> str:
    """A schema of the session's PostgreSQL holding the samples, archived: the URL for DATABASE_URL."""
    import psycopg

    from archive.embedded import database_url
    from archive.migrate import migrate
    from archive.rows import ArchiveRow, utc
    from archive.writer import Writer
    from pipeline import decode

    with psycopg.connect(postgres.get_uri(), autocommit=True) as conn:
        conn.execute("CREATE SCHEMA IF NOT EXISTS openapi_archive")
    url = database_url(postgres, schema="openapi_archive")
    now = time.time()
    rows = [ArchiveRow(event=decode(b, channel_hint="whatsapp", received_at=utc(now)), body=b, received_at=utc(now),
                       request_id="openapi") for b in fixture_bodies().values()]
    with psycopg.connect(url, autocommit=True) as conn:
        migrate(conn)
        Writer().archive(conn, rows)
    return url


@pytest.fixture(scope="module")
def web(tmp_path_factory, postgres):
    """A real `tspipe web` on a real Redis holding the samples' state, an opt-out, a quarantined body,
    and a real PostgreSQL archive holding the samples."""
    tmp = tmp_path_factory.mktemp("openapi")
    served = [p for p in SPEC["paths"] if p not in NOT_SERVED_YET]
    needs = set().union(*(_needs(p) for p in served))
    # A route that needs PostgreSQL is tested with one, not skipped: whoever serves it starts it here.
    assert needs <= {"postgresql"}, f"served routes need {needs}: start it in this fixture"
    database = _archive_with_samples(postgres)
    redis = RedisServer(tmp / "redis", appendonly=False).start()
    try:
        from store.state import Store
        from workers.tasks import process_batch

        now = time.time()
        records = [Record(b, now, "whatsapp") for b in fixture_bodies().values()]
        records.append(Record(b"not a callback", now, "sms", "broken-1"))
        process_batch(encode_batch(records), store=Store.from_settings(load_settings({"REDIS_URL": redis.url})))
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("TSPIPE_", "TELESIGN_"))}
        env.update(REDIS_URL=redis.url, DATABASE_URL=database, TSPIPE_ERASURE_KEY="openapi-erasure-key",
                   PORT=str(port), TSPIPE_HOST="127.0.0.1", TSPIPE_API_TOKEN=TOKEN,
                   TSPIPE_DATA_DIR=str(tmp / "data"), TSPIPE_LOG_LEVEL="warning")
        log = (tmp / "web.log").open("wb")
        proc = subprocess.Popen([sys.executable, "-m", "tspipe", "web"], env=env, stdout=log, stderr=subprocess.STDOUT)
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(base + "/healthz", timeout=1):
                    break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, (tmp / "web.log").read_text()[-2000:]
                time.sleep(0.1)
        yield base
        proc.terminate()
        proc.wait(15)
        log.close()
    finally:
        redis.stop()


@schema.parametrize()
@settings(max_examples=8, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_live_app_conforms_to_its_openapi_document(case, web):
    # An archive cursor is opaque: valid only as a page gave it out, so any other string is rightly a 400.
    excluded = [positive_data_acceptance] if (case.query or {}).get("cursor") else []
    response = case.call_and_validate(base_url=web, excluded_checks=excluded)
    STATUSES.setdefault(f"{case.operation.method.upper()} {case.operation.path}", set()).add(response.status_code)


def test_schemathesis_reached_every_served_operation_with_a_success(web):
    """Runs after the cases above: each served operation answered 2xx at least once (the token and the
    path examples worked), so a green run means the success shapes were checked, not only the errors."""
    served = {f"{m.upper()} {p}" for p, ops in SPEC["paths"].items() for m in ops if p not in NOT_SERVED_YET}
    assert set(STATUSES) == served
    assert not [op for op, codes in STATUSES.items() if not any(200 <= c < 300 for c in codes)], STATUSES


def test_openapi_document_lists_every_served_route_and_no_unserved_one_silently(web):
    """Every route the app serves is documented; every documented route is served or in NOT_SERVED_YET."""
    settings_ = load_settings({"REDIS_URL": "redis://127.0.0.1:1/0"})
    app = create_app(settings_)
    served = {(r.method, r.resource.canonical) for r in app.router.routes()
              if r.method not in ("*", "HEAD") and r.resource.canonical != "/{unmatched}"}
    documented = {(m.upper(), p) for p, ops in SPEC["paths"].items() for m in ops if p not in NOT_SERVED_YET}
    assert served == documented
    for path in NOT_SERVED_YET:
        assert path in SPEC["paths"], f"{path} is excluded but not documented"
    with urllib.request.urlopen(web + "/openapi.json", timeout=5) as response:
        assert response.headers["Content-Type"].startswith("application/json")
        assert json.loads(response.read()) == SPEC
