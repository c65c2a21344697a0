import { HttpServerResponse } from "@effect/platform"
import { Cause, Clock, Effect, Exit, FiberRef, HashMap, Option } from "effect"
import { parseEntityType } from "../domain/Entity.ts"
import { idAt, type JsonObject, objectAt, stringAt, stringsAt } from "../domain/jsonPayload.ts"
import type { NewJob } from "../domain/Job.ts"
import { banOf, resolvePool } from "../domain/RunnerConfig.ts"
import type { WebhookOutcome } from "../domain/WebhookOutcome.ts"
import { minimalWorkflowJobPayload, trimWorkflowJobPayload } from "../domain/workflowJobPayload.ts"
import { Db, type Transition } from "../services/Db.ts"
import { idOrNull, recordEvent, recordTransition } from "./auditLog.ts"
import type { Delivery } from "./delivery.ts"
import { BadDelivery, type HttpEdgeError, statusOf, StoreFailed, textResponse } from "./errors.ts"
import { proxyToStaging, stagingTarget } from "./stagingProxy.ts"
import { WebhookSettings } from "./WebhookSettings.ts"

/*
 * `workflow_job`: the demand side. A queued job whose labels resolve to a board pool becomes a pending job; its
 * in_progress and completed news move it forward. The checks and their order follow the original (696e339), so
 * GitHub's delivery log reads the same.
 */

const ok = (body: string) => textResponse(200, body)

/** The action's Db write, and the outcome and text it yields. */
const noteTransition = (jobId: number, transition: Transition, moved: "running" | "completed") => {
  if (!transition.found) return { outcome: "job_not_found" as const, body: `Job ${jobId} not found.` }
  const outcome: WebhookOutcome = moved === "running" ? "job_marked_running" : "job_marked_completed"
  const verb = moved === "running" ? "marked running" : "completed"
  // `previous` may be a status that refused the move (a late in_progress for a completed job): "(was completed)".
  return { outcome, body: `Job ${jobId} ${verb} (was ${transition.previous}).` }
}

/**
 * One INFO line per label-matched delivery, written when it is answered: what the job is (the `jobLogFields`
 * keys, as the scheduler's lines), the status and the time since the request began, as the original's access
 * log. Those are the requests whose latency matters; everything else is too frequent to be worth a line. One line
 * rather than a "received" line and an access line: writing the log was a tenth of the webhook's CPU.
 *
 * The fields are put on the request's fiber in one step (one mutable pass over the annotations) and are not taken
 * off again: `annotateLogs` folds them in one at a time and restores the previous annotations afterwards, which
 * together cost more than the line itself (measured in process: about a sixth of a delivery's CPU outside the
 * sockets). The line is the request's last but for a defect's `unexpected failure`, which then carries the job too.
 */
const withAccessLog = (startedAt: number, fields: Readonly<Record<string, string | number>>) =>
<A extends HttpServerResponse.HttpServerResponse, E extends HttpEdgeError, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.onExit(effect, (exit) =>
    Effect.flatMap(Clock.currentTimeMillis, (end) => {
      const status = Exit.match(exit, { onSuccess: (r) => r.status, onFailure: (cause) => failureStatus(cause) })
      return Effect.zipRight(
        FiberRef.update(FiberRef.currentLogAnnotations, (annotations) =>
          HashMap.mutate(annotations, (m) => {
            for (const key in fields) HashMap.set(m, key, fields[key])
            HashMap.set(m, "status", status)
            HashMap.set(m, "elapsed_ms", end - startedAt)
          })),
        accessLine
      )
    }))

const accessLine = Effect.logInfo("Received workflow_job")

const failureStatus = (cause: Cause.Cause<HttpEdgeError>): number =>
  Option.match(Cause.failureOption(cause), { onNone: () => 500, onSome: statusOf })

/** The four ids a job row is made of, each checked the same way; the names are the payload paths. */
const ID_FIELDS = ["workflow_job.id", "installation.id", "repository.owner.id", "repository.id"] as const
type IdField = typeof ID_FIELDS[number]

/**
 * The first id that is present but not a positive safe integer (a negative job id would be stored and then
 * provisioned for), as a 400 that names it. A missing id is not this error: the original's checks, in their
 * places, say which one is missing.
 */
const invalidId = (ids: Readonly<Record<IdField, number | "missing" | "invalid">>): BadDelivery | undefined => {
  const bad = ID_FIELDS.find((field) => ids[field] === "invalid")
  return bad === undefined ? undefined : new BadDelivery({ message: `invalid ${bad}` })
}

/** A checked id as a number, with a missing one as 0 (what the original's checks compare with). */
const idOrZero = (id: number | "missing" | "invalid"): number => (typeof id === "number" ? id : 0)

const idsOf = (repository: JsonObject, owner: JsonObject, installation: JsonObject, job: JsonObject) => ({
  "workflow_job.id": idAt(job, "id"),
  "installation.id": idAt(installation, "id"),
  "repository.owner.id": idAt(owner, "id"),
  "repository.id": idAt(repository, "id")
})

/** Untraced: the hot path (`Webhook.receive` is the request's span, without Effect.fn's stack traces). */
export const handleWorkflowJob = Effect.fnUntraced(function*(delivery: Delivery) {
  const settings = yield* WebhookSettings
  const payload = delivery.payload
  const repository = objectAt(payload, "repository")
  const installation = objectAt(payload, "installation")
  const job = objectAt(payload, "workflow_job")
  if (repository === undefined || installation === undefined || job === undefined) {
    return yield* new BadDelivery({ message: "Missing repository/installation/workflow_job in payload" })
  }
  const owner = objectAt(repository, "owner")
  if (owner === undefined) return yield* new BadDelivery({ message: "Missing repository.owner in payload" })

  // Before anything is written, the staging row and the ignored rows included: no row may hold such an id.
  const ids = idsOf(repository, owner, installation, job)
  const invalid = invalidId(ids)
  if (invalid !== undefined) return yield* invalid

  // The entity is the repository's owner, for organisations and personal accounts alike: its account id is
  // stable across renames and reinstalls.
  const entityId = idOrZero(ids["repository.owner.id"])
  if (entityId === 0) return yield* new BadDelivery({ message: "Owner ID is missing in payload" })
  const ownerType = stringAt(owner, "type")
  const entityType = parseEntityType(ownerType)
  if (entityType === undefined) return yield* new BadDelivery({ message: `unsupported entity type: ${JSON.stringify(ownerType)}` })
  const entity = { type: entityType, id: entityId, name: stringAt(owner, "login") }
  const action = delivery.action
  const installationId = idOrZero(ids["installation.id"])
  const repoFullName = stringAt(repository, "full_name")
  const base = { event: `workflow_job.${action}`, installationId: idOrNull(installationId), entity: { ...entity, name: entity.name || null } }
  const trimmed = trimWorkflowJobPayload(payload)

  // A banned entity or sender: answered, logged, and nothing stored (before staging: prod does not forward it).
  const sender = objectAt(payload, "sender")
  const senderId = idAt(sender ?? {}, "id")
  const ban = banOf(settings.runnerConfig, {
    entityId,
    entityName: entity.name,
    senderId: typeof senderId === "number" ? senderId : null,
    senderLogin: stringAt(sender, "login")
  })
  if (ban !== undefined) {
    yield* Effect.logInfo("delivery refused: banned").pipe(
      Effect.annotateLogs({ outcome: "ignored_banned" satisfies WebhookOutcome, event: base.event, entity_id: entityId, why: ban })
    )
    return ok(`Ignored: ${ban}.`)
  }

  // Before the action filter, so that every action of a staging repository goes to staging.
  const staging = stagingTarget(settings, entityId, repoFullName)
  if (Option.isSome(staging)) {
    yield* recordEvent(delivery, { ...base, outcome: "proxied_to_staging", payload: trimmed })
    return yield* proxyToStaging(delivery, staging.value, settings.stagingTimeout)
  }

  if (action !== "queued" && action !== "in_progress" && action !== "completed") {
    yield* recordEvent(delivery, { ...base, outcome: "ignored_action", payload: trimmed })
    return ok(`Ignoring action: ${action}`)
  }

  const jobId = idOrZero(ids["workflow_job.id"])
  if (jobId === 0) return yield* new BadDelivery({ message: "Job ID is missing in payload" })
  // so a trace backend finds this delivery from the job's id, as it finds the cycle that provisioned its runner
  yield* Effect.annotateCurrentSpan({
    "job.id": jobId,
    "job.action": action,
    "entity.id": entityId,
    ...(delivery.deliveryId === null ? {} : { "github.delivery_id": delivery.deliveryId })
  })
  if (repoFullName === "") return yield* new BadDelivery({ message: "Repository full name is missing in payload" })
  if (ids["repository.id"] === "missing") return yield* new BadDelivery({ message: "Repository ID is missing in payload" })

  const labels = stringsAt(job, "labels")
  const target = resolvePool(settings.runnerConfig, { entityId, repoFullName, labels }, settings.prod)
  if (target === undefined) {
    yield* recordEvent(delivery, { ...base, outcome: "ignored_no_label", payload: minimalWorkflowJobPayload(payload) })
    return ok("Ignoring job: missing required platform label")
  }

  const logFields = {
    job_id: jobId,
    pod: stringAt(job, "runner_name"),
    entity: entity.name,
    entity_id: entity.id,
    entity_type: entity.type,
    action,
    name: stringAt(job, "name"),
    repo: repoFullName,
    labels: labels.join(",")
  }
  return yield* Effect.gen(function*() {
    const db = yield* Db
    const htmlUrl = stringAt(job, "html_url")
    const runnerName = stringAt(job, "runner_name") || null
    const storeFailed = (operation: string) => (cause: unknown) => new StoreFailed({ operation, cause })

    /** The job as a queued delivery describes it; undefined when the delivery lacks a field the row needs. */
    const newJob: NewJob | undefined = installationId === 0 || entity.name === "" || htmlUrl === ""
      ? undefined
      : {
        job_id: jobId,
        provider: "github",
        entity_id: entity.id,
        entity_name: entity.name,
        entity_type: entity.type,
        repo_full_name: repoFullName,
        installation_id: installationId,
        job_labels: labels,
        k8s_pool: target.pool,
        k8s_image: target.image,
        html_url: htmlUrl
      }

    if (action === "queued") {
      if (installationId === 0) return yield* new BadDelivery({ message: "Installation ID is missing in payload" })
      if (entity.name === "") return yield* new BadDelivery({ message: "Entity name is missing in payload" })
      if (htmlUrl === "" || newJob === undefined) return yield* new BadDelivery({ message: "HTML URL is missing in payload" })
      // The job and its audit row in one statement (both or neither), batched with concurrent deliveries.
      const stored = yield* recordEvent(delivery, { ...base, outcome: "job_stored", payload: trimmed }, { row: newJob, outcomeIfExists: "job_already_exists" })
      return ok(stored === "job_stored" ? `Job ${jobId} stored.` : `Job ${jobId} already exists.`)
    }
    const moved = action === "in_progress" ? "running" as const : "completed" as const
    const movedOutcome: WebhookOutcome = moved === "running" ? "job_marked_running" : "job_marked_completed"
    // The move and its audit row in one statement: both or neither. Nothing is written for a job not stored.
    const first = yield* recordTransition(delivery, { ...base, outcome: movedOutcome, payload: trimmed }, { jobId, to: moved, runnerName })
    if (first.found) return ok(noteTransition(jobId, first, moved).body)
    if (newJob === undefined) {
      yield* recordEvent(delivery, { ...base, outcome: "job_not_found", payload: trimmed })
      return ok(`Job ${jobId} not found.`)
    }
    // GitHub does not promise order: this news can arrive before the job's `queued` delivery (or that one was
    // lost). Storing the job, moving it forward and its audit row in one step makes any order of deliveries end
    // in the same state; the late `queued` then finds the job and changes nothing. One step, so no scheduler ever
    // sees it pending and provisions a runner for a job that already has one.
    const mark = moved === "running" ? db.markJobRunning(jobId, runnerName) : db.markJobCompleted(jobId, runnerName)
    yield* db.step(Effect.zipRight(Effect.zipRight(db.addJob(newJob), mark), recordEvent(delivery, { ...base, outcome: movedOutcome, payload: trimmed }))).pipe(
      Effect.mapError((e) => (e._tag === "StoreFailed" ? e : storeFailed("adoptJob")(e)))
    )
    return ok(`Job ${jobId} was not stored yet; stored it and ${moved === "running" ? "marked it running" : "completed it"}.`)
  }).pipe(withAccessLog(delivery.startedAt, logFields))
})
