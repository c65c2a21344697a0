import { Clock, Duration, Effect, Layer, Queue, Schedule, type Scope, Stream } from "effect"
import { recordCycle } from "../observability/collect.ts"
import { Db } from "../services/Db.ts"
import type { Github } from "../services/Github.ts"
import type { Kube } from "../services/Kube.ts"
import { runCycle } from "./cycle.ts"
import { SchedulerSettings } from "./settings.ts"
import { guarded, makeSchedulerState } from "./state.ts"

export type WakeReason = "notification" | "tick"

export interface WakeLoopOptions<E> {
  /** one element per event worth a cycle (a stored job) */
  readonly wakeups: Stream.Stream<unknown, E>
  /** a cycle runs at least this often */
  readonly pollInterval: Duration.DurationInput
  /** after a wake-up, wait this long and take every wake-up that arrived meanwhile: a burst is one cycle */
  readonly debounce: Duration.DurationInput
  readonly cycle: Effect.Effect<void>
}

/**
 * The wake-up loop: a Stream merge of the notifications and a tick (the tick's first element starts a cycle at
 * once), coalesced through a one-slot sliding queue. Whatever arrives while a cycle runs leaves exactly one
 * wake-up behind, so a flood of notifications never queues more than one extra cycle, and a steady flood never
 * starves the loop (unlike a pure debounce). A lost notification stream is re-subscribed; the tick keeps the
 * loop going meanwhile.
 *
 * Each cycle is uninterruptible from outside: closing the scope (SIGTERM) lets the current cycle finish, bounded
 * by the API clients' timeouts, and then stops the loop between cycles, so a rolling restart does not leave work
 * half-done for the next replica. Nothing depends on it for correctness: every step commits on its own and a
 * pod's worker row is committed before the pod exists, so a cycle cut off anywhere (SIGKILL) leaves state the next
 * cycle repairs. A standby still waiting for the scheduler lock stops at once. A lost scheduler lock interrupts
 * the cycle from inside (`Db.withWorkerLock`).
 */
export const wakeLoop = <E>(options: WakeLoopOptions<E>): Effect.Effect<void, never, Scope.Scope> =>
  Effect.gen(function*() {
    const wake = yield* Queue.sliding<WakeReason>(1)
    const notifications = options.wakeups.pipe(
      Stream.as("notification" as const),
      Stream.tapErrorCause((cause) => Effect.logWarning("lost the job notifications; listening again", cause)),
      Stream.retry(Schedule.exponential("1 second").pipe(Schedule.union(Schedule.spaced("30 seconds"))))
    )
    const ticks = Stream.tick(options.pollInterval).pipe(Stream.as("tick" as const))
    yield* Stream.merge(notifications, ticks).pipe(
      Stream.runForEach((reason) => Queue.offer(wake, reason)),
      Effect.forkScoped
    )
    const once = Effect.gen(function*() {
      const first = yield* Queue.take(wake)
      yield* Effect.sleep(options.debounce)
      const more = yield* Queue.takeAll(wake)
      const started = yield* Clock.currentTimeMillis
      yield* Effect.uninterruptible(options.cycle)
      const took = (yield* Clock.currentTimeMillis) - started
      yield* recordCycle(took)
      yield* Effect.logDebug("scheduler cycle done").pipe(
        Effect.annotateLogs({ woken_by: more.length > 0 ? `${first}+${more.length}` : first, took_ms: took })
      )
    })
    yield* Effect.forkScoped(Effect.forever(once))
  })

/**
 * The scheduler program as a feature: requires Db, Github, Kube and SchedulerSettings; runs until its scope
 * closes. `main.ts` merges it with the operator routes.
 */
export const schedulerLoop = Effect.gen(function*() {
  const db = yield* Db
  const settings = yield* SchedulerSettings
  const state = yield* makeSchedulerState
  const context = yield* Effect.context<Db | Github | Kube | SchedulerSettings>()
  yield* wakeLoop({
    wakeups: db.wakeups,
    pollInterval: settings.timeouts.pollInterval,
    debounce: settings.timeouts.wakeDebounce,
    cycle: guarded("scheduler cycle", runCycle(state)).pipe(Effect.provide(context))
  })
  yield* Effect.logInfo("scheduler loop started").pipe(
    Effect.annotateLogs({ pollInterval: Duration.format(settings.timeouts.pollInterval), prefix: settings.runnerPrefix })
  )
})

export const SchedulerLoop = Layer.scopedDiscard(schedulerLoop)
