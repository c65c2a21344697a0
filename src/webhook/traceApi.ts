import { HttpApi, HttpApiEndpoint, HttpApiGroup, HttpApiMiddleware, OpenApi } from "@effect/platform"
import { Option, ParseResult, Schema } from "effect"
import type { EventSummary } from "../domain/InstallationEvent.ts"
import { BadRequestText, InternalErrorText, NotFoundText, UnauthorizedText, UnavailableText } from "../observability/apiErrors.ts"

/*
 * The trace API on the webhook port, as an HttpApi: the path schemas decode the ids, the response schemas encode
 * the rows, and the trace CLI calls it through `HttpApiClient` on this same description.
 */

/** A path id as the original parsed it (a signed 64-bit integer that is exact as a number); the 400 names it. */
export const IdFromPath = (name: string) =>
  Schema.transformOrFail(Schema.String, Schema.Number, {
    strict: true,
    decode: (text, _, ast) =>
      /^[+-]?\d+$/.test(text) && Number.isSafeInteger(Number(text))
        ? ParseResult.succeed(Number(text))
        : ParseResult.fail(new ParseResult.Type(ast, text, `Invalid ${name}`)),
    encode: (n) => ParseResult.succeed(String(n))
  }).annotations({ description: "an integer" })

const Iso = Schema.Date.annotations({ jsonSchema: { type: "string", format: "date-time" } })

/** A nullable column, left out of the JSON when null (as the original's `omitempty`). */
const omittedWhenNull = <A, I>(schema: Schema.Schema<A, I>) =>
  Schema.optionalToRequired(schema, Schema.NullOr(Schema.typeSchema(schema)), {
    decode: Option.getOrNull,
    encode: Option.fromNullable
  })

/** One row of a timeline: an `EventSummary` in the program, without its payload and without its null values. */
export const TraceEventJson = Schema.Struct({
  id: Schema.Number,
  source: Schema.String.annotations({ examples: ["webhook", "scheduler"] }),
  event: Schema.String,
  outcome: Schema.String,
  installation_id: omittedWhenNull(Schema.Number),
  app_id: omittedWhenNull(Schema.Number),
  entity_type: omittedWhenNull(Schema.Literal("Organization", "User")),
  entity_id: omittedWhenNull(Schema.Number),
  entity_name: omittedWhenNull(Schema.String),
  received_at: Iso,
  delivery_id: omittedWhenNull(Schema.String),
  job_id: omittedWhenNull(Schema.String.annotations({ description: "workflow_job.* rows: the job id, as a string" })),
  repo_full_name: omittedWhenNull(Schema.String)
}).annotations({ identifier: "TraceEvent" })

/** The wire shape of a timeline row, as a client decodes it. */
export type TraceEventJson = typeof TraceEventJson.Type
// the rows the store reads are what the schema encodes
const _rowsEncode = (e: EventSummary): TraceEventJson => e
void _rowsEncode

export const TraceEvents = Schema.Struct({ events: Schema.Array(TraceEventJson) })

export const TraceState = Schema.Struct({
  entity_id: Schema.Number,
  events: Schema.Number,
  state: Schema.Record({ key: Schema.String, value: Schema.Unknown }),
  diagnoses: Schema.Array(Schema.Struct({ code: Schema.String, message: Schema.String, event_ids: Schema.Array(Schema.Number) }))
})

/**
 * The gate in front of every trace route, before its path is decoded (as the original checked): `503` while
 * `TRACE_API_SECRET` is unset, `401 Unauthorized` unless `Authorization` is exactly `Bearer <secret>`.
 */
export class TraceAuth extends HttpApiMiddleware.Tag<TraceAuth>()("riscv-runner/TraceAuth", {
  failure: Schema.Union(UnauthorizedText, UnavailableText)
}) {}

export const TraceGroup = HttpApiGroup.make("trace")
  .add(HttpApiEndpoint.get("entity", "/trace/entity/:entity_id")
    .setPath(Schema.Struct({ entity_id: IdFromPath("entity_id") }))
    .addSuccess(TraceEvents)
    .annotate(OpenApi.Description, "The entity's installation events, oldest first, without payloads."))
  .add(HttpApiEndpoint.get("entityState", "/trace/entity/:entity_id/state")
    .setPath(Schema.Struct({ entity_id: IdFromPath("entity_id") }))
    .setUrlParams(Schema.Struct({
      repo: Schema.optional(Schema.Array(Schema.String).annotations({ description: "owner/name, repeatable: a repository to examine besides those the scheduler failed for" }))
    }))
    .addSuccess(TraceState)
    .annotate(OpenApi.Description, "The installation history folded into its state, with every diagnosis the rows support."))
  .add(HttpApiEndpoint.get("installation", "/trace/installation/:installation_id")
    .setPath(Schema.Struct({ installation_id: IdFromPath("installation_id") }))
    .addSuccess(TraceEvents)
    .addError(NotFoundText)
    .annotate(OpenApi.Description, "The events of the entity that holds this installation (`404 Entity not found` otherwise)."))
  .add(HttpApiEndpoint.get("job", "/trace/job/:job_id")
    .setPath(Schema.Struct({ job_id: IdFromPath("job_id") }))
    .addSuccess(TraceEvents)
    .addError(NotFoundText)
    .annotate(OpenApi.Description, "The events of the entity that ran this job (`404 Entity not found` otherwise)."))
  .add(HttpApiEndpoint.get("payload", "/trace/payload/:event_id")
    .setPath(Schema.Struct({ event_id: IdFromPath("event_id") }))
    .addSuccess(Schema.Struct({ payload: Schema.Unknown }))
    .addError(NotFoundText)
    .annotate(OpenApi.Description, "One event's stored (trimmed) payload (`404 Payload not found` otherwise)."))
  .addError(UnavailableText)
  .middleware(TraceAuth)
  .annotate(OpenApi.Description, "Webhook port. Every route needs `Authorization: Bearer <TRACE_API_SECRET>`.")

/** What the webhook port serves through `HttpApiBuilder`, and what the trace CLI's client is made from. */
export const TraceApi = HttpApi.make("riscv-runner-trace")
  .add(TraceGroup)
  .addError(BadRequestText)
  .addError(InternalErrorText)
