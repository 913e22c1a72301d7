"""The maintenance queue comes first: beat's jobs must not wait behind the backlog they exist to fix.

Beat's periodic tasks (journal sweep, reconciliation; archive retention later)
are sent with an expiry of one period, so that a stopped worker does not find
a pile of them on restart. On the ingest queue they sat behind every queued
batch and expired there during a backlog: 34 "Discarding revoked task:
tspipe.journal_sweep" lines after an outage, the recovery waiting for the
backlog it should be fixing. So they travel on their own queue, and a worker
asks Redis for it first.

Kombu's Redis transport consumes with one BRPOP over all of a worker's
queues, which pops from the first non-empty key in the order given; its
`queue_order_strategy` transport option picks a class that orders those
keys. This one puts the maintenance queue first and round-robins the rest as
kombu's default does, so one destination's backlog still never starves another.
"""

from __future__ import annotations

from kombu.utils.scheduling import round_robin_cycle

MAINTENANCE_QUEUE = "tspipe.maintenance"
# For kombu's `queue_order_strategy` transport option, which takes a dotted path.
STRATEGY = f"{__name__}:MaintenanceFirst"


class MaintenanceFirst(round_robin_cycle):
    """kombu's round robin over a worker's queues, with the maintenance queue always asked first."""

    def consume(self, n: int) -> list[str]:
        queues = self.items[:n]
        if MAINTENANCE_QUEUE in queues:
            queues.remove(MAINTENANCE_QUEUE)
            queues.insert(0, MAINTENANCE_QUEUE)
        return queues
