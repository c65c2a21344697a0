import { Effect } from "effect"
import type { EntityType } from "../domain/Entity.ts"
import type { NewJob } from "../domain/Job.ts"
import type { WebhookOutcome } from "../domain/WebhookOutcome.ts"
import { recordDelivery } from "../observability/collect.ts"
import { Db, type DeliveryStored, type DeliveryWrite } from "../services/Db.ts"
import type { Delivery } from "./delivery.ts"
import { StoreFailed } from "./errors.ts"

export interface EventRow {
  readonly event: string
  readonly outcome: WebhookOutcome
  readonly installationId?: number | null
  readonly entity?: { readonly type: EntityType | null; readonly id: number | null; readonly name: string | null }
  readonly payload: unknown
}

/** 0 is how a missing id reads (see `intAt`); the column gets NULL instead. */
export const idOrNull = (id: number): number | null => (id === 0 ? null : id)

export const eventOf = (delivery: Delivery, row: EventRow) => ({
  source: "webhook" as const,
  event: row.event,
  outcome: row.outcome,
  installation_id: row.installationId ?? null,
  app_id: delivery.appId,
  entity_type: row.entity?.type ?? null,
  entity_id: row.entity?.id ?? null,
  entity_name: row.entity?.name ?? null,
  payload: row.payload,
  delivery_id: delivery.deliveryId
})

/**
 * Appends the delivery's `installation_events` row and, with `job`, stores the queued job it describes in the
 * same statement: both or neither. A failure is a 500. GitHub does not re-deliver on its own: its delivery log keeps the attempt failed, for the
 * scheduler's redelivery pass (or an operator) to ask for again, and a re-delivery converges because the job write is idempotent. A duplicate audit row is acceptable; the delivery id tells
 * re-deliveries apart. Returns the outcome stored (`row.outcome`, or `job.outcomeIfExists` for a job that was
 * already there). Untraced: it runs for every delivery, and the Db's batch has a span of its own.
 */
export const recordEvent = (
  delivery: Delivery,
  row: EventRow,
  job?: { readonly row: NewJob; readonly outcomeIfExists: WebhookOutcome }
) => storeWrite({ event: eventOf(delivery, row), job })

/** `recordEvent` for a write already built (`workflowJobChecks.ts` builds a queued job's). */
export const storeWrite = (write: DeliveryWrite) =>
  Effect.flatMap(Db, (db) =>
    db.storeDelivery(write).pipe(
      Effect.mapError((cause) => new StoreFailed({ operation: write.job === undefined ? "addInstallationEvent" : "storeDelivery", cause })),
      Effect.flatMap((stored) => {
        const outcome = storedOutcome(write, stored)
        return Effect.as(recordDelivery(write.event.event, outcome), outcome)
      })
    ))

/** The outcome a stored write's row holds: `job.outcomeIfExists` for a job that was already there. */
export const storedOutcome = (write: DeliveryWrite, stored: DeliveryStored): string =>
  write.job !== undefined && !stored.jobCreated ? write.job.outcomeIfExists : write.event.outcome

/**
 * An `in_progress` or `completed` delivery: the job's move and its audit row in one statement, both or neither.
 * When no job has the id nothing is written, and the caller decides (adopt the job, or log `job_not_found`).
 */
export const recordTransition = Effect.fnUntraced(function*(
  delivery: Delivery,
  row: EventRow,
  move: { readonly jobId: number; readonly to: "running" | "completed"; readonly runnerName: string | null }
) {
  const db = yield* Db
  const transition = yield* db.storeTransition({ ...move, event: eventOf(delivery, row) }).pipe(
    Effect.mapError((cause) => new StoreFailed({ operation: "storeTransition", cause }))
  )
  if (transition.found) yield* recordDelivery(row.event, row.outcome)
  return transition
})
