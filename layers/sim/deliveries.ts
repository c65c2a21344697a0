import { Duration, Effect } from "effect"
import type { EntityType } from "../../src/domain/Entity.ts"
import type { RedeliveryRequest } from "../github/memory.ts"
import { type OwnerType, workflowJobPayload } from "./payloads.ts"
import type { DeliveryResult } from "./webhookTransport.ts"
import type { SimJob } from "./worldApi.ts"
import type { WorldCore } from "./worldCore.ts"

/*
 * The world's webhook deliveries: ids as GitHub forms them, the app each one is sent as, the delivery faults
 * (lost on the way, never sent, held back, sent twice, an endpoint outage), and every attempt recorded in the
 * app's delivery log of the in-memory GitHub, with our endpoint's answer. Like GitHub, the world never sends a
 * failed delivery again by itself: it does when someone asks (`POST /app/hook/deliveries/{id}/attempts`, which
 * the scheduler's redelivery pass does). Every delivery is sent in the background, through `WebhookTransport`.
 */

export interface Deliveries {
  /** the app an owner of this type installed (its id is the delivery's installation target) */
  readonly appIdFor: (type: OwnerType) => number
  /** Sends a delivery in the background, through the delivery faults: lost, never sent, held back, or sent twice. */
  readonly deliver: (event: string, payload: unknown, appId: number, jobId: number | null) => Effect.Effect<void>
  /** The job's `workflow_job` delivery for this action, as its owner's app receives it. */
  readonly deliverJob: (job: SimJob, action: "queued" | "in_progress" | "completed", runnerId: number | null) => Effect.Effect<void>
  /** GitHub accepted a redelivery: one more attempt of that event, in the background. */
  readonly redeliver: (request: RedeliveryRequest) => Effect.Effect<void>
  /** Our endpoint answers 503 to every delivery for this long (simulated), from now. */
  readonly startOutage: (duration: Duration.DurationInput) => Effect.Effect<void>
  /** attempts made, and attempts that did not get a 2xx */
  readonly sent: () => { readonly deliveries: number; readonly deliveryFailures: number; readonly redeliveries: number }
}

/** What GitHub keeps of an event, to deliver it again. */
interface Event {
  readonly event: string
  readonly action: string | null
  readonly body: Uint8Array
  readonly appId: number
  readonly app: EntityType
  readonly jobId: number | null
  readonly installationId: number | null
  readonly repositoryId: number | null
}

const idAt = (payload: unknown, key: string): number | null => {
  const value = (payload as Record<string, { id?: unknown } | undefined> | null)?.[key]?.id
  return typeof value === "number" ? value : null
}

export const makeDeliveries = (core: WorldCore): Deliveries => {
  const { options, owners, transport, publish, simSleep, now, chance, upTo, spawn, startedAt, github } = core
  let nextDelivery = 1
  let deliveries = 0
  let deliveryFailures = 0
  let redeliveries = 0
  let outageUntil = Number.NEGATIVE_INFINITY
  const events = new Map<string, Event>()

  const deliveryId = () => {
    const n = nextDelivery++
    const run = Math.floor(startedAt / 1000).toString(16).padStart(8, "0").slice(-8)
    return `${run}-0000-4000-8000-${n.toString(16).padStart(12, "0")}`
  }
  const appIdFor = (type: OwnerType) => (type === "User" ? options.apps.personalAppId : options.apps.orgAppId)
  const encoder = new TextEncoder()

  /** One attempt, recorded in the app's delivery log with our endpoint's answer; `lost` never reaches it. */
  const attempt = (e: Event, guid: string, redelivery: boolean, lost: boolean) =>
    Effect.gen(function*() {
      let result: DeliveryResult
      if (lost) result = { status: 0, body: "lost on the way (simulated)" }
      else if ((yield* now) < outageUntil) {
        core.count("outageRefused")
        result = { status: 503, body: "Service Unavailable (simulated outage)" }
      } else result = yield* transport.send({ event: e.event, deliveryId: guid, appId: e.appId, body: e.body })
      deliveries += 1
      yield* github.recordDelivery({
        app: e.app,
        guid,
        event: e.event,
        action: e.action,
        installationId: e.installationId,
        repositoryId: e.repositoryId,
        statusCode: result.status,
        redelivery
      })
      if (result.status < 200 || result.status >= 300) {
        deliveryFailures += 1
        yield* publish({ _tag: "DeliveryFailed", at: yield* now, event: e.event, jobId: e.jobId, status: result.status, body: result.body })
      }
    })

  const deliver = (event: string, payload: unknown, appId: number, jobId: number | null) =>
    Effect.gen(function*() {
      const body = encoder.encode(JSON.stringify(payload))
      const id = deliveryId()
      const action = (payload as { action?: unknown } | null)?.action
      const e: Event = {
        event,
        action: typeof action === "string" ? action : null,
        body,
        appId,
        app: appId === options.apps.personalAppId ? "User" : "Organization",
        jobId,
        installationId: idAt(payload, "installation"),
        repositoryId: idAt(payload, "repository")
      }
      // Never sent: nothing in the delivery log, so nothing can be redelivered (the scheduler's sweep finds the job).
      if (yield* chance(core.faults.unsentWebhooks)) {
        core.count("unsent")
        return
      }
      events.set(id, e)
      // Lost on the way: the log shows a failed attempt, which a redelivery can repair.
      const lost = yield* chance(core.faults.dropWebhooks)
      if (lost) core.count("dropped")
      const delay = (yield* chance(core.faults.reorderWebhooks)) ? yield* upTo(60_000) : 0
      if (delay > 0) core.count("reordered")
      const twice = yield* chance(core.faults.duplicateWebhooks)
      if (twice) core.count("duplicated")
      const again = twice ? yield* upTo(5_000) : 0
      yield* spawn(Effect.gen(function*() {
        if (delay > 0) yield* simSleep(Duration.millis(delay))
        yield* attempt(e, id, false, lost)
        if (twice) {
          yield* simSleep(Duration.millis(again))
          yield* attempt(e, id, false, false)
        }
      }))
    })

  const redeliver = (request: RedeliveryRequest) =>
    Effect.suspend(() => {
      const e = events.get(request.guid)
      if (e === undefined) return Effect.void
      redeliveries += 1
      // A redelivery crosses the same network: it can be lost on the way too.
      return Effect.flatMap(chance(core.faults.dropWebhooks), (lost) => {
        if (lost) core.count("dropped")
        return Effect.asVoid(spawn(attempt(e, request.guid, true, lost)))
      })
    })

  const startOutage = (duration: Duration.DurationInput) =>
    Effect.gen(function*() {
      const at = yield* now
      outageUntil = Math.max(outageUntil, at + Duration.toMillis(duration) / core.speed)
      core.count("webhookOutages")
      yield* publish({ _tag: "Fault", at, kind: "webhook outage", detail: `our endpoint answers 503 for ${Duration.format(duration)}` })
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

  return { appIdFor, deliver, deliverJob, redeliver, startOutage, sent: () => ({ deliveries, deliveryFailures, redeliveries }) }
}
