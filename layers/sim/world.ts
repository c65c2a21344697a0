import {
  Clock,
  Context,
  Data,
  Duration,
  Effect,
  FiberSet,
  Layer,
  Option,
  PubSub,
  Queue,
  Random,
  type Scope
} from "effect"
import { toLabelSet } from "../../src/domain/Labels.ts"
import type { RunnerConfig } from "../../src/domain/RunnerConfig.ts"
import { githubOperations } from "../../src/services/Github.ts"
import { GithubMemoryControl, type MemoryJob } from "../github/memory.ts"
import { KubeMemoryControl, type MemoryPod, type PodChange } from "../kube/memory.ts"
import type { SimEvent } from "./events.ts"
import { type FaultCounts, type FaultPatch, type FaultSettings, noFaults, zeroFaultCounts } from "./faults.ts"
import { installationCreatedPayload, type OwnerType, type SimOwner, type SimRepo, workflowJobPayload } from "./payloads.ts"
import { type DeliveryResult, WebhookTransport } from "./webhookTransport.ts"

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
 */

export interface SimOptions {
  /** simulated seconds per real second, for the world's own delays (job durations, boot, downtime) */
  readonly speed: number
  readonly runnerConfig: RunnerConfig
  /** GitHub App ids, for the `X-GitHub-Hook-Installation-Target-Id` of each delivery */
  readonly apps: { readonly orgAppId: number; readonly personalAppId: number }
  /** from a runner pod's start to its runner's registration (simulated) */
  readonly bootDelay?: Duration.DurationInput
  /** GitHub cancels a job that stayed queued this long (simulated; GitHub's is 24 h) */
  readonly queuedJobTimeout?: Duration.DurationInput
  /** how long a lost node stays away (simulated) */
  readonly nodeDowntime?: Duration.DurationInput
  /** how long a stuck-busy runner stays stuck, at most (simulated) */
  readonly stuckBusyFor?: Duration.DurationInput
  /** how long a pod held Pending by a fault stays held, at most (simulated); absent: until the scheduler gives up */
  readonly stuckPendingFor?: Duration.DurationInput
  /**
   * period of the world's housekeeping: runner heartbeats, queued-job expiry, node losses (simulated); null
   * leaves it to whoever calls `housekeep` (the simulation tests do, once per step)
   */
  readonly housekeeping?: Duration.DurationInput | null
  /**
   * first job id; ids then count up. Default: derived from the clock at start-up (milliseconds, rounded to the
   * second), so a restarted simulation never reuses an id the database kept from an earlier run.
   */
  readonly firstJobId?: number
}

export interface JobRequest {
  readonly owner: string
  readonly ownerType?: OwnerType | undefined
  /** `owner/name`, or just `name` */
  readonly repo?: string | undefined
  readonly labels?: ReadonlyArray<string> | undefined
  readonly durationSeconds?: number | undefined
  readonly count?: number | undefined
}

export class SimRequestError extends Data.TaggedError("SimRequestError")<{ readonly message: string }> {}

/** A job as the simulated GitHub tracks it, with the times the statistics need (Clock millis). */
export interface SimJob {
  readonly id: number
  readonly runId: number
  readonly owner: string
  readonly entityId: number
  readonly repo: string
  readonly labels: ReadonlyArray<string>
  readonly durationMs: number
  status: "queued" | "in_progress" | "completed"
  conclusion: string | null
  runner: string | null
  readonly queuedAt: number
  startedAt: number | null
  completedAt: number | null
}

type RunnerPhase = "pending" | "booting" | "silent" | "idle" | "busy" | "stuck" | "exiting" | "gone"

/** The runner process inside one pod. */
interface RunnerProcess {
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

export interface SimStats {
  readonly deliveries: number
  readonly deliveryFailures: number
  readonly faults: FaultCounts
}

export interface SimWorldShape {
  readonly options: SimOptions
  /** Creates jobs in GitHub (and the owner's installation on first use); their `queued` deliveries follow. */
  readonly submitJobs: (request: JobRequest) => Effect.Effect<ReadonlyArray<number>, SimRequestError>
  readonly jobs: Effect.Effect<ReadonlyArray<SimJob>>
  readonly faults: Effect.Effect<FaultSettings>
  readonly setFaults: (patch: FaultPatch) => Effect.Effect<FaultSettings>
  /** Takes a node away now (the named one, or one drawn at random); it returns after the downtime. */
  readonly loseNode: (name?: string) => Effect.Effect<Option.Option<string>>
  readonly stats: Effect.Effect<SimStats>
  /** The world's view for `GET /sim/state`: nodes, pods, runners and jobs as GitHub sees them. */
  readonly state: Effect.Effect<unknown>
  /** Events from the moment of subscription. */
  readonly subscribe: Effect.Effect<Queue.Dequeue<SimEvent>, never, Scope.Scope>
  /** True when no task the world started (a delivery, a running job, a boot) is still under way; for tests. */
  readonly idle: Effect.Effect<boolean>
  /** One housekeeping pass now (see `SimOptions.housekeeping`). */
  readonly housekeep: Effect.Effect<void>
}

export class SimWorld extends Context.Tag("riscv-runner/sim/SimWorld")<SimWorld, SimWorldShape>() {}

const DEFAULTS = {
  bootDelay: Duration.seconds(5),
  queuedJobTimeout: Duration.hours(24),
  nodeDowntime: Duration.minutes(10),
  stuckBusyFor: Duration.minutes(30),
  housekeeping: Duration.seconds(30)
}

/**
 * A stable id from a name (FNV-1a), in [base, base + 900,000,000): the same owner, installation or repository gets
 * the same id in every run, so the audit log of an earlier run (kept in the database) still tells them apart.
 */
const stableId = (base: number, name: string): number => {
  let h = 0x811c9dc5
  for (let i = 0; i < name.length; i++) {
    h ^= name.charCodeAt(i)
    h = Math.imul(h, 0x01000193) >>> 0
  }
  return base + (h % 900_000_000)
}

/** Owners' account ids come from the runner config when it names them, else from a counter. */
const configuredIds = (config: RunnerConfig): Map<string, number> => {
  const ids = new Map<string, number>()
  for (const [id, entry] of Object.entries(config.entities)) {
    if (entry.name !== undefined) ids.set(entry.name.toLowerCase(), Number(id))
  }
  return ids
}

const isOwnerType = (s: string): s is OwnerType => s === "Organization" || s === "User"

const makeWorld = (options: SimOptions) =>
  Effect.gen(function*() {
    const github = yield* GithubMemoryControl
    const kube = yield* KubeMemoryControl
    const transport = yield* WebhookTransport
    const speed = options.speed > 0 ? options.speed : 1
    const bootDelay = Duration.decode(options.bootDelay ?? DEFAULTS.bootDelay)
    const queuedJobTimeoutMs = Duration.toMillis(options.queuedJobTimeout ?? DEFAULTS.queuedJobTimeout)
    const nodeDowntime = Duration.decode(options.nodeDowntime ?? DEFAULTS.nodeDowntime)
    const stuckBusyForMs = Duration.toMillis(options.stuckBusyFor ?? DEFAULTS.stuckBusyFor)
    const stuckPendingForMs = options.stuckPendingFor === undefined ? undefined : Duration.toMillis(options.stuckPendingFor)
    const housekeeping = options.housekeeping === null ? null : Duration.decode(options.housekeeping ?? DEFAULTS.housekeeping)
    let lastHousekeeping = yield* Clock.currentTimeMillis
    const knownIds = configuredIds(options.runnerConfig)

    /** The world's own delays pass `speed` times faster than real time. */
    const simSleep = (d: Duration.DurationInput) => Effect.sleep(Duration.millis(Math.max(0, Duration.toMillis(d) / speed)))
    const now = Clock.currentTimeMillis

    // --- state (plain data; every change happens under `lock`) ----------------------------------------------
    const owners = new Map<string, SimOwner & { readonly repos: Map<string, SimRepo> }>()
    const jobs = new Map<number, SimJob>()
    const runners = new Map<string, RunnerProcess>()
    let faults: FaultSettings = noFaults
    let counts: FaultCounts = zeroFaultCounts
    const startedAt = yield* Clock.currentTimeMillis
    let nextJobId = options.firstJobId ?? Math.floor(startedAt / 1000) * 1000
    let nextRunId = nextJobId
    let nextDelivery = 1
    let deliveries = 0
    let deliveryFailures = 0
    const downNodes = new Set<string>()

    const lock = yield* Effect.makeSemaphore(1)
    const locked = <A, E, R>(effect: Effect.Effect<A, E, R>) => lock.withPermits(1)(effect)
    const events = yield* PubSub.unbounded<SimEvent>()
    const publish = (event: SimEvent) => PubSub.publish(events, event)

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

    const chance = (share: number) => (share <= 0 ? Effect.succeed(false) : Effect.map(Random.next, (x) => x < share))
    /** A uniform draw in [0, maxMs). */
    const upTo = (maxMs: number) => Effect.map(Random.next, (x) => Math.floor(x * maxMs))

    // --- deliveries ---------------------------------------------------------------------------------------------

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

    /** Sends a delivery in the background, through the delivery faults: dropped, held back, or sent twice. */
    const deliver = (event: string, payload: unknown, appId: number, jobId: number | null) =>
      Effect.gen(function*() {
        const body = encoder.encode(JSON.stringify(payload))
        const id = deliveryId()
        if (yield* chance(faults.dropWebhooks)) {
          counts = { ...counts, dropped: counts.dropped + 1 }
          return
        }
        const delay = (yield* chance(faults.reorderWebhooks)) ? yield* upTo(60_000) : 0
        if (delay > 0) counts = { ...counts, reordered: counts.reordered + 1 }
        const twice = yield* chance(faults.duplicateWebhooks)
        if (twice) counts = { ...counts, duplicated: counts.duplicated + 1 }
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

    // --- owners and jobs ----------------------------------------------------------------------------------------

    const ensureOwner = (login: string, type: OwnerType) =>
      Effect.gen(function*() {
        const key = login.toLowerCase()
        const known = owners.get(key)
        if (known !== undefined) {
          if (known.type !== type) {
            return yield* new SimRequestError({ message: `${login} is already an ${known.type}, not a ${type}` })
          }
          return known
        }
        const owner = {
          login,
          id: knownIds.get(key) ?? stableId(100_000_000, `owner/${key}`),
          type,
          installationId: stableId(1_000_000_000, `installation/${key}`),
          repos: new Map<string, SimRepo>()
        }
        owners.set(key, owner)
        yield* github.addInstallation({ id: owner.installationId, account: { login, type, id: owner.id } })
        const at = yield* now
        yield* publish({ _tag: "InstallationCreated", at, owner: login, ownerType: type, installationId: owner.installationId })
        yield* deliver("installation", installationCreatedPayload(owner, appIdFor(type), [], new Date(at)), appIdFor(type), null)
        return owner
      })

    const ensureRepo = (owner: SimOwner & { readonly repos: Map<string, SimRepo> }, fullName: string) => {
      const key = fullName.toLowerCase()
      const known = owner.repos.get(key)
      if (known !== undefined) return known
      const repo = { fullName, id: stableId(2_000_000_000, `repo/${key}`) }
      owner.repos.set(key, repo)
      return repo
    }

    const submitJobs = (request: JobRequest) =>
      locked(Effect.gen(function*() {
        const login = request.owner.trim()
        if (!/^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})$/.test(login)) {
          return yield* new SimRequestError({ message: `owner must be a GitHub login, got ${JSON.stringify(request.owner)}` })
        }
        const type = request.ownerType ?? "Organization"
        if (!isOwnerType(type)) return yield* new SimRequestError({ message: `ownerType must be Organization or User` })
        const repoText = (request.repo ?? "app").trim()
        const fullName = repoText.includes("/") ? repoText : `${login}/${repoText}`
        if (fullName.split("/")[0]!.toLowerCase() !== login.toLowerCase() || !/^[^/\s]+\/[A-Za-z0-9._-]+$/.test(fullName)) {
          return yield* new SimRequestError({ message: `repo must be "${login}/<name>", got ${JSON.stringify(request.repo)}` })
        }
        const count = request.count ?? 1
        if (!Number.isInteger(count) || count < 1 || count > 1000) {
          return yield* new SimRequestError({ message: "count must be an integer from 1 to 1000" })
        }
        const seconds = request.durationSeconds ?? 60
        if (!(seconds >= 0 && seconds <= 7 * 24 * 3600)) {
          return yield* new SimRequestError({ message: "durationSeconds must be between 0 and 604800" })
        }
        const labels = toLabelSet(request.labels ?? ["ubuntu-24.04-riscv"])
        const owner = yield* ensureOwner(login, type)
        const repo = ensureRepo(owner, fullName)
        const at = yield* now
        const ids: Array<number> = []
        for (let i = 0; i < count; i++) {
          const job: SimJob = {
            id: nextJobId++,
            runId: nextRunId++,
            owner: owner.login,
            entityId: owner.id,
            repo: repo.fullName,
            labels,
            durationMs: Math.round(seconds * 1000),
            status: "queued",
            conclusion: null,
            runner: null,
            queuedAt: at,
            startedAt: null,
            completedAt: null
          }
          jobs.set(job.id, job)
          ids.push(job.id)
          yield* github.createRun({ id: job.runId, repo: repo.fullName, status: "queued" })
          yield* github.createJob({ id: job.id, repo: repo.fullName, runId: job.runId, labels, status: "queued" })
          yield* publish({ _tag: "JobQueued", at, jobId: job.id, owner: owner.login, repo: repo.fullName, labels, durationMs: job.durationMs })
          yield* deliverJob(job, "queued", null)
        }
        return ids
      })).pipe(Effect.tap(() => dispatch))

    // --- runners ----------------------------------------------------------------------------------------------

    /** GitHub hands every idle runner the oldest queued job of its scope and labels, if there is one. */
    const dispatch: Effect.Effect<void> = locked(Effect.gen(function*() {
      for (const r of runners.values()) {
        if (r.phase !== "idle") continue
        const assigned = yield* github.assignQueuedJob(r.pod)
        if (Option.isSome(assigned)) yield* startJob(r, assigned.value)
      }
    }))

    const startJob = (r: RunnerProcess, assigned: MemoryJob) =>
      Effect.gen(function*() {
        const at = yield* now
        const job = jobs.get(assigned.id)
        if (job === undefined) return
        job.status = "in_progress"
        job.runner = r.pod
        job.startedAt = at
        r.phase = "busy"
        r.jobId = job.id
        yield* publish({ _tag: "JobStarted", at, jobId: job.id, pod: r.pod, owner: job.owner, waitedMs: at - job.queuedAt })
        yield* deliverJob(job, "in_progress", r.runnerId)
        yield* spawn(Effect.zipRight(simSleep(Duration.millis(job.durationMs)), finishJob(r, job.id)))
      })

    /** Ends the job (GitHub side) and the runner's part in it; returns the effects to run once unlocked. */
    const endJob = (job: SimJob, conclusion: string) =>
      Effect.gen(function*() {
        const at = yield* now
        job.status = "completed"
        job.conclusion = conclusion
        job.completedAt = at
        yield* github.completeJob(job.id, conclusion)
        yield* github.setRunStatus(job.runId, { status: "completed", conclusion })
        yield* publish({
          _tag: "JobDone",
          at,
          jobId: job.id,
          pod: job.runner,
          owner: job.owner,
          conclusion,
          waitedMs: (job.startedAt ?? at) - job.queuedAt,
          ranMs: job.startedAt === null ? 0 : at - job.startedAt
        })
        yield* deliverJob(job, "completed", null)
      })

    const finishJob = (r: RunnerProcess, jobId: number) =>
      locked(Effect.gen(function*() {
        const job = jobs.get(jobId)
        if (job === undefined || r.phase !== "busy" || r.jobId !== jobId) return
        const stuck = yield* chance(faults.stuckBusy)
        if (stuck) {
          counts = { ...counts, stuckBusy: counts.stuckBusy + 1 }
          yield* github.setRunnerStuckBusy(r.pod, true)
        }
        yield* endJob(job, "success")
        r.jobId = null
        if (stuck) {
          r.phase = "stuck"
          const stuckFor = yield* upTo(stuckBusyForMs)
          yield* publish({ _tag: "Fault", at: yield* now, kind: "runner stuck busy", detail: `${r.pod} for ${Math.round(stuckFor / 1000)} s` })
          yield* spawn(Effect.zipRight(simSleep(Duration.millis(stuckFor)), releaseStuck(r)))
        } else {
          // The ephemeral runner unregistered itself when GitHub completed the job; its process exits.
          r.phase = "exiting"
          yield* kube.finishPod(r.pod, 0)
        }
      }))

    const releaseStuck = (r: RunnerProcess) =>
      locked(Effect.gen(function*() {
        yield* github.setRunnerStuckBusy(r.pod, false)
        if (r.phase !== "stuck") return
        yield* github.finishRunner(r.pod)
        r.phase = "exiting"
        yield* kube.finishPod(r.pod, 0)
      }))

    /** The pod started: after booting, its runner registers with GitHub from the JIT config the pod carries. */
    const boot = (r: RunnerProcess) =>
      Effect.zipRight(
        simSleep(bootDelay),
        locked(Effect.gen(function*() {
          if (r.phase !== "booting") return
          const registered = yield* github.registerRunnerFromJit(r.jitConfig)
          if (Option.isSome(registered)) {
            r.phase = "idle"
            r.runnerId = registered.value.id
            yield* publish({ _tag: "RunnerOnline", at: yield* now, pod: r.pod, node: r.node })
          } else if (neverRegisters.has(r.pod)) {
            // The runner process is up but never reaches GitHub; the pod keeps running until someone kills it.
            r.phase = "silent"
          } else {
            // Its registration was deleted before it could connect: the runner process exits with an error.
            r.phase = "exiting"
            yield* kube.finishPod(r.pod, 1)
          }
        }))
      ).pipe(Effect.zipRight(dispatch))

    const neverRegisters = new Set<string>()

    /** Pod creation: what the world decides for the new pod happens before the cluster's next pass. */
    const onPodCreated = (pod: MemoryPod) =>
      Effect.gen(function*() {
        const at = yield* now
        const entity = pod.request.entity
        const r: RunnerProcess = {
          pod: pod.name,
          owner: entity.name,
          entityId: entity.id,
          pool: pod.request.pool,
          jitConfig: pod.request.jitConfig,
          phase: "pending",
          runnerId: null,
          jobId: null,
          node: null,
          createdAt: at,
          runningAt: null,
          endedAt: null
        }
        runners.set(pod.name, r)
        yield* publish({ _tag: "RunnerProvisioned", at, pod: pod.name, owner: entity.name, entityId: entity.id, pool: pod.request.pool })
        if (yield* chance(faults.stuckPending)) {
          counts = { ...counts, stuckPending: counts.stuckPending + 1 }
          yield* kube.holdPending({ pod: pod.name }, true)
          yield* publish({ _tag: "Fault", at, kind: "pod stuck pending", detail: pod.name })
          if (stuckPendingForMs !== undefined) {
            const heldFor = yield* upTo(stuckPendingForMs)
            yield* spawn(Effect.zipRight(simSleep(Duration.millis(heldFor)), kube.holdPending({ pod: pod.name }, false)))
          }
        } else if (yield* chance(faults.imagePullFailures)) {
          counts = { ...counts, imagePullFailures: counts.imagePullFailures + 1 }
          yield* kube.failImagePull({ pod: pod.name }, true)
          yield* publish({ _tag: "Fault", at, kind: "image pull failing", detail: pod.name })
        }
        if (yield* chance(faults.neverRegister)) {
          counts = { ...counts, neverRegistered: counts.neverRegistered + 1 }
          neverRegisters.add(pod.name)
          yield* github.neverRegister(pod.name)
          yield* publish({ _tag: "Fault", at, kind: "runner never registers", detail: pod.name })
        }
      })

    /** The pod ended or vanished: a job it was running is lost (GitHub fails it), its runner goes offline. */
    const onPodEnded = (change: PodChange) =>
      locked(Effect.gen(function*() {
        const r = runners.get(change.name)
        const at = yield* now
        yield* publish({
          _tag: "PodEnded",
          at,
          pod: change.name,
          phase: change.to ?? "deleted",
          reason: change.pod.reason
        })
        if (r === undefined || r.phase === "gone") return
        const was = r.phase
        r.phase = "gone"
        r.endedAt = at
        if (was === "busy" && r.jobId !== null) {
          const job = jobs.get(r.jobId)
          r.jobId = null
          if (job !== undefined && job.status === "in_progress") yield* endJob(job, "failure")
        }
        if (r.runnerId !== null) {
          // Nobody is left to run the runner: GitHub shows it offline (and no longer busy) until it is deleted.
          yield* github.setRunnerStuckBusy(r.pod, false)
          yield* github.setRunnerBusy(r.pod, false)
          yield* github.setRunnerStatus(r.pod, "offline")
        }
      }))

    const onPodRunning = (change: PodChange) =>
      locked(Effect.gen(function*() {
        const r = runners.get(change.name)
        if (r === undefined || r.phase !== "pending") return
        r.phase = "booting"
        r.node = change.pod.nodeName
        r.runningAt = yield* now
        yield* spawn(boot(r))
      }))

    yield* kube.onPhaseChange((change) => {
      if (change.from === null) return onPodCreated(change.pod)
      if (change.to === "Running") return spawn(onPodRunning(change))
      if (change.to === "Pending") return Effect.void
      return spawn(onPodEnded(change))
    })

    // --- nodes ----------------------------------------------------------------------------------------------

    const loseNode = (name?: string) =>
      Effect.gen(function*() {
        const nodes = (yield* kube.nodes).filter((n) => n.pool !== null && !downNodes.has(n.name))
        const node = name === undefined
          ? nodes[Math.floor((yield* Random.next) * nodes.length)]
          : nodes.find((n) => n.name === name)
        if (node === undefined) return Option.none<string>()
        downNodes.add(node.name)
        counts = { ...counts, nodesLost: counts.nodesLost + 1 }
        yield* kube.removeNode(node.name, "Failed")
        yield* publish({ _tag: "Fault", at: yield* now, kind: "node lost", detail: `${node.name} (${node.pool})` })
        yield* spawn(Effect.gen(function*() {
          yield* simSleep(nodeDowntime)
          yield* kube.addNode(node.name, node.pool, node.slots)
          downNodes.delete(node.name)
          yield* publish({ _tag: "Fault", at: yield* now, kind: "node back", detail: node.name })
        }))
        return Option.some(node.name)
      })

    // --- faults -----------------------------------------------------------------------------------------------

    const applyGithubFaults = Effect.gen(function*() {
      yield* github.clearFaults
      const at = yield* now
      for (const operation of githubOperations) {
        if (faults.githubErrors > 0) {
          yield* github.injectFault(operation, { _tag: "Status", status: 502, message: "Bad Gateway (simulated)" }, {
            probability: faults.githubErrors
          })
        }
        if (faults.githubRateLimits > 0) {
          yield* github.injectFault(operation, { _tag: "RateLimited", resetAt: new Date(at + 60_000), retryAfterSeconds: 1 }, {
            probability: faults.githubRateLimits
          })
        }
      }
    })

    const setFaults = (patch: FaultPatch) =>
      locked(Effect.gen(function*() {
        const { off, loseNodes, ...rest } = patch
        const defined = Object.fromEntries(Object.entries(rest).filter(([, v]) => v !== undefined))
        faults = { ...(off === true ? noFaults : faults), ...defined }
        yield* applyGithubFaults
        return faults
      })).pipe(Effect.tap(() => Effect.forEach(Array.from({ length: patch.loseNodes ?? 0 }, (_, i) => i), () => loseNode(), { discard: true })))

    // --- housekeeping -----------------------------------------------------------------------------------------

    /**
     * Every period: runners notice a deleted registration and exit; GitHub cancels jobs queued too long; nodes get
     * lost at the configured rate; idle runners are offered queued jobs again.
     */
    const housekeep = Effect.gen(function*() {
      const at = yield* now
      const sinceLast = at - lastHousekeeping
      lastHousekeeping = at
      yield* locked(Effect.gen(function*() {
        const registered = new Set((yield* github.snapshot).runners.map((r) => r.name))
        for (const r of runners.values()) {
          if ((r.phase === "idle" || r.phase === "silent") && r.runnerId !== null && !registered.has(r.pod)) {
            r.phase = "exiting"
            yield* kube.finishPod(r.pod, 1)
          }
        }
        for (const job of jobs.values()) {
          if (job.status === "queued" && at - job.queuedAt >= queuedJobTimeoutMs / speed) {
            yield* github.setJobStatus(job.id, { status: "completed", conclusion: "cancelled" })
            job.status = "completed"
            job.conclusion = "cancelled"
            job.completedAt = at
            yield* github.setRunStatus(job.runId, { status: "completed", conclusion: "cancelled" })
            yield* publish({ _tag: "JobDone", at, jobId: job.id, pod: null, owner: job.owner, conclusion: "cancelled", waitedMs: at - job.queuedAt, ranMs: 0 })
            yield* deliverJob(job, "completed", null)
          }
        }
      }))
      // the chance of a loss in this interval, at the configured rate per simulated hour
      if (yield* chance(faults.nodeLossPerHour * sinceLast * speed / 3_600_000)) yield* loseNode()
      yield* dispatch
    })
    if (housekeeping !== null) yield* Effect.forkScoped(Effect.forever(Effect.zipRight(simSleep(housekeeping), housekeep)))

    // --- views ------------------------------------------------------------------------------------------------

    const state = Effect.gen(function*() {
      const [nodes, pods, gh] = [yield* kube.nodes, yield* kube.pods, yield* github.snapshot]
      return {
        speed,
        nodes: nodes.map((n) => ({
          name: n.name,
          pool: n.pool,
          slots: n.slots,
          pods: pods.filter((p) => p.nodeName === n.name && (p.phase === "Pending" || p.phase === "Running")).map((p) => p.name)
        })),
        downNodes: [...downNodes],
        pods: pods.map((p) => ({
          name: p.name,
          phase: p.phase,
          node: p.nodeName,
          pool: p.request.pool,
          entity: p.request.entity.name,
          reason: p.reason,
          createdAt: p.creationTime.toISOString()
        })),
        runners: gh.runners.map((r) => ({
          id: r.id,
          name: r.name,
          status: r.status,
          busy: r.busy,
          labels: r.labels,
          scope: r.scope._tag === "Org" ? `org ${r.scope.org} (group ${r.scope.groupId})` : `repo ${r.scope.repo}`
        })),
        jobs: gh.jobs.map((j) => {
          const mine = jobs.get(j.id)
          return {
            id: j.id,
            repo: j.repo,
            labels: j.labels,
            status: j.status,
            conclusion: j.conclusion,
            runner: j.runner_name,
            queuedAt: mine === undefined ? null : new Date(mine.queuedAt).toISOString(),
            startedAt: mine?.startedAt == null ? null : new Date(mine.startedAt).toISOString(),
            completedAt: mine?.completedAt == null ? null : new Date(mine.completedAt).toISOString()
          }
        }),
        faults
      }
    })

    return SimWorld.of({
      options,
      submitJobs,
      jobs: Effect.sync(() => [...jobs.values()].map((j) => ({ ...j }))),
      faults: Effect.sync(() => faults),
      setFaults,
      loseNode,
      stats: Effect.sync(() => ({ deliveries, deliveryFailures, faults: counts })),
      state,
      subscribe: PubSub.subscribe(events),
      idle: Effect.sync(() => pendingTasks === 0),
      housekeep
    })
  })

/** The closed-loop world over the in-memory GitHub and cluster, sending its deliveries through `WebhookTransport`. */
export const SimWorldLive = (options: SimOptions): Layer.Layer<SimWorld, never, GithubMemoryControl | KubeMemoryControl | WebhookTransport> =>
  Layer.scoped(SimWorld, makeWorld(options))
