"""tspipe: the operations layer (command line, process supervisor, embedded Redis).

The product lives in pipeline/ (pure core), ingest/ (web), workers/ (Celery)
and config/ (settings); this package wires them into commands.
"""

__version__ = "0.1.0"
