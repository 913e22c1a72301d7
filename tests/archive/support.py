"""Helpers for archive tests: rows built from real Telesign payloads, and a migrated connection."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import psycopg

import pipeline
from archive.migrate import migrate
from archive.rows import ArchiveRow


def connect(url: str) -> psycopg.Connection:
    conn = psycopg.connect(url, autocommit=True)
    migrate(conn)
    return conn


def row_of(body: bytes, received_at: datetime | None = None, request_id: str = "req-1", channel: str | None = None) -> ArchiveRow:
    received_at = received_at or datetime.now(timezone.utc)
    event = pipeline.decode(body, channel_hint=channel, received_at=received_at)
    return ArchiveRow(event=event, body=body, received_at=received_at, request_id=request_id)


def delivery_body(reference_id: str, phone: str, occurred_at: datetime | None, code: int = 200, extra: str = "") -> bytes:
    """A delivery callback as Telesign sends it; occurred_at None leaves out updated_on."""
    status = {"code": code, "description": "Delivered to handset"}
    if occurred_at is not None:
        status["updated_on"] = occurred_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    body = {"reference_id": reference_id, "status": status, "phone_number": phone, "sub_resource": "sms"}
    if extra:
        body["external_id"] = extra
    return json.dumps(body).encode()


def now_minus(**delta) -> datetime:
    return datetime.now(timezone.utc) - timedelta(**delta)
