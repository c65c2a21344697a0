/**
 * The weekly usage report's additive parts per (entity, UTC day), computed from jobs and workers over a span of
 * days [lo, hi): the one computation both the roll-up (`foldWeeklyUsage`, which stores them in
 * `weekly_usage_days` and `weekly_usage_held`) and the report (for the days not folded yet) run, so a folded day
 * holds exactly what the report would compute for it from the rows.
 *
 * Parts of a day: the jobs queued in it (how many, how many a runner took, failures by class, the sorted waits of
 * those whose runner ran), the board time of the workers running in it, and the time in it during which more jobs
 * waited than runners were starting, split by how many workers were active then (`held`): the time at a cap c is
 * the sum over `active >= c`, so the parts do not depend on the caps, which the report applies when it is read.
 *
 * Times are seconds since `lo` (float8, `date_part`); the sweep of the held time works in whole milliseconds
 * since `lo`, as the stored times are whole milliseconds (the services write JavaScript dates).
 */
import type { SqlClient, Statement } from "@effect/sql"

/**
 * The CTEs `pw` (workers), `pj` (jobs), `part_days` (entity_id, d, jobs, jobs_run, jobs_failed, waits,
 * board_seconds) and `part_held` (entity_id, d, active, held_ms), where `d` counts days from `lo`. `lo` is a UTC
 * midnight and `hi` any later instant (the report's `now`, or the midnight a fold ends at); `lo` and `hi` are SQL
 * fragments (parameters, or a scalar subquery of the report's mark).
 *
 * Rows read: workers active or running at some point of [lo, hi), and jobs queued from a day before `lo` plus every pending
 * one: a job's wait is counted for at most `MAX_QUEUED_MS` after it was queued unless it is still pending, so no
 * older job reaches into the span.
 */
export const usagePartsCtes = (sql: SqlClient.SqlClient, lo: Statement.Fragment, hi: Statement.Fragment) =>
  sql`
    pw AS (
      SELECT entity_id,
             LEAST(date_part('epoch', ${hi} - ${lo}), date_part('epoch', created_at - ${lo})) AS t_created,
             date_part('epoch', running_at - ${lo}) AS t_running,
             LEAST(date_part('epoch', ${hi} - ${lo}), COALESCE(date_part('epoch', completed_at - ${lo}), date_part('epoch', ${hi} - ${lo}))) AS t_ended
      FROM workers
      -- a pod's start is the cluster's clock and its row's creation ours: a worker may run a little before its row
      -- was made, and counts from there
      WHERE (completed_at >= ${lo} OR completed_at IS NULL) AND (created_at < ${hi} OR running_at < ${hi})
    ), pj AS (
      SELECT j.entity_id, j.k8s_pod IS NOT NULL AS ran, q.t_queued,
             CASE WHEN r.running_at IS NOT NULL THEN GREATEST(0, date_part('epoch', r.running_at - j.created_at)) END AS wait_s,
             LEAST(date_part('epoch', ${hi} - ${lo}),
                   CASE WHEN j.status = 'pending' THEN date_part('epoch', ${hi} - ${lo}) ELSE q.t_queued + 86400 END,
                   date_part('epoch', CASE
                     WHEN r.running_at IS NOT NULL THEN GREATEST(j.created_at, r.running_at)
                     WHEN j.status = 'pending' THEN ${hi}
                     ELSE j.updated_at END - ${lo})) AS t_waited,
             CASE
               WHEN j.status <> 'failed' THEN NULL
               WHEN j.failure_info IS NULL THEN 'unknown'
               WHEN j.failure_info->>'version' = '2' THEN j.failure_info->>'reason'
               WHEN COALESCE(j.failure_info->>'message', j.failure_info->>'reason', '') LIKE 'installation not found%' THEN 'installation_not_found'
               WHEN COALESCE(j.failure_info->>'message', j.failure_info->>'reason', '') LIKE 'job not found%' THEN 'job_not_found'
               WHEN COALESCE(j.failure_info->>'message', j.failure_info->>'reason', '') ~ '^workflow run .* completed .*stayed queued$' THEN 'run_completed_while_queued'
               ELSE 'other' END AS failure_class
      FROM jobs j
      CROSS JOIN LATERAL (SELECT date_part('epoch', j.created_at - ${lo}) AS t_queued) q
      -- its runner, looked up by key (OFFSET 0 keeps it a lookup): the jobs read are a day or a week of them, the
      -- workers all there ever were
      LEFT JOIN LATERAL (SELECT running_at FROM workers WHERE pod_name = j.k8s_pod OFFSET 0) r ON true
      WHERE (j.created_at >= ${lo} - interval '1 day' OR j.status = 'pending') AND j.created_at < ${hi}
    ), job_days AS (
      SELECT entity_id, floor(t_queued / 86400)::int AS d, count(*)::int AS jobs, (count(*) FILTER (WHERE ran))::int AS jobs_run,
             COALESCE(array_agg(wait_s ORDER BY wait_s) FILTER (WHERE wait_s IS NOT NULL), '{}') AS waits
      FROM pj WHERE t_queued >= 0 GROUP BY 1, 2
    ), failed_days AS (
      SELECT entity_id, d, jsonb_object_agg(failure_class, n) AS jobs_failed FROM (
        SELECT entity_id, floor(t_queued / 86400)::int AS d, failure_class, count(*)::int AS n
        FROM pj WHERE t_queued >= 0 AND failure_class IS NOT NULL GROUP BY 1, 2, 3
      ) f GROUP BY 1, 2
    ), board_days AS (
      -- a worker's board time cut at the days it crosses; a piece of no length (an end at midnight) is no part
      SELECT entity_id, d, sum(seconds) AS board_seconds FROM (
        SELECT w.entity_id, d, LEAST(w.t_ended, (d + 1) * 86400.0::float8) - GREATEST(w.t_running, d * 86400.0::float8) AS seconds
        FROM pw w CROSS JOIN LATERAL generate_series(GREATEST(floor(w.t_running / 86400), 0)::int, floor(w.t_ended / 86400)::int) AS d
        WHERE w.t_running < w.t_ended AND w.t_ended > 0
      ) b WHERE seconds > 0 GROUP BY 1, 2
    ), part_days AS (
      SELECT entity_id, d, COALESCE(j.jobs, 0) AS jobs, COALESCE(j.jobs_run, 0) AS jobs_run,
             COALESCE(f.jobs_failed, '{}'::jsonb) AS jobs_failed, COALESCE(j.waits, '{}') AS waits,
             COALESCE(b.board_seconds, 0)::float8 AS board_seconds
      FROM job_days j FULL JOIN failed_days f USING (entity_id, d) FULL JOIN board_days b USING (entity_id, d)
    ), part_entities AS (
      SELECT entity_id, (row_number() OVER (ORDER BY entity_id))::int8 << 40 AS base
      FROM (SELECT entity_id FROM pw UNION SELECT entity_id FROM pj) e
    ), events AS (
      -- The held time is a sweep per entity. dw: a worker active (created → ended); dx: a job waiting (+1,
      -- queued → its runner runs, or its last change, or hi) less a runner starting (-1, created → running): a job
      -- whose own runner is booting waits for the boot, not for a cap. Each event's key is its entity's number above
      -- its time in ms, so one int8 orders the sweep of every entity.
      SELECT e.base + round(GREATEST(w.t_created, 0) * 1000)::int8 AS key, 1 AS dw, -1 AS dx FROM pw w JOIN part_entities e USING (entity_id)
      UNION ALL
      SELECT e.base + round(GREATEST(w.t_ended, 0) * 1000)::int8, -1, 0 FROM pw w JOIN part_entities e USING (entity_id)
      UNION ALL
      SELECT e.base + round(GREATEST(LEAST(COALESCE(w.t_running, w.t_ended), w.t_ended), 0) * 1000)::int8, 0, 1
      FROM pw w JOIN part_entities e USING (entity_id)
      UNION ALL
      SELECT e.base + round(GREATEST(j.t_queued, 0) * 1000)::int8, 0, 1 FROM pj j JOIN part_entities e USING (entity_id)
      WHERE j.t_waited > 0 AND j.t_waited > j.t_queued
      UNION ALL
      SELECT e.base + round(j.t_waited * 1000)::int8, 0, -1 FROM pj j JOIN part_entities e USING (entity_id)
      WHERE j.t_waited > 0 AND j.t_waited > j.t_queued
    ), swept AS (
      -- every entity's events sum to zero, so running sums over all entities in key order are each entity's own
      SELECT key, lead(key) OVER w AS key_next, sum(dw) OVER w AS active, sum(dx) OVER w AS held
      FROM events WINDOW w AS (ORDER BY key ROWS UNBOUNDED PRECEDING)
    ), held_spans AS (
      SELECT e.entity_id, s.active::int AS active, s.key - e.base AS t, s.key_next - e.base AS t_next
      FROM swept s JOIN part_entities e ON s.key >> 40 = e.base >> 40
      WHERE s.key_next > s.key AND s.held > 0
    ), part_held AS (
      SELECT entity_id, d, active, sum(LEAST(t_next, (d + 1) * 86400000) - GREATEST(t, d * 86400000))::int8 AS held_ms
      FROM held_spans CROSS JOIN LATERAL generate_series(t / 86400000, (t_next - 1) / 86400000) AS d
      GROUP BY 1, 2, 3
    )`
