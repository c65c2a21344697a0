import { FetchHttpClient } from "@effect/platform"
import {
  Cause,
  Clock,
  Context,
  Duration,
  Effect,
  ExecutionStrategy,
  Exit,
  Layer,
  Logger,
  LogLevel,
  Option,
  Queue,
  Random,
  Redacted,
  Scope,
  TestClock,
  TestContext
} from "effect"
import { createHash } from "node:crypto"
import { DbMemory } from "../../layers/db/memory.ts"
import { GithubMemoryControl, type GithubMemoryControlShape, GithubMemoryWith } from "../../layers/github/memory.ts"
import { poolCapacities } from "../../layers/kube/capacity.ts"
import { KubeMemory, KubeMemoryControl, type KubeMemoryControlShape, type MemoryNode } from "../../layers/kube/memory.ts"
import { type MemoryClusterMember, makeMemoryClusters } from "../../layers/kube/memoryClusters.ts"
import { simClusterSpecs, type SimClusterSpec } from "../../layers/sim/cluster.ts"
import { toBoardNode } from "../../layers/kube/memoryState.ts"
import type { SimEvent } from "../../layers/sim/events.ts"
import { InProcessWebhookTransport } from "../../layers/sim/webhookTransport.ts"
import { SimWorldLive } from "../../layers/sim/world.ts"
import { type SimOptions, SimWorld, type SimWorldShape } from "../../layers/sim/worldApi.ts"
import { runnerRepoOf } from "../../src/domain/Job.ts"
import { encodeLabelSet } from "../../src/domain/Labels.ts"
import { finishedAt } from "../../src/domain/Pod.ts"
import { maxWorkersFor, resolvePool, type RunnerConfig } from "../../src/domain/RunnerConfig.ts"
import { canTransition, isActive, isTerminal, type Status } from "../../src/domain/Status.ts"
import { SchedulerLoop } from "../../src/scheduler/loop.ts"
import { quarantinedNodes, trustedCapacity } from "../../src/scheduler/quarantine.ts"
import { RecoveryPasses } from "../../src/scheduler/recovery.ts"
import { RecoverySettingsLive, type RecoverySettingsShape } from "../../src/scheduler/recoverySettings.ts"
import { SchedulerSettings, SchedulerSettingsLive, type SchedulerTimeouts, STAGING_PREFIX } from "../../src/scheduler/settings.ts"
import { Db, type DbShape } from "../../src/services/Db.ts"
import { Github, type GithubCallCounts } from "../../src/services/Github.ts"
import { Kube, type KubeShape, type RunnerPodRequest } from "../../src/services/Kube.ts"
import { webhookRouter } from "../../src/webhook/routes.ts"
import { webhookSettingsLayer } from "../../src/webhook/WebhookSettings.ts"
import { fastZeroTimers } from "./simTimers.ts"

/*
 * The deterministic simulation's world: the real webhook program (its router, in-process) and the real scheduler
 * loop, on the in-memory Db, GitHub and cluster, closed by the simulation world (`layers/sim/world.ts`). Time is
 * TestClock's and every draw comes from the seeded Random the caller provides, so one seed is one exact run.
 *
 * The harness watches the run: a capturing logger, an observed Db (every write kept for the secret scan, and
 * supply checked against demand at every provisioning), pod names, and status moves. `step` advances the clock by
 * one step and checks the invariants; `finalChecks` checks the state at quiescence.
 */

export const DST_WEBHOOK_SECRET = "whsec-dst-3b9f0c2e7a"
export const DST_TRACE_SECRET = "trace-dst-91d4a6"
/** A fixed start (Mon 2026-01-05 09:00 UTC) so that dates in rows and payloads look like dates. */
export const DST_EPOCH = Date.UTC(2026, 0, 5, 9, 0, 0)

export interface HarnessSpec {
  readonly nodes: ReadonlyArray<MemoryNode>
  readonly runnerConfig: RunnerConfig
  readonly timeouts?: Partial<SchedulerTimeouts>
  /** the recovery passes' settings (redelivery, sweep); their defaults when absent */
  readonly recovery?: Partial<RecoverySettingsShape>
  readonly world?: Partial<Omit<SimOptions, "runnerConfig" | "apps" | "speed">>
  /** how far the clock moves per step; the invariants are checked after each */
  readonly step?: Duration.DurationInput
  /** capture debug lines too (the secret scan then covers them) */
  readonly debugLogs?: boolean
  /**
   * simulated clusters besides the default one, each holding the nodes of its pools (as SIM_NODES' `cluster/`
   * prefixes): the scheduler then sees them through `combineClusters`, as `--simulate` builds them. Absent or
   * empty: one cluster.
   */
  readonly clusters?: ReadonlyArray<SimClusterSpec>
  /** at quiescence, every job one of our pools serves must have succeeded, not merely ended (worlds whose only faults are the boards') */
  readonly everyJobServed?: boolean
}

export interface Harness {
  readonly world: SimWorldShape
  readonly github: GithubMemoryControlShape
  readonly kube: KubeMemoryControlShape
  /** with `HarnessSpec.clusters`: each simulated cluster on its own (the default one first); else empty */
  readonly clusters: ReadonlyArray<MemoryClusterMember>
  /** with `HarnessSpec.clusters`: the runner pods created in each cluster so far */
  readonly podsCreatedByCluster: Readonly<Record<string, number>>
  /** the store, unobserved (reads for assertions) */
  readonly db: DbShape
  /** the store as the programs see it: writes are kept and checked (for tests of the harness itself) */
  readonly store: DbShape
  readonly timeouts: SchedulerTimeouts
  /** every world event so far, in order */
  readonly events: ReadonlyArray<SimEvent>
  readonly violations: ReadonlyArray<string>
  readonly logs: ReadonlyArray<string>
  readonly restarts: { readonly clean: number; readonly crashes: number }
  /** the board checks made at every pod creation (see `boardCheck`) */
  readonly boardChecks: BoardChecks
  /** scheduler cycles run so far, and the wall-clock milliseconds they took */
  readonly cycles: { readonly count: number; readonly wallMs: number }
  /** Moves the clock one step, runs a kubelet pass and the world's housekeeping, restarts a crashed scheduler, checks. */
  readonly step: Effect.Effect<void>
  /** Checks the step invariants now (caps, forward-only status), without moving the clock. */
  readonly check: Effect.Effect<void>
  /** Stops the scheduler process and starts a fresh one (its memory is lost; the database stays). */
  readonly restartScheduler: Effect.Effect<void>
  /**
   * The scheduler crashes right after its `calls`-th cluster call from now (of `operation` only, when given): its
   * committed steps stay.
   */
  readonly armCrash: (calls: number, operation?: CrashOperation) => Effect.Effect<void>
  /** Is everything settled: no active jobs, workers or pods, every GitHub job done, no runner left, world idle? */
  readonly settled: Effect.Effect<boolean>
  readonly finalChecks: Effect.Effect<void>
  /** A digest of everything that happened; equal for equal seeds. */
  readonly fingerprint: Effect.Effect<string>
}

const allRows = { page: 0, perPage: 1_000_000 }

/** What the board invariant saw: pods created, and how many of them while a board of their pool was out. */
export interface BoardChecks {
  podsCreated: number
  /** created while a board of the pool was quarantined (the pod had to avoid it) */
  whileQuarantined: number
  /** created while a board of the pool was not usable (NotReady, cordoned, tainted) */
  whileUnusable: number
}

/** The cluster calls a crash can be armed on. */
export type CrashOperation = "capacity" | "createRunnerPod" | "listRunnerPods" | "killPod" | "deletePod"
/** how soon the simulated kubelet places and starts a new pod */
const KUBELET_REACTION = Duration.seconds(2)

/** Runner suffixes from the seeded Random, so runner names repeat with the seed. */
const seededSuffix = Effect.gen(function*() {
  const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
  let out = ""
  for (let i = 0; i < 9; i++) out += alphabet[yield* Random.nextIntBetween(0, 36)]
  return out
})

/** Every string a secret scan must not find: our secrets, every token and JIT config GitHub issued, and the runner secret inside each JIT config. */
const secretsOf = (issued: ReadonlyArray<string>): ReadonlyArray<string> => {
  const out = new Set<string>([DST_WEBHOOK_SECRET, DST_TRACE_SECRET])
  for (const s of issued) {
    out.add(s)
    try {
      const inner = JSON.parse(atob(s)) as { secret?: unknown }
      if (typeof inner.secret === "string") out.add(inner.secret)
    } catch {
      // a token, not a JIT config
    }
  }
  return [...out]
}

/** Builds the world in the current scope. `logs` is the array the caller's `capturingLogger` fills. */
export const makeHarness = (spec: HarnessSpec, logs: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const scope = yield* Effect.scope
    const violations: Array<string> = []
    const violation = (text: string) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) =>
        Effect.sync(() => {
          if (violations.length < 50) violations.push(`[t+${Math.round((now - DST_EPOCH) / 1000)} s] ${text}`)
        }))
    const written: Array<string> = []

    // --- services ------------------------------------------------------------------------------------------
    const dbContext = yield* Layer.build(DbMemory)
    const inner = Context.get(dbContext, Db)
    const githubContext = yield* Layer.build(GithubMemoryWith({ orgAppId: spec.runnerConfig.apps.orgAppId, personalAppId: spec.runnerConfig.apps.personalAppId }))
    const clusterSpecs = spec.clusters ?? []
    const clusters = clusterSpecs.length === 0
      ? undefined
      : yield* makeMemoryClusters(simClusterSpecs({ nodes: spec.nodes, boardFaults: [], clusters: clusterSpecs }, { tick: null }))
    const members = clusters?.members ?? []
    const kubeContext = clusters === undefined
      ? yield* Layer.build(KubeMemory({ tick: null, nodes: spec.nodes }))
      : Context.make(Kube, clusters.kube).pipe(Context.add(KubeMemoryControl, clusters.control))
    const github = Context.get(githubContext, GithubMemoryControl)
    const kube = Context.get(kubeContext, KubeMemoryControl)
    const settingsContext = yield* Layer.build(SchedulerSettingsLive({
      runnerConfig: spec.runnerConfig,
      prod: false,
      timeouts: spec.timeouts,
      runnerSuffix: seededSuffix
    }))
    const timeouts = Context.get(settingsContext, SchedulerSettings).timeouts

    // --- the observed Db: writes kept for the secret scan; supply checked at every provisioning --------------
    let cycleStartedAt = 0
    const cycles = { count: 0, wallMs: 0 }
    let completedCycles = 0
    // Per cluster, the completed cycles whose worker sync could list that cluster's pods: a cluster whose API
    // failed has its workers left alone by design, so only these cycles owe its rows a repair.
    const syncedCycles = new Map<string, number>()
    const listedThisCycle = new Set<string>()
    const keep = (what: string, value: unknown) => Effect.sync(() => void written.push(`${what} ${JSON.stringify(value)}`))
    const supplyCheck = (worker: Parameters<DbShape["addWorker"]>[0]) =>
      Effect.gen(function*() {
        // the matching group: (entity, label set), and the repository for a personal account's repo-scoped runners
        const group = encodeLabelSet(worker.job_labels) + (worker.repo_full_name === null ? "" : ` on ${worker.repo_full_name}`)
        const sameGroup = (entityId: number, labels: ReadonlyArray<string>, repo: string | null) =>
          entityId === worker.entity_id && encodeLabelSet(labels) === encodeLabelSet(worker.job_labels) && repo === worker.repo_full_name
        const supply = (yield* inner.getActiveWorkers).filter((w) => sameGroup(w.entity_id, w.job_labels, w.repo_full_name)).length + 1
        const jobs = (yield* inner.listJobs(allRows)).rows.filter((j) => sameGroup(j.entity_id, j.job_labels, runnerRepoOf(j)))
        const demand = jobs.filter((j) => isActive(j.status)).length
        // in flight: jobs of the group that ended since this cycle began, which the scheduler may have counted
        const inFlight = jobs.filter((j) => isTerminal(j.status) && j.updated_at.getTime() >= cycleStartedAt).length
        if (supply > demand + inFlight) {
          yield* violation(`supply exceeds demand: entity ${worker.entity_id} ${group} gets worker ${supply} for ${demand} active jobs (+${inFlight} just ended)`)
        }
      }).pipe(Effect.catchAll(() => Effect.void))
    const db: DbShape = {
      ...inner,
      addJob: (job) => Effect.zipRight(keep("addJob", job), inner.addJob(job)),
      markJobRunning: (id, runner) => Effect.zipRight(keep("markJobRunning", [id, runner]), inner.markJobRunning(id, runner)),
      markJobCompleted: (id, runner) => Effect.zipRight(keep("markJobCompleted", [id, runner]), inner.markJobCompleted(id, runner)),
      markJobFailed: (id, info) => Effect.zipRight(keep("markJobFailed", [id, info]), inner.markJobFailed(id, info)),
      addWorker: (worker) => Effect.zipRight(Effect.zipRight(keep("addWorker", worker), supplyCheck(worker)), inner.addWorker(worker)),
      markWorkerRunning: (pod, node, at) => Effect.zipRight(keep("markWorkerRunning", [pod, node]), inner.markWorkerRunning(pod, node, at)),
      markWorkerCompleted: (pod, node, at, runningAt) => Effect.zipRight(keep("markWorkerCompleted", [pod, node]), inner.markWorkerCompleted(pod, node, at, runningAt)),
      markWorkerFailed: (pod, node, info, at) => Effect.zipRight(keep("markWorkerFailed", [pod, node, info]), inner.markWorkerFailed(pod, node, info, at)),
      addInstallationEvent: (event) => Effect.zipRight(keep("addInstallationEvent", event), inner.addInstallationEvent(event)),
      withWorkerLock: (cycle) =>
        Effect.suspend(() => {
          // wall-clock cost of the scheduler's cycles, for the reports (it does not feed back into the run)
          const wall = performance.now()
          return inner.withWorkerLock(Effect.zipRight(Effect.flatMap(Clock.currentTimeMillis, (t) => Effect.sync(() => void (cycleStartedAt = t))), cycle)).pipe(
            Effect.onExit((exit) =>
              Effect.sync(() => {
                cycles.count += 1
                cycles.wallMs += performance.now() - wall
                // a crashed cycle (interrupted) did not get to repair anything
                if (!Exit.isInterrupted(exit)) {
                  completedCycles += 1
                  for (const c of listedThisCycle) syncedCycles.set(c, (syncedCycles.get(c) ?? 0) + 1)
                }
                listedThisCycle.clear()
              })
            )
          )
        })
    }

    // --- a cluster client that can crash the scheduler mid-cycle -----------------------------------------------
    const kubeClient = Context.get(kubeContext, Kube)

    // --- boards: no runner pod is created for a quarantined or unusable board --------------------------------------
    // Checked at the moment of every create, against the cluster and the standings as they are then: the pod must
    // avoid every board of its pool the database holds quarantined, and the pool must have a slot for it on a
    // board that is usable and trusted (quarantined boards out, a board on trial one slot), after the pods already
    // placed there and those still waiting for a node. A pod the scheduler sends where no such slot is would land
    // on a board that cannot run it, or wait.
    const boardChecks: BoardChecks = { podsCreated: 0, whileQuarantined: 0, whileUnusable: 0 }
    const boardCheck = (request: RunnerPodRequest) =>
      Effect.gen(function*() {
        boardChecks.podsCreated += 1
        const states = yield* inner.getBoardStates
        const quarantined = quarantinedNodes(states, request.pool)
        const avoided = new Set(request.avoidNodes ?? [])
        if (quarantined.length > 0) boardChecks.whileQuarantined += 1
        const missed = quarantined.filter((n) => !avoided.has(n))
        if (missed.length > 0) yield* violation(`pod ${request.name} was created without avoiding quarantined board(s) ${missed.join(", ")}`)
        const nodes = (yield* kube.nodes).flatMap((n) => toBoardNode(n) ?? [])
        const unusable = nodes.filter((n) => n.pool === request.pool && n.unusable !== null)
        if (unusable.length > 0) boardChecks.whileUnusable += 1
        const pods = (yield* kube.pods).map((p) => ({ pool: p.request.pool, phase: p.phase, nodeName: p.nodeName }))
        const pool = trustedCapacity(poolCapacities(nodes, pods), states).get(request.pool)
        if (pool === undefined || pool.available < 1) {
          const out = pool?.boards.filter((b) => b.unusable !== null).map((b) => `${b.name} ${b.unusable}`) ?? []
          yield* violation(
            `pod ${request.name} was created for pool ${request.pool} with no usable, trusted slot free (${pool?.available ?? 0} available${out.length > 0 ? `; out: ${out.join(", ")}` : ""})`
          )
        }
      }).pipe(Effect.catchAll((e) => violation(`board check failed to read the store: ${String(e)}`)))
    let crashAfter: number | undefined
    let crashOn: CrashOperation | undefined
    let crashed = false
    const crashPoint = <A, E>(operation: CrashOperation, call: Effect.Effect<A, E>): Effect.Effect<A, E> =>
      Effect.flatMap(call, (a) => {
        if (crashAfter === undefined || (crashOn !== undefined && crashOn !== operation)) return Effect.succeed(a)
        crashAfter -= 1
        if (crashAfter > 0) return Effect.succeed(a)
        crashAfter = undefined
        crashed = true
        // the process dies here: the steps it committed stay, as does what the cluster already did; only a step
        // in flight is undone
        return Effect.interrupt
      })
    const crashingKube: KubeShape = {
      ...kubeClient,
      capacity: crashPoint("capacity", kubeClient.capacity),
      createRunnerPod: (request) => Effect.zipRight(boardCheck(request), crashPoint("createRunnerPod", kubeClient.createRunnerPod(request))),
      listRunnerPods: crashPoint("listRunnerPods", kubeClient.listRunnerPods),
      // the worker sync lists runner pods per cluster, so this is where a crash "after listing the pods" lands
      runnerPodsByCluster: crashPoint(
        "listRunnerPods",
        Effect.tap(kubeClient.runnerPodsByCluster, (readings) =>
          Effect.sync(() => {
            for (const r of readings) if (r.result._tag === "Right") listedThisCycle.add(r.cluster)
          }))
      ),
      killPod: (name) => crashPoint("killPod", kubeClient.killPod(name)),
      deletePod: (name, options) => crashPoint("deletePod", kubeClient.deletePod(name, options))
    }

    const services = Context.make(Db, db).pipe(
      Context.add(Github, Context.get(githubContext, Github)),
      Context.add(Kube, crashingKube),
      Context.merge(settingsContext)
    )

    // --- the webhook program, in-process, and the world ---------------------------------------------------------
    const webhookServices = yield* Layer.build(Layer.mergeAll(
      webhookSettingsLayer({
        webhookSecret: Redacted.make(DST_WEBHOOK_SECRET),
        traceSecret: Option.some(Redacted.make(DST_TRACE_SECRET)),
        runnerConfig: spec.runnerConfig
      }),
      FetchHttpClient.layer
    ))
    const transportContext = yield* Layer.build(
      InProcessWebhookTransport({ app: webhookRouter, secret: Redacted.make(DST_WEBHOOK_SECRET) }).pipe(
        Layer.provide(Layer.succeedContext(Context.merge(webhookServices, Context.make(Db, db).pipe(Context.add(Github, Context.get(githubContext, Github))))))
      )
    )
    const worldContext = yield* Layer.build(
      SimWorldLive({
        speed: 1,
        runnerConfig: spec.runnerConfig,
        apps: spec.runnerConfig.apps,
        housekeeping: null,
        ...spec.world
      }).pipe(Layer.provide(Layer.succeedContext(Context.merge(Context.merge(githubContext, kubeContext), transportContext))))
    )
    const world = Context.get(worldContext, SimWorld)
    const events: Array<SimEvent> = []
    const feed = yield* world.subscribe
    const drain = Effect.flatMap(Queue.takeAll(feed), (chunk) => Effect.sync(() => void events.push(...chunk)))

    // --- the kubelet: a pass every step, and one shortly after pods are created, as a real one reacts ----------
    const created = yield* Queue.unbounded<string>()
    yield* Effect.forkScoped(Effect.forever(Effect.gen(function*() {
      yield* Queue.take(created)
      yield* Effect.sleep(KUBELET_REACTION)
      yield* Queue.takeAll(created)
      yield* kube.reconcile
    })))

    // --- boards again, where a pod starts: never on a board its request avoided (quarantined when it was
    // created), never on a board that is not usable then, and always on a board of its pool's cluster ---------
    const startCheck = (podName: string, nodeName: string | null) =>
      Effect.gen(function*() {
        const pod = (yield* kube.pods).find((p) => p.name === podName)
        if (pod === undefined || nodeName === null) return
        if ((pod.request.avoidNodes ?? []).includes(nodeName)) yield* violation(`pod ${podName} started on ${nodeName}, a board its request avoided`)
        const node = (yield* kube.nodes).find((n) => n.name === nodeName)
        const board = node === undefined ? null : toBoardNode(node)
        if (board?.unusable != null) yield* violation(`pod ${podName} started on ${nodeName}, which is not usable (${board.unusable})`)
        if (clusters !== undefined) {
          const home = members.find((m) => m.name === clusters.kube.clusterOf(pod.request.pool))
          if (home === undefined || !(yield* home.control.nodes).some((n) => n.name === nodeName)) {
            yield* violation(`pod ${podName} of pool ${pod.request.pool} started on ${nodeName}, outside the pool's cluster ${home?.name}`)
          }
        }
      })

    const podsCreatedByCluster: Record<string, number> = Object.fromEntries(members.map((m) => [m.name, 0]))
    for (const m of members) {
      yield* m.control.onPhaseChange((change) => Effect.sync(() => void (change.from === null && (podsCreatedByCluster[m.name]! += 1))))
    }

    // --- pod names: never two pods with one name, not even one after another ----------------------------------
    const podNamesSeen = new Set<string>()
    yield* kube.onPhaseChange((change) => {
      if (change.from === "Pending" && change.to === "Running") return startCheck(change.name, change.pod.nodeName)
      if (change.from !== null) return Effect.void
      if (podNamesSeen.has(change.name)) return violation(`pod name ${change.name} used twice`)
      podNamesSeen.add(change.name)
      return Queue.offer(created, change.name)
    })

    // --- the scheduler process ----------------------------------------------------------------------------------
    const startScheduler = Effect.flatMap(Scope.fork(scope, ExecutionStrategy.sequential), (s) =>
      Effect.as(
        Layer.buildWithScope(
          Layer.mergeAll(SchedulerLoop, RecoveryPasses).pipe(
            Layer.provide(Layer.merge(Layer.succeedContext(services), RecoverySettingsLive(spec.recovery)))
          ),
          s
        ),
        s
      ))
    let schedulerScope = yield* startScheduler
    const restarts = { clean: 0, crashes: 0 }
    const restartScheduler = Effect.gen(function*() {
      yield* Scope.close(schedulerScope, Exit.void)
      schedulerScope = yield* startScheduler
    })

    const isOurs = (name: string) => name.startsWith(STAGING_PREFIX)

    // --- invariants after every step -----------------------------------------------------------------------------
    const lastStatus = new Map<string, Status>()
    const reportedRowless = new Set<string>()
    const misplaced = new Set<string>()
    const contradictionSince = new Map<string, number>()
    const reportedContradictions = new Set<string>()
    const forward = (key: string, status: Status) =>
      Effect.suspend(() => {
        const before = lastStatus.get(key)
        lastStatus.set(key, status)
        return before === undefined || before === status || canTransition(before, status)
          ? Effect.void
          : violation(`${key} moved backwards: ${before} -> ${status}`)
      })

    const checkInvariants = Effect.gen(function*() {
      const workers = (yield* inner.listWorkers(allRows)).rows
      const jobs = (yield* inner.listJobs(allRows)).rows
      const active = new Map<number, number>()
      for (const w of workers) if (isActive(w.status)) active.set(w.entity_id, (active.get(w.entity_id) ?? 0) + 1)
      for (const [entity, count] of active) {
        const cap = maxWorkersFor(spec.runnerConfig, entity)
        if (cap !== null && count > cap) yield* violation(`entity ${entity} has ${count} active workers, over its cap of ${cap}`)
      }
      for (const w of workers) yield* forward(`worker ${w.pod_name}`, w.status)
      for (const j of jobs) yield* forward(`job ${j.job_id}`, j.status)

      // A worker row is committed before its pod is created: no pod of ours is ever without a row, crash or not.
      const rows = new Map(workers.map((w) => [w.pod_name, w]))
      const pods = yield* kube.pods
      for (const p of pods) {
        if (isOurs(p.name) && !rows.has(p.name) && !reportedRowless.has(p.name)) {
          reportedRowless.add(p.name)
          yield* violation(`pod ${p.name} (${p.phase}) exists without a worker row`)
        }
      }
      // A row's status never contradicts its pod after one full cycle: an active row whose pod is gone or
      // finished, or a finished row whose pod still runs.
      const podByName = new Map(pods.map((p) => [p.name, p]))
      const now = new Set<string>()
      for (const w of workers) {
        const pod = podByName.get(w.pod_name)
        const contradiction = isActive(w.status)
          ? pod === undefined ? "active row, pod gone" : pod.phase === "Succeeded" || pod.phase === "Failed" ? `active row, pod ${pod.phase}` : undefined
          : pod !== undefined && (pod.phase === "Pending" || pod.phase === "Running")
          ? `${w.status} row, pod ${pod.phase}`
          : undefined
        if (contradiction === undefined) continue
        const key = `${w.pod_name}: ${contradiction}`
        now.add(key)
        const since = contradictionSince.get(key)
        const synced = syncedCycles.get(kubeClient.clusterOf(w.k8s_pool)) ?? 0
        if (since === undefined) contradictionSince.set(key, synced)
        // two completed cycles that listed the pod's cluster: the first may have started before the contradiction arose
        else if (synced - since >= 2 && !reportedContradictions.has(key)) {
          reportedContradictions.add(key)
          yield* violation(`worker ${w.pod_name} is ${w.status} but its pod ${pod === undefined ? "is gone" : `is ${pod.phase}`}, ${synced - since} cycles later`)
        }
      }
      for (const key of [...contradictionSince.keys()]) if (!now.has(key)) contradictionSince.delete(key)

      // Every pod of a pool is in that pool's cluster, and only there.
      if (clusters !== undefined) {
        for (const m of members) {
          for (const p of yield* m.control.pods) {
            const home = clusters.kube.clusterOf(p.request.pool)
            if (home !== m.name && !misplaced.has(p.name)) {
              misplaced.add(p.name)
              yield* violation(`pod ${p.name} of pool ${p.request.pool} is in cluster ${m.name}, not in ${home}`)
            }
          }
        }
      }
    }).pipe(Effect.catchAll((e) => violation(`invariant check failed to read the store: ${String(e)}`)))

    const stepBy = Duration.decode(spec.step ?? Duration.seconds(30))
    const step = Effect.gen(function*() {
      yield* TestClock.adjust(stepBy)
      yield* kube.reconcile
      yield* world.housekeep
      if (crashed) {
        crashed = false
        restarts.crashes += 1
        yield* restartScheduler
      }
      yield* drain
      yield* checkInvariants
    })

    const settled = Effect.gen(function*() {
      const gh = yield* github.snapshot
      if (gh.jobs.some((j) => j.status !== "completed")) return false
      if (gh.runners.some((r) => isOurs(r.name))) return false
      if ((yield* inner.getActiveJobs).length > 0 || (yield* inner.getActiveWorkers).length > 0) return false
      if ((yield* kube.pods).some((p) => p.phase === "Pending" || p.phase === "Running")) return false
      return yield* world.idle
    }).pipe(Effect.orElseSucceed(() => false))

    const finalChecks = Effect.gen(function*() {
      yield* drain
      const now = yield* Clock.currentTimeMillis
      const t = timeouts
      for (const job of (yield* inner.listJobs(allRows)).rows) {
        if (!isTerminal(job.status)) yield* violation(`job ${job.job_id} never ended: still ${job.status}`)
        else if (job.status === "failed" && job.failure_info === null) yield* violation(`job ${job.job_id} failed without a reason`)
      }
      for (const w of (yield* inner.listWorkers(allRows)).rows) {
        if (!isTerminal(w.status)) yield* violation(`worker ${w.pod_name} never ended: still ${w.status}`)
      }
      const gh = yield* github.snapshot
      for (const j of gh.jobs) if (j.status !== "completed") yield* violation(`GitHub job ${j.id} never ended: still ${j.status}`)
      // No job is lost: every GitHub job for one of our pools was stored before GitHub finished it (a lost
      // delivery was redelivered in time), not only when its `completed` news came, or never.
      const rowsById = new Map((yield* inner.listJobs(allRows)).rows.map((j) => [j.job_id, j]))
      for (const j of yield* world.jobs) {
        if (resolvePool(spec.runnerConfig, { entityId: j.entityId, repoFullName: j.repo, labels: j.labels }, false) === undefined) continue
        const row = rowsById.get(j.id)
        if (row === undefined) yield* violation(`job ${j.id} was never stored`)
        else if (j.completedAt !== null && row.created_at.getTime() >= j.completedAt && j.startedAt === null) {
          yield* violation(`job ${j.id} was stored only when GitHub gave up on it (${j.conclusion}): its queued delivery was lost for good`)
        }
      }
      if (spec.everyJobServed === true) {
        // the one excuse: the job ran on a board that went NotReady under it, and GitHub lost its runner
        const downBoards = new Set((world.options.boardFaults ?? []).flatMap((f) => (f.kind === "notReady" ? [f.node] : [])))
        const nodeOf = new Map((yield* kube.pods).map((p) => [p.name, p.nodeName]))
        for (const j of yield* world.jobs) {
          if (resolvePool(spec.runnerConfig, { entityId: j.entityId, repoFullName: j.repo, labels: j.labels }, false) === undefined) continue
          if (j.conclusion === "success") continue
          const node = j.runner === null ? undefined : nodeOf.get(j.runner)
          if (j.startedAt !== null && node != null && downBoards.has(node)) continue
          yield* violation(`job ${j.id} (${j.labels.join(",")}) was not served: ${j.status}, ${j.conclusion ?? "no conclusion"}`)
        }
      }
      for (const r of gh.runners) if (isOurs(r.name)) yield* violation(`GitHub runner ${r.name} leaked (${r.status}${r.busy ? ", busy" : ""})`)
      const grace = Duration.toMillis(t.deleteGrace) + 2 * Duration.toMillis(t.pollInterval)
      const known = yield* inner.knownPodNames((yield* kube.pods).map((p) => p.name))
      for (const p of yield* kube.pods) {
        if (isOurs(p.name) && !known.has(p.name)) yield* violation(`pod ${p.name} has no worker row at quiescence`)
        if (p.phase === "Pending" || p.phase === "Running") yield* violation(`pod ${p.name} leaked: still ${p.phase}`)
        const ended = (finishedAt(p) ?? p.creationTime).getTime()
        if ((p.phase === "Succeeded" || p.phase === "Failed") && now - ended > grace) {
          yield* violation(`pod ${p.name} kept beyond its grace (${p.phase} since ${Math.round((now - ended) / 60_000)} min)`)
        }
      }
      // no secret anywhere: log lines, every row written, every row read back, every world event
      const secrets = secretsOf(yield* github.issuedSecrets)
      const rowsNow = [
        JSON.stringify((yield* inner.listJobs(allRows)).rows),
        JSON.stringify((yield* inner.listWorkers(allRows)).rows)
      ]
      for (const [where, texts] of [["log", logs], ["written row", written], ["row", rowsNow], ["event", events.map((e) => JSON.stringify(e))]] as const) {
        const haystack = texts.join("\n")
        for (const secret of secrets) {
          if (haystack.includes(secret)) yield* violation(`a secret (${secret.slice(0, 4)}…) appears in a ${where}`)
        }
      }
    }).pipe(Effect.catchAll((e) => violation(`final checks failed to read the store: ${String(e)}`)))

    const fingerprint = Effect.gen(function*() {
      yield* drain
      const hash = createHash("sha256")
      for (const e of events) hash.update(JSON.stringify(e)).update("\n")
      for (const j of (yield* inner.listJobs(allRows)).rows) hash.update(`${j.job_id}:${j.status}:${j.k8s_pod}\n`)
      for (const w of (yield* inner.listWorkers(allRows)).rows) hash.update(`${w.pod_name}:${w.status}\n`)
      hash.update(JSON.stringify(yield* github.callCounts as Effect.Effect<GithubCallCounts>))
      return hash.digest("hex").slice(0, 16)
    }).pipe(Effect.orElseSucceed(() => "unreadable"))

    const harness: Harness = {
      world,
      github,
      kube,
      clusters: members,
      podsCreatedByCluster,
      db: inner,
      store: db,
      timeouts,
      events,
      violations,
      logs,
      restarts,
      boardChecks,
      cycles,
      step,
      check: checkInvariants,
      restartScheduler: Effect.zipRight(Effect.sync(() => void (restarts.clean += 1)), restartScheduler),
      armCrash: (calls, operation) =>
        Effect.sync(() => {
          crashAfter = Math.max(1, calls)
          crashOn = operation
        }),
      settled,
      finalChecks,
      fingerprint
    }
    return harness
  })

/** A logger that keeps every line (message, annotations, cause) for the secret scan, and prints none. */
export const capturingLogger = (lines: Array<string>, debug: boolean) =>
  Layer.mergeAll(
    Logger.replace(
      Logger.defaultLogger,
      Logger.make(({ annotations, cause, logLevel, message }) => {
        let line = `${logLevel.label} ${typeof message === "string" ? message : JSON.stringify(message)}`
        for (const [k, v] of annotations) line += ` ${k}=${typeof v === "string" ? v : JSON.stringify(v)}`
        if (!Cause.isEmpty(cause)) line += ` ${Cause.pretty(cause, { renderErrorCause: true })}`
        lines.push(line)
      })
    ),
    Logger.minimumLogLevel(debug ? LogLevel.Debug : LogLevel.Info)
  )

/**
 * Runs `body` against a fresh harness under TestClock (starting at DST_EPOCH), a Random seeded with `seed`, the
 * capturing logger and fast zero-delay timers; everything stops when it returns.
 */
export const withHarness = <A, E>(
  spec: HarnessSpec,
  body: (h: Harness) => Effect.Effect<A, E, Scope.Scope>,
  seed = "sim-test"
): Effect.Effect<A, E> => {
  const logs: Array<string> = []
  return Effect.gen(function*() {
    yield* fastZeroTimers
    yield* TestClock.setTime(DST_EPOCH)
    const h = yield* makeHarness(spec, logs)
    return yield* body(h)
  }).pipe(
    Effect.scoped,
    Effect.withRandom(Random.make(seed)),
    Effect.provide(capturingLogger(logs, spec.debugLogs ?? false)),
    Effect.provide(TestContext.TestContext)
  )
}

/** Steps until `done` holds, at most `limit` of simulated time; true when it held. */
export const stepUntil = (h: Harness, done: Effect.Effect<boolean>, limit: Duration.DurationInput) =>
  Effect.gen(function*() {
    const until = (yield* Clock.currentTimeMillis) + Duration.toMillis(limit)
    while (!(yield* done)) {
      if ((yield* Clock.currentTimeMillis) >= until) return false
      yield* h.step
    }
    return true
  })
