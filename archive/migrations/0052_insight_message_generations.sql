-- Retention for the per-message table of the delivery figures (archive/rollups.py): beat drops whole
-- partitions, as it drops the events' day partitions, never row by row (archive/message_generations.py).
--
-- insight_messages is partitioned by generation: a message's row is made in the generation current when
-- its first callback was archived, and stays there. Beat starts a new generation every few days (an
-- eighth of TSPIPE_ARCHIVE_DAYS) and drops a generation once the one after it began longer ago than
-- TSPIPE_ARCHIVE_DAYS: every message in it was first seen before the retention cutoff. A message is found
-- by reference id in whichever generation holds it (a few partitions, not one per day); a new one is made
-- only when no generation has it, in the current one, so one message has one row.
ALTER TABLE insight_messages RENAME TO insight_messages_0050;
ALTER INDEX insight_messages_pkey RENAME TO insight_messages_0050_pkey;

CREATE TABLE insight_message_generations (
    generation integer     PRIMARY KEY,
    started    timestamptz NOT NULL DEFAULT now()
);
INSERT INTO insight_message_generations (generation) VALUES (1);

CREATE TABLE insight_messages (
    generation    integer NOT NULL,
    reference_id  text    NOT NULL,
    hour          timestamptz,
    first_at      timestamptz,
    channel       text NOT NULL DEFAULT '',
    country       text NOT NULL DEFAULT '',
    carrier       text NOT NULL DEFAULT '',
    final_code    integer,
    final_outcome text,
    final_rank    smallint,
    final_at      timestamptz,
    currency      text,
    spend         numeric,
    -- reference_id first: a lookup by reference id is one index probe per generation.
    PRIMARY KEY (reference_id, generation)
) PARTITION BY LIST (generation);
CREATE TABLE insight_messages_g1 PARTITION OF insight_messages FOR VALUES IN (1);

INSERT INTO insight_messages (generation, reference_id, hour, first_at, channel, country, carrier, final_code,
                              final_outcome, final_rank, final_at, currency, spend)
SELECT 1, reference_id, hour, first_at, channel, country, carrier, final_code, final_outcome, final_rank, final_at,
       currency, spend
FROM insight_messages_0050;
DROP TABLE insight_messages_0050;
