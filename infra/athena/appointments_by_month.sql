-- Appointments per hospital and month, in the hospital's own time zone, as the dashboards count
-- them (chalicelib/domain/analytics.py, GET /analytics/appointments?granularity=month):
-- booked on the day the booking was made; cancelled (by the patient, else by the clinic) on
-- the day of its last cancellation, else of its last change; attended (arrived or fulfilled)
-- and no-shows on the visit's day.
-- One parameter: the export's day, e.g. '2027-03-05' (the newest holds the table as it was
-- that day at 17:00 UTC).
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
appointments AS (
    SELECT split_part(item.PK.S, '#', 2) AS tenant_id, item.doc.M AS doc
    FROM export
    WHERE item.SK.S = 'APPT' AND item.PK.S LIKE 'T#%#A#%'
),
events AS (
    SELECT tenant_id, doc.created_at.S AS moment, 'booked' AS what
    FROM appointments
    UNION ALL
    SELECT
        tenant_id,
        coalesce(
            element_at(filter(doc.history.L, entry -> entry.M.change.S = 'cancelled'), -1).M.at.S,
            doc.updated_at.S
        ),
        CASE WHEN doc.cancelled_by.S = 'patient' THEN 'cancelled_by_patient'
            ELSE 'cancelled_by_clinic' END
    FROM appointments
    WHERE doc.status.S = 'cancelled'
    UNION ALL
    SELECT tenant_id, doc.start.S, 'attended'
    FROM appointments
    WHERE doc.status.S IN ('arrived', 'fulfilled')
    UNION ALL
    SELECT tenant_id, doc.start.S, 'noshow'
    FROM appointments
    WHERE doc.status.S = 'noshow'
),
local_events AS (
    SELECT
        e.tenant_id,
        -- The local day's month: YYYY-MM.
        substr(
            CAST(
                CAST(
                    at_timezone(from_iso8601_timestamp(e.moment), coalesce(h.time_zone, 'UTC'))
                    AS date
                ) AS varchar
            ),
            1,
            7
        ) AS month,
        e.what
    FROM events AS e
    LEFT JOIN hospitals AS h ON h.tenant_id = e.tenant_id
)
SELECT
    tenant_id,
    month,
    sum(CASE WHEN what = 'booked' THEN 1 ELSE 0 END) AS booked,
    sum(CASE WHEN what = 'cancelled_by_patient' THEN 1 ELSE 0 END) AS cancelled_by_patient,
    sum(CASE WHEN what = 'cancelled_by_clinic' THEN 1 ELSE 0 END) AS cancelled_by_clinic,
    sum(CASE WHEN what = 'attended' THEN 1 ELSE 0 END) AS attended,
    sum(CASE WHEN what = 'noshow' THEN 1 ELSE 0 END) AS noshow
FROM local_events
GROUP BY tenant_id, month
ORDER BY tenant_id, month
