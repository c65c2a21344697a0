import { Duration, Effect, Random, Schema, TestClock, TestContext } from "effect"
import type { MemoryNode } from "../../layers/kube/memory.ts"
import type { BoardFault } from "../../layers/sim/boardFaults.ts"
import { formatEvent } from "../../layers/sim/events.ts"
import { type FaultSettings, noFaults } from "../../layers/sim/faults.ts"
import type { OwnerType } from "../../layers/sim/payloads.ts"
import { type SimClusterSpec, SIMULATED_KUBECONFIG } from "../../layers/sim/cluster.ts"
import { defaultRunnerConfigInput, RunnerConfig } from "../../src/domain/RunnerConfig.ts"
import { capturingLogger, DST_EPOCH, type Harness, makeHarness } from "./simHarness.ts"
import { fastZeroTimers } from "./simTimers.ts"

/*
 * One deterministic simulation run from a seed: the seed draws the world (entities and their caps, repositories,
 * nodes), the load (arrival times, label sets, durations), the faults and the scheduler restarts; a second stream
 * from the same seed is the run's Random. The run steps until the load has arrived, turns the faults off, steps
 * until everything has settled (or a cap), and checks the state at quiescence.
 */

export interface DstOptions {
  readonly seed: number
  /** jobs in the load */
  readonly jobs: number
  /** inject faults (default true) */
  readonly faults?: boolean
  /** capture debug log lines too, for the secret scan */
  readonly debugLogs?: boolean
  /** keep the world's event lines and the log lines in the result */
  readonly verbose?: boolean
  /**
   * `two-clusters`: a second simulated cluster (`lab`, pool `lab-rv1`) beside the default one, a board whose
   * runners never register in one and a board that goes NotReady in the other, an outage of lab's API, and no
   * other fault, so that every job must be served (`twoClusterPlan`)
   */
  readonly world?: "two-clusters"
}

export interface DstResult {
  readonly seed: number
  readonly jobs: number
  /** faults injected, by kind */
  readonly faults: Readonly<Record<string, number>>
  /** what the board invariant checked: pods created, and how many while a board was quarantined or unusable; quarantines */
  readonly boards: Readonly<Record<string, number>>
  readonly violations: ReadonlyArray<string>
  readonly simulatedMinutes: number
  readonly fingerprint: string
  readonly logLines: number
  /** in a two-cluster world: the runner pods created in each cluster */
  readonly podsByCluster?: Readonly<Record<string, number>>
  /** with `verbose`: what happened, one line each (simulated time), then the log */
  readonly transcript?: ReadonlyArray<string>
}

/** The one command that replays a seed exactly. */
export const replayCommand = (o: DstOptions) =>
  `npm run sim:check -- --seed ${o.seed} --jobs ${o.jobs}${o.faults === false ? " --no-faults" : ""}${o.world === undefined ? "" : ` --world ${o.world}`} --verbose`

/** A failing seed's report: what broke, and the one command that replays it exactly. */
export const describeFailure = (options: DstOptions, result: DstResult) =>
  [
    `DST seed ${options.seed} (${result.jobs} jobs, ${result.simulatedMinutes} simulated min) broke ${result.violations.length} invariant(s):`,
    ...result.violations.map((v) => `  - ${v}`),
    `replay: ${replayCommand(options)}`
  ].join("\n")

interface Arrival {
  readonly at: number
  readonly owner: string
  readonly ownerType: OwnerType
  readonly repo: string
  readonly labels: ReadonlyArray<string>
  readonly durationSeconds: number
}

interface Plan {
  readonly nodes: ReadonlyArray<MemoryNode>
  readonly config: RunnerConfig
  readonly arrivals: ReadonlyArray<Arrival>
  readonly faults: FaultSettings
  readonly releaseStuckPending: boolean
  /** ms after the start: restart the scheduler cleanly, or crash it after `crashAfter` cluster calls */
  readonly restarts: ReadonlyArray<{ readonly at: number; readonly crashAfter: number | null }>
  /** ms after the start: our webhook endpoint answers 503 for 10 simulated minutes */
  readonly outageAt: number | null
  /** faulty boards: extra boards beside the ones the load is sized for, so the good ones can still serve every job */
  readonly boardFaults: ReadonlyArray<BoardFault>
  /** simulated clusters besides the default one (none: one cluster) */
  readonly clusters: ReadonlyArray<SimClusterSpec>
  /** ms after the start, and for how long: a cluster's API refuses every node and pod listing */
  readonly clusterOutage: { readonly cluster: string; readonly at: number; readonly forMs: number } | null
}

const LARGE = ["large", "ubuntu-24.04-riscv"]
const DEFAULT_LABELS = ["ubuntu-24.04-riscv"]
const UNMATCHED = ["gpu", "ubuntu-24.04-riscv"]

/** Draws the world and its load from the seed. */
const makePlan = (options: DstOptions) =>
  Effect.gen(function*() {
    const between = (lo: number, hi: number) => Effect.map(Random.next, (x) => lo + x * (hi - lo))
    const int = (lo: number, hi: number) => Random.nextIntBetween(lo, hi + 1)
    const chance = (p: number) => Effect.map(Random.next, (x) => x < p)

    const entityCount = yield* int(3, 6)
    const entities: Array<{ login: string; id: number; type: OwnerType; repos: Array<string>; cap: number | null | undefined }> = []
    for (let i = 1; i <= entityCount; i++) {
      // Every world has a personal account (the last entity, if none was drawn before it), and personal accounts
      // have several repositories: their runners are repo-scoped, so demand meets supply per repository.
      const drawn: OwnerType = (yield* chance(0.7)) ? "Organization" : "User"
      const type: OwnerType = i === entityCount && !entities.some((e) => e.type === "User") ? "User" : drawn
      const login = `${type === "User" ? "user" : "org"}${i}`
      const repos = Array.from({ length: type === "User" ? yield* int(2, 3) : yield* int(1, 2) }, (_, r) => `${login}/repo${r + 1}`)
      const cap = (yield* chance(0.4)) ? yield* int(1, 3) : (yield* chance(0.2)) ? null : undefined
      entities.push({ login, id: 1000 + i, type, repos, cap })
    }
    const nodeCount = yield* int(2, 6)
    const slots = (yield* chance(0.3)) ? 2 : 1
    const nodes: Array<MemoryNode> = Array.from({ length: nodeCount }, (_, i) => ({ name: `node-${i + 1}`, pool: "scw-em-rv1", slots }))
    const config = Schema.decodeUnknownSync(RunnerConfig)({
      ...defaultRunnerConfigInput,
      rules: [
        ...defaultRunnerConfigInput.rules,
        { labels: LARGE, pool: "scw-em-rv1", image: "riscv-runner:ubuntu-24.04-large-{channel}" }
      ],
      entities: Object.fromEntries(entities.map((e) => [String(e.id), e.cap === undefined ? { name: e.login } : { name: e.login, maxWorkers: e.cap }])),
      defaultMaxWorkers: (yield* chance(0.5)) ? 20 : yield* int(2, 4),
      policy: (yield* chance(0.7)) ? "fair" : "fifo"
    })

    // Poisson arrivals sized to keep the boards about 90 % busy; durations 1..8 minutes.
    const meanDuration = 4.5 * 60_000
    const meanGap = meanDuration / (nodeCount * slots * 0.9)
    const arrivals: Array<Arrival> = []
    let at = 0
    for (let i = 0; i < options.jobs; i++) {
      at += -Math.log(1 - (yield* Random.next)) * meanGap
      const e = entities[yield* int(0, entities.length - 1)]!
      const roll = yield* Random.next
      arrivals.push({
        at: Math.round(at),
        owner: e.login,
        ownerType: e.type,
        repo: e.repos[yield* int(0, e.repos.length - 1)]!,
        labels: roll < 0.8 ? DEFAULT_LABELS : roll < 0.95 ? LARGE : UNMATCHED,
        durationSeconds: Math.round(yield* between(60, 480))
      })
    }

    const withFaults = options.faults !== false
    const faults: FaultSettings = withFaults
      ? {
        githubErrors: yield* between(0, 0.12),
        githubRateLimits: yield* between(0, 0.04),
        dropWebhooks: yield* between(0, 0.3),
        // never made at all: only the sweep could find those jobs, and only in a repository it already knows
        unsentWebhooks: 0,
        duplicateWebhooks: yield* between(0, 0.15),
        reorderWebhooks: yield* between(0, 0.2),
        stuckPending: yield* between(0, 0.1),
        imagePullFailures: yield* between(0, 0.05),
        neverRegister: yield* between(0, 0.1),
        stuckBusy: yield* between(0, 0.08),
        nodeLossPerHour: yield* between(0, 1.5)
      }
      : noFaults
    const restarts: Array<{ at: number; crashAfter: number | null }> = []
    if (withFaults) {
      const n = yield* int(0, 3)
      for (let i = 0; i < n; i++) {
        restarts.push({ at: Math.round(yield* between(0, at)), crashAfter: (yield* chance(0.6)) ? yield* int(1, 6) : null })
      }
      restarts.sort((a, b) => a.at - b.at)
    }
    // Drawn after everything else, so the rest of a seed's plan stays what it was.
    const outageAt = withFaults && (yield* chance(0.3)) ? Math.round(yield* between(0, at)) : null
    const releaseStuckPending = yield* chance(0.5)
    // Faulty boards, in about half the seeds: one or two more boards, each one whose runners never register or
    // one that goes NotReady (False, or Unknown: its kubelet gone) at some moment of the load, for a while or for
    // good. They are boards beyond those the load was sized for, so the good boards alone can serve every job:
    // a world where no job can be served would prove nothing about the scheduler.
    const boardFaults: Array<BoardFault> = []
    if (withFaults && (yield* chance(0.5))) {
      const extra = yield* int(1, 2)
      for (let i = 1; i <= extra; i++) {
        const node = `node-${nodeCount + i}`
        nodes.push({ name: node, pool: "scw-em-rv1", slots })
        if (yield* chance(0.5)) boardFaults.push({ node, kind: "noRegister" })
        else {
          const ready = (yield* chance(0.5)) ? "Unknown" as const : "False" as const
          const atMs = Math.round(yield* between(0, at))
          const forMs = (yield* chance(0.5)) ? null : Math.round(yield* between(5, 40)) * 60_000
          boardFaults.push({ node, kind: "notReady", ready, atMs, forMs })
        }
      }
    }
    return { nodes, config, arrivals, faults, releaseStuckPending, restarts, outageAt, boardFaults, clusters: [], clusterOutage: null } satisfies Plan
  }).pipe(Effect.withRandom(Random.make(`plan/${options.seed}`)))

const LAB_CLUSTER = "lab"
const LAB_POOL = "lab-rv1"
const LAB_LABELS = ["lab", "ubuntu-24.04-riscv"]

/**
 * The two-cluster world, drawn from a stream of its own on top of a fault-free plan of the same seed: a cluster
 * `lab` with 2 or 3 boards of pool `lab-rv1` (its own label set), a share of the jobs moved to it in proportion to
 * its boards, one extra board whose runners never register in one cluster and one extra board that goes NotReady
 * (`False` or `Unknown`, for a while or for good) in the other, and lab's API refusing every listing for 5 to 15
 * minutes of the load. Nothing else fails, so every job must be served: one that ran on the NotReady board when
 * it went is the only job excused.
 */
const twoClusterPlan = (base: Plan, seed: number) =>
  Effect.gen(function*() {
    const between = (lo: number, hi: number) => Effect.map(Random.next, (x) => lo + x * (hi - lo))
    const int = (lo: number, hi: number) => Random.nextIntBetween(lo, hi + 1)
    const chance = (p: number) => Effect.map(Random.next, (x) => x < p)
    const slots = base.nodes[0]!.slots
    const homeCount = base.nodes.length
    const labCount = yield* int(2, 3)
    const nodes: Array<MemoryNode> = [
      ...base.nodes,
      ...Array.from({ length: labCount }, (_, i) => ({ name: `${LAB_POOL}-${i + 1}`, pool: LAB_POOL, slots }))
    ]
    const share = labCount / (labCount + homeCount)
    const arrivals: Array<Arrival> = []
    for (const a of base.arrivals) arrivals.push(a.labels === DEFAULT_LABELS && (yield* chance(share)) ? { ...a, labels: LAB_LABELS } : a)
    const end = arrivals.at(-1)?.at ?? 0
    const silentInLab = yield* chance(0.5)
    const silent = silentInLab ? `${LAB_POOL}-${labCount + 1}` : `node-${homeCount + 1}`
    const down = silentInLab ? `node-${homeCount + 1}` : `${LAB_POOL}-${labCount + 1}`
    const boardOf = (name: string): MemoryNode => ({ name, pool: name.startsWith(LAB_POOL) ? LAB_POOL : "scw-em-rv1", slots })
    // the silent board first: the in-memory scheduler takes the first free board, so it gets every runner it can
    // until it is quarantined, as a bad board that a real scheduler happens to favour would
    nodes.unshift(boardOf(silent))
    nodes.push(boardOf(down))
    const boardFaults: Array<BoardFault> = [
      { node: silent, kind: "noRegister" },
      {
        node: down,
        kind: "notReady",
        ready: (yield* chance(0.5)) ? "Unknown" : "False",
        atMs: Math.round(yield* between(0, end)),
        forMs: (yield* chance(0.5)) ? null : Math.round(yield* between(5, 40)) * 60_000
      }
    ]
    const config = Schema.decodeUnknownSync(RunnerConfig)({
      ...Schema.encodeSync(RunnerConfig)(base.config),
      rules: [...Schema.encodeSync(RunnerConfig)(base.config).rules, { labels: LAB_LABELS, pool: LAB_POOL, image: "riscv-runner:ubuntu-24.04-{channel}" }],
      clusters: [{ name: LAB_CLUSTER, kubeconfig: SIMULATED_KUBECONFIG, pools: [LAB_POOL] }]
    })
    const clusterOutage = { cluster: LAB_CLUSTER, at: Math.round(yield* between(0, end)), forMs: Math.round(yield* between(5, 15)) * 60_000 }
    return { ...base, nodes, config, arrivals, boardFaults, clusters: [{ name: LAB_CLUSTER, pools: [LAB_POOL] }], clusterOutage } satisfies Plan
  }).pipe(Effect.withRandom(Random.make(`plan-clusters/${seed}`)))

const STEP = Duration.seconds(30)
/** GitHub cancels a job queued this long; shorter than GitHub's 24 h so that a run settles within hours. */
const QUEUED_JOB_TIMEOUT = Duration.minutes(30)
/** Terminal pods are kept this long (the production default is 6 h), so quiescence comes sooner. */
const DELETE_GRACE = Duration.minutes(30)
const SETTLE_CAP = Duration.hours(2)
/** how long an outage of our webhook endpoint lasts, in the seeds that have one */
const OUTAGE_SECONDS = 600

/** Submits every arrival at its time (one fiber, one sleep per arrival). */
const submitArrivals = (h: Harness, arrivals: ReadonlyArray<Arrival>) =>
  Effect.gen(function*() {
    let now = 0
    for (const a of arrivals) {
      if (a.at > now) yield* Effect.sleep(Duration.millis(a.at - now))
      now = a.at
      yield* h.world.submitJobs({ owner: a.owner, ownerType: a.ownerType, repo: a.repo, labels: a.labels, durationSeconds: a.durationSeconds })
        .pipe(Effect.orDie)
    }
  })

const countFaults = (h: Harness) =>
  Effect.gen(function*() {
    const stats = yield* h.world.stats
    const calls = yield* h.github.callCounts
    let github5xx = 0
    let github429 = 0
    for (const byStatus of Object.values(calls)) {
      github5xx += byStatus[502] ?? 0
      github429 += byStatus[429] ?? 0
    }
    return {
      github5xx,
      github429,
      webhooksDropped: stats.faults.dropped,
      webhooksUnsent: stats.faults.unsent,
      webhookOutages: stats.faults.webhookOutages,
      webhooksRefusedInOutage: stats.faults.outageRefused,
      redeliveries: stats.redeliveries,
      webhooksDuplicated: stats.faults.duplicated,
      webhooksReordered: stats.faults.reordered,
      podsStuckPending: stats.faults.stuckPending,
      imagePullFailures: stats.faults.imagePullFailures,
      runnersNeverRegistered: stats.faults.neverRegistered,
      runnersStuckBusy: stats.faults.stuckBusy,
      nodesLost: stats.faults.nodesLost,
      faultyBoards: (h.world.options.boardFaults ?? []).length,
      boardSilentRunners: stats.faults.boardSilentRunners,
      boardsNotReady: stats.faults.boardsNotReady,
      schedulerCrashes: h.restarts.crashes,
      schedulerRestarts: h.restarts.clean
    }
  })

/** Runs one seed. Needs nothing: it brings its own TestClock, seeded Random and logger. */
export const runDst = (options: DstOptions): Effect.Effect<DstResult> => {
  const logs: Array<string> = []
  return Effect.gen(function*() {
    yield* fastZeroTimers
    const plan = options.world === "two-clusters"
      ? yield* Effect.flatMap(makePlan({ ...options, faults: false }), (base) => twoClusterPlan(base, options.seed))
      : yield* makePlan(options)
    yield* TestClock.setTime(DST_EPOCH)
    const h = yield* makeHarness({
      nodes: plan.nodes,
      runnerConfig: plan.config,
      timeouts: { deleteGrace: DELETE_GRACE },
      world: {
        // a world where every job must be served gives the queue longer than one where GitHub may give up, yet
        // short of the settling cap, by which GitHub must have cancelled the jobs no rule accepts
        queuedJobTimeout: plan.clusters.length > 0 ? Duration.minutes(90) : QUEUED_JOB_TIMEOUT,
        boardFaults: plan.boardFaults,
        ...(plan.releaseStuckPending ? { stuckPendingFor: Duration.minutes(20) } : {})
      },
      step: STEP,
      debugLogs: options.debugLogs ?? false,
      clusters: plan.clusters,
      everyJobServed: plan.clusters.length > 0
    }, logs)
    yield* h.world.setFaults(plan.faults)
    yield* Effect.forkScoped(submitArrivals(h, plan.arrivals))

    const start = DST_EPOCH
    const elapsed = Effect.map(TestClock.currentTimeMillis, (t) => t - start)
    const loadEnds = (plan.arrivals.at(-1)?.at ?? 0) + Duration.toMillis(STEP)
    let nextRestart = 0
    let outagePending = plan.outageAt !== null
    const outaged = plan.clusterOutage === null ? undefined : h.clusters.find((c) => c.name === plan.clusterOutage!.cluster)
    let clusterOutage: "before" | "during" | "after" = outaged === undefined ? "after" : "before"
    while ((yield* elapsed) < loadEnds) {
      yield* h.step
      const t = yield* elapsed
      if (outaged !== undefined && clusterOutage === "before" && t >= plan.clusterOutage!.at) {
        clusterOutage = "during"
        for (const operation of ["listNodes", "listPods"] as const) yield* outaged.control.injectFault({ operation, status: 503, times: 1_000_000 })
      }
      if (outaged !== undefined && clusterOutage === "during" && t >= plan.clusterOutage!.at + plan.clusterOutage!.forMs) {
        clusterOutage = "after"
        yield* outaged.control.clearFaults
      }
      if (outagePending && t >= plan.outageAt!) {
        outagePending = false
        yield* h.world.setFaults({ webhookOutage: OUTAGE_SECONDS })
      }
      while (nextRestart < plan.restarts.length && plan.restarts[nextRestart]!.at <= t) {
        const r = plan.restarts[nextRestart++]!
        if (r.crashAfter === null) yield* h.restartScheduler
        else yield* h.armCrash(r.crashAfter)
      }
    }
    // The load is in: faults stop (what they broke stays broken until the system repairs it), and the world runs
    // until everything has settled.
    yield* h.world.setFaults({ off: true })
    if (outaged !== undefined && clusterOutage === "during") yield* outaged.control.clearFaults
    const cap = loadEnds + Duration.toMillis(SETTLE_CAP)
    while ((yield* elapsed) < cap && !(yield* h.settled)) yield* h.step
    for (let i = 0; i < 4; i++) yield* h.step
    yield* h.finalChecks

    return {
      seed: options.seed,
      jobs: plan.arrivals.length,
      faults: yield* countFaults(h),
      boards: {
        podsCreated: h.boardChecks.podsCreated,
        createdWhileQuarantined: h.boardChecks.whileQuarantined,
        createdWhileUnusable: h.boardChecks.whileUnusable,
        quarantines: (yield* h.db.listBoardEvents(100_000).pipe(Effect.orElseSucceed(() => []))).filter((e) => e.kind === "quarantined").length
      },
      violations: [...h.violations],
      simulatedMinutes: Math.round((yield* elapsed) / 60_000),
      fingerprint: yield* h.fingerprint,
      logLines: logs.length,
      ...(h.clusters.length > 0 ? { podsByCluster: { ...h.podsCreatedByCluster } } : {}),
      ...(options.verbose === true
        ? { transcript: [...h.events.flatMap((e) => formatEvent(e, 1) ?? []), "--- log ---", ...logs] }
        : {})
    } satisfies DstResult
  }).pipe(
    Effect.scoped,
    Effect.withRandom(Random.make(`run/${options.seed}`)),
    Effect.provide(capturingLogger(logs, options.debugLogs ?? false)),
    Effect.provide(TestContext.TestContext)
  )
}
