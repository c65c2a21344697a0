/**
 * The queue view's statements over the whole backlog, jobs against workers: its rows, its index and the full rows
 * of the jobs it shows. The scheduler's demand, whose CTEs the rows share, is in `postgresDemandStatements.ts`.
 */
import type { SqlClient } from "@effect/sql"
import { Effect } from "effect"
import type { Job } from "../../src/domain/Job.ts"
import type { DbShape, QueueRow } from "../../src/services/Db.ts"
import { DECODE_CHUNK, decodeJob, JOB_COLUMNS, plainJob, toDbError } from "./postgresRows.ts"
import { demandCtes, runnerEnded, servingWorkers } from "./postgresDemandStatements.ts"
import { now } from "./postgresStatementHelpers.ts"
import { type CountedGroup, markLacking, parseIdList } from "./queueLacking.ts"
import { yieldToEventLoop } from "../../src/services/eventLoop.ts"

/** Ids parsed between two turns of the event loop: about a millisecond of work. */
const PARSE_SLICE = 20_000

export type QueueStatements = Pick<DbShape, "getQueueRows" | "getQueueIndex" | "getJobsByIds" | "getWaitSpans">

export const makeQueueStatements = (sql: SqlClient.SqlClient): QueueStatements => {
  const jobCols = sql.unsafe(JOB_COLUMNS)

  return {
    // getDemand's statement without its filter: every pending job, each saying whether it lacks a runner.
    getQueueRows: Effect.gen(function*() {
      const at = yield* now
      const rows = yield* sql<Record<string, unknown>>`
        WITH ${demandCtes(sql, at)}
        SELECT p.*, d.n AS group_demand, COALESCE(s.n, 0) AS group_supply, COALESCE(e.n, 0) AS entity_active_workers,
               p.demand_rank > GREATEST(0, COALESCE(s.n, 0) - d.running) AS lacks_runner
        FROM pending p
        JOIN demand d ON d.entity_id = p.entity_id AND d.job_labels = p.job_labels
                     AND d.runner_repo IS NOT DISTINCT FROM p.runner_repo
        LEFT JOIN supply s ON s.entity_id = p.entity_id AND s.job_labels = p.job_labels
                          AND s.runner_repo IS NOT DISTINCT FROM p.runner_repo
        LEFT JOIN entity_workers e ON e.entity_id = p.entity_id
        ORDER BY p.created_at, p.job_id`.pipe(Effect.mapError(toDbError("getQueueRows")))
      const out: Array<QueueRow> = []
      for (let i = 0; i < rows.length; i++) {
        if (i > 0 && i % DECODE_CHUNK === 0) yield* yieldToEventLoop
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

    // getQueueRows folded into one row per (entity, label set, pool, owner type, repository): the 50,000-job
    // backlog crosses as a few hundred rows of comma-separated ids and creation times, which parse in
    // milliseconds, where 50,000 full rows took seconds of pg parsing and blocked the event loop. No window
    // function: the partial index idx_jobs_pending_queue hands the pending jobs over already grouped and in age
    // order, so nothing is sorted. The counts are per matching group (a personal account's repository is part of
    // it, `runnerRepoOf`), and which jobs lack a runner (getDemand's rank test) is decided from them here.
    getQueueIndex: Effect.gen(function*() {
      const at = yield* now
      const rows = yield* sql<{
        entity_id: number
        job_labels: ReadonlyArray<string>
        k8s_pool: string
        runner_repo: string | null
        job_ids: string
        created_ms: string
        group_running: number
        group_supply: number
        entity_active_workers: number
      }>`
        WITH pending AS (
          SELECT entity_id, job_labels, k8s_pool, CASE WHEN entity_type = 'User' THEN repo_full_name END AS runner_repo,
                 string_agg(job_id::text, ',' ORDER BY created_at, job_id) AS job_ids,
                 string_agg(floor(extract(epoch FROM created_at) * 1000)::bigint::text, ',' ORDER BY created_at, job_id) AS created_ms
          FROM jobs WHERE status = 'pending' GROUP BY entity_id, job_labels, k8s_pool, entity_type, repo_full_name
        ), running AS (
          SELECT entity_id, CASE WHEN entity_type = 'User' THEN repo_full_name END AS runner_repo, job_labels, count(*) AS n
          FROM jobs WHERE status = 'running' AND NOT ${runnerEnded(sql, "jobs")} GROUP BY 1, 2, 3
        ), supply AS (
          SELECT entity_id, repo_full_name AS runner_repo, job_labels, count(*) AS n FROM workers w
          WHERE ${servingWorkers(sql, at)} GROUP BY entity_id, repo_full_name, job_labels
        ), entity_workers AS (
          SELECT entity_id, count(*) AS n FROM workers WHERE status IN ('pending', 'running') GROUP BY entity_id
        )
        SELECT p.entity_id, p.job_labels, p.k8s_pool, p.runner_repo, p.job_ids, p.created_ms,
               COALESCE(r.n, 0) AS group_running, COALESCE(s.n, 0) AS group_supply, COALESCE(e.n, 0) AS entity_active_workers
        FROM pending p
        LEFT JOIN running r ON r.entity_id = p.entity_id AND r.job_labels = p.job_labels AND r.runner_repo IS NOT DISTINCT FROM p.runner_repo
        LEFT JOIN supply s ON s.entity_id = p.entity_id AND s.job_labels = p.job_labels AND s.runner_repo IS NOT DISTINCT FROM p.runner_repo
        LEFT JOIN entity_workers e ON e.entity_id = p.entity_id
        ORDER BY p.k8s_pool, p.entity_id`.pipe(Effect.mapError(toDbError("getQueueIndex")))
      // parsing is cut into slices so a long queue never holds the event loop for more than a few milliseconds
      const counted: Array<CountedGroup> = []
      let parsed = 0
      for (const row of rows) {
        const jobIds = parseIdList(row.job_ids)
        counted.push({
          entityId: Number(row.entity_id),
          labels: row.job_labels,
          pool: row.k8s_pool,
          repo: row.runner_repo,
          entityActiveWorkers: Number(row.entity_active_workers),
          jobIds,
          createdMs: parseIdList(row.created_ms),
          groupRunning: Number(row.group_running),
          groupSupply: Number(row.group_supply)
        })
        parsed += jobIds.length
        if (parsed >= PARSE_SLICE) {
          parsed = 0
          yield* yieldToEventLoop
        }
      }
      return markLacking(counted)
    }).pipe(Effect.withSpan("Db.getQueueIndex")),

    getWaitSpans: (since) =>
      sql<{ created_ms: string; end_ms: string }>`
        SELECT floor(extract(epoch FROM j.created_at) * 1000)::bigint AS created_ms,
               floor(extract(epoch FROM COALESCE(w.running_at, j.updated_at)) * 1000)::bigint AS end_ms
        FROM jobs j LEFT JOIN workers w ON w.pod_name = j.k8s_pod
        WHERE j.created_at >= ${since} AND j.status <> 'pending'`.pipe(
        Effect.map((rows) => rows.map((r) => ({ createdMs: Number(r.created_ms), endMs: Number(r.end_ms) }))),
        Effect.mapError(toDbError("getWaitSpans")),
        Effect.withSpan("Db.getWaitSpans")
      ),

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
          if (i > 0 && i % DECODE_CHUNK === 0) yield* yieldToEventLoop
          const row = rows[i]!
          out.push(plainJob(row) ?? (yield* decodeJob(row).pipe(Effect.mapError(toDbError("getJobsByIds: unexpected job row")))))
        }
        return out
      }).pipe(Effect.withSpan("Db.getJobsByIds"))
  }
}
