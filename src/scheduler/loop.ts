import { Clock, Duration, Effect, Fiber, Layer, Queue, Schedule, type Scope, Stream } from "effect"
import { initialiseSchedulerCounters, recordCycle } from "../observability/collect.ts"
import { Db } from "../services/Db.ts"
import type { Github } from "../services/Github.ts"
import { endedCleanly, Kube, mayFreeSlot } from "../services/Kube.ts"
import { type RetryDemandAt, runCycle, runDemandCycle } from "./cycle.ts"
import { SchedulerSettings } from "./settings.ts"
import { guarded, makeSchedulerState } from "./state.ts"
import { makeSucceededPods } from "./succeededPods.ts"

export type WakeReason = "notification" | "pods" | "ended" | "tick" | "retry"

export interface WakeLoopOptions<E, E2 = never, P = unknown> {
  /** one element per event that needs only demand matching (a stored job) */
  readonly wakeups: Stream.Stream<unknown, E>
  /** one element per event that needs a full cycle (a runner pod that ended or is gone); none when absent */
  readonly podChanges?: Stream.Stream<P, E2> | undefined
  /**
   * Which pod changes are clean ends (a pod that succeeded, or was deleted once finished): those run demand
   * matching at once, which fills the freed board, and a full cycle only `podEndSpacing` after the last full
   * cycle ended. The others (a failed pod, a pod gone while holding its slot, a fresh listing) run a full cycle
   * at once. None are clean ends when absent.
   */
  readonly isCleanEnd?: ((change: P) => boolean) | undefined
  /** see `isCleanEnd`; zero when absent (a clean end's full cycle is not held back) */
  readonly podEndSpacing?: Duration.DurationInput | undefined
  /** a full cycle runs at least this often */
  readonly pollInterval: Duration.DurationInput
  /**
   * An optional pause after a wake-up, taking every wake-up that arrives meanwhile into the same cycle. Zero by
   * default: a burst is coalesced because a cycle is already running, so a lone job is not made to wait.
   */
  readonly debounce: Duration.DurationInput
  /**
   * the full cycle: job sync, the five phases, demand matching. As a function it is handed `takeDemand`, which
   * says whether new demand is pending and marks it served: the cycle calls it between its parts and matches the
   * demand there, so a job that arrives during a full cycle does not wait for all of it. It is also handed
   * `retryDemandAt` (see `demandCycle`).
   */
  readonly cycle:
    | Effect.Effect<void>
    | ((takeDemand: Effect.Effect<boolean>, retryDemandAt: RetryDemandAt) => Effect.Effect<void>)
  /**
   * the fast path for new demand; the full cycle when absent. As a function it is handed `retryDemandAt`: demand
   * matching that left jobs behind for their installation's write spacing asks through it for a demand wake-up
   * at the time they can go, which comes through the same coalescing wake-up as a NOTIFY.
   */
  readonly demandCycle?: Effect.Effect<void> | ((retryDemandAt: RetryDemandAt) => Effect.Effect<void>) | undefined
}

const relisten = Schedule.exponential("1 second").pipe(Schedule.union(Schedule.spaced("30 seconds")))

/** A wake-up stream that never ends the loop: a failure is logged and the stream is run again, backing off. */
const resilient = <A, E>(stream: Stream.Stream<A, E>, what: string, reason: (a: A) => WakeReason) =>
  stream.pipe(
    Stream.map(reason),
    Stream.tapErrorCause((cause) => Effect.logWarning(`lost the ${what}; listening again`, cause)),
    Stream.retry(relisten)
  )

/**
 * The wake-up loop: a Stream merge of the job notifications, the pod changes and a tick (the tick's first element
 * starts a cycle at once). What arrives is folded into one pending request (a full cycle, or demand matching
 * only) and a one-slot signal; whatever arrives while a cycle runs leaves at most one cycle of each kind behind,
 * so a flood of notifications never queues more than one extra cycle, and a steady flood never starves the loop
 * (unlike a pure debounce). New demand goes first, its fast path being short; a full cycle asked for meanwhile
 * (the tick, a pod change) follows in the same round. A clean pod end asks for demand matching now and for a
 * full cycle later (`podEndSpacing` after the last full one ended): at 20 ends a second the full cycles they
 * woke, one after another, held the lock most of the time, and a new job waited behind them. A lost stream is
 * subscribed again; the tick keeps the loop going meanwhile.
 *
 * Each cycle is uninterruptible from outside: closing the scope (SIGTERM) lets the current cycle finish, bounded
 * by the API clients' timeouts, and then stops the loop between cycles, so a rolling restart does not leave work
 * half-done for the next replica. Nothing depends on it for correctness: every step commits on its own and a
 * pod's worker row is committed before the pod exists, so a cycle cut off anywhere (SIGKILL) leaves state the next
 * cycle repairs. A standby still waiting for the scheduler lock stops at once. A lost scheduler lock interrupts
 * the cycle from inside (`Db.withWorkerLock`).
 */
export const wakeLoop = <E, E2 = never, P = unknown>(
  options: WakeLoopOptions<E, E2, P>
): Effect.Effect<void, never, Scope.Scope> =>
  Effect.gen(function*() {
    const scope = yield* Effect.scope
    const signal = yield* Queue.sliding<void>(1)
    // what asked for each kind of cycle since it last ran, for the log line (bounded: a flood is counted, not kept)
    const pending = {
      full: false,
      demand: false,
      // a full cycle asked for by clean pod ends, due `podEndSpacing` after the last full cycle ended
      fullLater: false,
      reasons: { full: [] as Array<WakeReason>, demand: [] as Array<WakeReason> }
    }
    const debounce = Duration.decode(options.debounce)
    const spacing = Duration.toMillis(Duration.decode(options.podEndSpacing ?? 0))
    // New demand the full cycle matches between its parts is served: no fast path is left to run for it.
    const takeDemand = Effect.sync(() => {
      if (!pending.demand) return false
      pending.demand = false
      pending.reasons.demand.length = 0
      return true
    })
    // One demand wake-up asked for by `retryDemandAt` at a time: an earlier time replaces a later one (whose timer
    // is interrupted), a later one is left to the cycle the earlier one runs, which asks again if it must. The
    // timer is forked in the loop's scope, so closing it leaves none behind.
    let retry: { readonly at: number; timer: Fiber.RuntimeFiber<void> | undefined } | undefined
    const retryDemandAt: RetryDemandAt = (at) =>
      Effect.suspend(() => {
        const previous = retry
        if (previous !== undefined && previous.at <= at) return Effect.void
        // the entry is in place before its timer starts, so a timer that fires at once still clears it
        const entry: { readonly at: number; timer: Fiber.RuntimeFiber<void> | undefined } = { at, timer: undefined }
        retry = entry
        return Effect.gen(function*() {
          const wait = at - (yield* Clock.currentTimeMillis)
          entry.timer = yield* Effect.sleep(Duration.millis(Math.max(0, wait))).pipe(
            Effect.zipRight(Effect.suspend(() => {
              if (retry === entry) retry = undefined
              pending.demand = true
              note("demand", "retry")
              return Queue.offer(signal, undefined)
            })),
            Effect.asVoid,
            // asked for from inside a cycle, which is uninterruptible; the timer must not inherit that, or
            // replacing it (and closing the scope) would wait for it to fire
            Effect.interruptible,
            Effect.forkIn(scope)
          )
          if (previous?.timer !== undefined) yield* Fiber.interrupt(previous.timer)
        })
      })
    const fullCycle = Effect.isEffect(options.cycle) ? options.cycle : options.cycle(takeDemand, retryDemandAt)
    const demandCycle = options.demandCycle === undefined
      ? fullCycle
      : Effect.isEffect(options.demandCycle)
      ? options.demandCycle
      : options.demandCycle(retryDemandAt)
    const isCleanEnd = options.isCleanEnd
    let lastFullEnd = Number.NEGATIVE_INFINITY
    let timerArmed = false
    const sources: Array<Stream.Stream<WakeReason, unknown>> = [
      resilient(options.wakeups, "job notifications", () => "notification"),
      Stream.tick(options.pollInterval).pipe(Stream.as("tick" as const))
    ]
    if (options.podChanges !== undefined) {
      sources.push(resilient(options.podChanges, "pod watch", (change) => (isCleanEnd?.(change) === true ? "ended" : "pods")))
    }
    const note = (kind: "full" | "demand", reason: WakeReason) => {
      if (pending.reasons[kind].length < 1000) pending.reasons[kind].push(reason)
    }
    yield* Stream.mergeAll(sources, { concurrency: "unbounded" }).pipe(
      Stream.runForEach((reason) =>
        Effect.suspend(() => {
          if (reason === "notification") {
            pending.demand = true
            note("demand", reason)
          } else if (reason === "ended") {
            pending.demand = true
            pending.fullLater = true
            note("demand", reason)
            note("full", reason)
          } else {
            pending.full = true
            note("full", reason)
          }
          return Queue.offer(signal, undefined)
        })
      ),
      Effect.forkScoped
    )
    const run = (kind: "full" | "demand") =>
      Effect.gen(function*() {
        const reasons = pending.reasons[kind].splice(0)
        const started = yield* Clock.currentTimeMillis
        yield* Effect.uninterruptible(kind === "full" ? fullCycle : demandCycle)
        const ended = yield* Clock.currentTimeMillis
        const took = ended - started
        if (kind === "full") lastFullEnd = ended
        // The cycle histogram describes full cycles; the fast path is its demand-matching part alone.
        if (kind === "full") yield* recordCycle(took)
        yield* Effect.logDebug("scheduler cycle done").pipe(
          Effect.annotateLogs({ cycle: kind, woken_by: describeReasons(reasons), took_ms: took })
        )
      })
    // Wakes the loop when the full cycle of clean pod ends falls due; one timer at a time.
    const armTimer = (inMillis: number) =>
      timerArmed
        ? Effect.void
        : Effect.suspend(() => {
          timerArmed = true
          return Effect.sleep(Duration.millis(inMillis)).pipe(
            Effect.zipRight(Effect.suspend(() => {
              timerArmed = false
              return Queue.offer(signal, undefined)
            })),
            Effect.forkIn(scope),
            Effect.asVoid
          )
        })
    const once = Effect.gen(function*() {
      yield* Queue.take(signal)
      if (Duration.toMillis(debounce) > 0) yield* Effect.sleep(debounce)
      // Taken together, so a wake-up that arrives from here on is left for the next round.
      yield* Queue.takeAll(signal)
      // New demand first: its fast path is short, while a full cycle (job sync, the five phases) would keep the
      // job waiting. What asked for a full cycle meanwhile gets it right after, in the same round.
      const demand = Effect.suspend(() => {
        pending.demand = false
        return run("demand")
      })
      if (pending.demand) yield* demand
      let fullDue = pending.full
      if (!fullDue && pending.fullLater) {
        const wait = lastFullEnd + spacing - (yield* Clock.currentTimeMillis)
        if (wait <= 0) fullDue = true
        else yield* armTimer(wait)
      }
      if (fullDue) {
        // Demand that arrived during the fast path must not wait behind the full cycle either; the full cycle
        // still waits for two short ones at most, so a steady flood of jobs cannot starve it.
        if (pending.demand) yield* demand
        pending.full = false
        pending.fullLater = false
        yield* run("full")
      }
    })
    yield* Effect.forkScoped(Effect.forever(once))
  })

const describeReasons = (reasons: ReadonlyArray<WakeReason>): string => {
  const counts = new Map<WakeReason, number>()
  for (const r of reasons) counts.set(r, (counts.get(r) ?? 0) + 1)
  return [...counts].map(([r, n]) => (n === 1 ? r : `${r}×${n}`)).join("+")
}

/**
 * The scheduler program as a feature: requires Db, Github, Kube and SchedulerSettings; runs until its scope
 * closes. `main.ts` merges it with the operator routes.
 */
export const schedulerLoop = Effect.gen(function*() {
  const db = yield* Db
  const kube = yield* Kube
  const settings = yield* SchedulerSettings
  const state = yield* makeSchedulerState
  const succeeded = makeSucceededPods()
  const context = yield* Effect.context<Db | Github | Kube | SchedulerSettings>()
  yield* initialiseSchedulerCounters
  yield* wakeLoop({
    wakeups: db.wakeups,
    // A pod that ended or is gone may have freed a board: a full cycle records the end and fills the board.
    // A succeeded pod is kept for the fast path it wakes, which records its worker's end before matching.
    podChanges: kube.watchRunnerPods.pipe(Stream.filter(mayFreeSlot), Stream.tap((change) => Effect.sync(() => succeeded.note(change)))),
    // a pod that succeeded, or was deleted once finished, needs its board filled now and its end recorded soon
    isCleanEnd: endedCleanly,
    podEndSpacing: settings.timeouts.podEndSpacing,
    pollInterval: settings.timeouts.pollInterval,
    debounce: settings.timeouts.wakeDebounce,
    cycle: (takeDemand, retryDemandAt) => guarded("scheduler cycle", runCycle(state, takeDemand, retryDemandAt)).pipe(Effect.provide(context)),
    demandCycle: (retryDemandAt) =>
      guarded("demand matching cycle", runDemandCycle(retryDemandAt, succeeded.take)).pipe(Effect.provide(context))
  })
  yield* Effect.logInfo("scheduler loop started").pipe(
    Effect.annotateLogs({ pollInterval: Duration.format(settings.timeouts.pollInterval), prefix: settings.runnerPrefix })
  )
})

export const SchedulerLoop = Layer.scopedDiscard(schedulerLoop)
