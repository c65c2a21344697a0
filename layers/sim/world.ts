import { Effect, Layer, PubSub } from "effect"
import type { GithubMemoryControl } from "../github/memory.ts"
import type { KubeMemoryControl } from "../kube/memory.ts"
import { makeDeliveries } from "./deliveries.ts"
import { makeFaultInjection } from "./faultInjection.ts"
import { makeHousekeeping } from "./housekeeping.ts"
import { makeJobSubmission } from "./jobSubmission.ts"
import { makeRunnerLifecycle } from "./runnerLifecycle.ts"
import type { WebhookTransport } from "./webhookTransport.ts"
import { type SimOptions, SimWorld } from "./worldApi.ts"
import { makeWorldCore } from "./worldCore.ts"
import { worldView } from "./worldView.ts"

/*
 * The closed loop. The in-memory GitHub and cluster are passive stores; this world makes them behave:
 * - jobs are created in GitHub, which sends their signed `queued` webhooks to our endpoint;
 * - when a runner pod starts, its runner registers with GitHub through the pod's JIT config, and GitHub hands it
 *   the oldest queued job of its scope and label set (`in_progress` webhook);
 * - the job runs for its duration, GitHub completes it (`completed` webhook), and the ephemeral runner exits, so
 *   the pod ends Succeeded;
 * - a pod that dies under a job fails that job, as GitHub does when it loses a runner; a runner whose
 *   registration is deleted exits; GitHub cancels jobs left queued too long.
 * Faults (`faults.ts`) perturb all of this. Time is Effect's Clock, scaled by `speed` for the world's own delays,
 * and every draw is Effect's Random: under TestClock and a seeded Random a run is exactly repeatable.
 *
 * The parts: `worldApi.ts` (what the world offers), `worldCore.ts` (the state and machinery they share),
 * `deliveries.ts`, `jobSubmission.ts`, `runnerLifecycle.ts`, `faultInjection.ts`, `housekeeping.ts` and
 * `worldView.ts`. This file puts them together, in an order that keeps a seeded run's draws where they were.
 */

const makeWorld = (options: SimOptions) =>
  Effect.gen(function*() {
    const core = yield* makeWorldCore(options)
    const deliveries = makeDeliveries(core)
    const lifecycle = makeRunnerLifecycle(core, deliveries)
    const submitJobs = makeJobSubmission(core, deliveries, lifecycle.dispatch)
    const { loseNode, setFaults } = makeFaultInjection(core, deliveries)
    const housekeep = makeHousekeeping(core, deliveries, lifecycle.dispatch, loseNode)

    yield* core.kube.onPhaseChange(lifecycle.onPhaseChange)
    // GitHub makes a redelivery's attempt when it accepts the request; the world sends it.
    yield* core.github.onRedelivery(deliveries.redeliver)
    // a board NotReady from the start is so before the first pod is placed
    if ((options.boardFaults ?? []).length > 0) yield* housekeep
    const period = core.timings.housekeeping
    if (period !== null) yield* Effect.forkScoped(Effect.forever(Effect.zipRight(core.simSleep(period), housekeep)))

    return SimWorld.of({
      options,
      submitJobs,
      jobs: Effect.sync(() => [...core.jobs.values()].map((j) => ({ ...j }))),
      faults: Effect.sync(() => core.faults),
      setFaults,
      loseNode,
      stats: Effect.sync(() => ({ ...deliveries.sent(), faults: core.counts() })),
      state: worldView(core),
      subscribe: PubSub.subscribe(core.events),
      idle: Effect.sync(() => core.pendingTasks() === 0),
      housekeep
    })
  })

/** The closed-loop world over the in-memory GitHub and cluster, sending its deliveries through `WebhookTransport`. */
export const SimWorldLive = (options: SimOptions): Layer.Layer<SimWorld, never, GithubMemoryControl | KubeMemoryControl | WebhookTransport> =>
  Layer.scoped(SimWorld, makeWorld(options))
