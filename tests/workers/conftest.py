"""Worker test helpers: callback bodies built from the Telesign fixtures."""

from __future__ import annotations

import json

from tests.conftest import fixture_bodies

FIXTURES = {name: json.loads(body) for name, body in fixture_bodies().items()}


def body(name: str, **changes) -> bytes:
    """A fixture body with top-level or status fields changed (status_code=, updated_on=, reference_id=...)."""
    data = json.loads(json.dumps(FIXTURES[name]))
    for key, value in changes.items():
        if key.startswith("status_"):
            data["status"][key[len("status_"):]] = value
        else:
            data[key] = value
    return json.dumps(data).encode()
