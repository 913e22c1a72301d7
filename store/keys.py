"""Every Redis key name tspipe uses, in one place (the Lua scripts that use them live next to them in store/).

All keys share the "ts:" prefix so an operator can see tspipe's footprint
with one SCAN, and so tspipe can share a Redis with other applications.
Add new keys here, never as string literals elsewhere.
"""

PREFIX = "ts:"

# A tracked message's hot state, history and dedup set, in one msgpack string (see store/message.py).
MESSAGE = PREFIX + "m:{reference_id}"
# Deduplication of events without a reference id (those with one dedupe inside MESSAGE), with a TTL.
DEDUP = PREFIX + "dedup:{event_id}"
# Fan-out outbox: exists from apply until the event's fan-out is enqueued ('c' current, 's' stale).
OUTBOX = PREFIX + "outbox:{event_id}"
# Opt-out list: one hash per address, plus a sorted set of opted-out addresses for paging, scored
# by when each opt-out was applied (not the event's own time: 'opt-outs today' on the dashboard).
OPTOUT = PREFIX + "optout:{address}"
OPTOUT_INDEX = PREFIX + "optouts"
# Bodies that did not decode, with their reason (list, newest first), and the list's size in bytes.
QUARANTINE = PREFIX + "quarantine"
QUARANTINE_BYTES = PREFIX + "quarantine:bytes"
# Deliveries and plug-in calls that exhausted their attempts (list, newest first), and its size in bytes.
DEADLETTER = PREFIX + "dlq"
DEADLETTER_BYTES = PREFIX + "dlq:bytes"
# Messages not yet final, scored by when their state last changed (our clock): reconciliation scans this,
# and entries older than the status API's window leave it.
PENDING_INDEX = PREFIX + "pending"
# Cluster-wide counters the web process exposes on /metrics.
METRICS = PREFIX + "metrics"
# The latest events, for the dashboard.
RECENT_EVENTS = PREFIX + "recent"
# Auto-reply claim per event id: the first auto-reply task to claim it is the only one that sends.
AUTOREPLY_CLAIM = PREFIX + "autoreply:{event_id}"
# Circuit breaker per downstream destination (hash: gen, failures, open_until, probe_until), by name.
CIRCUIT = PREFIX + "circuit:{name}"
# Held by the running reconciliation so two beat ticks never poll the same messages twice.
RECONCILE_LOCK = PREFIX + "reconcile:lock"
# Per-destination rate-limit counter for one time window.
RATE = PREFIX + "rate:{name}:{window}"
# Every ingest batch message the ingress queued, until a worker has applied it (hash: task id ->
# the exact message), with when each is next checked (sorted set) and how often it was re-queued.
JOURNAL = PREFIX + "journal"
JOURNAL_DUE = PREFIX + "journal:due"
JOURNAL_REQUEUES = PREFIX + "journal:requeues"
# Batches re-queued too often (they keep failing), until the same sweep moves their callbacks into the
# quarantine (byte-capped, replayable): a batch stays here only between two sweeps.
JOURNAL_STUCK = PREFIX + "journal:stuck"
# kombu's Redis transport: messages handed to a consumer and not yet acknowledged.
KOMBU_UNACKED = "unacked"
# Webhook deliveries waiting for the delivery engine, per destination: new and due jobs (list,
# bounded by the destination's max_queued), retries waiting for their time (sorted set by due
# time), jobs an engine holds (hash id -> job) with the time its lease ends (sorted set), and a
# one-element list the engine blocks on while the destination is idle (the "doorbell").
DELIVERY_READY = PREFIX + "dq:{name}:ready"
DELIVERY_DELAYED = PREFIX + "dq:{name}:delayed"
DELIVERY_INFLIGHT = PREFIX + "dq:{name}:inflight"
DELIVERY_LEASES = PREFIX + "dq:{name}:leases"
DELIVERY_BELL = PREFIX + "dq:{name}:bell"
# The archive's backlog: queue batches waiting for PostgreSQL (stream, read by the consumer group
# ARCHIVE_GROUP), and the bytes it holds (bounded by TSPIPE_ARCHIVE_BACKLOG_MAX_BYTES).
ARCHIVE_BACKLOG = PREFIX + "archive:backlog"
ARCHIVE_BACKLOG_BYTES = PREFIX + "archive:backlog:bytes"
ARCHIVE_GROUP = "archive"
# An erased address's opt-out, kept under a keyed hash of the address (keyed BLAKE2b with
# TSPIPE_ERASURE_KEY) instead of the address itself: a STOP must outlive the erasure.
OPTOUT_ERASED = PREFIX + "optout-erased:{digest}"
# The digests of the keyed records above that say opted out: the bulk check asks one SMISMEMBER of it
# instead of reading 1,000 records. One 32-byte member per erased, opted-out person (kept, like the STOP).
OPTOUT_ERASED_SET = PREFIX + "optouts-erased"
# Delivery-rate alerts (store/alerts.py): a claim per alert id (so each is raised once per window)
# and the latest alerts, newest first, for the dashboard.
ALERT_CLAIM = PREFIX + "alert:{event_id}"
ALERTS = PREFIX + "alerts"
