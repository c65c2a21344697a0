import { Schema } from "effect"
import { EntityType } from "./Entity.ts"

/**
 * One row of the append-only `installation_events` log: every webhook delivery and every scheduler auth failure.
 * Columns as in the seed DDL, plus `delivery_id` (migration 0002) so a GitHub re-delivery can be recognised.
 */
export const InstallationEvent = Schema.Struct({
  id: Schema.Number,
  source: Schema.String,
  event: Schema.String,
  outcome: Schema.String,
  installation_id: Schema.NullOr(Schema.Number),
  app_id: Schema.NullOr(Schema.Number),
  entity_type: Schema.NullOr(EntityType),
  entity_id: Schema.NullOr(Schema.Number),
  entity_name: Schema.NullOr(Schema.String),
  payload: Schema.Unknown,
  received_at: Schema.DateFromSelf,
  delivery_id: Schema.NullOr(Schema.String)
})
export type InstallationEvent = typeof InstallationEvent.Type

/** What a writer supplies; `id` and `received_at` come from the database. */
export const NewInstallationEvent = InstallationEvent.omit("id", "received_at")
export type NewInstallationEvent = typeof NewInstallationEvent.Type

/**
 * The list shape served by the trace API: never the payload (they can be tens of KB), but for `workflow_job.*`
 * rows the job id (as a string) and the repository, extracted from the payload.
 */
export const EventSummary = Schema.Struct({
  ...InstallationEvent.omit("payload").fields,
  job_id: Schema.NullOr(Schema.String),
  repo_full_name: Schema.NullOr(Schema.String)
})
export type EventSummary = typeof EventSummary.Type
