import { HttpApi, HttpApiEndpoint, HttpApiGroup, OpenApi } from "@effect/platform"
import { Option, Schema } from "effect"
import type { FailureInfo } from "../domain/FailureInfo.ts"
import type { Job } from "../domain/Job.ts"
import type { Worker } from "../domain/Worker.ts"
import { BadRequestText, InternalErrorText, UnavailableText } from "../observability/apiErrors.ts"
import { BoardsGroup } from "./BoardsApi.ts"
import { PagingParams, QueueParams } from "./paging.ts"
import { WeeklyUsageParams } from "./weeklyUsageRoute.ts"

/*
 * The scheduler port's JSON routes as an HttpApi: usage, jobs, history, workers, queue and dashboard data. The
 * query schemas (`paging.ts`) decode the parameters, and these response schemas encode the rows: a `Job` or a
 * `Worker` as the program holds it (Dates, nulls) becomes the original's JSON (ISO strings, null values left out).
 */

const Status = Schema.Literal("pending", "running", "completed", "failed")
const IsoString = Schema.String.annotations({ format: "date-time" })
const Iso = Schema.Date.annotations({ jsonSchema: { type: "string", format: "date-time" } })
const Labels = Schema.Array(Schema.String)

/** A stored `failure_info`, served as stored. */
const FailureInfoJson = Schema.declare((u: unknown): u is FailureInfo => typeof u === "object" && u !== null, {
  identifier: "FailureInfo",
  description: "failure_info: v1 {version, message} or v2 {version, reason, pod_reason, pod_message, containers, events}",
  jsonSchema: { type: "object" }
})

/** A nullable column, left out of the JSON when null (as the original's `omitempty`). */
const omittedWhenNull = <A, I>(schema: Schema.Schema<A, I>) =>
  Schema.optionalToRequired(schema, Schema.NullOr(Schema.typeSchema(schema)), {
    decode: Option.getOrNull,
    encode: Option.fromNullable
  })

export const JobJson = Schema.Struct({
  job_id: Schema.Number,
  status: Status,
  failure_info: omittedWhenNull(FailureInfoJson),
  provider: Schema.String,
  entity_id: Schema.Number,
  entity_name: Schema.String,
  entity_type: Schema.String,
  repo_full_name: Schema.String,
  installation_id: Schema.Number,
  job_labels: Labels,
  k8s_pool: Schema.String,
  k8s_image: Schema.String,
  k8s_pod: omittedWhenNull(Schema.String),
  html_url: omittedWhenNull(Schema.String),
  created_at: Iso,
  updated_at: Iso
}).annotations({ identifier: "Job" })

export const WorkerJson = Schema.Struct({
  pod_name: Schema.String,
  provider: Schema.String,
  entity_id: Schema.Number,
  entity_name: Schema.String,
  entity_type: Schema.String,
  installation_id: Schema.Number,
  repo_full_name: omittedWhenNull(Schema.String),
  job_labels: Labels,
  k8s_pool: Schema.String,
  k8s_image: Schema.String,
  k8s_node: omittedWhenNull(Schema.String),
  cluster: Schema.String.annotations({ description: "the runner config's cluster the pod lives in; `default` for the one of KUBECONFIG" }),
  status: Status,
  failure_info: omittedWhenNull(FailureInfoJson),
  created_at: Iso,
  running_at: omittedWhenNull(Iso),
  completed_at: omittedWhenNull(Iso),
  updated_at: Iso
}).annotations({ identifier: "Worker" })

// what the store reads is what these schemas encode
const _rows = (j: Job, w: Worker): readonly [typeof JobJson.Type, typeof WorkerJson.Type] => [j, w]
void _rows

export const QueueEntryJson = Schema.Struct({
  job_id: Schema.Number,
  entity_id: Schema.Number,
  entity_name: Schema.String,
  k8s_pool: Schema.String,
  job_labels: Labels,
  created_at: IsoString,
  html_url: Schema.NullOr(Schema.String),
  position: Schema.Number.annotations({ description: "1 for the oldest pending job of its pool" }),
  reason: Schema.Literal("provisioning", "no_free_board", "cap_reached", "backoff_after_failure"),
  estimated_start: Schema.NullOr(IsoString)
}).annotations({ identifier: "QueueEntry" })

const count = (description: string) => Schema.Number.annotations({ description })
export const QueuePageJson = Schema.Struct({
  total: count("entries matching `pool` (all pools without it), over all pages"),
  offset: Schema.Number,
  limit: Schema.Number,
  next_offset: Schema.NullOr(Schema.Number).annotations({ description: "the offset of the next page; null on the last" }),
  pools: Schema.Array(Schema.Struct({
    pool: Schema.String,
    pending: count("pending jobs of the pool"),
    provisioning: Schema.Number,
    no_free_board: Schema.Number,
    cap_reached: Schema.Number,
    backoff_after_failure: Schema.Number
  })).annotations({ description: "every pool with pending jobs, whatever the page: its jobs in all and by reason" }),
  jobs: Schema.Array(QueueEntryJson)
}).annotations({ identifier: "QueuePage" })

export const DashboardJson = Schema.Struct({
  generated_at: IsoString,
  deployment: Schema.Literal("Prod", "Staging"),
  pools: Schema.Array(Schema.Struct({
    pool: Schema.String,
    cluster: Schema.String,
    total: Schema.Number,
    usable: Schema.Number,
    busy: Schema.Number,
    free: Schema.Number
  })),
  boards: Schema.Array(Schema.Struct({
    node: Schema.String,
    pool: Schema.String,
    cluster: Schema.String.annotations({ description: "the cluster of the board's pool" }),
    slots: Schema.Number,
    busy: Schema.Number,
    why_unusable: Schema.NullOr(Schema.String)
  })).annotations({ description: "every board of every pool; `why_unusable` is null for a usable one" }),
  capacity_error: Schema.NullOr(Schema.String),
  groups: Schema.Array(Schema.Struct({
    entity_id: Schema.Number,
    entity_name: Schema.String,
    job_labels: Labels,
    k8s_pool: Schema.String,
    pending_jobs: Schema.Number,
    running_jobs: Schema.Number,
    active_workers: Schema.Number,
    cap: Schema.NullOr(Schema.Number),
    oldest_wait_seconds: Schema.NullOr(Schema.Number)
  })),
  failures: Schema.Array(Schema.Struct({
    pod_name: Schema.String,
    entity_name: Schema.String,
    k8s_pool: Schema.String,
    job_labels: Labels,
    at: IsoString,
    summary: Schema.String,
    failure_info: Schema.NullOr(FailureInfoJson)
  })),
  history: Schema.Array(Schema.Struct({ at: IsoString, depth: Schema.Number, oldest_wait_seconds: Schema.Number }))
}).annotations({ identifier: "Dashboard" })

const nullableSeconds = (description: string) => Schema.NullOr(Schema.Number).annotations({ description })
export const WeeklyUsageJson = Schema.Struct({
  generated_at: IsoString,
  from: IsoString.annotations({ description: "the Monday 00:00 UTC that starts the first week" }),
  weeks: Schema.Number,
  rows: Schema.Array(Schema.Struct({
    week: Schema.String.annotations({ description: "ISO week, e.g. 2026-W49" }),
    week_start: Schema.String.annotations({ description: "its Monday, YYYY-MM-DD" }),
    entity_id: Schema.Number,
    entity_name: Schema.String,
    entity_type: Schema.String,
    jobs: count("jobs queued in the week"),
    jobs_run: count("of them, jobs a runner took"),
    jobs_failed: Schema.Record({ key: Schema.String, value: Schema.Number }).annotations({ description: "of them, failed jobs by reason" }),
    board_minutes: count("minutes the entity's runner pods ran in the week"),
    share: count("board_minutes over all entities' board minutes of the week, 0 to 1"),
    wait_p50_seconds: nullableSeconds("median wait from queued until the job's runner pod ran; null when no wait is known"),
    wait_p95_seconds: nullableSeconds("95th percentile (nearest rank) of the same"),
    wait_max_seconds: nullableSeconds("longest of the same"),
    at_cap_minutes: count("minutes in which the entity was at its cap while one of its jobs waited")
  })).annotations({ description: "one per (ISO week, entity) with any figure, newest week first, then most board minutes" })
}).annotations({ identifier: "WeeklyUsage" })

export const UsageJson = Schema.Struct({ jobs: Schema.Array(JobJson), workers: Schema.Array(WorkerJson) })

const listed = <Name extends string, S extends Schema.Schema.Any>(name: Name, path: `/${string}`, success: S, description: string) =>
  HttpApiEndpoint.get(name, path).setUrlParams(PagingParams).addSuccess(success)
    .annotate(OpenApi.Description, description)

export const OperatorGroup = HttpApiGroup.make("scheduler")
  .add(HttpApiEndpoint.get("usage", "/usage.json").addSuccess(UsageJson)
    .annotate(OpenApi.Description, "Active (pending and running) jobs and workers."))
  .add(listed("jobs", "/jobs.json", Schema.Array(JobJson), "Jobs, newest first, one page; a Link header points to the others."))
  .add(listed("history", "/history.json", Schema.Array(JobJson), "The same as /jobs.json."))
  .add(listed("workers", "/workers.json", Schema.Array(WorkerJson), "Workers, newest first, one page; a Link header points to the others."))
  .add(HttpApiEndpoint.get("queue", "/queue.json").setUrlParams(QueueParams).addSuccess(QueuePageJson)
    .annotate(OpenApi.Description, "One page of the pending jobs, by pool then position, with why each waits and an estimated start, and every pool's totals."))
  .add(HttpApiEndpoint.get("dashboard", "/dashboard.json").addSuccess(DashboardJson)
    .annotate(OpenApi.Description, "What the dashboard at / shows besides the queue."))
  .add(HttpApiEndpoint.get("weeklyUsage", "/stats/weekly-usage.json").setUrlParams(WeeklyUsageParams).addSuccess(WeeklyUsageJson)
    .annotate(OpenApi.Description, "Usage per entity and ISO week (UTC): jobs, board minutes and share, waits, failures by reason, time at the cap."))
  .annotate(OpenApi.Description, "Scheduler port (SCHEDULER_PORT; 8081 in `all`).")

/** What the scheduler port serves through `HttpApiBuilder`. */
export const SchedulerApi = HttpApi.make("riscv-runner-scheduler")
  .add(OperatorGroup)
  .add(BoardsGroup)
  .addError(BadRequestText)
  .addError(InternalErrorText)
  .addError(UnavailableText)
