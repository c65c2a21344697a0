/** The statements on the `workers` table: a worker's insert and transitions, its reads, and the allocation failures. */
import type { SqlClient, Statement } from "@effect/sql"
import { Effect, Option } from "effect"
import { BACKOFF_REASONS } from "../../src/domain/FailureInfo.ts"
import { encodeLabelSet } from "../../src/domain/Labels.ts"
import { DEFAULT_CLUSTER } from "../../src/domain/RunnerConfig.ts"
import type { Status } from "../../src/domain/Status.ts"
import type { NewWorker } from "../../src/domain/Worker.ts"
import { type AllocationFailureStreak, type DbShape, DuplicatePodName, type WorkerMove } from "../../src/services/Db.ts"
import { decodeStreaks, isUniqueViolation, rowsToWorkers, toDbError, WORKER_COLUMNS } from "./postgresRows.ts"
import { makeStatementHelpers, now } from "./postgresStatementHelpers.ts"

export type WorkerStatements = Pick<
  DbShape,
  | "addWorker"
  | "addWorkers"
  | "releaseWorkers"
  | "markWorkerRunning"
  | "markWorkerCompleted"
  | "markWorkersMoved"
  | "markWorkerFailed"
  | "markWorkerOrphaned"
  | "getWorker"
  | "getActiveWorkers"
  | "getWorkersForReconcile"
  | "knownPodNames"
  | "listWorkers"
  | "getRecentFailures"
  | "getAllocationFailures"
>

export const makeWorkerStatements = (sql: SqlClient.SqlClient): WorkerStatements => {
  const { jsonb, page } = makeStatementHelpers(sql)
  const workerCols = sql.unsafe(WORKER_COLUMNS)

  const transitionWorker = (what: string, podName: string, from: ReadonlyArray<Status>, set: Statement.Fragment) =>
    Effect.gen(function*() {
      const at = yield* now
      const rows = yield* sql`
        UPDATE workers SET ${set}, updated_at = ${at}
        WHERE pod_name = ${podName} AND status::text IN ${sql.in(from)}
        RETURNING pod_name`.pipe(Effect.mapError(toDbError(what)))
      return rows.length > 0
    })

  return {
    addWorker: (w) =>
      Effect.gen(function*() {
        const at = yield* now
        yield* sql`
          INSERT INTO workers (pod_name, provider, entity_id, entity_name, entity_type, installation_id, repo_full_name,
                               job_labels, k8s_pool, k8s_image, cluster, status, created_at, updated_at)
          VALUES (${w.pod_name}, ${w.provider}, ${w.entity_id}, ${w.entity_name}, ${w.entity_type}, ${w.installation_id},
                  ${w.repo_full_name}, ${encodeLabelSet(w.job_labels)}::jsonb, ${w.k8s_pool}, ${w.k8s_image},
                  ${w.cluster ?? DEFAULT_CLUSTER}, 'pending', ${at}, ${at})`.pipe(
          Effect.mapError((e) => isUniqueViolation(e) ? new DuplicatePodName({ podName: w.pod_name }) : toDbError("addWorker")(e))
        )
      }),

    // One statement for the whole burst; a name that is taken (by an older row or twice in the list) is skipped
    // by ON CONFLICT and reported back, rather than failing the others.
    addWorkers: (ws) =>
      ws.length === 0 ? Effect.succeed([]) : Effect.gen(function*() {
        const at = yield* now
        // a name listed twice is offered once, for its first listing; the later listing is reported taken
        const first = new Map<string, NewWorker>()
        for (const w of ws) if (!first.has(w.pod_name)) first.set(w.pod_name, w)
        const input = JSON.stringify(
          [...first.values()].map((w) => ({ ...w, cluster: w.cluster ?? DEFAULT_CLUSTER, job_labels: encodeLabelSet(w.job_labels) }))
        )
        const rows = yield* sql<{ pod_name: string }>`
          INSERT INTO workers (pod_name, provider, entity_id, entity_name, entity_type, installation_id, repo_full_name,
                               job_labels, k8s_pool, k8s_image, cluster, status, created_at, updated_at)
          SELECT pod_name, provider::provider_enum, entity_id, entity_name, entity_type, installation_id, repo_full_name,
                 job_labels::jsonb, k8s_pool, k8s_image, cluster, 'pending', ${at}, ${at}
          FROM jsonb_to_recordset(${input}::jsonb) AS w(
            pod_name text, provider text, entity_id bigint, entity_name text, entity_type text, installation_id bigint,
            repo_full_name text, job_labels text, k8s_pool text, k8s_image text, cluster text)
          ORDER BY pod_name
          ON CONFLICT (pod_name) DO NOTHING
          RETURNING pod_name`.pipe(Effect.mapError(toDbError("addWorkers")))
        const reserved = new Set(rows.map((r) => r.pod_name))
        return ws.flatMap((w) => (reserved.has(w.pod_name) && first.get(w.pod_name) === w ? [] : [w.pod_name]))
      }),

    releaseWorkers: (podNames) =>
      podNames.length === 0 ? Effect.succeed(0) : sql<{ n: number }>`
        WITH gone AS (DELETE FROM workers WHERE pod_name IN ${sql.in(podNames)} AND status = 'pending' RETURNING 1)
        SELECT count(*)::int AS n FROM gone`.pipe(
        Effect.mapError(toDbError("releaseWorkers")),
        Effect.map((rows) => Number(rows[0]?.n ?? 0))
      ),

    markWorkerRunning: (podName, node, runningAt) =>
      Effect.flatMap(now, (at) =>
        transitionWorker(
          "markWorkerRunning",
          podName,
          ["pending"],
          sql`status = 'running', k8s_node = ${node}, running_at = COALESCE(running_at, ${runningAt ?? at})`
        )),

    markWorkerCompleted: (podName, node, completedAt, runningAt = null) =>
      Effect.flatMap(now, (at) =>
        transitionWorker(
          "markWorkerCompleted",
          podName,
          ["pending", "running"],
          sql`status = 'completed', k8s_node = COALESCE(k8s_node, ${node}), completed_at = COALESCE(completed_at, ${completedAt ?? at}),
              running_at = COALESCE(running_at, ${runningAt})`
        )),

    // One UPDATE for the lot, with the rules of markWorkerRunning and markWorkerCompleted row by row.
    markWorkersMoved: (moves) =>
      moves.length === 0 ? Effect.succeed([]) : Effect.gen(function*() {
        const at = yield* now
        const first = new Map<string, WorkerMove>()
        for (const m of moves) if (!first.has(m.podName)) first.set(m.podName, m)
        const input = JSON.stringify([...first.values()].map((m) => ({
          pod_name: m.podName,
          to_status: m.to,
          node: m.node,
          running_at: m.runningAt?.toISOString() ?? null,
          completed_at: m.completedAt?.toISOString() ?? null
        })))
        const rows = yield* sql<{ pod_name: string }>`
          UPDATE workers w SET
            status = m.to_status::status_enum,
            k8s_node = CASE WHEN m.to_status = 'running' THEN m.node ELSE COALESCE(w.k8s_node, m.node) END,
            running_at = COALESCE(w.running_at, m.running_at, CASE WHEN m.to_status = 'running' THEN ${at}::timestamptz END),
            completed_at = CASE WHEN m.to_status = 'completed' THEN COALESCE(w.completed_at, m.completed_at, ${at}::timestamptz)
                           ELSE w.completed_at END,
            updated_at = ${at}
          FROM jsonb_to_recordset(${input}::jsonb) AS m(pod_name text, to_status text, node text, running_at timestamptz, completed_at timestamptz)
          WHERE w.pod_name = m.pod_name
            AND ((m.to_status = 'running' AND w.status = 'pending') OR (m.to_status = 'completed' AND w.status IN ('pending', 'running')))
          RETURNING w.pod_name`.pipe(Effect.mapError(toDbError("markWorkersMoved")))
        return rows.map((r) => r.pod_name)
      }),

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

    // walks idx_workers_failed_completed (migration 0009) from its newest end: `limit` index entries, however few
    // of the workers failed
    getRecentFailures: (limit) =>
      sql`SELECT ${workerCols} FROM workers WHERE status = 'failed'
          ORDER BY completed_at DESC NULLS LAST, pod_name DESC LIMIT ${Math.max(0, limit)}`.pipe(
        Effect.mapError(toDbError("getRecentFailures")),
        Effect.flatMap(rowsToWorkers("getRecentFailures"))
      ),

    // Per group, the allocation failures created after the group's latest allocated worker (any other outcome,
    // in flight included), within the lookback: one statement for every group.
    getAllocationFailures: (lookbackSeconds) =>
      Effect.gen(function*() {
        const at = yield* now
        const since = new Date(at.getTime() - lookbackSeconds * 1000)
        // One streak per matching group: the repository is part of it (null for an organisation's workers).
        const rows = yield* sql`
          WITH recent AS (
            SELECT entity_id, repo_full_name, job_labels, created_at, completed_at,
                   (status = 'failed' AND failure_info ->> 'reason' IN ${sql.in(BACKOFF_REASONS)}) AS alloc_failed
            FROM workers WHERE created_at >= ${since}
          ), last_ok AS (
            SELECT entity_id, repo_full_name, job_labels, max(created_at) AS at FROM recent WHERE NOT alloc_failed
            GROUP BY entity_id, repo_full_name, job_labels
          )
          SELECT r.entity_id, r.repo_full_name, r.job_labels, count(*) AS failures,
                 max(COALESCE(r.completed_at, r.created_at)) AS last_failure_at
          FROM recent r
          LEFT JOIN last_ok o ON o.entity_id = r.entity_id AND o.job_labels = r.job_labels
                              AND o.repo_full_name IS NOT DISTINCT FROM r.repo_full_name
          WHERE r.alloc_failed AND (o.at IS NULL OR r.created_at > o.at)
          GROUP BY r.entity_id, r.repo_full_name, r.job_labels`.pipe(Effect.mapError(toDbError("getAllocationFailures")))
        const streaks = yield* decodeStreaks(rows).pipe(Effect.mapError(toDbError("getAllocationFailures: unexpected row")))
        // Ordered here rather than in SQL: jsonb's text form and the collation would order label sets differently.
        return streaks
          .map((r): AllocationFailureStreak => ({
            entityId: r.entity_id,
            repoFullName: r.repo_full_name,
            labels: r.job_labels,
            failures: r.failures,
            lastFailureAt: r.last_failure_at
          }))
          .sort((a, b) =>
            a.entityId - b.entityId || (encodeLabelSet(a.labels) < encodeLabelSet(b.labels) ? -1 : encodeLabelSet(a.labels) > encodeLabelSet(b.labels) ? 1 : 0) ||
            ((a.repoFullName ?? "") < (b.repoFullName ?? "") ? -1 : 1)
          )
      }).pipe(Effect.withSpan("Db.getAllocationFailures"))
  }
}
