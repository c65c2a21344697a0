/**
 * The benchmark's anchor: `getWeeklyUsage`'s statement as it was before the roll-up (migration 0008), every figure
 * computed from the jobs and workers of the window (with the at-cap sweep limited to the hours an entity could be
 * at its cap). Same answer, measured in the same run as the current statement.
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
 * They are `date_part('epoch', …)`, a float8, not `extract`: since PostgreSQL 14 `extract` computes a numeric, and
 * its several hundred thousand calls were most of the statement's time.
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
             date_part('epoch', created_at - ${from}::timestamptz) AS t_created,
             date_part('epoch', running_at - ${from}::timestamptz) AS t_running,
             LEAST(${span}::float8, COALESCE(date_part('epoch', completed_at - ${from}::timestamptz), ${span}::float8)) AS t_ended
      FROM workers
      WHERE (completed_at >= ${earliest}::timestamptz OR completed_at IS NULL) AND created_at < ${req.now}::timestamptz
    ), js AS (
      SELECT j.entity_id, j.entity_name, j.entity_type, j.status, j.k8s_pod IS NOT NULL AS ran,
             date_part('epoch', j.created_at - ${from}::timestamptz) AS t_queued,
             CASE WHEN w.running_at IS NOT NULL THEN GREATEST(0, date_part('epoch', w.running_at - j.created_at)) END AS wait_s,
             LEAST(${span}::float8, date_part('epoch', CASE
               WHEN w.running_at IS NOT NULL THEN GREATEST(j.created_at, w.running_at)
               WHEN j.status = 'pending' THEN ${req.now}::timestamptz
               ELSE j.updated_at END - ${from}::timestamptz)) AS t_waited,
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
      -- a worker's board time cut at the weeks it crosses; most lie within one, which needs no series
      SELECT entity_id, k, sum(seconds) AS board_seconds FROM (
        SELECT w.entity_id, floor(w.t_running / 604800)::int AS k, w.t_ended - w.t_running AS seconds
        FROM ws_ w WHERE w.t_running < w.t_ended AND w.t_running >= 0 AND floor(w.t_running / 604800) = floor(w.t_ended / 604800)
        UNION ALL
        SELECT w.entity_id, k, LEAST(w.t_ended, (k + 1) * 604800) - GREATEST(w.t_running, k * 604800)
        FROM ws_ w CROSS JOIN LATERAL generate_series(GREATEST(floor(w.t_running / 604800), 0)::int, floor(w.t_ended / 604800)::int) AS k
        WHERE w.t_running < w.t_ended AND w.t_ended > 0 AND (w.t_running < 0 OR floor(w.t_running / 604800) < floor(w.t_ended / 604800))
      ) b GROUP BY 1, 2
    ), capped AS (
      SELECT e.entity_id, e.n::int8 << 40 AS base,
             CASE WHEN c.entity_id IS NOT NULL THEN c.cap ELSE ${req.caps.defaultCap}::int END AS cap
      FROM (SELECT entity_id, row_number() OVER (ORDER BY entity_id) AS n FROM (SELECT DISTINCT entity_id FROM js) d) e
      LEFT JOIN unnest(${capIds}::bigint[], ${capValues}::int[]) AS c(entity_id, cap) ON c.entity_id = e.entity_id
    ), full_hours AS (
      -- The hours in which an entity can be at its cap: at least cap of its workers were active at some point of
      -- them. In any other hour its active workers stay below the cap, so the sweep leaves those hours out. It stays
      -- exact, since every interval is cut at the hours it crosses, so an hour's sums do not depend on other hours.
      -- An entity whose cap is 0 or less is at its cap in every hour (open below).
      SELECT a.entity_id, a.h FROM (
        SELECT entity_id, lo / 3600000 AS h FROM (
          SELECT entity_id, round(GREATEST(t_created, 0) * 1000)::int8 AS lo, round(GREATEST(t_ended, 0) * 1000)::int8 AS hi FROM ws_
        ) w WHERE lo < hi
        UNION ALL
        SELECT entity_id, h FROM (
          SELECT entity_id, round(GREATEST(t_created, 0) * 1000)::int8 AS lo, round(GREATEST(t_ended, 0) * 1000)::int8 AS hi FROM ws_
        ) w CROSS JOIN LATERAL generate_series(lo / 3600000 + 1, (hi - 1) / 3600000) AS h
        WHERE lo < hi AND (hi - 1) / 3600000 > lo / 3600000
      ) a JOIN capped c ON c.entity_id = a.entity_id
      WHERE c.cap > 0
      GROUP BY a.entity_id, a.h, c.cap HAVING count(*) >= c.cap
    ), swept_entities AS (
      SELECT DISTINCT entity_id, false AS open FROM full_hours
      UNION ALL SELECT entity_id, true FROM capped WHERE cap <= 0
    ), spans AS (
      -- Each held quantity of those entities as intervals [lo, hi) in ms with a weight: dw, a worker active; dx, a
      -- job waiting (+1) or a runner starting (-1). A reversed interval is the same the other way, weight negated.
      SELECT i.entity_id, e.open, LEAST(a, b) AS lo, GREATEST(a, b) AS hi, dw * sign(b - a)::int AS dw, dx * sign(b - a)::int AS dx
      FROM (
        SELECT w.entity_id, round(GREATEST(w.t_created, 0) * 1000)::int8 AS a, round(GREATEST(w.t_ended, 0) * 1000)::int8 AS b, 1 AS dw, 0 AS dx
        FROM ws_ w WHERE w.entity_id IN (SELECT entity_id FROM swept_entities)
        UNION ALL
        SELECT w.entity_id, round(GREATEST(w.t_created, 0) * 1000)::int8,
               round(GREATEST(LEAST(COALESCE(w.t_running, w.t_ended), w.t_ended), 0) * 1000)::int8, 0, -1
        FROM ws_ w WHERE w.entity_id IN (SELECT entity_id FROM swept_entities)
        UNION ALL
        SELECT j.entity_id, round(GREATEST(j.t_queued, 0) * 1000)::int8, round(j.t_waited * 1000)::int8, 0, 1
        FROM js j WHERE j.t_waited > 0 AND j.t_waited > j.t_queued AND j.entity_id IN (SELECT entity_id FROM swept_entities)
      ) i JOIN swept_entities e ON e.entity_id = i.entity_id
      WHERE a <> b
    ), cut AS (
      -- every interval cut at the hours it crosses (most lie within one)
      SELECT entity_id, open, lo / 3600000 AS h, lo, hi, dw, dx FROM spans WHERE lo / 3600000 = (hi - 1) / 3600000
      UNION ALL
      SELECT s.entity_id, s.open, h, GREATEST(s.lo, h * 3600000), LEAST(s.hi, (h + 1) * 3600000), s.dw, s.dx
      FROM spans s CROSS JOIN LATERAL generate_series(s.lo / 3600000, (s.hi - 1) / 3600000) AS h
      WHERE s.lo / 3600000 < (s.hi - 1) / 3600000
    ), pieces AS (
      SELECT p.entity_id, p.lo, p.hi, p.dw, p.dx FROM cut p
      WHERE p.open OR EXISTS (SELECT 1 FROM full_hours f WHERE f.entity_id = p.entity_id AND f.h = p.h)
    ), events AS (
      -- Each event's key is its entity's number above its time in ms, so one int8 orders the sweep of every entity.
      SELECT c.base + p.lo AS key, p.dw, p.dx FROM pieces p JOIN capped c USING (entity_id)
      UNION ALL
      SELECT c.base + p.hi, -p.dw, -p.dx FROM pieces p JOIN capped c USING (entity_id)
    ), swept AS (
      -- Every entity's (and every hour's) events sum to zero, so running sums over all entities in key order are
      -- each entity's own; between an entity's hours and from its last event to the next entity's first nothing is held.
      SELECT key, lead(key) OVER w AS key_next, sum(dw) OVER w AS active, sum(dx) OVER w AS held
      FROM events WINDOW w AS (ORDER BY key ROWS UNBOUNDED PRECEDING)
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
    ), newest AS (
      SELECT entity_id, max(at) AS at FROM (
        SELECT entity_id, max(created_at) AS at FROM js GROUP BY entity_id
        UNION ALL SELECT entity_id, max(created_at) FROM ws_ GROUP BY entity_id
      ) n GROUP BY entity_id
    ), names AS (
      -- the name and type of each entity's newest job or worker (GitHub renames show the current name)
      SELECT DISTINCT ON (n.entity_id) n.entity_id, n.entity_name, n.entity_type FROM (
        SELECT js.entity_id, js.entity_name, js.entity_type FROM js JOIN newest ON newest.entity_id = js.entity_id AND newest.at = js.created_at
        UNION ALL
        SELECT ws_.entity_id, ws_.entity_name, ws_.entity_type FROM ws_ JOIN newest ON newest.entity_id = ws_.entity_id AND newest.at = ws_.created_at
      ) n
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
