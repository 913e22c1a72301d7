"""Ingress fixtures: settings pointing at a real Redis, an aiohttp test client."""

from __future__ import annotations

from pathlib import Path

import pytest

from config import Settings, load_settings
from ingest.app import create_app
from pipeline.signature import decode_api_key, sign

API_KEY = "EXAMPLE----TE8sTgg45yusumoN6BYsBVkh+yRJ5czgsnCehZaOYldPJdmFh6NeX8kunZ2zU1YWaUw/0wV6xfw=="
CUSTOMER_ID = "CUST-1"


def signed(body: bytes, key: str = API_KEY, customer_id: str = CUSTOMER_ID) -> dict[str, str]:
    return {"Authorization": f"TSA {customer_id}:{sign(decode_api_key(key), body)}"}


def make_settings(redis_url: str, tmp_path: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "redis_url": redis_url,
        "telesign_api_keys": (API_KEY,),
        "telesign_customer_id": CUSTOMER_ID,
        "spool_dir": str(tmp_path / "spool"),
        "data_dir": str(tmp_path / "data"),
    }
    values.update(overrides)
    return load_settings({}, **values)


@pytest.fixture
def settings(redis_url: str, tmp_path: Path) -> Settings:
    return make_settings(redis_url, tmp_path)


@pytest.fixture
async def client(aiohttp_client, settings: Settings):
    return await aiohttp_client(create_app(settings))
