"""tspipe: the operations layer (command line, embedded Redis and the run that owns a data directory).

The product lives in pipeline/ (pure core), ingest/ (web), workers/ (Celery)
and config/ (settings); this package wires them into commands.
"""

__version__ = "0.1.0"
