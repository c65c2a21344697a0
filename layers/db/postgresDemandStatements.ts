/**
 * The scheduler's demand: the pending jobs lacking a runner, per matching group, in one statement. A group is
 * (entity, exact label set) for an organisation and (entity, repository, exact label set) for a personal account,
 * whose runners are repo-scoped (`runnerRepoOf`): a worker's `repo_full_name` is its repository, null for an
 * organisation's, and a job's matching repository is its own for a `User` entity, null otherwise.
 */
import type { SqlClient } from "@effect/sql"
import { Effect } from "effect"
import type { DbShape, DemandRow } from "../../src/services/Db.ts"
import { UNCLAIMED_RUNNER_GRACE_MS } from "../../src/domain/Worker.ts"
import { JOB_COLUMNS, rowsToJobs, toDbError } from "./postgresRows.ts"
import { now } from "./postgresStatementHelpers.ts"

export type DemandStatements = Pick<DbShape, "getDemand">

/**
 * The CTEs every backlog read shares: `demand` and `supply` per matching group (`runner_repo` is null for an
 * organisation), `entity_workers` per entity (the cap counts every group), and `pending` with each job's rank in
 * its group. Workers beyond a group's running jobs serve its oldest pending jobs, so a pending job lacks a runner
 * when `demand_rank > GREATEST(0, supply - running)`; `running` leaves out the jobs whose runner ended
 * (`runnerEnded`).
 */
/**
 * A running job whose runner's worker has ended (its pod finished before the job's `completed` news arrived) holds
 * no runner any more: counting it as served would let it take a worker that serves a pending job, and the
 * scheduler would provision that job a second runner. Its news comes soon; until then it counts as demand only.
 */
export const runnerEnded = (sql: SqlClient.SqlClient, table: string) =>
  sql`EXISTS (SELECT 1 FROM workers w WHERE w.pod_name = ${sql(table)}.k8s_pod AND w.status IN ('completed', 'failed'))`

/**
 * The workers that serve their matching group: pending and running ones, and one that ended cleanly within
 * `UNCLAIMED_RUNNER_GRACE_MS` before `at` while no job names its pod yet (the job it ran still looks pending).
 * Both partial ranges have an index: `idx_workers_active`, and `idx_workers_completed` with `idx_jobs_k8s_pod`.
 */
export const servingWorkers = (sql: SqlClient.SqlClient, at: Date) =>
  sql`(w.status IN ('pending', 'running') OR (w.status = 'completed' AND w.completed_at >= ${new Date(at.getTime() - UNCLAIMED_RUNNER_GRACE_MS)}
       AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.k8s_pod = w.pod_name)))`

export const demandCtes = (sql: SqlClient.SqlClient, at: Date) =>
  sql`
    demand AS (
      SELECT entity_id, runner_repo, job_labels, count(*) AS n, count(*) FILTER (WHERE status = 'running' AND NOT runner_ended) AS running
      FROM (SELECT *, CASE WHEN entity_type = 'User' THEN repo_full_name END AS runner_repo,
                   status = 'running' AND ${runnerEnded(sql, "jobs")} AS runner_ended
            FROM jobs WHERE status IN ('pending', 'running')) a
      GROUP BY entity_id, runner_repo, job_labels
    ), supply AS (
      SELECT entity_id, repo_full_name AS runner_repo, job_labels, count(*) AS n FROM workers w
      WHERE ${servingWorkers(sql, at)} GROUP BY entity_id, repo_full_name, job_labels
    ), entity_workers AS (
      SELECT entity_id, count(*) AS n FROM workers WHERE status IN ('pending', 'running') GROUP BY entity_id
    ), pending AS (
      SELECT ${sql.unsafe(JOB_COLUMNS)}, runner_repo,
             row_number() OVER (PARTITION BY entity_id, runner_repo, job_labels ORDER BY created_at, job_id) AS demand_rank
      FROM (SELECT *, CASE WHEN entity_type = 'User' THEN repo_full_name END AS runner_repo FROM jobs
            WHERE status = 'pending') p
    )`

export const makeDemandStatements = (sql: SqlClient.SqlClient): DemandStatements => ({
  getDemand: Effect.gen(function*() {
    const at = yield* now
    const rows = yield* sql<Record<string, unknown>>`
      WITH ${demandCtes(sql, at)}
      SELECT p.*, d.n AS group_demand, COALESCE(s.n, 0) AS group_supply, COALESCE(e.n, 0) AS entity_active_workers
      FROM pending p
      JOIN demand d ON d.entity_id = p.entity_id AND d.job_labels = p.job_labels
                   AND d.runner_repo IS NOT DISTINCT FROM p.runner_repo
      LEFT JOIN supply s ON s.entity_id = p.entity_id AND s.job_labels = p.job_labels
                        AND s.runner_repo IS NOT DISTINCT FROM p.runner_repo
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
  }).pipe(Effect.withSpan("Db.getDemand"))
})
