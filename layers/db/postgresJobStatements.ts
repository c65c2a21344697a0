/** The statements on the `jobs` table alone: a job's insert and transitions, and its reads. */
import type { SqlClient, Statement } from "@effect/sql"
import { Effect, Option } from "effect"
import type { FailureInfo } from "../../src/domain/FailureInfo.ts"
import { encodeLabelSet } from "../../src/domain/Labels.ts"
import type { Status } from "../../src/domain/Status.ts"
import type { DbShape, Transition } from "../../src/services/Db.ts"
import { decodeTransition, JOB_COLUMNS, rowsToJobs, toDbError } from "./postgresRows.ts"
import { makeStatementHelpers, now } from "./postgresStatementHelpers.ts"

export type JobStatements = Pick<
  DbShape,
  | "addJob"
  | "markJobRunning"
  | "markJobCompleted"
  | "markJobFailed"
  | "getJob"
  | "jobExistsForPod"
  | "getActiveJobs"
  | "getRunningJobs"
  | "getPendingJobs"
  | "listJobs"
  | "getJobsToPoll"
  | "getRunningJobPods"
  | "deleteCompletedJobsBefore"
  | "getEntityIdForJob"
>

/** `channel` is the NOTIFY channel a stored job wakes the schedulers on. */
export const makeJobStatements = (sql: SqlClient.SqlClient, channel: string): JobStatements => {
  const { jsonb, optionalNumber, page } = makeStatementHelpers(sql)
  const jobCols = sql.unsafe(JOB_COLUMNS)

  /**
   * One statement per transition: lock the row, update it only when its current status allows the move, and
   * report the status it had. The UPDATE reads the locked status from `prev`, so concurrent deliveries for the
   * same job serialise on the row and exactly one of them sees `changed`.
   */
  const transitionJob = (
    what: string,
    jobId: number,
    from: ReadonlyArray<Status>,
    set: Statement.Fragment
  ) =>
    Effect.gen(function*() {
      const at = yield* now
      const rows = yield* sql`
        WITH prev AS (SELECT job_id, status FROM jobs WHERE job_id = ${jobId} FOR UPDATE),
        upd AS (
          UPDATE jobs SET ${set}, updated_at = ${at}
          FROM prev WHERE jobs.job_id = prev.job_id AND prev.status::text IN ${sql.in(from)}
          RETURNING jobs.job_id
        )
        SELECT prev.status::text AS previous, EXISTS (SELECT 1 FROM upd) AS changed FROM prev`.pipe(
        Effect.mapError(toDbError(what))
      )
      const [row] = yield* decodeTransition(rows).pipe(Effect.mapError(toDbError(what)))
      return (row === undefined ? { found: false } : { found: true, ...row }) satisfies Transition as Transition
    })

  return {
    addJob: (job) =>
      Effect.gen(function*() {
        const at = yield* now
        const rows = yield* sql`
          INSERT INTO jobs (job_id, provider, entity_id, entity_name, entity_type, repo_full_name, installation_id,
                            job_labels, k8s_pool, k8s_image, html_url, created_at, updated_at)
          VALUES (${job.job_id}, ${job.provider}, ${job.entity_id}, ${job.entity_name}, ${job.entity_type},
                  ${job.repo_full_name}, ${job.installation_id}, ${encodeLabelSet(job.job_labels)}::jsonb,
                  ${job.k8s_pool}, ${job.k8s_image}, ${job.html_url}, ${at}, ${at})
          ON CONFLICT (job_id) DO NOTHING
          RETURNING job_id`.pipe(Effect.mapError(toDbError("addJob")))
        // The NOTIFY is its own statement, after the insert has committed. PostgreSQL serialises the commits of
        // all transactions that NOTIFY, so an insert that notifies cannot share WAL flushes with other inserts;
        // apart, the webhook bench measured about 5x the throughput at 16 clients. If the NOTIFY is lost, the job
        // is still stored and the schedulers' 15 s tick finds it.
        if (rows.length > 0) {
          yield* sql`SELECT pg_notify(${channel}, ${String(job.job_id)})`.pipe(
            Effect.catchAll((e) => Effect.logWarning("job stored, but its wake-up NOTIFY failed", e.message))
          )
        }
        return rows.length > 0
      }).pipe(Effect.withSpan("Db.addJob", { attributes: { job_id: job.job_id } })),

    markJobRunning: (jobId, runnerName) =>
      transitionJob("markJobRunning", jobId, ["pending"], sql`status = 'running', k8s_pod = COALESCE(jobs.k8s_pod, NULLIF(${runnerName ?? ""}, ''))`),

    markJobCompleted: (jobId, runnerName) =>
      transitionJob(
        "markJobCompleted",
        jobId,
        ["pending", "running"],
        sql`status = 'completed', k8s_pod = COALESCE(jobs.k8s_pod, NULLIF(${runnerName ?? ""}, ''))`
      ),

    markJobFailed: (jobId, info: FailureInfo) =>
      transitionJob("markJobFailed", jobId, ["pending", "running"], sql`status = 'failed', failure_info = ${jsonb(info)}`),

    getJob: (jobId) =>
      sql`SELECT ${jobCols} FROM jobs WHERE job_id = ${jobId}`.pipe(
        Effect.mapError(toDbError("getJob")),
        Effect.flatMap(rowsToJobs("getJob")),
        Effect.map((rows) => Option.fromNullable(rows[0]))
      ),

    jobExistsForPod: (podName) =>
      sql<{ exists: boolean }>`SELECT EXISTS (SELECT 1 FROM jobs WHERE k8s_pod = ${podName}) AS exists`.pipe(
        Effect.mapError(toDbError("jobExistsForPod")),
        Effect.map((rows) => rows[0]?.exists === true)
      ),

    getRunningJobs: sql`SELECT ${jobCols} FROM jobs WHERE status = 'running' ORDER BY created_at, job_id`.pipe(
      Effect.mapError(toDbError("getRunningJobs")),
      Effect.flatMap(rowsToJobs("getRunningJobs"))
    ),
    getActiveJobs: sql`SELECT ${jobCols} FROM jobs WHERE status IN ('pending', 'running') ORDER BY created_at, job_id`.pipe(
      Effect.mapError(toDbError("getActiveJobs")),
      Effect.flatMap(rowsToJobs("getActiveJobs"))
    ),

    getPendingJobs: sql`SELECT ${jobCols} FROM jobs WHERE status = 'pending' ORDER BY created_at, job_id`.pipe(
      Effect.mapError(toDbError("getPendingJobs")),
      Effect.flatMap(rowsToJobs("getPendingJobs"))
    ),

    listJobs: (req) => page("listJobs", "jobs", jobCols, rowsToJobs("listJobs"), req),

    getJobsToPoll: (staleBefore, limit) =>
      sql`SELECT ${jobCols} FROM jobs
          WHERE status IN ('pending', 'running') AND repo_full_name <> '' AND updated_at < ${staleBefore}
          ORDER BY updated_at, job_id LIMIT ${limit}`.pipe(
        Effect.mapError(toDbError("getJobsToPoll")),
        Effect.flatMap(rowsToJobs("getJobsToPoll"))
      ),

    getRunningJobPods: sql<{ k8s_pod: string }>`
      SELECT DISTINCT k8s_pod FROM jobs WHERE status = 'running' AND k8s_pod IS NOT NULL AND k8s_pod <> '' ORDER BY k8s_pod`.pipe(
      Effect.mapError(toDbError("getRunningJobPods")),
      Effect.map((rows) => rows.map((r) => r.k8s_pod))
    ),

    deleteCompletedJobsBefore: (cutoff) =>
      sql<{ n: number }>`
        WITH gone AS (DELETE FROM jobs WHERE status = 'completed' AND updated_at < ${cutoff} RETURNING 1)
        SELECT count(*)::int AS n FROM gone`.pipe(
        Effect.mapError(toDbError("deleteCompletedJobsBefore")),
        Effect.map((rows) => Number(rows[0]?.n ?? 0))
      ),

    getEntityIdForJob: (jobId) =>
      optionalNumber("getEntityIdForJob", sql<{ v: number | null }>`SELECT entity_id AS v FROM jobs WHERE job_id = ${jobId}`)
  }
}
