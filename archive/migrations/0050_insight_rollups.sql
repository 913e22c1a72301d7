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

-- Counters per hour (the hour the messages were sent in) and group. `dim` says what `key` is:
-- channel, country, carrier, status_code (the final code; '' until final) or action (inbound
-- messages by keyword action). `channel` is repeated on every row so any figure can be narrowed to
-- one channel. '' stands for unknown. `ttf` counts times to final in pipeline/histogram.py's buckets.
CREATE TABLE insight_rollup (
    dim       text        NOT NULL,
    hour      timestamptz NOT NULL,
    channel   text        NOT NULL,
    key       text        NOT NULL,
    sent      bigint      NOT NULL DEFAULT 0,
    final     bigint      NOT NULL DEFAULT 0,
    delivered bigint      NOT NULL DEFAULT 0,
    read      bigint      NOT NULL DEFAULT 0,
    failed    bigint      NOT NULL DEFAULT 0,
    inbound   bigint      NOT NULL DEFAULT 0,
    ttf       integer[]   NOT NULL,
    PRIMARY KEY (dim, hour, channel, key)
);

CREATE TABLE insight_spend (
    dim      text        NOT NULL,
    hour     timestamptz NOT NULL,
    channel  text        NOT NULL,
    key      text        NOT NULL,
    currency text        NOT NULL,
    amount   numeric     NOT NULL DEFAULT 0,
    PRIMARY KEY (dim, hour, channel, key, currency)
);
