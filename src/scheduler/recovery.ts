import { Duration, Effect, Layer, Schedule } from "effect"
import type { Db } from "../services/Db.ts"
import type { Github } from "../services/Github.ts"
import { redeliveryPass } from "./redelivery.ts"
import { RecoverySettings } from "./recoverySettings.ts"
import type { SchedulerSettings } from "./settings.ts"
import { guarded } from "./state.ts"
import { sweepPass } from "./unannouncedJobs.ts"

/*
 * The two recovery passes as a background feature beside the scheduler loop: the redelivery of failed deliveries
 * (each app, every `SCHEDULER_REDELIVERY_INTERVAL`) and the sweep for jobs nobody announced (every
 * `SCHEDULER_SWEEP_INTERVAL`). Each runs on its own fiber, outside the scheduler lock (they only store jobs, as
 * the webhook does, and wake the loop through the same NOTIFY), and a failing pass is logged and tried again at
 * its next turn, never a crash. A row lease in the database lets one replica at a time run each pass.
 */

/** This process, as the holder of a pass's lease. */
const holderId = () => `scheduler-${globalThis.crypto.randomUUID()}`

export const recoveryPasses = Effect.gen(function*() {
  const settings = yield* RecoverySettings
  const context = yield* Effect.context<Db | Github | SchedulerSettings | RecoverySettings>()
  const holder = holderId()
  const every = (interval: Duration.Duration, what: string, pass: Effect.Effect<unknown, unknown, Db | Github | SchedulerSettings | RecoverySettings>) =>
    Effect.forkScoped(guarded(what, pass).pipe(Effect.provide(context), Effect.repeat(Schedule.spaced(interval))))
  yield* every(
    settings.redeliveryInterval,
    "redelivery pass",
    Effect.zipRight(
      guarded("redelivery pass (org app)", redeliveryPass("Organization", holder)),
      guarded("redelivery pass (personal app)", redeliveryPass("User", holder))
    )
  )
  yield* every(settings.sweepInterval, "sweep for unannounced jobs", sweepPass(holder))
  yield* Effect.logInfo("recovery passes started").pipe(
    Effect.annotateLogs({
      redeliveryInterval: Duration.format(settings.redeliveryInterval),
      sweepInterval: Duration.format(settings.sweepInterval),
      maxRedeliveriesPerPass: settings.maxRedeliveriesPerPass
    })
  )
})

/** Requires Db, Github, SchedulerSettings and RecoverySettings; runs until its scope closes. */
export const RecoveryPasses = Layer.scopedDiscard(recoveryPasses)
