"""The delivery engine (`tspipe deliver`): every webhook POST, on one asyncio event loop.

Its own package because it is its own kind of process: asyncio and aiohttp's
client, apart from workers/ (Celery, which applies callbacks and never waits
for a receiver) and from ingest/ (the web process). It stands on store/ (the
delivery queues, the circuit breaker, dead letters) and reads the destinations
and the Standard Webhooks signing from config/destinations.py and
pipeline/webhooks.py, plain modules with no Celery task in them.
"""
