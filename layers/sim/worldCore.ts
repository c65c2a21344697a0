import { Clock, Duration, Effect, FiberSet, PubSub, Queue, Random, type Scope } from "effect"
import { GithubMemoryControl } from "../github/memory.ts"
import { KubeMemoryControl, type MemoryPod } from "../kube/memory.ts"
import type { SimEvent } from "./events.ts"
import { type FaultCounts, type FaultSettings, noFaults, zeroFaultCounts } from "./faults.ts"
import type { SimOwner, SimRepo } from "./payloads.ts"
import { WebhookTransport } from "./webhookTransport.ts"
import type { SimJob, SimOptions } from "./worldApi.ts"

/*
 * What every part of the world shares: the in-memory GitHub and cluster it drives, its plain-data state (every
 * change happens under `locked`), its event stream, its clock and random draws, and the background worker that
 * runs what it starts. The parts (`deliveries.ts`, `jobSubmission.ts`, `runnerLifecycle.ts`, `faultInjection.ts`,
 * `housekeeping.ts`, `worldView.ts`) each take this core; `world.ts` assembles them.
 */

export type RunnerPhase = "pending" | "booting" | "silent" | "idle" | "busy" | "stuck" | "exiting" | "gone"

/** The runner process inside one pod. */
export interface RunnerProcess {
  readonly pod: string
  readonly owner: string
  readonly entityId: number
  readonly pool: string
  readonly jitConfig: MemoryPod["request"]["jitConfig"]
  phase: RunnerPhase
  runnerId: number | null
  jobId: number | null
  node: string | null
  readonly createdAt: number
  runningAt: number | null
  endedAt: number | null
}

/** An owner as the world knows it, with the repositories its jobs used so far (by lower-cased full name). */
export type WorldOwner = SimOwner & { readonly repos: Map<string, SimRepo> }

export interface WorldTimings {
  readonly bootDelay: Duration.Duration
  readonly queuedJobTimeoutMs: number
  readonly nodeDowntime: Duration.Duration
  readonly stuckBusyForMs: number
  readonly stuckPendingForMs: number | undefined
  /** null: whoever calls `housekeep` does it */
  readonly housekeeping: Duration.Duration | null
}

export interface WorldCore {
  readonly options: SimOptions
  readonly github: GithubMemoryControl["Type"]
  readonly kube: KubeMemoryControl["Type"]
  readonly transport: WebhookTransport["Type"]
  /** simulated seconds per real second (always > 0) */
  readonly speed: number
  readonly timings: WorldTimings
  /** Clock millis when the world was made */
  readonly startedAt: number

  // --- state (plain data; every change happens under `locked`) -----------------------------------------------
  /** by lower-cased login */
  readonly owners: Map<string, WorldOwner>
  readonly jobs: Map<number, SimJob>
  /** by pod name */
  readonly runners: Map<string, RunnerProcess>
  /** nodes taken away by a fault, until they come back */
  readonly downNodes: Set<string>
  /** boards whose runners never register (`SimOptions.boardFaults`) */
  readonly silentBoards: ReadonlySet<string>
  /** every faulty board: node losses spare them, so that a loss never undoes or hides a board's own fault */
  readonly faultyBoards: ReadonlySet<string>
  faults: FaultSettings
  readonly counts: () => FaultCounts
  /** One more fault of this kind happened. */
  readonly count: (kind: keyof FaultCounts) => void

  readonly locked: <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
  readonly events: PubSub.PubSub<SimEvent>
  readonly publish: (event: SimEvent) => Effect.Effect<boolean>
  /** Runs the task on the world's own fibers, never the caller's (see `makeWorldCore`). */
  readonly spawn: (task: Effect.Effect<void>) => Effect.Effect<boolean>
  /** how many spawned tasks have not ended yet */
  readonly pendingTasks: () => number

  /** The world's own delays pass `speed` times faster than real time. */
  readonly simSleep: (d: Duration.DurationInput) => Effect.Effect<void>
  readonly now: Effect.Effect<number>
  /** True with the given probability. */
  readonly chance: (share: number) => Effect.Effect<boolean>
  /** A uniform draw in [0, maxMs). */
  readonly upTo: (maxMs: number) => Effect.Effect<number>
}

const DEFAULTS = {
  bootDelay: Duration.seconds(5),
  queuedJobTimeout: Duration.hours(24),
  nodeDowntime: Duration.minutes(10),
  stuckBusyFor: Duration.minutes(30),
  housekeeping: Duration.seconds(30)
}

export const makeWorldCore = (
  options: SimOptions
): Effect.Effect<WorldCore, never, GithubMemoryControl | KubeMemoryControl | WebhookTransport | Scope.Scope> =>
  Effect.gen(function*() {
    const github = yield* GithubMemoryControl
    const kube = yield* KubeMemoryControl
    const transport = yield* WebhookTransport
    const speed = options.speed > 0 ? options.speed : 1
    const timings: WorldTimings = {
      bootDelay: Duration.decode(options.bootDelay ?? DEFAULTS.bootDelay),
      queuedJobTimeoutMs: Duration.toMillis(options.queuedJobTimeout ?? DEFAULTS.queuedJobTimeout),
      nodeDowntime: Duration.decode(options.nodeDowntime ?? DEFAULTS.nodeDowntime),
      stuckBusyForMs: Duration.toMillis(options.stuckBusyFor ?? DEFAULTS.stuckBusyFor),
      stuckPendingForMs: options.stuckPendingFor === undefined ? undefined : Duration.toMillis(options.stuckPendingFor),
      housekeeping: options.housekeeping === null ? null : Duration.decode(options.housekeeping ?? DEFAULTS.housekeeping)
    }
    const startedAt = yield* Clock.currentTimeMillis
    let counts: FaultCounts = zeroFaultCounts

    const lock = yield* Effect.makeSemaphore(1)
    const events = yield* PubSub.unbounded<SimEvent>()

    // Background work runs on fibers forked by one long-lived worker fiber, never by the caller: a pod-phase
    // handler runs inside the scheduler's cycle (and its transaction), and what the world does next must not
    // inherit that context.
    const tasks = yield* Queue.unbounded<Effect.Effect<void>>()
    const running = yield* FiberSet.make<void>()
    let pendingTasks = 0
    const spawn = (task: Effect.Effect<void>) =>
      Effect.suspend(() => {
        pendingTasks += 1
        return Queue.offer(tasks, task.pipe(Effect.ensuring(Effect.sync(() => void (pendingTasks -= 1)))))
      })
    yield* Effect.forkScoped(Effect.forever(Effect.flatMap(Queue.take(tasks), (task) => FiberSet.run(running, task))))

    const core: WorldCore = {
      options,
      github,
      kube,
      transport,
      speed,
      timings,
      startedAt,
      owners: new Map(),
      jobs: new Map(),
      runners: new Map(),
      downNodes: new Set(),
      silentBoards: new Set((options.boardFaults ?? []).filter((f) => f.kind === "noRegister").map((f) => f.node)),
      faultyBoards: new Set((options.boardFaults ?? []).map((f) => f.node)),
      faults: noFaults,
      counts: () => counts,
      count: (kind) => void (counts = { ...counts, [kind]: counts[kind] + 1 }),
      locked: (effect) => lock.withPermits(1)(effect),
      events,
      publish: (event) => PubSub.publish(events, event),
      spawn,
      pendingTasks: () => pendingTasks,
      simSleep: (d) => Effect.sleep(Duration.millis(Math.max(0, Duration.toMillis(d) / speed))),
      now: Clock.currentTimeMillis,
      chance: (share) => (share <= 0 ? Effect.succeed(false) : Effect.map(Random.next, (x) => x < share)),
      upTo: (maxMs) => Effect.map(Random.next, (x) => Math.floor(x * maxMs))
    }
    return core
  })
