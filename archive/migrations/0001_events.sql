-- The event archive: one row per event, partitioned by day on occurred_at.
--
-- occurred_at is the partition key because it comes from the body
-- (status.updated_on): the same event always lands in the same partition,
-- so the primary key (occurred_at, event_id) rejects it there, and
-- event_id is unique across the whole table although PostgreSQL's unique
-- indexes on a partitioned table must include the partition key. A body
-- without updated_on is filed by received_at and flagged `undated`; the
-- writer checks those few against the partial index below instead.
CREATE TABLE events (
    occurred_at  timestamptz NOT NULL,
    event_id     text        NOT NULL,
    received_at  timestamptz NOT NULL,
    request_id   text        NOT NULL DEFAULT '',
    undated      boolean     NOT NULL DEFAULT false,
    kind         text        NOT NULL,
    channel      text,
    outcome      text        NOT NULL,
    status_code  integer     NOT NULL,
    reference_id text,
    -- E.164 digits without '+', and lower-cased e-mail: what search and erasure match on.
    phone_number text,
    email        text,
    -- The normalized event (CONTRACT section 1) without `raw`, and the body exactly as received.
    event        jsonb       NOT NULL,
    raw          bytea       NOT NULL,
    PRIMARY KEY (occurred_at, event_id)
) PARTITION BY RANGE (occurred_at);

-- Search pages newest first with ties by event_id: each filter that narrows
-- a lot has its own index in that order, so a page is an index range scan
-- per partition merged in order, whatever the table's size.
CREATE INDEX events_phone ON events (phone_number, occurred_at DESC, event_id DESC) WHERE phone_number IS NOT NULL;
CREATE INDEX events_email ON events (email, occurred_at DESC, event_id DESC) WHERE email IS NOT NULL;
CREATE INDEX events_reference ON events (reference_id, occurred_at DESC, event_id DESC) WHERE reference_id IS NOT NULL;
CREATE INDEX events_undated ON events (event_id) WHERE undated;

-- Rows whose day has no partition (a clock far off, or a day beat has not
-- reached yet) land here, so no event is ever refused; creating that day's
-- partition later moves them out (archive/partitions.py).
CREATE TABLE events_default PARTITION OF events DEFAULT;
