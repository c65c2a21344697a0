import { HttpApi, HttpApiEndpoint, HttpApiGroup, OpenApi } from "@effect/platform"
import { Schema } from "effect"

/**
 * The JSON routes of both programs described with Effect's HttpApi: the trace API on the webhook port; usage,
 * jobs, workers, queue and dashboard data on the scheduler port. `OpenApi.fromApi` turns it into the document
 * served at `/openapi.json` (see `openApiRoutes.ts`). The handlers stay plain HttpRouter routes; the route tests
 * keep the two in step (every described path answers, and the shapes decode with these schemas).
 */

const Status = Schema.Literal("pending", "running", "completed", "failed")
const Iso = Schema.String.annotations({ format: "date-time" })
const Labels = Schema.Array(Schema.String)
const FailureInfo = Schema.Record({ key: Schema.String, value: Schema.Unknown }).annotations({
  description: "failure_info: v1 {version, message} or v2 {version, reason, pod_reason, pod_message, containers, events}"
})

export const JobJson = Schema.Struct({
  job_id: Schema.Number,
  status: Status,
  failure_info: Schema.optional(FailureInfo),
  provider: Schema.String,
  entity_id: Schema.Number,
  entity_name: Schema.String,
  entity_type: Schema.String,
  repo_full_name: Schema.String,
  installation_id: Schema.Number,
  job_labels: Labels,
  k8s_pool: Schema.String,
  k8s_image: Schema.String,
  k8s_pod: Schema.optional(Schema.String),
  html_url: Schema.optional(Schema.String),
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
  repo_full_name: Schema.optional(Schema.String),
  job_labels: Labels,
  k8s_pool: Schema.String,
  k8s_image: Schema.String,
  k8s_node: Schema.optional(Schema.String),
  status: Status,
  failure_info: Schema.optional(FailureInfo),
  created_at: Iso,
  running_at: Schema.optional(Iso),
  completed_at: Schema.optional(Iso),
  updated_at: Iso
}).annotations({ identifier: "Worker" })

export const QueueEntryJson = Schema.Struct({
  job_id: Schema.Number,
  entity_id: Schema.Number,
  entity_name: Schema.String,
  k8s_pool: Schema.String,
  job_labels: Labels,
  created_at: Iso,
  html_url: Schema.NullOr(Schema.String),
  position: Schema.Number.annotations({ description: "1 for the oldest pending job of its pool" }),
  reason: Schema.Literal("provisioning", "no_free_board", "cap_reached", "backoff_after_failure"),
  estimated_start: Schema.NullOr(Iso)
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
  generated_at: Iso,
  deployment: Schema.Literal("Prod", "Staging"),
  pools: Schema.Array(Schema.Struct({ pool: Schema.String, total: Schema.Number, busy: Schema.Number, free: Schema.Number })),
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
    at: Iso,
    summary: Schema.String,
    failure_info: Schema.NullOr(FailureInfo)
  })),
  history: Schema.Array(Schema.Struct({ at: Iso, depth: Schema.Number, oldest_wait_seconds: Schema.Number }))
}).annotations({ identifier: "Dashboard" })

export const TraceEventJson = Schema.Struct({
  id: Schema.Number,
  source: Schema.Literal("webhook", "scheduler"),
  event: Schema.String,
  outcome: Schema.String,
  installation_id: Schema.optional(Schema.Number),
  app_id: Schema.optional(Schema.Number),
  entity_type: Schema.optional(Schema.String),
  entity_id: Schema.optional(Schema.Number),
  entity_name: Schema.optional(Schema.String),
  received_at: Iso,
  delivery_id: Schema.optional(Schema.String),
  job_id: Schema.optional(Schema.Number),
  repo_full_name: Schema.optional(Schema.String)
}).annotations({ identifier: "TraceEvent" })

const TraceEvents = Schema.Struct({ events: Schema.Array(TraceEventJson) })
const TraceState = Schema.Struct({
  entity_id: Schema.Number,
  events: Schema.Number,
  state: Schema.Record({ key: Schema.String, value: Schema.Unknown }),
  diagnoses: Schema.Array(Schema.Struct({ code: Schema.String, message: Schema.String, event_ids: Schema.Array(Schema.Number) }))
})

const Text = (status: number, description: string) => [Schema.String.annotations({ description }), { status }] as const
const traceErrors = <E extends HttpApiEndpoint.HttpApiEndpoint.Any>(endpoint: E): E =>
  (endpoint as unknown as HttpApiEndpoint.HttpApiEndpoint.AnyWithProps)
    .addError(...Text(400, "the id is not an integer"))
    .addError(...Text(401, "Authorization is not `Bearer <TRACE_API_SECRET>`"))
    .addError(...Text(500, "the store failed"))
    .addError(...Text(503, "the trace API is disabled (TRACE_API_SECRET unset)")) as unknown as E

const IntPath = (name: string) => Schema.Struct({ [name]: Schema.NumberFromString })
const Paging = Schema.Struct({
  start: Schema.optional(Schema.String.annotations({ description: "YYYY-MM-DD (UTC), inclusive" })),
  end: Schema.optional(Schema.String.annotations({ description: "YYYY-MM-DD (UTC), exclusive" })),
  page: Schema.optional(Schema.NumberFromString),
  per_page: Schema.optional(Schema.NumberFromString)
})

export const TraceGroup = HttpApiGroup.make("trace")
  .add(traceErrors(HttpApiEndpoint.get("entity", "/trace/entity/:entity_id").setPath(IntPath("entity_id")).addSuccess(TraceEvents)
    .annotate(OpenApi.Description, "The entity's installation events, oldest first, without payloads.")))
  .add(traceErrors(HttpApiEndpoint.get("entityState", "/trace/entity/:entity_id/state").setPath(IntPath("entity_id")).addSuccess(TraceState)
    .annotate(OpenApi.Description, "The installation history folded into its state, with every diagnosis the rows support.")))
  .add(traceErrors(HttpApiEndpoint.get("installation", "/trace/installation/:installation_id").setPath(IntPath("installation_id")).addSuccess(TraceEvents)
    .addError(...Text(404, "no entity has this installation id"))
    .annotate(OpenApi.Description, "The events of the entity that holds this installation.")))
  .add(traceErrors(HttpApiEndpoint.get("job", "/trace/job/:job_id").setPath(IntPath("job_id")).addSuccess(TraceEvents)
    .addError(...Text(404, "no such job"))
    .annotate(OpenApi.Description, "The events of the entity that ran this job.")))
  .add(traceErrors(HttpApiEndpoint.get("payload", "/trace/payload/:event_id").setPath(IntPath("event_id"))
    .addSuccess(Schema.Struct({ payload: Schema.Unknown }))
    .addError(...Text(404, "no such event"))
    .annotate(OpenApi.Description, "One event's stored (trimmed) payload.")))
  .annotate(OpenApi.Description, "Webhook port. Every route needs `Authorization: Bearer <TRACE_API_SECRET>`.")

const listed = (name: string, path: `/${string}`, success: Schema.Schema.Any, description: string) =>
  HttpApiEndpoint.get(name, path).setUrlParams(Paging).addSuccess(success)
    .addError(...Text(400, "a paging parameter is invalid"))
    .addError(...Text(500, "the store failed"))
    .annotate(OpenApi.Description, description)

export const SchedulerGroup = HttpApiGroup.make("scheduler")
  .add(HttpApiEndpoint.get("usage", "/usage.json").addSuccess(Schema.Struct({ jobs: Schema.Array(JobJson), workers: Schema.Array(WorkerJson) }))
    .annotate(OpenApi.Description, "Active (pending and running) jobs and workers."))
  .add(listed("jobs", "/jobs.json", Schema.Array(JobJson), "Jobs, newest first, one page; a Link header points to the others."))
  .add(listed("history", "/history.json", Schema.Array(JobJson), "The same as /jobs.json."))
  .add(listed("workers", "/workers.json", Schema.Array(WorkerJson), "Workers, newest first, one page; a Link header points to the others."))
  .add(HttpApiEndpoint.get("queue", "/queue.json")
    .setUrlParams(Schema.Struct({
      pool: Schema.optional(Schema.String.annotations({ description: "only this pool's jobs" })),
      offset: Schema.optional(Schema.NumberFromString.annotations({ description: "entries to skip (default 0)" })),
      limit: Schema.optional(Schema.NumberFromString.annotations({ description: "entries per page, 1 to 1000 (default 100)" }))
    }))
    .addSuccess(QueuePageJson)
    .addError(...Text(400, "a paging parameter is invalid"))
    .annotate(OpenApi.Description, "One page of the pending jobs, by pool then position, with why each waits and an estimated start, and every pool's totals."))
  .add(HttpApiEndpoint.get("dashboard", "/dashboard.json").addSuccess(DashboardJson)
    .annotate(OpenApi.Description, "What the dashboard at / shows besides the queue."))
  .annotate(OpenApi.Description, "Scheduler port (SCHEDULER_PORT; 8081 in `all`).")

export const OperatorApi = HttpApi.make("riscv-runner")
  .add(TraceGroup)
  .add(SchedulerGroup)
  .annotate(OpenApi.Title, "riscv-runner operator API")
  .annotate(OpenApi.Version, "0.1.0")
  .annotate(OpenApi.Description, "JSON routes of the webhook (trace API) and the scheduler (usage, jobs, workers, queue).")

export const openApiSpec = OpenApi.fromApi(OperatorApi)
