-- Delivery insight, fewer rows to read (bench/stats.py): a grouped query over 30 days read 75,000
-- failure-code rows beside 4,000 carrier rows, and `group_by=hour` summed six channel rows per hour.
--
-- 1. Failure codes live in their carrier's or country's own row: two parallel arrays, codes in
--    ascending order and the failures counted for each (merged on upsert, zeros dropped), instead
--    of a `carrier_code` / `country_code` row per code.
-- 2. The all-channel rows of dimension `channel` hold one row per period, key '*' (every channel
--    together), instead of a copy of each channel's own row: `group_by=hour` and `day` read one row
--    per period, and `group_by=channel` reads the per-channel rows, which hold the same figures.
ALTER TABLE insight_rollup ADD COLUMN fail_codes integer[], ADD COLUMN fail_counts integer[];

-- Existing rows: fold the failure-code rows into their group's row ('<key>|<code>', the key may hold '|').
INSERT INTO insight_rollup AS r (dim, channel, span, hour, key, fail_codes, fail_counts)
SELECT left(dim, -5), channel, span, hour, base, array_agg(code ORDER BY code), array_agg(n ORDER BY code)
FROM (
    SELECT dim, channel, span, hour, substring(key FROM '^(.*)\|[^|]*$') AS base,
           substring(key FROM '\|([^|]*)$')::integer AS code, sum(failed)::integer AS n
    FROM insight_rollup WHERE dim IN ('carrier_code', 'country_code')
    GROUP BY 1, 2, 3, 4, 5, 6 HAVING sum(failed) <> 0
) f
GROUP BY dim, channel, span, hour, base
ON CONFLICT (dim, channel, span, hour, key) DO UPDATE
    SET fail_codes = EXCLUDED.fail_codes, fail_counts = EXCLUDED.fail_counts;
DELETE FROM insight_rollup WHERE dim IN ('carrier_code', 'country_code');

-- Existing rows: the all-channel `channel` rows summed into one row per period.
CREATE TEMP TABLE insight_channel_all ON COMMIT DROP AS
SELECT span, hour, sum(sent)::bigint AS sent, sum(final)::bigint AS final, sum(delivered)::bigint AS delivered,
       sum(read)::bigint AS read, sum(failed)::bigint AS failed, sum(inbound)::bigint AS inbound,
       sum(rr_final)::bigint AS rr_final, sum(rr_read)::bigint AS rr_read,
       (SELECT array_agg(t ORDER BY i) FROM (
            SELECT i, sum(v)::integer AS t
            FROM insight_rollup x, unnest(x.ttf) WITH ORDINALITY AS u(v, i)
            WHERE x.dim = 'channel' AND x.channel = '*' AND x.span = r.span AND x.hour = r.hour
            GROUP BY i) s) AS ttf
FROM insight_rollup r WHERE dim = 'channel' AND channel = '*'
GROUP BY span, hour;
DELETE FROM insight_rollup WHERE dim = 'channel' AND channel = '*';
INSERT INTO insight_rollup (dim, channel, span, hour, key, sent, final, delivered, read, failed, inbound,
                            rr_final, rr_read, ttf)
SELECT 'channel', '*', span, hour, '*', sent, final, delivered, read, failed, inbound, rr_final, rr_read, ttf
FROM insight_channel_all;

CREATE TEMP TABLE insight_spend_all ON COMMIT DROP AS
SELECT span, hour, currency, sum(amount) AS amount FROM insight_spend
WHERE dim = 'channel' AND channel = '*' GROUP BY span, hour, currency;
DELETE FROM insight_spend WHERE dim = 'channel' AND channel = '*';
INSERT INTO insight_spend (dim, channel, span, hour, key, currency, amount)
SELECT 'channel', '*', span, hour, '*', currency, amount FROM insight_spend_all;
