"""Pure core: bytes in, normalized events out. No I/O, and no imports from ingest/ or workers/."""

from pipeline.decode import decode, event_id_for
from pipeline.errors import InvalidCallback, TspipeError
from pipeline.event import Action, Channel, Event, Kind, Outcome, Source

__all__ = [
    "Action",
    "Channel",
    "Event",
    "InvalidCallback",
    "Kind",
    "Outcome",
    "Source",
    "TspipeError",
    "decode",
    "event_id_for",
]
