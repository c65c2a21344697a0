/**
 * The statements over the whole backlog, jobs against workers: the scheduler's demand and the queue view's rows,
 * index and the full rows of the jobs it shows.
 */
import type { SqlClient } from "@effect/sql"
import { Effect } from "effect"
import type { Job } from "../../src/domain/Job.ts"
import type { DbShape, DemandRow, QueueRow } from "../../src/services/Db.ts"
import { DECODE_CHUNK, decodeJob, JOB_COLUMNS, plainJob, rowsToJobs, toDbError } from "./postgresRows.ts"
import { markLacking } from "./queueLacking.ts"

export type QueueStatements = Pick<DbShape, "getDemand" | "getQueueRows" | "getQueueIndex" | "getJobsByIds">

export const makeQueueStatements = (sql: SqlClient.SqlClient): QueueStatements => {
  const jobCols = sql.unsafe(JOB_COLUMNS)

  return {
    // One statement for the whole backlog. Per (entity, exact label set), demand is its active jobs and supply its
    // active workers. Workers beyond the running jobs serve the oldest pending jobs, so the pending jobs ranked
    // after them are the ones lacking a runner: (demand - supply) of them when supply covers the running jobs.
    getDemand: Effect.gen(function*() {
      const rows = yield* sql<Record<string, unknown>>`
        WITH demand AS (
          SELECT entity_id, job_labels, count(*) AS n, count(*) FILTER (WHERE status = 'running') AS running FROM jobs
          WHERE status IN ('pending', 'running') GROUP BY entity_id, job_labels
        ), supply AS (
          SELECT entity_id, job_labels, count(*) AS n FROM workers
          WHERE status IN ('pending', 'running') GROUP BY entity_id, job_labels
        ), entity_workers AS (
          SELECT entity_id, count(*) AS n FROM workers WHERE status IN ('pending', 'running') GROUP BY entity_id
        ), pending AS (
          SELECT ${jobCols},
                 row_number() OVER (PARTITION BY entity_id, job_labels ORDER BY created_at, job_id) AS demand_rank
          FROM jobs WHERE status = 'pending'
        )
        SELECT p.*, d.n AS group_demand, COALESCE(s.n, 0) AS group_supply, COALESCE(e.n, 0) AS entity_active_workers
        FROM pending p
        JOIN demand d ON d.entity_id = p.entity_id AND d.job_labels = p.job_labels
        LEFT JOIN supply s ON s.entity_id = p.entity_id AND s.job_labels = p.job_labels
        LEFT JOIN entity_workers e ON e.entity_id = p.entity_id
        WHERE p.demand_rank > GREATEST(0, COALESCE(s.n, 0) - d.running)
        ORDER BY p.created_at, p.job_id`.pipe(Effect.mapError(toDbError("getDemand")))
      const jobs = yield* rowsToJobs("getDemand")(rows)
      return jobs.map((job, i): DemandRow => {
        const row = rows[i]!
        return {
          job,
          rank: Number(row.demand_rank),
          groupDemand: Number(row.group_demand),
          groupSupply: Number(row.group_supply),
          entityActiveWorkers: Number(row.entity_active_workers)
        }
      })
    }).pipe(Effect.withSpan("Db.getDemand")),

    // getDemand's statement without its filter: every pending job, each saying whether it lacks a runner.
    getQueueRows: Effect.gen(function*() {
      const rows = yield* sql<Record<string, unknown>>`
        WITH demand AS (
          SELECT entity_id, job_labels, count(*) AS n, count(*) FILTER (WHERE status = 'running') AS running FROM jobs
          WHERE status IN ('pending', 'running') GROUP BY entity_id, job_labels
        ), supply AS (
          SELECT entity_id, job_labels, count(*) AS n FROM workers
          WHERE status IN ('pending', 'running') GROUP BY entity_id, job_labels
        ), entity_workers AS (
          SELECT entity_id, count(*) AS n FROM workers WHERE status IN ('pending', 'running') GROUP BY entity_id
        ), pending AS (
          SELECT ${jobCols},
                 row_number() OVER (PARTITION BY entity_id, job_labels ORDER BY created_at, job_id) AS demand_rank
          FROM jobs WHERE status = 'pending'
        )
        SELECT p.*, d.n AS group_demand, COALESCE(s.n, 0) AS group_supply, COALESCE(e.n, 0) AS entity_active_workers,
               p.demand_rank > GREATEST(0, COALESCE(s.n, 0) - d.running) AS lacks_runner
        FROM pending p
        JOIN demand d ON d.entity_id = p.entity_id AND d.job_labels = p.job_labels
        LEFT JOIN supply s ON s.entity_id = p.entity_id AND s.job_labels = p.job_labels
        LEFT JOIN entity_workers e ON e.entity_id = p.entity_id
        ORDER BY p.created_at, p.job_id`.pipe(Effect.mapError(toDbError("getQueueRows")))
      const out: Array<QueueRow> = []
      for (let i = 0; i < rows.length; i++) {
        if (i > 0 && i % DECODE_CHUNK === 0) yield* Effect.yieldNow()
        const row = rows[i]!
        const job = plainJob(row) ?? (yield* decodeJob(row).pipe(Effect.mapError(toDbError("getQueueRows: unexpected job row"))))
        out.push({
          job,
          rank: Number(row.demand_rank),
          groupDemand: Number(row.group_demand),
          groupSupply: Number(row.group_supply),
          entityActiveWorkers: Number(row.entity_active_workers),
          lacksRunner: row.lacks_runner === true
        })
      }
      return out
    }).pipe(Effect.withSpan("Db.getQueueRows")),

    // getQueueRows folded into one row per (entity, label set, pool): the 50,000-job backlog crosses as a few
    // hundred rows of comma-separated ids and creation times, which parse in milliseconds, where 50,000 full rows
    // took seconds of pg parsing and blocked the event loop. No window function: the partial index
    // idx_jobs_pending_queue hands the pending jobs over already grouped and in age order, so nothing is sorted,
    // and which jobs lack a runner (getDemand's rank test) is decided here from the groups' counts.
    getQueueIndex: Effect.gen(function*() {
      const rows = yield* sql<{
        entity_id: number
        job_labels: ReadonlyArray<string>
        k8s_pool: string
        job_ids: string
        created_ms: string
        group_running: number
        group_supply: number
        entity_active_workers: number
      }>`
        WITH pending AS (
          SELECT entity_id, job_labels, k8s_pool,
                 string_agg(job_id::text, ',' ORDER BY created_at, job_id) AS job_ids,
                 string_agg(floor(extract(epoch FROM created_at) * 1000)::bigint::text, ',' ORDER BY created_at, job_id) AS created_ms
          FROM jobs WHERE status = 'pending' GROUP BY entity_id, job_labels, k8s_pool
        ), running AS (
          SELECT entity_id, job_labels, count(*) AS n FROM jobs WHERE status = 'running' GROUP BY entity_id, job_labels
        ), supply AS (
          SELECT entity_id, job_labels, count(*) AS n FROM workers
          WHERE status IN ('pending', 'running') GROUP BY entity_id, job_labels
        ), entity_workers AS (
          SELECT entity_id, count(*) AS n FROM workers WHERE status IN ('pending', 'running') GROUP BY entity_id
        )
        SELECT p.entity_id, p.job_labels, p.k8s_pool, p.job_ids, p.created_ms,
               COALESCE(r.n, 0) AS group_running, COALESCE(s.n, 0) AS group_supply, COALESCE(e.n, 0) AS entity_active_workers
        FROM pending p
        LEFT JOIN running r ON r.entity_id = p.entity_id AND r.job_labels = p.job_labels
        LEFT JOIN supply s ON s.entity_id = p.entity_id AND s.job_labels = p.job_labels
        LEFT JOIN entity_workers e ON e.entity_id = p.entity_id
        ORDER BY p.k8s_pool, p.entity_id`.pipe(Effect.mapError(toDbError("getQueueIndex")))
      return markLacking(rows.map((row) => ({
        entityId: Number(row.entity_id),
        labels: row.job_labels,
        pool: row.k8s_pool,
        entityActiveWorkers: Number(row.entity_active_workers),
        jobIds: row.job_ids.split(",").map(Number),
        createdMs: row.created_ms.split(",").map(Number),
        groupRunning: Number(row.group_running),
        groupSupply: Number(row.group_supply)
      })))
    }).pipe(Effect.withSpan("Db.getQueueIndex")),

    getJobsByIds: (jobIds) =>
      Effect.gen(function*() {
        if (jobIds.length === 0) return []
        // one array parameter, whatever the number of ids
        const rows = yield* sql<Record<string, unknown>>`
          SELECT ${jobCols} FROM jobs WHERE job_id = ANY(${`{${jobIds.join(",")}}`}::bigint[])`.pipe(
          Effect.mapError(toDbError("getJobsByIds"))
        )
        const out: Array<Job> = []
        for (let i = 0; i < rows.length; i++) {
          if (i > 0 && i % DECODE_CHUNK === 0) yield* Effect.yieldNow()
          const row = rows[i]!
          out.push(plainJob(row) ?? (yield* decodeJob(row).pipe(Effect.mapError(toDbError("getJobsByIds: unexpected job row")))))
        }
        return out
      }).pipe(Effect.withSpan("Db.getJobsByIds"))
  }
}
