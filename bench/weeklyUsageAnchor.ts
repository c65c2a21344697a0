/**
 * The benchmark's anchor: `getWeeklyUsage`'s statement as it was before the at-cap sweep was limited to the hours
 * an entity could be at its cap (and before the names were read without materialising every row). Same answer,
 * measured in the same run as the current statement.
 */
import type { SqlClient } from "@effect/sql"
import { MAX_QUEUED_MS, type WeeklyUsageRequest } from "../src/domain/WeeklyUsage.ts"

/** A PostgreSQL array literal of integers, where null is `NULL`. */
const intArray = (values: ReadonlyArray<number | null>) => `{${values.map((v) => (v === null ? "NULL" : String(Math.trunc(v)))).join(",")}}`

/**
 * The former statement of `getWeeklyUsage`.
 * Jobs are read from the window's start less a day (GitHub ends a wait at 24 hours) plus every pending one, and
 * workers that were active at some point of the window; so the statement reads the window, not the history.
 * Times are seconds since the window's start (float8), so every figure is plain arithmetic on one scale.
 * The time at the cap is a sweep per entity: every worker start/end and job wait start/end is an event, running
 * sums give the active workers, those still starting and the waiting jobs after each instant, and each interval
 * to the next event counts when the workers are at the cap and more jobs wait than runners are starting.
 */
export const weeklyUsageAnchorStatement = (sql: SqlClient.SqlClient, req: WeeklyUsageRequest) => {
  const from = req.from
  const span = (req.now.getTime() - from.getTime()) / 1000
  const earliest = new Date(from.getTime() - MAX_QUEUED_MS)
  const capIds = `{${req.caps.entities.map((c) => String(Math.trunc(c.entityId))).join(",")}}`
  const capValues = intArray(req.caps.entities.map((c) => c.cap))
  return sql<Record<string, unknown>>`
    WITH weeks AS (
      SELECT k, (k * 604800)::float8 AS ws, LEAST((k + 1) * 604800, ${span}::float8) AS we
      FROM generate_series(0, ${req.weeks}::int - 1) AS k
      WHERE k * 604800 < ${span}::float8
    ), ws_ AS (
      SELECT pod_name, entity_id, entity_name, entity_type, created_at, running_at,
             extract(epoch FROM created_at - ${from}::timestamptz)::float8 AS t_created,
             extract(epoch FROM running_at - ${from}::timestamptz)::float8 AS t_running,
             LEAST(${span}::float8, COALESCE(extract(epoch FROM completed_at - ${from}::timestamptz)::float8, ${span}::float8)) AS t_ended
      FROM workers
      WHERE (completed_at >= ${earliest}::timestamptz OR completed_at IS NULL) AND created_at < ${req.now}::timestamptz
    ), js AS (
      SELECT j.entity_id, j.entity_name, j.entity_type, j.status, j.k8s_pod IS NOT NULL AS ran,
             extract(epoch FROM j.created_at - ${from}::timestamptz)::float8 AS t_queued,
             CASE WHEN w.running_at IS NOT NULL THEN GREATEST(0, extract(epoch FROM w.running_at - j.created_at)::float8) END AS wait_s,
             LEAST(${span}::float8, extract(epoch FROM CASE
               WHEN w.running_at IS NOT NULL THEN GREATEST(j.created_at, w.running_at)
               WHEN j.status = 'pending' THEN ${req.now}::timestamptz
               ELSE j.updated_at END - ${from}::timestamptz)::float8) AS t_waited,
             CASE
               WHEN j.status <> 'failed' THEN NULL
               WHEN j.failure_info IS NULL THEN 'unknown'
               WHEN j.failure_info->>'version' = '2' THEN j.failure_info->>'reason'
               WHEN COALESCE(j.failure_info->>'message', j.failure_info->>'reason', '') LIKE 'installation not found%' THEN 'installation_not_found'
               WHEN COALESCE(j.failure_info->>'message', j.failure_info->>'reason', '') LIKE 'job not found%' THEN 'job_not_found'
               WHEN COALESCE(j.failure_info->>'message', j.failure_info->>'reason', '') ~ '^workflow run .* completed .*stayed queued$' THEN 'run_completed_while_queued'
               ELSE 'other' END AS failure_class,
             j.created_at
      FROM jobs j LEFT JOIN ws_ w ON w.pod_name = j.k8s_pod
      WHERE (j.created_at >= ${earliest}::timestamptz OR j.status = 'pending') AND j.created_at < ${req.now}::timestamptz
    ), job_weeks AS (
      SELECT entity_id, floor(t_queued / 604800)::int AS k, count(*) AS jobs, count(*) FILTER (WHERE ran) AS jobs_run,
             percentile_disc(0.5) WITHIN GROUP (ORDER BY wait_s) AS wait_p50,
             percentile_disc(0.95) WITHIN GROUP (ORDER BY wait_s) AS wait_p95,
             max(wait_s) AS wait_max
      FROM js WHERE t_queued >= 0 GROUP BY 1, 2
    ), failed_weeks AS (
      SELECT entity_id, k, jsonb_object_agg(failure_class, n) AS jobs_failed FROM (
        SELECT entity_id, floor(t_queued / 604800)::int AS k, failure_class, count(*) AS n
        FROM js WHERE t_queued >= 0 AND failure_class IS NOT NULL GROUP BY 1, 2, 3
      ) f GROUP BY 1, 2
    ), board_weeks AS (
      SELECT w.entity_id, k, sum(LEAST(w.t_ended, (k + 1) * 604800) - GREATEST(w.t_running, k * 604800)) AS board_seconds
      FROM ws_ w CROSS JOIN LATERAL generate_series(GREATEST(floor(w.t_running / 604800), 0)::int, floor(w.t_ended / 604800)::int) AS k
      WHERE w.t_running < w.t_ended AND w.t_ended > 0
      GROUP BY 1, 2
    ), capped AS (
      SELECT e.entity_id, e.n::int8 << 40 AS base,
             CASE WHEN c.entity_id IS NOT NULL THEN c.cap ELSE ${req.caps.defaultCap}::int END AS cap
      FROM (SELECT entity_id, row_number() OVER (ORDER BY entity_id) AS n FROM (SELECT DISTINCT entity_id FROM js) d) e
      LEFT JOIN unnest(${capIds}::bigint[], ${capValues}::int[]) AS c(entity_id, cap) ON c.entity_id = e.entity_id
    ), events AS (
      -- dw: active workers; dx: waiting jobs less runners starting (created, not yet running). Each event's key is
      -- its entity's number above its time in ms, so one int8 orders the sweep of every entity.
      SELECT c.base + round(GREATEST(w.t_created, 0) * 1000)::int8 AS key, 1 AS dw, -1 AS dx
      FROM ws_ w JOIN capped c USING (entity_id) WHERE c.cap IS NOT NULL
      UNION ALL
      SELECT c.base + round(GREATEST(w.t_ended, 0) * 1000)::int8, -1, 0
      FROM ws_ w JOIN capped c USING (entity_id) WHERE c.cap IS NOT NULL
      UNION ALL
      SELECT c.base + round(GREATEST(LEAST(COALESCE(w.t_running, w.t_ended), w.t_ended), 0) * 1000)::int8, 0, 1
      FROM ws_ w JOIN capped c USING (entity_id) WHERE c.cap IS NOT NULL
      UNION ALL
      SELECT c.base + round(GREATEST(j.t_queued, 0) * 1000)::int8, 0, 1 FROM js j JOIN capped c USING (entity_id)
      WHERE c.cap IS NOT NULL AND j.t_waited > 0 AND j.t_waited > j.t_queued
      UNION ALL
      SELECT c.base + round(j.t_waited * 1000)::int8, 0, -1 FROM js j JOIN capped c USING (entity_id)
      WHERE c.cap IS NOT NULL AND j.t_waited > 0 AND j.t_waited > j.t_queued
    ), swept AS (
      -- Every entity's events sum to zero (each +1 has its -1), so running sums over all entities in key order are
      -- each entity's own; the interval from an entity's last event to the next entity's first has nothing held.
      SELECT key, lead(key) OVER (ORDER BY key) AS key_next,
             sum(dw) OVER (ORDER BY key) AS active, sum(dx) OVER (ORDER BY key) AS held
      FROM events
    ), at_cap AS (
      SELECT c.entity_id, (s.key - c.base) / 1000.0::float8 AS t, (s.key_next - c.base) / 1000.0::float8 AS t_next
      FROM swept s JOIN capped c ON s.key >> 40 = c.base >> 40
      WHERE s.key_next > s.key AND s.held > 0 AND s.active >= c.cap
    ), cap_weeks AS (
      SELECT a.entity_id, k, sum(LEAST(a.t_next, we) - GREATEST(a.t, ws)) AS at_cap_seconds
      FROM at_cap a JOIN weeks ON a.t < we AND a.t_next > ws
      GROUP BY 1, 2
    ), keys AS (
      SELECT entity_id, k FROM job_weeks
      UNION SELECT entity_id, k FROM board_weeks
      UNION SELECT entity_id, k FROM cap_weeks
    ), named AS (
      SELECT entity_id, entity_name, entity_type, created_at FROM js
      UNION ALL SELECT entity_id, entity_name, entity_type, created_at FROM ws_
    ), newest AS (
      SELECT entity_id, max(created_at) AS at FROM named GROUP BY entity_id
    ), names AS (
      SELECT DISTINCT ON (n.entity_id) n.entity_id, n.entity_name, n.entity_type
      FROM named n JOIN newest ON newest.entity_id = n.entity_id AND newest.at = n.created_at
      ORDER BY n.entity_id, n.entity_name DESC
    )
    SELECT keys.k AS week, keys.entity_id, names.entity_name, names.entity_type,
           COALESCE(j.jobs, 0)::int AS jobs, COALESCE(j.jobs_run, 0)::int AS jobs_run,
           COALESCE(f.jobs_failed, '{}'::jsonb) AS jobs_failed,
           COALESCE(b.board_seconds, 0)::float8 AS board_seconds,
           j.wait_p50, j.wait_p95, j.wait_max,
           COALESCE(c.at_cap_seconds, 0)::float8 AS at_cap_seconds
    FROM keys
    JOIN names ON names.entity_id = keys.entity_id
    LEFT JOIN job_weeks j ON j.entity_id = keys.entity_id AND j.k = keys.k
    LEFT JOIN failed_weeks f ON f.entity_id = keys.entity_id AND f.k = keys.k
    LEFT JOIN board_weeks b ON b.entity_id = keys.entity_id AND b.k = keys.k
    LEFT JOIN cap_weeks c ON c.entity_id = keys.entity_id AND c.k = keys.k
    WHERE keys.k >= 0 AND keys.k < ${req.weeks}::int`
}
