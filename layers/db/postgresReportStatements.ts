/**
 * The operators' reports: the weekly usage per (entity, ISO week), in one statement over the roll-up and the rows
 * of the days after its mark, and the roll-up's pass.
 */
import type { SqlClient } from "@effect/sql"
import { Effect, Schema } from "effect"
import {
  DAY_MS,
  foldSpan,
  foldTarget,
  type WeeklyUsageFold,
  type WeeklyUsageRequest,
  type WeeklyUsageRow
} from "../../src/domain/WeeklyUsage.ts"
import type { DbShape } from "../../src/services/Db.ts"
import { toDbError } from "./postgresRows.ts"
import { usagePartsCtes } from "./postgresUsageParts.ts"

/** The sort memory of the report's statement and of a pass of the roll-up (a week's sweep, a year's waits). */
export const REPORT_WORK_MEM = "64MB"

export type ReportStatements = Pick<DbShape, "getWeeklyUsage" | "foldWeeklyUsage">

const UsageRow = Schema.Struct({
  week: Schema.Number,
  entity_id: Schema.Number,
  entity_name: Schema.String,
  entity_type: Schema.String,
  jobs: Schema.Number,
  jobs_run: Schema.Number,
  jobs_failed: Schema.Record({ key: Schema.String, value: Schema.Number }),
  board_seconds: Schema.Number,
  wait_p50: Schema.NullOr(Schema.Number),
  wait_p95: Schema.NullOr(Schema.Number),
  wait_max: Schema.NullOr(Schema.Number),
  at_cap_seconds: Schema.Number
})
const decodeUsageRows = Schema.decodeUnknown(Schema.Array(UsageRow))

/** A PostgreSQL array literal of integers, where null is `NULL`: one parameter whatever the number of entities. */
const intArray = (values: ReadonlyArray<number | null>) => `{${values.map((v) => (v === null ? "NULL" : String(Math.trunc(v)))).join(",")}}`

/**
 * The statement of `getWeeklyUsage`, on its own so the benchmark can EXPLAIN it. The window's days before the
 * roll-up's mark are read from `weekly_usage_days` and `weekly_usage_held`; the days from the mark (or from the
 * window's start, when the mark is older) to `now` are computed from jobs and workers by the same parts
 * (`usagePartsCtes`), so the statement reads the rows of the last day or so, not of the window. A mark after
 * `now` (a report of a past window) is not used: then every day is computed from the rows.
 * The parts are summed per ISO week; the waits' percentiles are taken over the week's waits, folded or not; the
 * time at the cap adds the held time of the activity counts at or above each entity's cap.
 */
export const weeklyUsageStatement = (sql: SqlClient.SqlClient, req: WeeklyUsageRequest) => {
  const from = req.from
  const capIds = `{${req.caps.entities.map((c) => String(Math.trunc(c.entityId))).join(",")}}`
  const capValues = intArray(req.caps.entities.map((c) => c.cap))
  const lo = sql`(SELECT lo FROM bounds)`
  return sql<Record<string, unknown>>`
    WITH mark AS (
      SELECT CASE WHEN folded_until <= ${req.now}::timestamptz THEN folded_until END AS g FROM weekly_usage_fold
    ), bounds AS (
      SELECT g, GREATEST(${from}::timestamptz, COALESCE(g, ${from}::timestamptz)) AS lo,
             (date_part('epoch', GREATEST(${from}::timestamptz, COALESCE(g, ${from}::timestamptz)) - ${from}::timestamptz) / 86400)::int AS lo_day
      FROM (SELECT (SELECT g FROM mark) AS g) m
    ), ${usagePartsCtes(sql, lo, sql`${req.now}::timestamptz`)},
    days AS (
      SELECT entity_id, (date_part('epoch', day - ${from}::timestamptz) / 86400)::int / 7 AS k, jobs, jobs_run, jobs_failed, waits, board_seconds
      FROM weekly_usage_days WHERE day >= ${from}::timestamptz AND day < ${lo}
      UNION ALL
      SELECT entity_id, ((SELECT lo_day FROM bounds) + d) / 7, jobs, jobs_run, jobs_failed, waits, board_seconds FROM part_days
    ), held AS (
      SELECT entity_id, (date_part('epoch', day - ${from}::timestamptz) / 86400)::int / 7 AS k, active, held_ms
      FROM weekly_usage_held WHERE day >= ${from}::timestamptz AND day < ${lo}
      UNION ALL
      SELECT entity_id, ((SELECT lo_day FROM bounds) + d::int) / 7, active, held_ms FROM part_held
    ), week_jobs AS (
      SELECT entity_id, k, sum(jobs)::int AS jobs, sum(jobs_run)::int AS jobs_run, sum(board_seconds)::float8 AS board_seconds
      FROM days GROUP BY 1, 2
    ), week_waits AS (
      SELECT entity_id, k, percentile_disc(0.5) WITHIN GROUP (ORDER BY w) AS wait_p50,
             percentile_disc(0.95) WITHIN GROUP (ORDER BY w) AS wait_p95, max(w) AS wait_max
      FROM days CROSS JOIN LATERAL unnest(waits) AS w GROUP BY 1, 2
    ), week_failed AS (
      SELECT entity_id, k, jsonb_object_agg(cls, n) AS jobs_failed FROM (
        SELECT entity_id, k, f.key AS cls, sum(f.value::int)::int AS n
        FROM days CROSS JOIN LATERAL jsonb_each_text(jobs_failed) AS f GROUP BY 1, 2, 3
      ) x GROUP BY 1, 2
    ), caps AS (
      SELECT entity_id, cap FROM unnest(${capIds}::bigint[], ${capValues}::int[]) AS c(entity_id, cap)
    ), week_cap AS (
      SELECT h.entity_id, h.k, sum(h.held_ms) / 1000.0::float8 AS at_cap_seconds
      FROM held h LEFT JOIN caps c ON c.entity_id = h.entity_id
      WHERE h.active >= CASE WHEN c.entity_id IS NOT NULL THEN c.cap ELSE ${req.caps.defaultCap}::int END
      GROUP BY 1, 2
    ), keys AS (
      SELECT entity_id, k FROM week_jobs WHERE jobs > 0 OR board_seconds > 0
      UNION SELECT entity_id, k FROM week_cap WHERE at_cap_seconds > 0
    ), named AS (
      -- each entity's newest job or worker before now: folded ones are in weekly_usage_names, the rest are read
      SELECT entity_id, entity_name, entity_type, newest_at AS at FROM weekly_usage_names WHERE (SELECT g FROM mark) IS NOT NULL
      UNION ALL
      (SELECT DISTINCT ON (entity_id) entity_id, entity_name, entity_type, created_at FROM jobs
       WHERE created_at >= COALESCE((SELECT g FROM mark), '-infinity') AND created_at < ${req.now}::timestamptz
       ORDER BY entity_id, created_at DESC, entity_name DESC)
      UNION ALL
      (SELECT DISTINCT ON (entity_id) entity_id, entity_name, entity_type, created_at FROM workers
       WHERE created_at >= COALESCE((SELECT g FROM mark), '-infinity') AND created_at < ${req.now}::timestamptz
       ORDER BY entity_id, created_at DESC, entity_name DESC)
    ), names AS (
      SELECT DISTINCT ON (entity_id) entity_id, entity_name, entity_type FROM named ORDER BY entity_id, at DESC, entity_name DESC
    )
    SELECT keys.k AS week, keys.entity_id, names.entity_name, names.entity_type,
           COALESCE(j.jobs, 0)::int AS jobs, COALESCE(j.jobs_run, 0)::int AS jobs_run,
           COALESCE(f.jobs_failed, '{}'::jsonb) AS jobs_failed,
           COALESCE(j.board_seconds, 0)::float8 AS board_seconds,
           w.wait_p50, w.wait_p95, w.wait_max,
           COALESCE(c.at_cap_seconds, 0)::float8 AS at_cap_seconds
    FROM keys
    JOIN names ON names.entity_id = keys.entity_id
    LEFT JOIN week_jobs j ON j.entity_id = keys.entity_id AND j.k = keys.k
    LEFT JOIN week_waits w ON w.entity_id = keys.entity_id AND w.k = keys.k
    LEFT JOIN week_failed f ON f.entity_id = keys.entity_id AND f.k = keys.k
    LEFT JOIN week_cap c ON c.entity_id = keys.entity_id AND c.k = keys.k
    WHERE keys.k >= 0 AND keys.k < ${req.weeks}::int`
}

/** What holds the roll-up's mark back, and where the first rows are (read under the mark's lock). */
const FoldBounds = Schema.Struct({
  folded_until: Schema.NullOr(Schema.DateFromSelf),
  oldest_open: Schema.NullOr(Schema.DateFromSelf),
  first_row: Schema.NullOr(Schema.DateFromSelf)
})
const decodeFoldBounds = Schema.decodeUnknown(Schema.Array(FoldBounds))

/**
 * One pass of the roll-up, in one transaction that holds the mark's row locked (a second replica's pass waits,
 * then finds the days folded): the days from the mark to where nothing can change any more (`foldTarget`,
 * `foldSpan`) are computed by the report's own parts and stored, the names of their rows merged, the mark moved.
 * A row that can still change is a pending or running job or worker (from its creation, or its pod's start if that
 * came first), or a finished job whose runner has not started: its wait is known only then. Finished rows never
 * change again (`canTransition`); retention deletes only completed jobs, well after their day is folded, so the
 * report keeps counting them.
 */
export const foldWeeklyUsageStatements = (sql: SqlClient.SqlClient, now: Date) =>
  Effect.gen(function*() {
    const rows = yield* sql`
      WITH m AS (SELECT folded_until FROM weekly_usage_fold FOR UPDATE)
      SELECT m.folded_until,
             LEAST(
               (SELECT min(created_at) FROM jobs WHERE status IN ('pending', 'running')),
               (SELECT min(LEAST(created_at, COALESCE(running_at, created_at))) FROM workers WHERE status IN ('pending', 'running')),
               (SELECT min(j.created_at) FROM workers w JOIN jobs j ON j.k8s_pod = w.pod_name
                WHERE w.status IN ('pending', 'running') AND w.running_at IS NULL
                  AND j.created_at >= COALESCE(m.folded_until, '-infinity'))
             ) AS oldest_open,
             LEAST((SELECT min(created_at) FROM jobs), (SELECT min(created_at) FROM workers)) AS first_row
      FROM m`
    const [b] = yield* decodeFoldBounds(rows)
    if (b === undefined) return { foldedUntil: null, days: 0 }
    const target = foldTarget(now.getTime(), b.oldest_open?.getTime() ?? null)
    const span = foldSpan(b.folded_until?.getTime() ?? null, b.first_row?.getTime() ?? null, target)
    const lo = new Date(span.from)
    const hi = new Date(span.to)
    if (span.to > span.from) {
      yield* sql`
        WITH ${usagePartsCtes(sql, sql`${lo}::timestamptz`, sql`${hi}::timestamptz`)},
        put_days AS (
          INSERT INTO weekly_usage_days (day, entity_id, jobs, jobs_run, jobs_failed, waits, board_seconds)
          SELECT ${lo}::timestamptz + d * interval '1 day', entity_id, jobs, jobs_run, jobs_failed, waits, board_seconds
          FROM part_days RETURNING 1
        ), put_held AS (
          INSERT INTO weekly_usage_held (day, entity_id, active, held_ms)
          SELECT ${lo}::timestamptz + d * interval '1 day', entity_id, active, held_ms FROM part_held RETURNING 1
        )
        SELECT (SELECT count(*) FROM put_days) AS days, (SELECT count(*) FROM put_held) AS held`
      yield* sql`
        INSERT INTO weekly_usage_names (entity_id, entity_name, entity_type, newest_at)
        SELECT DISTINCT ON (entity_id) entity_id, entity_name, entity_type, created_at FROM (
          SELECT entity_id, entity_name, entity_type, created_at FROM jobs WHERE created_at >= ${lo} AND created_at < ${hi}
          UNION ALL
          SELECT entity_id, entity_name, entity_type, created_at FROM workers WHERE created_at >= ${lo} AND created_at < ${hi}
        ) n
        ORDER BY entity_id, created_at DESC, entity_name DESC
        ON CONFLICT (entity_id) DO UPDATE
          SET entity_name = excluded.entity_name, entity_type = excluded.entity_type, newest_at = excluded.newest_at
          WHERE (excluded.newest_at, excluded.entity_name) > (weekly_usage_names.newest_at, weekly_usage_names.entity_name)`
    }
    yield* sql`UPDATE weekly_usage_fold SET folded_until = ${hi}`
    return { foldedUntil: hi, days: Math.round((span.to - span.from) / DAY_MS) }
  })

export const makeReportStatements = (sql: SqlClient.SqlClient): ReportStatements => ({
  getWeeklyUsage: (req) =>
    Effect.gen(function*() {
      const from = req.from
      // One read in a transaction of its own, so that its sorts (the sweep's events, the waits) get the memory
      // they need to stay off disk for this statement only.
      const rows = yield* sql.withTransaction(
        Effect.zipRight(sql`SET LOCAL work_mem = ${sql.unsafe(`'${REPORT_WORK_MEM}'`)}`, weeklyUsageStatement(sql, req))
      ).pipe(Effect.mapError(toDbError("getWeeklyUsage")))
      const decoded = yield* decodeUsageRows(rows).pipe(Effect.mapError(toDbError("getWeeklyUsage: unexpected row")))
      return decoded.map((r): WeeklyUsageRow => ({
        weekStart: new Date(from.getTime() + r.week * 604_800_000),
        entityId: r.entity_id,
        entityName: r.entity_name,
        entityType: r.entity_type,
        jobs: r.jobs,
        jobsRun: r.jobs_run,
        jobsFailed: r.jobs_failed,
        boardSeconds: r.board_seconds,
        waitP50Seconds: r.wait_p50,
        waitP95Seconds: r.wait_p95,
        waitMaxSeconds: r.wait_max,
        atCapSeconds: r.at_cap_seconds
      }))
    }).pipe(Effect.withSpan("Db.getWeeklyUsage")),

  foldWeeklyUsage: (now) =>
    sql.withTransaction(
      Effect.zipRight(sql`SET LOCAL work_mem = ${sql.unsafe(`'${REPORT_WORK_MEM}'`)}`, foldWeeklyUsageStatements(sql, now))
    ).pipe(
      Effect.map((r): WeeklyUsageFold => r),
      Effect.mapError(toDbError("foldWeeklyUsage")),
      Effect.withSpan("Db.foldWeeklyUsage")
    )
})
