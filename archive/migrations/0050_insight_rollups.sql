-- Delivery insight: hourly rollups kept by the archive writer in the archive's own transaction
-- (archive/rollups.py), so the figures never drift from the events. Queries read these, never `events`.

-- One row per message (reference id): what its figures currently count, so a message that gets
-- several callbacks is counted once per figure, and a later callback moves it instead of adding it.
CREATE TABLE insight_messages (
    reference_id  text PRIMARY KEY,
    hour          timestamptz,              -- the hour the message was sent in (null: row just claimed)
    first_at      timestamptz,              -- submit_timestamp, else the earliest callback seen
    channel       text NOT NULL DEFAULT '',
    country       text NOT NULL DEFAULT '',
    carrier       text NOT NULL DEFAULT '',
    final_code    integer,                  -- the message's final status, by the state rules
    final_outcome text,
    final_rank    smallint,
    final_at      timestamptz,
    currency      text,                     -- spend: the first price Telesign reported, x parts
    spend         numeric
);

-- Counters per group and period (the period the messages were sent in). `dim` says what `key` is:
-- channel, country, carrier, status_code (the final code; '' until final), carrier_code and
-- country_code ('<key>|<code>' of failures) or action (inbound messages by keyword action).
-- `channel` is one channel, or '*' for all of them; `span` is 1 (the row covers the hour starting
-- at `hour`) or 24 (the day starting there). '' stands for unknown. `ttf` counts times to final in
-- pipeline/histogram.py's buckets; rr_final and rr_read count the channels with read receipts.
CREATE TABLE insight_rollup (
    dim       text        NOT NULL,
    channel   text        NOT NULL,
    span      smallint    NOT NULL,
    hour      timestamptz NOT NULL,
    key       text        NOT NULL,
    sent      bigint      NOT NULL DEFAULT 0,
    final     bigint      NOT NULL DEFAULT 0,
    delivered bigint      NOT NULL DEFAULT 0,
    read      bigint      NOT NULL DEFAULT 0,
    failed    bigint      NOT NULL DEFAULT 0,
    inbound   bigint      NOT NULL DEFAULT 0,
    rr_final  bigint      NOT NULL DEFAULT 0,
    rr_read   bigint      NOT NULL DEFAULT 0,
    ttf       integer[],             -- null: no time to final counted (most rows: failure codes, sent only)
    PRIMARY KEY (dim, channel, span, hour, key)
);

CREATE TABLE insight_spend (
    dim      text        NOT NULL,
    channel  text        NOT NULL,
    span     smallint    NOT NULL,
    hour     timestamptz NOT NULL,
    key      text        NOT NULL,
    currency text        NOT NULL,
    amount   numeric     NOT NULL DEFAULT 0,
    PRIMARY KEY (dim, channel, span, hour, key, currency)
);
