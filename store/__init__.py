"""The storage layer: every Redis key and Lua script. Imports neither Celery nor aiohttp."""
