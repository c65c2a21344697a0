import { HttpServerResponse } from "@effect/platform"
import { Cause, Clock, Effect, Exit, FiberRef, HashMap, Option } from "effect"
import type { WebhookOutcome } from "../domain/WebhookOutcome.ts"
import { Db, type Transition } from "../services/Db.ts"
import { eventOf, recordEvent, recordTransition, storeWrite } from "./auditLog.ts"
import type { Delivery } from "./delivery.ts"
import { type HttpEdgeError, statusOf, StoreFailed, textResponse } from "./errors.ts"
import { proxyToStaging } from "./stagingProxy.ts"
import { WebhookSettings, type WebhookSettingsShape } from "./WebhookSettings.ts"
import { checkWorkflowJob, type LogFields, type WorkflowJobDecision } from "./workflowJobChecks.ts"

/*
 * `workflow_job`: the demand side. A queued job whose labels resolve to a board pool becomes a pending job; its
 * in_progress and completed news move it forward. The checks (and their order, the original's) are the plain
 * `checkWorkflowJob`; this file carries out what it decides.
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
export const withAccessLog = (startedAt: number, fields: LogFields) =>
<A extends HttpServerResponse.HttpServerResponse, E extends HttpEdgeError, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.onExit(effect, (exit) =>
    Effect.flatMap(Clock.currentTimeMillis, (end) =>
      accessLineOf(startedAt, fields, Exit.match(exit, { onSuccess: (r) => r.status, onFailure: (cause) => failureStatus(cause) }), end)))

const accessLine = Effect.logInfo("Received workflow_job")

/**
 * The access line of a delivery answered `status` at `end` (millis), as `withAccessLog` writes it: for the front
 * door's plain `queued` path, which knows its status without an Exit.
 */
export const accessLineOf = (startedAt: number, fields: LogFields, status: number, end: number) =>
  Effect.zipRight(
    FiberRef.update(FiberRef.currentLogAnnotations, (annotations) =>
      HashMap.mutate(annotations, (m) => {
        for (const key in fields) HashMap.set(m, key, fields[key])
        HashMap.set(m, "status", status)
        HashMap.set(m, "elapsed_ms", end - startedAt)
      })),
    accessLine
  )

const failureStatus = (cause: Cause.Cause<HttpEdgeError>): number =>
  Option.match(Cause.failureOption(cause), { onNone: () => 500, onSome: statusOf })

/** Untraced: the hot path (`Webhook.receive` is the request's span, without Effect.fn's stack traces). */
export const handleWorkflowJob = (delivery: Delivery) =>
  Effect.flatMap(WebhookSettings, (settings) => carryOutWorkflowJob(delivery, checkWorkflowJob(settings, delivery), settings))

/** Carries out what `checkWorkflowJob` decided: the writes, the answer, the access line and the span's attributes. */
export const carryOutWorkflowJob = Effect.fnUntraced(function*(delivery: Delivery, decision: WorkflowJobDecision, settings: WebhookSettingsShape) {
  switch (decision._tag) {
    case "Banned":
      yield* Effect.logInfo("delivery refused: banned").pipe(
        Effect.annotateLogs({ outcome: "ignored_banned" satisfies WebhookOutcome, event: decision.event, entity_id: decision.entityId, why: decision.why })
      )
      return ok(`Ignored: ${decision.why}.`)
    case "Staging":
      yield* storeWrite({ event: eventOf(delivery, decision.row) })
      return yield* proxyToStaging(delivery, decision.target, settings.stagingTimeout)
    case "IgnoredAction":
      yield* storeWrite({ event: eventOf(delivery, decision.row) })
      return ok(`Ignoring action: ${decision.action}`)
    case "NoLabel":
      yield* Effect.annotateCurrentSpan(decision.span)
      yield* storeWrite({ event: eventOf(delivery, decision.row) })
      return ok("Ignoring job: missing required platform label")
    case "Refused": {
      if (decision.span !== undefined) yield* Effect.annotateCurrentSpan(decision.span)
      const refusal = Effect.fail(decision.error)
      return yield* (decision.logFields === undefined ? refusal : withAccessLog(delivery.startedAt, decision.logFields)(refusal))
    }
    case "Queued": {
      yield* Effect.annotateCurrentSpan(decision.span)
      // The job and its audit row in one statement (both or neither), batched with concurrent deliveries.
      const stored = storeWrite(decision.write).pipe(
        Effect.map((outcome) => ok(outcome === "job_stored" ? `Job ${decision.jobId} stored.` : `Job ${decision.jobId} already exists.`))
      )
      return yield* withAccessLog(delivery.startedAt, decision.logFields)(stored)
    }
    case "Move":
      yield* Effect.annotateCurrentSpan(decision.span)
      return yield* withAccessLog(delivery.startedAt, decision.logFields)(move(delivery, decision))
  }
})

/** `in_progress` or `completed`: the move, or the job adopted when its `queued` delivery has not been stored. */
const move = Effect.fnUntraced(function*(delivery: Delivery, m: Extract<WorkflowJobDecision, { _tag: "Move" }>) {
  const db = yield* Db
  const { base, jobId, newJob, payload, runnerName } = m
  const moved = m.to
  const movedOutcome: WebhookOutcome = moved === "running" ? "job_marked_running" : "job_marked_completed"
  // The move and its audit row in one statement: both or neither. Nothing is written for a job not stored.
  const first = yield* recordTransition(delivery, { ...base, outcome: movedOutcome, payload }, { jobId, to: moved, runnerName })
  if (first.found) return ok(noteTransition(jobId, first, moved).body)
  if (newJob === undefined) {
    yield* recordEvent(delivery, { ...base, outcome: "job_not_found", payload })
    return ok(`Job ${jobId} not found.`)
  }
  // GitHub does not promise order: this news can arrive before the job's `queued` delivery (or that one was
  // lost). Storing the job, moving it forward and its audit row in one step makes any order of deliveries end
  // in the same state; the late `queued` then finds the job and changes nothing. One step, so no scheduler ever
  // sees it pending and provisions a runner for a job that already has one.
  const mark = moved === "running" ? db.markJobRunning(jobId, runnerName) : db.markJobCompleted(jobId, runnerName)
  yield* db.step(Effect.zipRight(Effect.zipRight(db.addJob(newJob), mark), recordEvent(delivery, { ...base, outcome: movedOutcome, payload }))).pipe(
    Effect.mapError((e) => (e._tag === "StoreFailed" ? e : new StoreFailed({ operation: "adoptJob", cause: e })))
  )
  return ok(`Job ${jobId} was not stored yet; stored it and ${moved === "running" ? "marked it running" : "completed it"}.`)
})
