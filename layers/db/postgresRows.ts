/**
 * How PostgreSQL's rows become the domain's values and its failures `DbError`s: the column lists the statements
 * select, the Schemas that check the rows, and the fast path for the job rows of the whole backlog.
 */
import type { SqlError } from "@effect/sql"
import { Effect, Schema } from "effect"
import { EventSummary } from "../../src/domain/InstallationEvent.ts"
import { Job } from "../../src/domain/Job.ts"
import { Status } from "../../src/domain/Status.ts"
import { Worker } from "../../src/domain/Worker.ts"
import { DbError } from "../../src/services/Db.ts"
import { isUnavailableCause } from "./timeouts.ts"

/** A failed statement names the operation; one whose database did not answer or is gone is `unavailable`. */
export const toDbError = (what: string) => (e: SqlError.SqlError | { readonly message: string }) => {
  const sqlCause = isSqlError(e) ? e.cause : undefined
  const unavailable = isSqlError(e) && isUnavailableCause(sqlCause)
  const detail = sqlCause instanceof Error && sqlCause.message !== "" ? `: ${sqlCause.message}` : ""
  return new DbError({ message: `${what}: ${e.message}${unavailable ? detail : ""}`, cause: e, unavailable })
}

export const isSqlError = (e: unknown): e is SqlError.SqlError =>
  typeof e === "object" && e !== null && (e as { _tag?: unknown })._tag === "SqlError"

/** Postgres's unique_violation: the only insert conflict `addWorker` can meet is the pod name. */
export const isUniqueViolation = (e: SqlError.SqlError): boolean =>
  typeof e.cause === "object" && e.cause !== null && (e.cause as { code?: unknown }).code === "23505"

const decodeJobs = Schema.decodeUnknown(Schema.Array(Job))
const decodeWorkers = Schema.decodeUnknown(Schema.Array(Worker))
export const decodeSummaries = Schema.decodeUnknown(Schema.Array(EventSummary))
const TransitionRow = Schema.Struct({ previous: Status, changed: Schema.Boolean })
export const decodeTransition = Schema.decodeUnknown(Schema.Array(TransitionRow))
const StreakRow = Schema.Struct({
  entity_id: Schema.Number,
  repo_full_name: Schema.NullOr(Schema.String),
  job_labels: Schema.Array(Schema.String),
  failures: Schema.Number,
  last_failure_at: Schema.DateFromSelf
})
export const decodeStreaks = Schema.decodeUnknown(Schema.Array(StreakRow))

export const JOB_COLUMNS = `job_id, status::text AS status, failure_info, provider::text AS provider, entity_id, entity_name,
  entity_type, repo_full_name, installation_id, job_labels, k8s_pool, k8s_image, k8s_pod, html_url, created_at, updated_at`
export const WORKER_COLUMNS = `pod_name, provider::text AS provider, entity_id, entity_name, entity_type, installation_id,
  repo_full_name, job_labels, k8s_pool, k8s_image, k8s_node, cluster, status::text AS status, failure_info, created_at,
  running_at, completed_at, updated_at`

/**
 * Job rows as `Job`s. When every row has the plain shape (`plainJob`), no Schema runs: the demand read decodes the
 * whole backlog each cycle, and the Schema's parse of a thousand rows was a tenth of a burst's own time. Otherwise
 * the whole list goes through the Schema as before, so an unusual row decodes, or fails, exactly as it always did.
 */
export const rowsToJobs = (what: string) => (rows: ReadonlyArray<unknown>): Effect.Effect<ReadonlyArray<Job>, DbError> =>
  Effect.suspend(() => {
    const jobs: Array<Job> = []
    for (const row of rows) {
      const job = typeof row === "object" && row !== null ? plainJob(row as Record<string, unknown>) : undefined
      if (job === undefined) return decodeJobs(rows).pipe(Effect.mapError(toDbError(`${what}: unexpected job row`)))
      jobs.push(job)
    }
    return Effect.succeed(jobs)
  })
export const rowsToWorkers = (what: string) => (rows: ReadonlyArray<unknown>) =>
  decodeWorkers(rows).pipe(Effect.mapError(toDbError(`${what}: unexpected worker row`)))

/**
 * A job row as `Job` decodes it, checked field by field: the queue view reads the whole backlog, and decoding
 * 50,000 rows through the Schema took seconds of one synchronous block. A row that is not this plain shape
 * (a stored failure_info, an unexpected value) goes through the Schema, which accepts it or names the problem.
 */
export const plainJob = (row: Record<string, unknown>): Job | undefined => {
  const labels = row.job_labels
  const ok = typeof row.job_id === "number" && (row.status === "pending" || row.status === "running" || row.status === "completed" || row.status === "failed") &&
    row.failure_info === null && row.provider === "github" && typeof row.entity_id === "number" && typeof row.entity_name === "string" &&
    (row.entity_type === "Organization" || row.entity_type === "User") && typeof row.repo_full_name === "string" &&
    typeof row.installation_id === "number" && Array.isArray(labels) && labels.every((l) => typeof l === "string") &&
    typeof row.k8s_pool === "string" && typeof row.k8s_image === "string" && (row.k8s_pod === null || typeof row.k8s_pod === "string") &&
    (row.html_url === null || typeof row.html_url === "string") && row.created_at instanceof Date && row.updated_at instanceof Date
  if (!ok) return undefined
  const job: Job = {
    job_id: row.job_id as number,
    status: row.status as Job["status"],
    failure_info: null,
    provider: "github",
    entity_id: row.entity_id as number,
    entity_name: row.entity_name as string,
    entity_type: row.entity_type as Job["entity_type"],
    repo_full_name: row.repo_full_name as string,
    installation_id: row.installation_id as number,
    job_labels: labels as ReadonlyArray<string>,
    k8s_pool: row.k8s_pool as string,
    k8s_image: row.k8s_image as string,
    k8s_pod: row.k8s_pod as string | null,
    html_url: row.html_url as string | null,
    created_at: row.created_at as Date,
    updated_at: row.updated_at as Date
  }
  return job
}
export const decodeJob = Schema.decodeUnknown(Job)
/** Rows decoded between two yields to the event loop. */
export const DECODE_CHUNK = 5_000
