import { Effect } from "effect"
import type { EntityType } from "../domain/Entity.ts"
import type { WebhookOutcome } from "../domain/WebhookOutcome.ts"
import { recordDelivery } from "../observability/collect.ts"
import { Db } from "../services/Db.ts"
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

/**
 * Appends the delivery's `installation_events` row, in its own transaction (the job write, if any, has already
 * committed in its own). A failure is a 500. GitHub does not re-deliver on its own: the attempt stays failed in
 * the app's delivery log, where the scheduler's redelivery pass (or an operator) asks for it again, and the
 * re-delivery converges because the job writes are idempotent. A duplicate row is acceptable; the delivery id tells re-deliveries apart.
 */
export const recordEvent = Effect.fn("Webhook.recordEvent")(function*(delivery: Delivery, row: EventRow) {
  const db = yield* Db
  return yield* db.addInstallationEvent({
    source: "webhook",
    event: row.event,
    outcome: row.outcome,
    installation_id: row.installationId ?? null,
    app_id: delivery.appId,
    entity_type: row.entity?.type ?? null,
    entity_id: row.entity?.id ?? null,
    entity_name: row.entity?.name ?? null,
    payload: row.payload,
    delivery_id: delivery.deliveryId
  }).pipe(
    Effect.tap(() => recordDelivery(row.event, row.outcome)),
    Effect.mapError((cause) => new StoreFailed({ operation: "addInstallationEvent", cause }))
  )
})
