"""The README's examples are what the code does: the event example, the auto-reply format, the data.json shape."""

import json
import re
from pathlib import Path

from pipeline import decode
from pipeline.event import EVENT_ENCODER
from tests.conftest import FIXTURES

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
SPEC = json.loads((ROOT / "ingest" / "openapi.json").read_text())


def _json_block(section: str) -> object:
    body = README.split(f"## {section}", 1)[1]
    return json.loads(re.search(r"```json\n(.*?)```", body, re.S).group(1))


def test_readme_event_example_is_what_classify_gives():
    shown = _json_block("The normalized event")
    event = json.loads(EVENT_ENCODER.encode(decode((FIXTURES / "mo_whatsapp_keyword_stop.json").read_bytes())))
    assert shown.pop("received_at") and event.pop("received_at") is None
    assert shown == event


def test_readme_autoreplies_example_is_accepted():
    from config.autoreplies import load_autoreplies

    example = _json_block("Auto-replies")
    assert load_autoreplies(json.dumps(example)) == example
    assert set(example) <= {"stop", "start", "help", "generic"}


def test_readme_dashboard_data_example_matches_the_openapi_document():
    """The data.json example in the README has every field the OpenAPI document requires."""
    example = json.loads(re.search(r"answers, read from Redis.*?```json\n(.*?)```", README, re.S).group(1))
    import jsonschema_rs

    required = SPEC["components"]["schemas"]["Dashboard"]["required"]
    assert sorted(example) == sorted(required)
    schema = {"$ref": "#/components/schemas/Dashboard", "components": SPEC["components"]}
    jsonschema_rs.Draft202012Validator(schema).validate(example)
