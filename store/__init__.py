"""The storage layer: every Redis key, every Lua script and the one Redis connection factory.

Modules, one per thing kept:
- keys.py:          every key name (add new ones here, never as literals elsewhere);
- connection.py:    the one way to build a Redis client (sync or asyncio; URL, TLS, timeouts, retries);
- message.py:       a tracked message's compact record (state, history, dedup set) and how it reads back;
- state.py:         applying a batch of events: dedup, message state, history, pending index,
                    opt-out changes, recent events, metrics (one Lua call per batch);
- optouts.py:       the opt-out list's read side;
- suppression.py:   the opt-out list as a sender's suppression list: bulk check, CSV import and export;
- journal.py:       the batch journal (a queued batch is never lost between Redis and a worker);
- capped_list.py:   a list capped in bytes, oldest dropped with a counter (quarantine, dead letters);
- quarantine.py:    bodies that did not decode;
- deadletters.py:   deliveries and plug-in calls that gave up (replaying them is workers/replay.py);
- serialization.py: the msgpack codec of the queue's task messages.

It sits beside pipeline/ at the bottom: it imports neither Celery nor aiohttp
(tests/store/test_layering.py), so the web process, the workers and the CLI
all stand on it without pulling in each other.

Where an address (phone number, e-mail) is kept, for erasure: the opt-out
hashes and index (keys.OPTOUT, keys.OPTOUT_INDEX), quarantined bodies and
dead-lettered events (the raw text), and, until a worker applies them, queued
batches (the queue and keys.JOURNAL). Message records (keys.MESSAGE) and the
dashboard's recent events hold none.
"""
