import { HttpApiBuilder, HttpServerRequest } from "@effect/platform"
import { Effect, Layer, Option } from "effect"
import { diagnoseInstallation } from "../domain/installationDiagnoses.ts"
import { foldInstallationHistory, type HistoryRow, needsPayload } from "../domain/installationHistory.ts"
import { NotFound, Unauthorized, Unavailable } from "../observability/apiErrors.ts"
import { storeFailure } from "../observability/storeFailure.ts"
import { Db } from "../services/Db.ts"
import { secretEquals } from "./signature.ts"
import { TraceApi, TraceAuth } from "./traceApi.ts"
import { WebhookSettings } from "./WebhookSettings.ts"

/*
 * The trace API's handlers: an entity's installation event log, for an operator answering "why did this
 * account's jobs stop being picked up?". It is gated by a bearer token (a casual gate, not a security boundary,
 * as the seed says) and closed altogether when no token is configured. The ids arrive decoded by the path
 * schemas of `traceApi.ts`, and the rows leave encoded by its response schemas.
 */

const rejected = <E extends Unauthorized | Unavailable>(status: number, error: E) =>
  Effect.zipRight(Effect.logWarning(error.message).pipe(Effect.annotateLogs({ status, error: error._tag })), Effect.fail(error))

/** Passes when `Authorization` is exactly `Bearer <TRACE_API_SECRET>`, compared in constant time. */
export const TraceAuthLive = Layer.effect(
  TraceAuth,
  Effect.map(WebhookSettings, (settings) =>
    Effect.gen(function*() {
      if (Option.isNone(settings.traceSecret)) {
        return yield* rejected(503, new Unavailable({ message: "trace API disabled: TRACE_API_SECRET is not set" }))
      }
      const request = yield* HttpServerRequest.HttpServerRequest
      const given = request.headers["authorization"] ?? ""
      const PREFIX = "Bearer "
      if (!given.startsWith(PREFIX) || !secretEquals(given.slice(PREFIX.length), settings.traceSecret.value)) {
        return yield* rejected(401, new Unauthorized({ message: "Unauthorized" }))
      }
    }))
)

/** A store failure: 503 with Retry-After when the database did not answer in time, else 500. */
const store = storeFailure

const eventsOf = Effect.fn("Trace.events")(function*(entityId: number) {
  const db = yield* Db
  // `[]`, never `null`, for an entity with no rows: clients iterate without a check.
  return { events: yield* store("getEventsByEntity", db.getEventsByEntity(entityId)) }
})

const entityOf = (found: Option.Option<number>) =>
  Option.isNone(found) ? Effect.fail(new NotFound({ message: "Entity not found" })) : eventsOf(found.value)

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
const entityState = Effect.fn("Trace.entityState")(function*(entityId: number, repoParams: ReadonlyArray<string>) {
  const db = yield* Db
  const settings = yield* WebhookSettings
  const repos = repoParams.filter((r) => r !== "")
  const events = yield* store("getEventsByEntity", db.getEventsByEntity(entityId))
  const authRows = events.filter((e) => e.event.startsWith("auth_attempt."))
  const skipAuthPayload = new Set(authRows.slice(0, Math.max(0, authRows.length - AUTH_PAYLOADS)).map((e) => e.id))
  const rows = yield* Effect.forEach(events, (e) =>
    needsPayload(e.event) && !skipAuthPayload.has(e.id)
      ? Effect.map(store("getEventPayload", db.getEventPayload(e.id)), (p): HistoryRow => ({ ...e, payload: Option.getOrUndefined(p) }))
      : Effect.succeed<HistoryRow>(e), { concurrency: 8 })
  const history = foldInstallationHistory(rows)
  return {
    entity_id: entityId,
    events: events.length,
    state: history.state as unknown as Record<string, unknown>,
    diagnoses: diagnoseInstallation(history, { repos, apps: settings.apps })
  }
})

/** The trace group's handlers; needs `Db` and `WebhookSettings`. */
export const TraceHttp = HttpApiBuilder.group(TraceApi, "trace", (handlers) =>
  handlers
    .handle("entity", ({ path }) => eventsOf(path.entity_id))
    .handle("entityState", ({ path, urlParams }) => entityState(path.entity_id, urlParams.repo ?? []))
    .handle("installation", ({ path }) =>
      Effect.gen(function*() {
        const db = yield* Db
        return yield* entityOf(yield* store("getEntityIdForInstallation", db.getEntityIdForInstallation(path.installation_id)))
      }))
    .handle("job", ({ path }) =>
      Effect.gen(function*() {
        const db = yield* Db
        return yield* entityOf(yield* store("getEntityIdForJob", db.getEntityIdForJob(path.job_id)))
      }))
    .handle("payload", ({ path }) =>
      Effect.gen(function*() {
        const db = yield* Db
        const payload = yield* store("getEventPayload", db.getEventPayload(path.event_id))
        if (Option.isNone(payload)) return yield* new NotFound({ message: "Payload not found" })
        return { payload: payload.value }
      }))
).pipe(Layer.provide(TraceAuthLive))
