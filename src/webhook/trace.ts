import { HttpRouter, HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { Effect, Option } from "effect"
import type { EventSummary } from "../domain/InstallationEvent.ts"
import { diagnoseInstallation } from "../domain/installationDiagnoses.ts"
import { foldInstallationHistory, type HistoryRow, needsPayload } from "../domain/installationHistory.ts"
import { Db } from "../services/Db.ts"
import { InvalidId, NotFound, StoreFailed, TraceDisabled, Unauthorized } from "./errors.ts"
import { secretEquals } from "./signature.ts"
import { WebhookSettings } from "./WebhookSettings.ts"

/*
 * The trace API: an entity's installation event log, for an operator answering "why did this account's jobs
 * stop being picked up?". It is gated by a bearer token (a casual gate, not a security boundary, as the seed
 * says) and closed altogether when no token is configured.
 */

/** Passes when `Authorization` is exactly `Bearer <TRACE_API_SECRET>`, compared in constant time. */
export const requireTraceAuth = Effect.fn("Trace.auth")(function*() {
  const settings = yield* WebhookSettings
  if (Option.isNone(settings.traceSecret)) return yield* new TraceDisabled()
  const request = yield* HttpServerRequest.HttpServerRequest
  const given = request.headers["authorization"] ?? ""
  const PREFIX = "Bearer "
  if (!given.startsWith(PREFIX) || !secretEquals(given.slice(PREFIX.length), settings.traceSecret.value)) {
    return yield* new Unauthorized()
  }
})

/** A path id as the original parsed it (a signed 64-bit integer); `param` names it in the 400. */
const pathId = (param: string) =>
  Effect.flatMap(HttpRouter.params, (params) => {
    const text = params[param] ?? ""
    const n = Number(text)
    return /^[+-]?\d+$/.test(text) && Number.isSafeInteger(n) ? Effect.succeed(n) : new InvalidId({ param })
  })

const store = <A, E>(operation: string, effect: Effect.Effect<A, E>) =>
  Effect.mapError(effect, (cause) => new StoreFailed({ operation, cause }))

/** The list shape: absent values are left out (as the original's `omitempty`), payloads are never included. */
const eventJson = (e: EventSummary) => {
  const out: Record<string, unknown> = {}
  const keys = [
    "id",
    "source",
    "event",
    "outcome",
    "installation_id",
    "app_id",
    "entity_type",
    "entity_id",
    "entity_name",
    "received_at",
    "delivery_id",
    "job_id",
    "repo_full_name"
  ] as const
  for (const key of keys) if (e[key] !== null) out[key] = e[key]
  return out
}

const eventsOf = Effect.fn("Trace.events")(function*(entityId: number) {
  const db = yield* Db
  const events = yield* store("getEventsByEntity", db.getEventsByEntity(entityId))
  // `[]`, never `null`, for an entity with no rows: clients iterate without a check.
  return HttpServerResponse.unsafeJson({ events: events.map(eventJson) })
})

export const traceEntity = Effect.fn("Trace.entity")(function*() {
  yield* requireTraceAuth()
  return yield* eventsOf(yield* pathId("entity_id"))
})

export const traceInstallation = Effect.fn("Trace.installation")(function*() {
  yield* requireTraceAuth()
  const installationId = yield* pathId("installation_id")
  const db = yield* Db
  const entityId = yield* store("getEntityIdForInstallation", db.getEntityIdForInstallation(installationId))
  if (Option.isNone(entityId)) return yield* new NotFound({ message: "Entity not found" })
  return yield* eventsOf(entityId.value)
})

export const traceJob = Effect.fn("Trace.job")(function*() {
  yield* requireTraceAuth()
  const jobId = yield* pathId("job_id")
  const db = yield* Db
  const entityId = yield* store("getEntityIdForJob", db.getEntityIdForJob(jobId))
  if (Option.isNone(entityId)) return yield* new NotFound({ message: "Entity not found" })
  return yield* eventsOf(entityId.value)
})

export const tracePayload = Effect.fn("Trace.payload")(function*() {
  yield* requireTraceAuth()
  const eventId = yield* pathId("event_id")
  const db = yield* Db
  const payload = yield* store("getEventPayload", db.getEventPayload(eventId))
  if (Option.isNone(payload)) return yield* new NotFound({ message: "Payload not found" })
  return HttpServerResponse.unsafeJson({ payload: payload.value })
})

/**
 * A broken installation writes an auth failure every scheduler cycle, so an entity can have thousands. Their
 * count and app ids come from the row columns; only the newest ones' payloads are read for the repository.
 */
const AUTH_PAYLOADS = 100

/**
 * `GET /trace/entity/:id/state`: the installation history folded into its current state, with every diagnosis
 * that the rows support. `?repo=owner/name` (repeatable) asks about repositories besides those the scheduler
 * failed for.
 */
export const traceEntityState = Effect.fn("Trace.entityState")(function*() {
  yield* requireTraceAuth()
  const entityId = yield* pathId("entity_id")
  const db = yield* Db
  const settings = yield* WebhookSettings
  const request = yield* HttpServerRequest.HttpServerRequest
  const repos = new URL(request.url, "http://trace").searchParams.getAll("repo").filter((r) => r !== "")

  const events = yield* store("getEventsByEntity", db.getEventsByEntity(entityId))
  const authRows = events.filter((e) => e.event.startsWith("auth_attempt."))
  const skipAuthPayload = new Set(authRows.slice(0, Math.max(0, authRows.length - AUTH_PAYLOADS)).map((e) => e.id))
  const rows = yield* Effect.forEach(events, (e) =>
    needsPayload(e.event) && !skipAuthPayload.has(e.id)
      ? Effect.map(store("getEventPayload", db.getEventPayload(e.id)), (p): HistoryRow => ({ ...e, payload: Option.getOrUndefined(p) }))
      : Effect.succeed<HistoryRow>(e), { concurrency: 8 })

  const history = foldInstallationHistory(rows)
  return HttpServerResponse.unsafeJson({
    entity_id: entityId,
    events: events.length,
    state: history.state,
    diagnoses: diagnoseInstallation(history, { repos, apps: settings.apps })
  })
})
