import type { SqlError, Statement } from "@effect/sql"
import { PgClient } from "@effect/sql-pg"
import { Clock, Effect, Layer, Option, Redacted, Schema } from "effect"
import type { FailureInfo } from "../../src/domain/FailureInfo.ts"
import { EventSummary } from "../../src/domain/InstallationEvent.ts"
import { Job } from "../../src/domain/Job.ts"
import { encodeLabelSet } from "../../src/domain/Labels.ts"
import { Status } from "../../src/domain/Status.ts"
import { Worker } from "../../src/domain/Worker.ts"
import {
  type AllocationFailureStreak,
  Db,
  DbError,
  type DbShape,
  type DemandRow,
  DuplicatePodName,
  type PageRequest,
  type QueueGroup,
  type QueueRow,
  type Transition
} from "../../src/services/Db.ts"
import { deadlineClient } from "./deadlineClient.ts"
import { listenResilient } from "./listener.ts"
import { migrate } from "./migrate.ts"
import { makeSchedulerLock, schedulerLockKey } from "./schedulerLock.ts"
import { type DbSchema, pgClientLayer, type PgConnectionOptions } from "./pgClient.ts"
import { answerDeadlineMs, type DbTimeouts, defaultDbTimeouts, isUnavailableCause } from "./timeouts.ts"

/** A failed statement names the operation; one whose database did not answer or is gone is `unavailable`. */
const toDbError = (what: string) => (e: SqlError.SqlError | { readonly message: string }) => {
  const sqlCause = isSqlError(e) ? e.cause : undefined
  const unavailable = isSqlError(e) && isUnavailableCause(sqlCause)
  const detail = sqlCause instanceof Error && sqlCause.message !== "" ? `: ${sqlCause.message}` : ""
  return new DbError({ message: `${what}: ${e.message}${unavailable ? detail : ""}`, cause: e, unavailable })
}

/** How often the LISTEN connection is checked for a death no socket event reports. */
const LISTEN_CHECK_EVERY = "5 seconds"
/** How often the scheduler lock's connection is checked while a cycle holds it. */
const LOCK_CHECK_EVERY = "2 seconds"

const decodeJobs = Schema.decodeUnknown(Schema.Array(Job))
const decodeWorkers = Schema.decodeUnknown(Schema.Array(Worker))
const decodeSummaries = Schema.decodeUnknown(Schema.Array(EventSummary))
const TransitionRow = Schema.Struct({ previous: Status, changed: Schema.Boolean })
const decodeTransition = Schema.decodeUnknown(Schema.Array(TransitionRow))
const StreakRow = Schema.Struct({
  entity_id: Schema.Number,
  job_labels: Schema.Array(Schema.String),
  failures: Schema.Number,
  last_failure_at: Schema.DateFromSelf
})
const decodeStreaks = Schema.decodeUnknown(Schema.Array(StreakRow))

const JOB_COLUMNS = `job_id, status::text AS status, failure_info, provider::text AS provider, entity_id, entity_name,
  entity_type, repo_full_name, installation_id, job_labels, k8s_pool, k8s_image, k8s_pod, html_url, created_at, updated_at`
const WORKER_COLUMNS = `pod_name, provider::text AS provider, entity_id, entity_name, entity_type, installation_id,
  repo_full_name, job_labels, k8s_pool, k8s_image, k8s_node, status::text AS status, failure_info, created_at, running_at,
  completed_at, updated_at`

/**
 * A job row as `Job` decodes it, checked field by field: the queue view reads the whole backlog, and decoding
 * 50,000 rows through the Schema took seconds of one synchronous block. A row that is not this plain shape
 * (a stored failure_info, an unexpected value) goes through the Schema, which accepts it or names the problem.
 */
const plainJob = (row: Record<string, unknown>): Job | undefined => {
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
const decodeJob = Schema.decodeUnknown(Job)
/** Rows decoded between two yields to the event loop. */
const DECODE_CHUNK = 5_000

/** Postgres's unique_violation: the only insert conflict `addWorker` can meet is the pod name. */
const isUniqueViolation = (e: SqlError.SqlError): boolean =>
  typeof e.cause === "object" && e.cause !== null && (e.cause as { code?: unknown }).code === "23505"

export const makeDbPostgres = (schema: DbSchema, timeouts: DbTimeouts = defaultDbTimeouts) =>
  Effect.gen(function*() {
    const sql = yield* PgClient.PgClient
    const channel = `${schema}_queue_event`
    // The LISTEN connection is one of our own, not the PgClient's shared one: that one swallows its connection's
    // errors, so a terminated backend or a restarted server left the scheduler without wake-ups and nothing said so.
    const ListenClient = deadlineClient(answerDeadlineMs(timeouts))
    const newListenClient = () =>
      new ListenClient({
        connectionString: sql.config.url === undefined ? undefined : Redacted.value(sql.config.url),
        host: sql.config.host,
        port: sql.config.port,
        database: sql.config.database,
        user: sql.config.username,
        password: sql.config.password === undefined ? undefined : Redacted.value(sql.config.password),
        ssl: sql.config.ssl,
        application_name: "riscv-runner-listen",
        connectionTimeoutMillis: timeouts.connectMs,
        keepAlive: true
      })
    // The scheduler lock's session: a connection of its own, without the server's statement and lock timeouts (the
    // standby's wait on it is by design); its heartbeat has the client's answer deadline.
    const lock = yield* Effect.acquireRelease(
      makeSchedulerLock({
        key: schedulerLockKey(schema),
        heartbeatEvery: LOCK_CHECK_EVERY,
        newClient: () =>
          new ListenClient({
            connectionString: sql.config.url === undefined ? undefined : Redacted.value(sql.config.url),
            host: sql.config.host,
            port: sql.config.port,
            database: sql.config.database,
            user: sql.config.username,
            password: sql.config.password === undefined ? undefined : Redacted.value(sql.config.password),
            ssl: sql.config.ssl,
            application_name: "riscv-runner-scheduler-lock",
            options: "-c statement_timeout=0 -c lock_timeout=0",
            connectionTimeoutMillis: timeouts.connectMs,
            keepAlive: true,
            keepAliveInitialDelayMillis: 5_000
          })
      }),
      (l) => l.close
    )
    const [lockK1, lockK2] = lock.key
    const lockStillHeld = (pid: number) =>
      sql<{ held: boolean }>`
        SELECT EXISTS (
          SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND pid = ${pid} AND granted
            AND classid = ${lockK1}::oid AND objid = ${lockK2}::oid AND objsubid = 2
        ) AS held`.pipe(
        Effect.mapError(toDbError("scheduler lock check")),
        Effect.map((rows) => rows[0]?.held === true)
      )
    const now = Effect.map(Clock.currentTimeMillis, (ms) => new Date(ms))
    const jobCols = sql.unsafe(JOB_COLUMNS)
    const workerCols = sql.unsafe(WORKER_COLUMNS)
    const jsonb = (value: unknown) => sql`${JSON.stringify(value)}::jsonb`

    const rowsToJobs = (what: string) => (rows: ReadonlyArray<unknown>) =>
      decodeJobs(rows).pipe(Effect.mapError(toDbError(`${what}: unexpected job row`)))
    const rowsToWorkers = (what: string) => (rows: ReadonlyArray<unknown>) =>
      decodeWorkers(rows).pipe(Effect.mapError(toDbError(`${what}: unexpected worker row`)))

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

    const transitionWorker = (what: string, podName: string, from: ReadonlyArray<Status>, set: Statement.Fragment) =>
      Effect.gen(function*() {
        const at = yield* now
        const rows = yield* sql`
          UPDATE workers SET ${set}, updated_at = ${at}
          WHERE pod_name = ${podName} AND status::text IN ${sql.in(from)}
          RETURNING pod_name`.pipe(Effect.mapError(toDbError(what)))
        return rows.length > 0
      })

    const page = <A>(
      what: string,
      table: "jobs" | "workers",
      cols: Statement.Fragment,
      decode: (rows: ReadonlyArray<unknown>) => Effect.Effect<ReadonlyArray<A>, DbError>,
      req: PageRequest
    ) =>
      Effect.gen(function*() {
        const where = sql.and([
          ...(req.start ? [sql`created_at >= ${req.start}`] : []),
          ...(req.end ? [sql`created_at < ${req.end}`] : [])
        ])
        const [count] = yield* sql<{ total: number }>`SELECT count(*) AS total FROM ${sql(table)} WHERE ${where}`.pipe(
          Effect.mapError(toDbError(what))
        )
        const rows = yield* sql`
          SELECT ${cols} FROM ${sql(table)} WHERE ${where}
          ORDER BY created_at DESC, ${sql(table === "jobs" ? "job_id" : "pod_name")} DESC LIMIT ${req.perPage} OFFSET ${req.page * req.perPage}`.pipe(
          Effect.mapError(toDbError(what)),
          Effect.flatMap(decode)
        )
        return { rows, total: count?.total ?? 0 }
      })

    const optionalNumber = (what: string, rows: Effect.Effect<ReadonlyArray<{ readonly v: number | null }>, SqlError.SqlError>) =>
      rows.pipe(
        Effect.mapError(toDbError(what)),
        Effect.map((r) => Option.fromNullable(r[0]?.v))
      )

    const db: DbShape = {
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
      // hundred rows of comma-separated ids and signed pool positions (negative: the job has a runner reserved),
      // which parse in milliseconds, where 50,000 full rows took seconds of pg parsing and blocked the event loop.
      // Positions order by created_at truncated to ms, as a JS Date compares, then job_id.
      getQueueIndex: Effect.gen(function*() {
        const rows = yield* sql<{
          entity_id: number
          job_labels: ReadonlyArray<string>
          k8s_pool: string
          entity_active_workers: number
          job_ids: string
          positions: string
        }>`
          WITH demand AS (
            SELECT entity_id, job_labels, count(*) AS n, count(*) FILTER (WHERE status = 'running') AS running FROM jobs
            WHERE status IN ('pending', 'running') GROUP BY entity_id, job_labels
          ), supply AS (
            SELECT entity_id, job_labels, count(*) AS n FROM workers
            WHERE status IN ('pending', 'running') GROUP BY entity_id, job_labels
          ), entity_workers AS (
            SELECT entity_id, count(*) AS n FROM workers WHERE status IN ('pending', 'running') GROUP BY entity_id
          ), pending AS (
            SELECT job_id, entity_id, job_labels, k8s_pool,
                   row_number() OVER (PARTITION BY entity_id, job_labels ORDER BY created_at, job_id) AS demand_rank,
                   row_number() OVER (PARTITION BY k8s_pool ORDER BY date_trunc('milliseconds', created_at), job_id) AS position
            FROM jobs WHERE status = 'pending'
          ), marked AS (
            SELECT p.job_id, p.entity_id, p.job_labels, p.k8s_pool, p.position, COALESCE(e.n, 0) AS active,
                   p.demand_rank > GREATEST(0, COALESCE(s.n, 0) - d.running) AS lacks
            FROM pending p
            JOIN demand d ON d.entity_id = p.entity_id AND d.job_labels = p.job_labels
            LEFT JOIN supply s ON s.entity_id = p.entity_id AND s.job_labels = p.job_labels
            LEFT JOIN entity_workers e ON e.entity_id = p.entity_id
          )
          SELECT entity_id, job_labels, k8s_pool, max(active) AS entity_active_workers,
                 string_agg(job_id::text, ',' ORDER BY position) AS job_ids,
                 string_agg((CASE WHEN lacks THEN position ELSE -position END)::text, ',' ORDER BY position) AS positions
          FROM marked GROUP BY entity_id, job_labels, k8s_pool
          ORDER BY k8s_pool, entity_id, job_labels::text`.pipe(Effect.mapError(toDbError("getQueueIndex")))
        return rows.map((row): QueueGroup => {
          const signed = row.positions.split(",").map(Number)
          return {
            entityId: Number(row.entity_id),
            labels: row.job_labels,
            pool: row.k8s_pool,
            entityActiveWorkers: Number(row.entity_active_workers),
            jobIds: row.job_ids.split(",").map(Number),
            positions: signed.map(Math.abs),
            lacking: signed.map((p) => p > 0)
          }
        })
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
        }).pipe(Effect.withSpan("Db.getJobsByIds")),

      addWorker: (w) =>
        Effect.gen(function*() {
          const at = yield* now
          yield* sql`
            INSERT INTO workers (pod_name, provider, entity_id, entity_name, entity_type, installation_id, repo_full_name,
                                 job_labels, k8s_pool, k8s_image, status, created_at, updated_at)
            VALUES (${w.pod_name}, ${w.provider}, ${w.entity_id}, ${w.entity_name}, ${w.entity_type}, ${w.installation_id},
                    ${w.repo_full_name}, ${encodeLabelSet(w.job_labels)}::jsonb, ${w.k8s_pool}, ${w.k8s_image}, 'pending',
                    ${at}, ${at})`.pipe(
            Effect.mapError((e) => isUniqueViolation(e) ? new DuplicatePodName({ podName: w.pod_name }) : toDbError("addWorker")(e))
          )
        }),

      markWorkerRunning: (podName, node, runningAt) =>
        Effect.flatMap(now, (at) =>
          transitionWorker(
            "markWorkerRunning",
            podName,
            ["pending"],
            sql`status = 'running', k8s_node = ${node}, running_at = COALESCE(running_at, ${runningAt ?? at})`
          )),

      markWorkerCompleted: (podName, node, completedAt) =>
        Effect.flatMap(now, (at) =>
          transitionWorker(
            "markWorkerCompleted",
            podName,
            ["pending", "running"],
            sql`status = 'completed', k8s_node = COALESCE(k8s_node, ${node}), completed_at = COALESCE(completed_at, ${completedAt ?? at})`
          )),

      markWorkerFailed: (podName, node, info, completedAt) =>
        Effect.flatMap(now, (at) =>
          transitionWorker(
            "markWorkerFailed",
            podName,
            ["pending", "running"],
            sql`status = 'failed', k8s_node = COALESCE(${node}, k8s_node), failure_info = ${jsonb(info)},
                completed_at = COALESCE(${completedAt ?? at}, completed_at)`
          )),

      markWorkerOrphaned: (podName) =>
        Effect.flatMap(now, (at) =>
          transitionWorker("markWorkerOrphaned", podName, ["pending", "running"], sql`status = 'completed', completed_at = COALESCE(completed_at, ${at})`)),

      getWorker: (podName) =>
        sql`SELECT ${workerCols} FROM workers WHERE pod_name = ${podName}`.pipe(
          Effect.mapError(toDbError("getWorker")),
          Effect.flatMap(rowsToWorkers("getWorker")),
          Effect.map((rows) => Option.fromNullable(rows[0]))
        ),

      getActiveWorkers: sql`SELECT ${workerCols} FROM workers WHERE status IN ('pending', 'running') ORDER BY created_at, pod_name`.pipe(
        Effect.mapError(toDbError("getActiveWorkers")),
        Effect.flatMap(rowsToWorkers("getActiveWorkers"))
      ),

      getWorkersForReconcile: (lookbackSeconds) =>
        Effect.flatMap(now, (at) =>
          sql`SELECT ${workerCols} FROM workers
              WHERE status IN ('pending', 'running')
                 OR (completed_at IS NOT NULL AND completed_at >= ${new Date(at.getTime() - lookbackSeconds * 1000)})
              ORDER BY created_at, pod_name`.pipe(
            Effect.mapError(toDbError("getWorkersForReconcile")),
            Effect.flatMap(rowsToWorkers("getWorkersForReconcile"))
          )),

      knownPodNames: (podNames) =>
        podNames.length === 0
          ? Effect.succeed(new Set<string>())
          : sql<{ pod_name: string }>`SELECT pod_name FROM workers WHERE pod_name IN ${sql.in(podNames)}`.pipe(
            Effect.mapError(toDbError("knownPodNames")),
            Effect.map((rows) => new Set(rows.map((r) => r.pod_name)))
          ),

      listWorkers: (req) => page("listWorkers", "workers", workerCols, rowsToWorkers("listWorkers"), req),

      // Per group, the allocation failures created after the group's latest allocated worker (any other outcome,
      // in flight included), within the lookback: one statement for every group.
      getAllocationFailures: (lookbackSeconds) =>
        Effect.gen(function*() {
          const at = yield* now
          const since = new Date(at.getTime() - lookbackSeconds * 1000)
          const rows = yield* sql`
            WITH recent AS (
              SELECT entity_id, job_labels, created_at, completed_at,
                     (status = 'failed' AND failure_info ->> 'reason' = 'pod_allocation_failure') AS alloc_failed
              FROM workers WHERE created_at >= ${since}
            ), last_ok AS (
              SELECT entity_id, job_labels, max(created_at) AS at FROM recent WHERE NOT alloc_failed
              GROUP BY entity_id, job_labels
            )
            SELECT r.entity_id, r.job_labels, count(*) AS failures,
                   max(COALESCE(r.completed_at, r.created_at)) AS last_failure_at
            FROM recent r
            LEFT JOIN last_ok o ON o.entity_id = r.entity_id AND o.job_labels = r.job_labels
            WHERE r.alloc_failed AND (o.at IS NULL OR r.created_at > o.at)
            GROUP BY r.entity_id, r.job_labels`.pipe(Effect.mapError(toDbError("getAllocationFailures")))
          const streaks = yield* decodeStreaks(rows).pipe(Effect.mapError(toDbError("getAllocationFailures: unexpected row")))
          // Ordered here rather than in SQL: jsonb's text form and the collation would order label sets differently.
          return streaks
            .map((r): AllocationFailureStreak => ({
              entityId: r.entity_id,
              labels: r.job_labels,
              failures: r.failures,
              lastFailureAt: r.last_failure_at
            }))
            .sort((a, b) => a.entityId - b.entityId || (encodeLabelSet(a.labels) < encodeLabelSet(b.labels) ? -1 : 1))
        }).pipe(Effect.withSpan("Db.getAllocationFailures")),

      addInstallationEvent: (e) =>
        Effect.gen(function*() {
          const at = yield* now
          const rows = yield* sql<{ id: number }>`
            INSERT INTO installation_events (source, event, outcome, installation_id, app_id, entity_type, entity_id,
                                             entity_name, payload, received_at, delivery_id)
            VALUES (${e.source}, ${e.event}, ${e.outcome}, ${e.installation_id}, ${e.app_id},
                    ${e.entity_type}::entity_type_enum, ${e.entity_id}, ${e.entity_name}, ${jsonb(e.payload ?? null)},
                    ${at}, ${e.delivery_id})
            RETURNING id`.pipe(Effect.mapError(toDbError("addInstallationEvent")))
          return rows[0]!.id
        }),

      getEventsByEntity: (entityId) =>
        sql`
          SELECT id, source, event, outcome, installation_id, app_id, entity_type::text AS entity_type, entity_id,
                 entity_name, received_at, delivery_id,
                 CASE WHEN event LIKE 'workflow_job.%' THEN payload -> 'workflow_job' ->> 'id' END AS job_id,
                 CASE WHEN event LIKE 'workflow_job.%' THEN payload -> 'repository' ->> 'full_name' END AS repo_full_name
          FROM installation_events WHERE entity_id = ${entityId}
          ORDER BY received_at, id`.pipe(
          Effect.mapError(toDbError("getEventsByEntity")),
          Effect.flatMap((rows) => decodeSummaries(rows).pipe(Effect.mapError(toDbError("getEventsByEntity"))))
        ),

      getEventPayload: (eventId) =>
        sql<{ payload: unknown }>`SELECT payload FROM installation_events WHERE id = ${eventId}`.pipe(
          Effect.mapError(toDbError("getEventPayload")),
          Effect.map((rows) => rows.length === 0 ? Option.none() : Option.some(rows[0]!.payload))
        ),

      getEntityIdForInstallation: (installationId) =>
        optionalNumber(
          "getEntityIdForInstallation",
          sql<{ v: number | null }>`
            SELECT COALESCE(
              (SELECT entity_id FROM installation_events WHERE installation_id = ${installationId} AND entity_id IS NOT NULL
               ORDER BY received_at DESC, id DESC LIMIT 1),
              (SELECT entity_id FROM jobs WHERE installation_id = ${installationId} ORDER BY created_at DESC LIMIT 1)
            ) AS v`
        ),

      deleteCompletedJobsBefore: (cutoff) =>
        sql<{ n: number }>`
          WITH gone AS (DELETE FROM jobs WHERE status = 'completed' AND updated_at < ${cutoff} RETURNING 1)
          SELECT count(*)::int AS n FROM gone`.pipe(
          Effect.mapError(toDbError("deleteCompletedJobsBefore")),
          Effect.map((rows) => Number(rows[0]?.n ?? 0))
        ),

      getEntityIdForJob: (jobId) =>
        optionalNumber("getEntityIdForJob", sql<{ v: number | null }>`SELECT entity_id AS v FROM jobs WHERE job_id = ${jobId}`),

      ping: sql`SELECT 1`.pipe(Effect.asVoid, Effect.mapError(toDbError("ping"))),

      wakeups: listenResilient({ newClient: newListenClient, channel, checkEvery: LISTEN_CHECK_EVERY }),

      // The scheduler lock is a session advisory lock on its own connection (`schedulerLock.ts`); no transaction
      // spans the cycle, so every step below commits on its own and is visible to other connections at once.
      withWorkerLock: (cycle) => lock.withLock(cycle),

      // A transaction of its own (a SAVEPOINT only when nested in another step). Inside a cycle it first checks,
      // in the same transaction, that the cycle's session still holds the scheduler lock.
      step: (effect) =>
        sql.withTransaction(Effect.zipRight(lock.fence(lockStillHeld), effect)).pipe(
          Effect.mapError((e) => (isSqlError(e) ? toDbError("step")(e) : e))
        )
    }
    return db
  })

const isSqlError = (e: unknown): e is SqlError.SqlError =>
  typeof e === "object" && e !== null && (e as { _tag?: unknown })._tag === "SqlError"

/** `Db` on PostgreSQL, for an existing client. */
export const DbPostgresFromClient = (schema: DbSchema, timeouts?: DbTimeouts) => Layer.scoped(Db, makeDbPostgres(schema, timeouts))

/**
 * `Db` on PostgreSQL at `url`, inside `schema`. With `migrate`, pending migrations are applied first (what
 * `npm start` does); deployments run `migrate` as its own step instead.
 */
export const DbPostgres = (options: PgConnectionOptions & { readonly migrate?: boolean }) =>
  Layer.scoped(
    Db,
    Effect.gen(function*() {
      if (options.migrate === true) {
        const applied = yield* migrate(options.schema)
        if (applied.length > 0) yield* Effect.logInfo("migrations applied").pipe(Effect.annotateLogs("migrations", applied.join(",")))
      }
      return yield* makeDbPostgres(options.schema, options.timeouts)
    })
  ).pipe(Layer.provide(pgClientLayer(options)))
