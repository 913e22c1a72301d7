"""Replaying dead letters: each entry goes back through its normal path with a fresh attempt budget.

Storage of dead letters is store/deadletters.py; this module is the policy
part, which needs the delivery queues, the destinations and the plug-ins.
"""

from __future__ import annotations

import msgspec
import redis

from config.destinations import by_name
from store import deadletters
from store.deadletters import DeadLetter
from workers.app import running_app
from workers.delivery import enqueue
from workers.plugins import load_plugins, plugin_names

AUTOREPLY_TASK = "tspipe.autoreply"


def unreplayable(entries: list[DeadLetter]) -> dict[str, tuple[int, str]]:
    """Targets this process cannot replay to, with how many entries each holds and why (for the operator)."""
    plugins = plugin_names()
    missing: dict[str, tuple[int, str]] = {}
    for entry in entries:
        if entry.kind == "destination" and by_name(entry.target) is None:
            why = f"destination {entry.target!r} is not in TSPIPE_DESTINATIONS here (set it as the workers have it)"
        elif entry.kind == "plugin" and entry.target not in plugins:
            why = f"plug-in {entry.target!r} is not installed or not in TSPIPE_PLUGINS here"
        else:
            continue
        count, _ = missing.get(entry.target, (0, why))
        missing[entry.target] = (count + 1, why)
    return missing


def replay(client: redis.Redis, entries: list[DeadLetter]) -> int:
    """Send each entry back through its normal path with a fresh attempt budget, then drop it.

    Removed only after it is re-queued: a crash in between replays it twice,
    which webhook-id deduplication absorbs, rather than losing it. Entries whose
    target is unknown here stay (see unreplayable()); so do deliveries beyond
    their destination's max_queued (enqueue dead-letters those again, with why).
    """
    plugins = {p.name: p for p in load_plugins()}
    done: list[str] = []
    deliveries = []
    for entry in entries:
        body = bytes(entry.event)
        if entry.kind == "destination":
            dest = by_name(entry.target)
            if dest is not None:
                deliveries.append((dest, [body]))
                done.append(entry.id)
            continue
        if entry.kind == "plugin":
            plugin = plugins.get(entry.target)
            if plugin is None:
                continue
            # To the plug-in's own queue, as fan-out sends it: the default queue may have no consumer of it.
            running_app().send_task(plugin.name, args=(msgspec.json.decode(body),), queue=plugin.queue)
        else:
            running_app().send_task(AUTOREPLY_TASK, args=(msgspec.json.decode(body),))
        done.append(entry.id)
    if deliveries:
        enqueue(client, deliveries)
    deadletters.remove(client, done)
    return len(done)
