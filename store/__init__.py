"""The storage layer: every Redis key, every Lua script and the one Redis connection factory.

Modules, one per thing kept:
- keys.py:          every key name (add new ones here, never as literals elsewhere);
- connection.py:    the one way to build a Redis client (sync or asyncio; URL, TLS, timeouts, retries);
- state.py:         applying a batch of events: dedup, message state, history, pending index,
                    opt-out changes, recent events, metrics (one Lua call per batch);
- optouts.py:       the opt-out list's read side;
- suppression.py:   the opt-out list as a sender's suppression list: bulk check, CSV import and export;
- journal.py:       the batch journal (a queued batch is never lost between Redis and a worker);
- quarantine.py:    bodies that did not decode;
- deadletters.py:   deliveries and plug-in calls that gave up (replaying them is workers/replay.py);
- serialization.py: the msgpack codec of the queue's task messages.

It sits beside pipeline/ at the bottom: it imports neither Celery nor aiohttp
(tests/store/test_layering.py), so the web process, the workers and the CLI
all stand on it without pulling in each other.
"""
