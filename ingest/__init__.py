"""The HTTP ingress: check, batch, write, answer 200.

Modules, in the order a callback meets them:
- app.py:       routes, the signature and size checks, /healthz /readyz /metrics;
- batcher.py:   micro-batches concurrent callbacks into one durable write;
- publisher.py: LPUSHes each batch from the event loop as one Celery task message
                (task_message.py builds it), spooling on a thread while Redis fails;
- spool.py:     the fsync'd local file that holds batches while Redis is down;
- metrics.py:   the app's own Prometheus registry.
The signature scheme itself is pure and lives in pipeline/signature.py.
"""
