import { Effect } from "effect"
import { parseEntityType } from "../domain/Entity.ts"
import { intAt, objectAt, stringAt } from "../domain/jsonPayload.ts"
import { idOrNull, recordEvent } from "./auditLog.ts"
import type { Delivery } from "./delivery.ts"
import { BadDelivery } from "./errors.ts"

/*
 * The deliveries that are logged and nothing else: ping, the installation family, and every event we do not
 * model. Their rows are the history the trace folds, so each keeps the full body.
 */

/** `<event>.<action>`; an absent action gives `installation.`, as in the original. */
const eventName = (delivery: Delivery): string => `${delivery.event}.${delivery.action}`

/** The entity type column only takes `Organization` and `User`; anything else (an Enterprise) is stored as NULL. */
const entityTypeOf = (...candidates: ReadonlyArray<string>) =>
  candidates.map(parseEntityType).find((t) => t !== undefined) ?? null

export const handlePing = Effect.fn("Webhook.ping")(function*(delivery: Delivery) {
  yield* recordEvent(delivery, { event: "ping", outcome: "ok", payload: delivery.payload })
  return "pong"
})

/**
 * `installation` and `installation_repositories`. The entity is the account the app is installed on:
 * `installation.target_id` (the account id, stable across renames), its type and its login.
 */
export const handleInstallation = Effect.fn("Webhook.installation")(function*(delivery: Delivery) {
  const installation = objectAt(delivery.payload, "installation")
  if (installation === undefined) return yield* new BadDelivery({ message: "Missing installation in payload" })
  const account = objectAt(installation, "account")
  if (account === undefined) return yield* new BadDelivery({ message: "Missing installation.account in payload" })
  const event = eventName(delivery)
  yield* recordEvent(delivery, {
    event,
    outcome: "ok",
    installationId: idOrNull(intAt(installation, "id")),
    entity: {
      type: entityTypeOf(stringAt(installation, "target_type"), stringAt(account, "type")),
      id: idOrNull(intAt(installation, "target_id")) ?? idOrNull(intAt(account, "id")),
      name: stringAt(account, "login") || null
    },
    payload: delivery.payload
  })
  return `${event} logged`
})

/** `installation_target`: the account itself changed (a rename). `account.login` is the new name. */
export const handleInstallationTarget = Effect.fn("Webhook.installationTarget")(function*(delivery: Delivery) {
  const account = objectAt(delivery.payload, "account")
  const installation = objectAt(delivery.payload, "installation")
  if (account === undefined || installation === undefined) {
    return yield* new BadDelivery({ message: "Missing account or installation in payload" })
  }
  const event = eventName(delivery)
  yield* recordEvent(delivery, {
    event,
    outcome: "ok",
    installationId: idOrNull(intAt(installation, "id")),
    entity: {
      type: entityTypeOf(stringAt(delivery.payload, "target_type"), stringAt(account, "type")),
      id: idOrNull(intAt(account, "id")),
      name: stringAt(account, "login") || null
    },
    payload: delivery.payload
  })
  return `${event} logged`
})

/** Any event we do not model still leaves a row, so the trace shows everything GitHub sent. */
export const handleOtherEvent = Effect.fn("Webhook.otherEvent")(function*(delivery: Delivery) {
  yield* recordEvent(delivery, { event: delivery.event, outcome: "ignored_event", payload: delivery.payload })
  return `Ignoring ${delivery.event} event`
})
