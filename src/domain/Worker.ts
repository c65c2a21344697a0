import { Schema } from "effect"
import { EntityType } from "./Entity.ts"
import { FailureInfo } from "./FailureInfo.ts"
import { Provider, Status } from "./Status.ts"

/**
 * One row of the `workers` table: a runner pod we created. Rows are never deleted; the status records how the
 * pod ended, and `failure_info` (v2) says why when it failed. Columns as in the seed DDL.
 */
export const Worker = Schema.Struct({
  pod_name: Schema.String,
  provider: Provider,
  entity_id: Schema.Number,
  entity_name: Schema.String,
  entity_type: EntityType,
  installation_id: Schema.Number,
  /** only for User entities, whose runners are repo-scoped */
  repo_full_name: Schema.NullOr(Schema.String),
  job_labels: Schema.Array(Schema.String),
  k8s_pool: Schema.String,
  k8s_image: Schema.String,
  k8s_node: Schema.NullOr(Schema.String),
  /** the runner config's name of the cluster the pod lives in (`DEFAULT_CLUSTER` for the one of KUBECONFIG) */
  cluster: Schema.String,
  status: Status,
  failure_info: Schema.NullOr(FailureInfo),
  created_at: Schema.DateFromSelf,
  running_at: Schema.NullOr(Schema.DateFromSelf),
  completed_at: Schema.NullOr(Schema.DateFromSelf),
  updated_at: Schema.DateFromSelf
})
export type Worker = typeof Worker.Type

/**
 * What the scheduler knows when it reserves a pod name; the row starts `pending`. `cluster` may be left out for a
 * worker of the default cluster (the column's default), as every writer did before there were several clusters.
 */
export const NewWorker = Worker.pick(
  "pod_name",
  "provider",
  "entity_id",
  "entity_name",
  "entity_type",
  "installation_id",
  "repo_full_name",
  "job_labels",
  "k8s_pool",
  "k8s_image"
).pipe(Schema.extend(Schema.Struct({ cluster: Schema.optional(Schema.String) })))
export type NewWorker = typeof NewWorker.Type

/**
 * How long a runner that ended cleanly still serves its group while no job names it. An ephemeral runner exits 0
 * only after running a job, but which job it ran is known from that job's `in_progress` or `completed` news,
 * which can come after the pod's end is seen (by the watch, in milliseconds; GitHub's webhooks, in seconds). In
 * between, the job it took still looks pending: counting the ended runner as supply keeps the scheduler from
 * giving that job a second runner, a slot wasted until the spare runner's idle timeout. After the grace the runner
 * counts no more, so a job it did not take (news lost, or a pod gone for another reason) still gets a runner.
 */
export const UNCLAIMED_RUNNER_GRACE_MS = 120_000
