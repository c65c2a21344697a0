import { parseEntityType } from "../domain/Entity.ts"
import { idAt, objectAt, stringAt, stringsAt } from "../domain/jsonPayload.ts"
import type { NewJob } from "../domain/Job.ts"
import { banOf, resolvePool } from "../domain/RunnerConfig.ts"
import type { EntityType } from "../domain/Entity.ts"
import { minimalWorkflowJobPayload, trimWorkflowJobPayload } from "../domain/workflowJobPayload.ts"
import type { DeliveryWrite } from "../services/Db.ts"
import { type EventRow, eventOf, idOrNull } from "./auditLog.ts"
import type { Delivery } from "./delivery.ts"
import { BadDelivery } from "./errors.ts"
import { stagingTarget } from "./stagingProxy.ts"
import type { WebhookSettingsShape } from "./WebhookSettings.ts"

/*
 * Everything a `workflow_job` delivery decides before any I/O, as one plain function: the checks in the
 * original's order (696e339, so GitHub's delivery log reads the same), the payload trimmed, the rows built, the
 * access line's fields and the span's attributes. `workflowJob.ts` carries out what it decides; the served port's
 * front door (`deliveryFront.ts`) carries out a `queued` job to store with no Effect step but the store itself.
 */

/** What the audit rows of this delivery share. */
export interface RowBase {
  readonly event: string
  readonly installationId: number | null
  readonly entity: { readonly type: EntityType; readonly id: number; readonly name: string | null }
}

/** The access line's fields (`jobLogFields` keys, as the scheduler's lines), in the line's order. */
export type LogFields = Readonly<Record<string, string | number>>
/** What a trace backend finds this delivery by: the job's id, among others. */
export type SpanAttributes = Readonly<Record<string, string | number>>

export type WorkflowJobDecision =
  /** a 400; `logFields` when the delivery had matched a pool (its access line is written), `span` once known */
  | { readonly _tag: "Refused"; readonly error: BadDelivery; readonly span?: SpanAttributes; readonly logFields?: LogFields }
  | { readonly _tag: "Banned"; readonly why: string; readonly event: string; readonly entityId: number }
  | { readonly _tag: "Staging"; readonly target: string; readonly row: EventRow }
  | { readonly _tag: "IgnoredAction"; readonly action: string; readonly row: EventRow }
  | { readonly _tag: "NoLabel"; readonly span: SpanAttributes; readonly row: EventRow }
  /** a job to store with its audit row, in one statement */
  | {
    readonly _tag: "Queued"
    readonly jobId: number
    readonly write: DeliveryWrite
    readonly span: SpanAttributes
    readonly logFields: LogFields
  }
  /** `in_progress` or `completed`: the job's move and its audit row; `newJob` to adopt it when it is not stored */
  | {
    readonly _tag: "Move"
    readonly jobId: number
    readonly to: "running" | "completed"
    readonly runnerName: string | null
    readonly newJob: NewJob | undefined
    readonly base: RowBase
    readonly payload: unknown
    readonly span: SpanAttributes
    readonly logFields: LogFields
  }

/** The four ids a job row is made of, each checked the same way; the names are the payload paths. */
const ID_FIELDS = ["workflow_job.id", "installation.id", "repository.owner.id", "repository.id"] as const
type IdField = typeof ID_FIELDS[number]
type Id = number | "missing" | "invalid"

/**
 * The first id that is present but not a positive safe integer (a negative job id would be stored and then
 * provisioned for), as a 400 that names it. A missing id is not this error: the original's checks, in their
 * places, say which one is missing.
 */
const invalidId = (ids: Readonly<Record<IdField, Id>>): BadDelivery | undefined => {
  for (const field of ID_FIELDS) if (ids[field] === "invalid") return new BadDelivery({ message: `invalid ${field}` })
  return undefined
}

/** A checked id as a number, with a missing one as 0 (what the original's checks compare with). */
const idOrZero = (id: Id): number => (typeof id === "number" ? id : 0)

const refused = (message: string, span?: SpanAttributes, logFields?: LogFields): WorkflowJobDecision => ({
  _tag: "Refused",
  error: new BadDelivery({ message }),
  ...(span === undefined ? {} : { span }),
  ...(logFields === undefined ? {} : { logFields })
})

/** What to do with a verified `workflow_job` delivery; nothing here does I/O. */
export const checkWorkflowJob = (settings: WebhookSettingsShape, delivery: Delivery): WorkflowJobDecision => {
  const payload = delivery.payload
  const repository = objectAt(payload, "repository")
  const installation = objectAt(payload, "installation")
  const job = objectAt(payload, "workflow_job")
  if (repository === undefined || installation === undefined || job === undefined) {
    return refused("Missing repository/installation/workflow_job in payload")
  }
  const owner = objectAt(repository, "owner")
  if (owner === undefined) return refused("Missing repository.owner in payload")

  // Before anything is written, the staging row and the ignored rows included: no row may hold such an id.
  const ids: Record<IdField, Id> = {
    "workflow_job.id": idAt(job, "id"),
    "installation.id": idAt(installation, "id"),
    "repository.owner.id": idAt(owner, "id"),
    "repository.id": idAt(repository, "id")
  }
  const invalid = invalidId(ids)
  if (invalid !== undefined) return { _tag: "Refused", error: invalid }

  // The entity is the repository's owner, for organisations and personal accounts alike: its account id is
  // stable across renames and reinstalls.
  const entityId = idOrZero(ids["repository.owner.id"])
  if (entityId === 0) return refused("Owner ID is missing in payload")
  const ownerType = stringAt(owner, "type")
  const entityType = parseEntityType(ownerType)
  if (entityType === undefined) return refused(`unsupported entity type: ${JSON.stringify(ownerType)}`)
  const entityName = stringAt(owner, "login")
  const action = delivery.action
  const installationId = idOrZero(ids["installation.id"])
  const repoFullName = stringAt(repository, "full_name")
  const base: RowBase = {
    event: `workflow_job.${action}`,
    installationId: idOrNull(installationId),
    entity: { type: entityType, id: entityId, name: entityName || null }
  }

  // A banned entity or sender: answered, logged, and nothing stored (before staging: prod does not forward it).
  const sender = objectAt(payload, "sender")
  const senderId = idAt(sender ?? {}, "id")
  const ban = banOf(settings.runnerConfig, {
    entityId,
    entityName,
    senderId: typeof senderId === "number" ? senderId : null,
    senderLogin: stringAt(sender, "login")
  })
  if (ban !== undefined) return { _tag: "Banned", why: ban, event: base.event, entityId }

  // Before the action filter, so that every action of a staging repository goes to staging.
  const staging = stagingTarget(settings, entityId, repoFullName)
  if (staging._tag === "Some") {
    return { _tag: "Staging", target: staging.value, row: { ...base, outcome: "proxied_to_staging", payload: trimWorkflowJobPayload(payload) } }
  }

  if (action !== "queued" && action !== "in_progress" && action !== "completed") {
    return { _tag: "IgnoredAction", action, row: { ...base, outcome: "ignored_action", payload: trimWorkflowJobPayload(payload) } }
  }

  const jobId = idOrZero(ids["workflow_job.id"])
  if (jobId === 0) return refused("Job ID is missing in payload")
  // so a trace backend finds this delivery from the job's id, as it finds the cycle that provisioned its runner
  const span: SpanAttributes = delivery.deliveryId === null
    ? { "job.id": jobId, "job.action": action, "entity.id": entityId }
    : { "job.id": jobId, "job.action": action, "entity.id": entityId, "github.delivery_id": delivery.deliveryId }
  if (repoFullName === "") return refused("Repository full name is missing in payload", span)
  if (ids["repository.id"] === "missing") return refused("Repository ID is missing in payload", span)

  const labels = stringsAt(job, "labels")
  const target = resolvePool(settings.runnerConfig, { entityId, repoFullName, labels }, settings.prod)
  if (target === undefined) {
    return { _tag: "NoLabel", span, row: { ...base, outcome: "ignored_no_label", payload: minimalWorkflowJobPayload(payload) } }
  }

  const logFields: LogFields = {
    job_id: jobId,
    pod: stringAt(job, "runner_name"),
    entity: entityName,
    entity_id: entityId,
    entity_type: entityType,
    action,
    name: stringAt(job, "name"),
    repo: repoFullName,
    labels: labels.join(",")
  }
  const htmlUrl = stringAt(job, "html_url")
  /** The job as the delivery describes it; undefined when it lacks a field the row needs. */
  const newJob: NewJob | undefined = installationId === 0 || entityName === "" || htmlUrl === ""
    ? undefined
    : {
      job_id: jobId,
      provider: "github",
      entity_id: entityId,
      entity_name: entityName,
      entity_type: entityType,
      repo_full_name: repoFullName,
      installation_id: installationId,
      job_labels: labels,
      k8s_pool: target.pool,
      k8s_image: target.image,
      html_url: htmlUrl
    }

  if (action === "queued") {
    if (installationId === 0) return refused("Installation ID is missing in payload", span, logFields)
    if (entityName === "") return refused("Entity name is missing in payload", span, logFields)
    if (newJob === undefined) return refused("HTML URL is missing in payload", span, logFields)
    return {
      _tag: "Queued",
      jobId,
      write: {
        event: eventOf(delivery, { ...base, outcome: "job_stored", payload: trimWorkflowJobPayload(payload) }),
        job: { row: newJob, outcomeIfExists: "job_already_exists" }
      },
      span,
      logFields
    }
  }
  return {
    _tag: "Move",
    jobId,
    to: action === "in_progress" ? "running" : "completed",
    runnerName: stringAt(job, "runner_name") || null,
    newJob,
    base,
    payload: trimWorkflowJobPayload(payload),
    span,
    logFields
  }
}
