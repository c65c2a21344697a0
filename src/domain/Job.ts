import { Schema } from "effect"
import { EntityType } from "./Entity.ts"
import { FailureInfo } from "./FailureInfo.ts"
import { Provider, Status } from "./Status.ts"

/** One row of the `jobs` table: a GitHub `workflow_job` that wants a runner. Columns as in the seed DDL. */
export const Job = Schema.Struct({
  job_id: Schema.Number,
  status: Status,
  failure_info: Schema.NullOr(FailureInfo),
  provider: Provider,
  entity_id: Schema.Number,
  entity_name: Schema.String,
  entity_type: EntityType,
  repo_full_name: Schema.String,
  installation_id: Schema.Number,
  /** sorted at write time, see `toLabelSet` */
  job_labels: Schema.Array(Schema.String),
  k8s_pool: Schema.String,
  k8s_image: Schema.String,
  /** the runner name GitHub reported on the first in_progress or completed news */
  k8s_pod: Schema.NullOr(Schema.String),
  html_url: Schema.NullOr(Schema.String),
  created_at: Schema.DateFromSelf,
  updated_at: Schema.DateFromSelf
})
export type Job = typeof Job.Type

/** What the webhook knows when it stores a queued job; the database fills in status and times. */
export const NewJob = Job.pick(
  "job_id",
  "provider",
  "entity_id",
  "entity_name",
  "entity_type",
  "repo_full_name",
  "installation_id",
  "job_labels",
  "k8s_pool",
  "k8s_image",
  "html_url"
)
export type NewJob = typeof NewJob.Type

/**
 * The repository a runner for this job is registered on, or null when the runner serves the whole entity. A
 * personal account's runners are repo-scoped (GitHub has no user-level runners), so such a runner can only take
 * jobs of its own repository, and demand meets supply per (entity, repository, label set) for `User` entities
 * and per (entity, label set) for organisations. The worker row stores the same value in `repo_full_name`.
 */
export const runnerRepoOf = (job: Pick<Job, "entity_type" | "repo_full_name">): string | null =>
  job.entity_type === "User" ? job.repo_full_name : null
