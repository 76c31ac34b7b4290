-- Messages per hospital, month (in the hospital's own time zone) and channel, as the dashboards
-- count them (chalicelib/domain/analytics.py, GET /analytics/messages?granularity=month&
-- group_by=channel): each message on the day it was claimed, once its outcome is settled.
-- Sent counts what left (delivered and bounced were sent first); SMS segments those of texts
-- that left. A message still sending, or whose outcome is unknown, is not counted yet.
-- One parameter: the export's day, e.g. '2027-03-05'.
-- Trino (Athena engine 3) SQL; tests/journeys/test_analytics_export.py runs this file with
-- DuckDB over a local export, with DuckDB stand-ins for the Trino functions it lacks.
WITH day_files AS (
    SELECT item, "$path" AS path
    FROM careloop_export
    WHERE export_date = ?
),
-- The one export of the day that is counted. DynamoDB writes an export's manifest-files.json
-- when it has completed, so a failed or unfinished export's data files are never counted; of
-- two completed exports of one day, only the newest (an export id begins with its start time;
-- whatever the ids, one export only). The export id is the folder after AWSDynamoDB/.
counted_export AS (
    SELECT max(split_part(split_part(path, '/AWSDynamoDB/', 2), '/', 1)) AS export_id
    FROM day_files
    WHERE path LIKE '%/AWSDynamoDB/%/manifest-files.json'
),
export AS (
    SELECT f.item
    FROM day_files AS f
    JOIN counted_export AS c
        ON split_part(split_part(f.path, '/AWSDynamoDB/', 2), '/', 1) = c.export_id
    WHERE f.item IS NOT NULL
),
hospitals AS (
    SELECT
        split_part(item.PK.S, '#', 2) AS tenant_id,
        coalesce(item.doc.M.time_zone.S, 'UTC') AS time_zone
    FROM export
    WHERE item.SK.S = 'TENANT' AND item.PK.S LIKE 'T#%'
),
messages AS (
    SELECT
        split_part(item.PK.S, '#', 2) AS tenant_id,
        -- The status beside the doc is the one a claim's conditions keep.
        coalesce(nullif(item.status.S, ''), item.doc.M.status.S) AS status,
        coalesce(nullif(item.doc.M.channel.S, ''), 'none') AS channel,
        item.doc.M.created_at.S AS claimed_at,
        coalesce(nullif(CAST(item.doc.M.sms_segments.N AS integer), 0), 1) AS sms_segments
    FROM export
    WHERE item.SK.S = 'DELIVERY' AND item.PK.S LIKE 'T#%#SEND#%'
),
settled AS (
    SELECT
        m.tenant_id,
        substr(
            CAST(
                CAST(
                    at_timezone(from_iso8601_timestamp(m.claimed_at), coalesce(h.time_zone, 'UTC'))
                    AS date
                ) AS varchar
            ),
            1,
            7
        ) AS month,
        m.channel,
        m.status,
        m.sms_segments,
        m.status IN ('sent', 'delivered', 'bounced') AS left_us
    FROM messages AS m
    LEFT JOIN hospitals AS h ON h.tenant_id = m.tenant_id
    WHERE m.status IN ('sent', 'delivered', 'bounced', 'suppressed', 'failed', 'skipped')
)
SELECT
    tenant_id,
    month,
    channel,
    sum(CASE WHEN left_us THEN 1 ELSE 0 END) AS sent,
    sum(CASE WHEN status = 'delivered' THEN 1 ELSE 0 END) AS delivered,
    sum(CASE WHEN status = 'bounced' THEN 1 ELSE 0 END) AS bounced,
    sum(CASE WHEN status = 'suppressed' THEN 1 ELSE 0 END) AS suppressed,
    sum(CASE WHEN status = 'failed' THEN 1 ELSE 0 END) AS failed,
    sum(CASE WHEN status = 'skipped' THEN 1 ELSE 0 END) AS skipped,
    sum(CASE WHEN left_us AND channel = 'sms' THEN sms_segments ELSE 0 END) AS sms_segments
FROM settled
GROUP BY tenant_id, month, channel
ORDER BY tenant_id, month, channel
