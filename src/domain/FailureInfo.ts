import { Schema } from "effect"

/** Why a worker was failed. Stored in `failure_info.reason` of v2 rows. */
export const FailureReason = Schema.Literal(
  "pod_allocation_failure",
  "pod_failed",
  "pod_stuck_pending",
  "runner_never_registered",
  "runner_idle",
  "image_pull_failed",
  "node_unreachable"
)
export type FailureReason = typeof FailureReason.Type

/**
 * The reasons the provisioning back-off counts: a worker that could not be allocated, and one whose image the
 * node cannot pull. Both repeat for every job of the group until someone fixes the cause, so a streak of them
 * makes the group wait rather than write one failed worker per job.
 */
export const BACKOFF_REASONS: ReadonlyArray<FailureReason> = ["pod_allocation_failure", "image_pull_failed"]

/**
 * v1: failures that are not about a pod (installation 404, job 404, run completed while the job stayed queued).
 * Older rows of the original put the text in `reason` instead of `message`; both are accepted when reading.
 */
export const FailureInfoV1 = Schema.Struct({
  version: Schema.Literal(1),
  message: Schema.optional(Schema.String),
  reason: Schema.optional(Schema.String)
})
export type FailureInfoV1 = typeof FailureInfoV1.Type

export const ContainerFailure = Schema.Struct({
  /** null unless the container terminated; always present. */
  exit_code: Schema.NullOr(Schema.Number),
  reason: Schema.String,
  message: Schema.String,
  logs: Schema.optional(Schema.String)
})
export type ContainerFailure = typeof ContainerFailure.Type

export const PodEventInfo = Schema.Struct({
  type: Schema.String,
  reason: Schema.String,
  message: Schema.String,
  count: Schema.Number,
  /** RFC 3339 */
  first_seen: Schema.optional(Schema.String),
  last_seen: Schema.optional(Schema.String)
})
export type PodEventInfo = typeof PodEventInfo.Type

/** The node a pod was on, when the failure is about the node (`node_unreachable`): its status conditions. */
export const NodeFailure = Schema.Struct({
  name: Schema.String,
  conditions: Schema.Array(Schema.Struct({
    type: Schema.String,
    status: Schema.String,
    reason: Schema.String,
    message: Schema.String,
    /** RFC 3339 */
    last_transition: Schema.optional(Schema.String)
  }))
})
export type NodeFailure = typeof NodeFailure.Type

/** v2: everything we could collect about a failed or killed pod. Never holds the pod's env (the JIT config). */
export const FailureInfoV2 = Schema.Struct({
  version: Schema.Literal(2),
  reason: FailureReason,
  pod_reason: Schema.optional(Schema.String),
  pod_message: Schema.optional(Schema.String),
  containers: Schema.optional(Schema.Record({ key: Schema.String, value: ContainerFailure })),
  events: Schema.optional(Schema.Array(PodEventInfo)),
  node: Schema.optional(NodeFailure),
  collect_error: Schema.optional(Schema.String)
})
export type FailureInfoV2 = typeof FailureInfoV2.Type

export const FailureInfo = Schema.Union(FailureInfoV1, FailureInfoV2)
export type FailureInfo = typeof FailureInfo.Type

export const failureV1 = (message: string): FailureInfoV1 => ({ version: 1, message })
export const failureV2 = (reason: FailureReason, details: Omit<FailureInfoV2, "version" | "reason"> = {}): FailureInfoV2 => ({
  version: 2,
  reason,
  ...details
})

/** A one-line human summary for lists and logs. */
export const describeFailure = (info: FailureInfo): string =>
  info.version === 1
    ? (info.message ?? info.reason ?? "failed")
    : [info.reason, info.pod_reason, info.pod_message].filter((s) => s !== undefined && s !== "").join(": ")
