import { Duration, Effect } from "effect"
import { type OwnerType, workflowJobPayload } from "./payloads.ts"
import type { DeliveryResult } from "./webhookTransport.ts"
import type { SimJob } from "./worldApi.ts"
import type { WorldCore } from "./worldCore.ts"

/*
 * The world's webhook deliveries: ids as GitHub forms them, the app each one is sent as, the delivery faults
 * (dropped, held back, sent twice), and the redelivery of a failed attempt. Every delivery is sent in the
 * background, through `WebhookTransport`.
 */

export interface Deliveries {
  /** the app an owner of this type installed (its id is the delivery's installation target) */
  readonly appIdFor: (type: OwnerType) => number
  /** Sends a delivery in the background, through the delivery faults: dropped, held back, or sent twice. */
  readonly deliver: (event: string, payload: unknown, appId: number, jobId: number | null) => Effect.Effect<void>
  /** The job's `workflow_job` delivery for this action, as its owner's app receives it. */
  readonly deliverJob: (job: SimJob, action: "queued" | "in_progress" | "completed", runnerId: number | null) => Effect.Effect<void>
  /** attempts sent, and deliveries that never got a 2xx */
  readonly sent: () => { readonly deliveries: number; readonly deliveryFailures: number }
}

export const makeDeliveries = (core: WorldCore): Deliveries => {
  const { options, owners, transport, publish, simSleep, now, chance, upTo, spawn, startedAt } = core
  let nextDelivery = 1
  let deliveries = 0
  let deliveryFailures = 0

  const deliveryId = () => {
    const n = nextDelivery++
    const run = Math.floor(startedAt / 1000).toString(16).padStart(8, "0").slice(-8)
    return `${run}-0000-4000-8000-${n.toString(16).padStart(12, "0")}`
  }
  const appIdFor = (type: OwnerType) => (type === "User" ? options.apps.personalAppId : options.apps.orgAppId)
  const encoder = new TextEncoder()

  /** One attempt; a failed one (no answer or 5xx) is redelivered a few times, as an app operator would. */
  const sendWithRedelivery = (event: string, body: Uint8Array, appId: number, id: string, jobId: number | null) =>
    Effect.gen(function*() {
      let result: DeliveryResult = { status: 0, body: "" }
      for (let attempt = 0; attempt < 4; attempt++) {
        if (attempt > 0) yield* simSleep(Duration.seconds(15 * attempt))
        result = yield* transport.send({ event, deliveryId: id, appId, body })
        deliveries += 1
        if (result.status > 0 && result.status < 500) break
      }
      if (result.status < 200 || result.status >= 300) {
        deliveryFailures += 1
        yield* publish({ _tag: "DeliveryFailed", at: yield* now, event, jobId, status: result.status, body: result.body })
      }
    })

  const deliver = (event: string, payload: unknown, appId: number, jobId: number | null) =>
    Effect.gen(function*() {
      const body = encoder.encode(JSON.stringify(payload))
      const id = deliveryId()
      if (yield* chance(core.faults.dropWebhooks)) {
        core.count("dropped")
        return
      }
      const delay = (yield* chance(core.faults.reorderWebhooks)) ? yield* upTo(60_000) : 0
      if (delay > 0) core.count("reordered")
      const twice = yield* chance(core.faults.duplicateWebhooks)
      if (twice) core.count("duplicated")
      const again = twice ? yield* upTo(5_000) : 0
      yield* spawn(Effect.gen(function*() {
        if (delay > 0) yield* simSleep(Duration.millis(delay))
        yield* sendWithRedelivery(event, body, appId, id, jobId)
        if (twice) {
          yield* simSleep(Duration.millis(again))
          yield* sendWithRedelivery(event, body, appId, id, jobId)
        }
      }))
    })

  const deliverJob = (job: SimJob, action: "queued" | "in_progress" | "completed", runnerId: number | null) =>
    Effect.gen(function*() {
      const owner = owners.get(job.owner.toLowerCase())
      if (owner === undefined) return
      const repo = owner.repos.get(job.repo.toLowerCase()) ?? { fullName: job.repo, id: 0 }
      const payload = workflowJobPayload({
        owner,
        repo,
        jobId: job.id,
        runId: job.runId,
        labels: job.labels,
        action,
        conclusion: action === "completed" ? job.conclusion : null,
        runner: action === "queued" || job.runner === null ? null : { id: runnerId ?? 0, name: job.runner },
        createdAt: new Date(job.queuedAt),
        startedAt: job.startedAt === null ? null : new Date(job.startedAt),
        completedAt: job.completedAt === null ? null : new Date(job.completedAt)
      })
      yield* deliver("workflow_job", payload, appIdFor(owner.type), job.id)
    })

  return { appIdFor, deliver, deliverJob, sent: () => ({ deliveries, deliveryFailures }) }
}
