"""Replaying dead letters: each entry goes back through its normal path with a fresh attempt budget.

Storage of dead letters is store/deadletters.py; this module is the policy
part, which needs the delivery task, the destinations and the plug-ins.
"""

from __future__ import annotations

import msgspec
import redis

from store import deadletters
from store.deadletters import DeadLetter
from workers.delivery import celery_app, enqueue
from workers.destinations import by_name
from workers.plugins import load_plugins

AUTOREPLY_TASK = "tspipe.autoreply"


def replay(client: redis.Redis, entries: list[DeadLetter]) -> int:
    """Send each entry back through its normal path with a fresh attempt budget, then drop it.

    Removed only after it is re-enqueued: a crash in between replays it twice,
    which webhook-id deduplication absorbs, rather than losing it.
    """
    plugins = {p.name: p for p in load_plugins()}
    done = []
    for entry in entries:
        body = bytes(entry.event)
        if entry.kind == "destination":
            dest = by_name(entry.target)
            if dest is None:
                continue
            enqueue(dest, body)
        elif entry.kind == "plugin":
            plugin = plugins.get(entry.target)
            if plugin is None:
                continue
            celery_app().send_task(plugin.name, args=(msgspec.json.decode(body),))
        else:
            celery_app().send_task(AUTOREPLY_TASK, args=(msgspec.json.decode(body),))
        done.append(entry.id)
    deadletters.remove(client, done)
    return len(done)
