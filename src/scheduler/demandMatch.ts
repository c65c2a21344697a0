import { Clock, type Context, Duration, Effect, Either } from "effect"
import { failureV1, failureV2 } from "../domain/FailureInfo.ts"
import type { BoardState } from "../domain/BoardQuarantine.ts"
import { type Job, runnerRepoOf } from "../domain/Job.ts"
import { isEntityBanned, maxWorkersFor, resolveImage, weightFor } from "../domain/RunnerConfig.ts"
import type { NewWorker } from "../domain/Worker.ts"
import { recordCapacity, recordClusterReadings, recordQueueWait } from "../observability/collect.ts"
import { logInfoWith } from "../observability/infoLine.ts"
import { jobLogFields } from "../observability/logFields.ts"
import { Db } from "../services/Db.ts"
import { Github, type JitRunner } from "../services/Github.ts"
import { Kube, type PoolCapacity } from "../services/Kube.ts"
import { leanSpan } from "../services/leanSpan.ts"
import { blockedGroups, streakLookbackMs } from "./allocationBackoff.ts"
import type { Authenticate, Serially } from "./auth.ts"
import { groupKey, jobGroupKey, planProvisioning } from "./demandPlan.ts"
import { quarantinedNodes, trustedCapacity } from "./quarantine.ts"
import { SchedulerSettings } from "./settings.ts"

/**
 * Demand matching (design decisions 5 and 6): one capacity reading for every pool, then (only when some pool has
 * a free slot) one set-based demand query and one query for the provisioning back-off; the planner decides, and
 * the decisions are carried out, groups concurrently, each group's jobs in order.
 */

export interface MatchResult {
  readonly provisioned: number
  readonly failed: number
  /** the jobs a runner was provisioned for */
  readonly jobIds: ReadonlyArray<number>
  /**
   * When jobs were left for later because their installation's next GitHub write would have waited for its
   * spacing: the earliest time (Clock ms) one of those installations can write again, when the loop should match
   * demand again. Absent when nothing was left behind.
   */
  readonly retryAt?: number | undefined
}

const MAX_NAME_ATTEMPTS = 5

export const matchDemand = Effect.fn("Scheduler.matchDemand")(function*(
  authenticate: Authenticate,
  serially: Serially,
  readBoards: Effect.Effect<ReadonlyArray<BoardState>> = Effect.succeed([])
) {
  const db = yield* Db
  const kube = yield* Kube
  const settings = yield* SchedulerSettings
  const none: MatchResult = { provisioned: 0, failed: 0, jobIds: [] }
  const baseMs = Duration.toMillis(settings.timeouts.allocationBackoffBase)
  const maxMs = Duration.toMillis(settings.timeouts.allocationBackoffMax)

  // Capacity first: with every board taken (the usual state under a backlog) the backlog need not be read at all.
  // Every cluster apart: a cluster whose API fails offers no capacity this cycle, and the others provision as usual.
  // The boards' standings and the back-off streaks are small reads independent of it, made at the same time: one
  // wait instead of three on the path of a new job.
  const [readings, boards, streaksRead] = yield* Effect.all(
    [kube.capacityByCluster, readBoards, Effect.either(db.getAllocationFailures(streakLookbackMs(baseMs, maxMs) / 1000))],
    { concurrency: "unbounded" }
  )
  yield* recordClusterReadings(readings)
  const answered = new Map<string, PoolCapacity>()
  for (const { cluster, result } of readings) {
    if (Either.isRight(result)) for (const [pool, c] of result.right) answered.set(pool, c)
    else {
      yield* Effect.logError("cannot read board capacity; no provisioning in this cluster this cycle").pipe(
        Effect.annotateLogs({ cluster, error: result.left.message })
      )
    }
  }
  if (!readings.some((r) => Either.isRight(r.result))) return none
  // Quarantined boards are no capacity, and a board on trial offers one slot.
  const capacity = trustedCapacity(answered, boards)
  yield* recordCapacity(capacity)
  if (![...capacity.values()].some((c) => c.available > 0)) return none
  const config = settings.runnerConfig
  const read = yield* db.getDemand
  // A banned entity's jobs stored before its ban get no runner: they fail, with the reason, so they leave the queue.
  const demand = read.filter((row) => !isEntityBanned(config, row.job.entity_id))
  if (demand.length < read.length) yield* failBannedJobs(read.filter((row) => isEntityBanned(config, row.job.entity_id)).map((r) => r.job))
  if (demand.length === 0) return none

  const now = yield* Clock.currentTimeMillis
  // as when it was read after the demand: no provisioning this cycle without the back-off's streaks
  const streaks = yield* streaksRead
  const blocked = blockedGroups(streaks, now, baseMs, maxMs)

  const plan = planProvisioning({
    demand,
    available: new Map([...capacity.values()].map((c) => [c.pool, c.available])),
    capFor: (id) => maxWorkersFor(config, id),
    weightFor: (id) => weightFor(config, id),
    policy: config.policy,
    blocked: new Set(blocked.keys()),
    probing: new Set(streaks.map((s) => groupKey(s.entityId, s.labels, s.repoFullName)).filter((key) => !blocked.has(key)))
  })
  if (blocked.size > 0) {
    yield* Effect.logInfo("provisioning backs off after allocation failures").pipe(
      Effect.annotateLogs({ groups: [...blocked.entries()].map(([k, until]) => `${k} until ${until.toISOString()}`).join("; ") })
    )
  }

  // Only what can start without waiting for an installation's write spacing goes in this cycle; the cycle holds
  // the lock, so a job waiting out its installation's gap here would hold up every other installation's new jobs.
  const github = yield* Github
  const { deferred, go } = yield* writableNow(github, plan.provisions.map(({ job }) => job))

  // Every name the plan needs, reserved in one statement before any GitHub or Kubernetes call.
  const names = yield* reserveNames(go, serially)

  // Groups go concurrently (GitHub and the API server are the slow part); inside a group the jobs go in order, and
  // after a failure the rest of the group waits for its back-off: one failed worker per group per attempt, and
  // the group's unused reservations are given back in the same step that records the failure.
  const groups = new Map<string, Array<{ readonly job: Job; readonly name: string }>>()
  for (const job of go) {
    const name = names.get(job.job_id)
    if (name === undefined) continue
    const key = jobGroupKey(job)
    // appended in place: copying the group's list per job made a burst's grouping quadratic in the group's size
    const members = groups.get(key)
    if (members === undefined) groups.set(key, [{ job, name }])
    else members.push({ job, name })
  }
  let provisioned = 0
  let failed = 0
  const createdIn = new Map<string, number>()
  const jobIds: Array<number> = []
  const provision = provisioner({ github, kube, settings, authenticate })
  // the boards a pod must avoid, once per pool rather than once per runner
  const avoided = new Map<string, ReadonlyArray<string>>()
  const avoidIn = (pool: string) => {
    const known = avoided.get(pool)
    if (known !== undefined) return known
    const nodes = quarantinedNodes(boards, pool)
    avoided.set(pool, nodes)
    return nodes
  }
  yield* Effect.forEach(
    groups.values(),
    (members) =>
      Effect.gen(function*() {
        for (const [i, { job, name }] of members.entries()) {
          const outcome = yield* provision(job, name, avoidIn(job.k8s_pool))
          if (outcome._tag === "provisioned") {
            provisioned++
            createdIn.set(job.k8s_pool, (createdIn.get(job.k8s_pool) ?? 0) + 1)
            jobIds.push(job.job_id)
            continue
          }
          failed++
          yield* recordFailure(job, name, outcome.message, members.slice(i + 1).map((m) => m.name), serially)
          return
        }
      }),
    { concurrency: settings.provisionConcurrency, discard: true }
  )
  // the gauges show the boards as this cycle left them, not as it found them
  if (createdIn.size > 0) yield* recordCapacity(withCreatedPods(capacity, createdIn))
  // asked once the writes of this cycle are answered, so the gap they started is counted
  const retryAt = yield* earliestWrite(github, deferred)
  yield* Effect.logDebug("demand matched").pipe(
    Effect.annotateLogs({ demand: demand.length, planned: plan.provisions.length, provisioned, failed, deferred: deferred.length })
  )
  return { provisioned, failed, jobIds, retryAt } satisfies MatchResult
})

/**
 * The planned jobs whose GitHub writes can start now (`go`, in plan order), and one job of each installation
 * left for a later cycle (`deferred`). Decided per installation, across its groups, before any name is reserved:
 * an installation whose next write would wait gets nothing this cycle; one whose writes are spaced gets as many
 * jobs as it could start writes now (`startNow`: what is left of its burst; a later one would wait a gap inside
 * the cycle); one whose writes are not spaced (the in-memory GitHub) gets all. A job left behind stays pending
 * in its place in the queue.
 */
const writableNow = Effect.fnUntraced(function*(github: Context.Tag.Service<typeof Github>, planned: ReadonlyArray<Job>) {
  // how many more jobs each installation may start in this cycle
  const allowance = new Map<number, number>()
  const go: Array<Job> = []
  const deferredBy = new Map<number, Job>()
  for (const job of planned) {
    let left = allowance.get(job.installation_id)
    if (left === undefined) {
      left = (yield* github.writeWait({ installationId: job.installation_id, entityType: job.entity_type })).startNow
    }
    if (left > 0) {
      go.push(job)
      allowance.set(job.installation_id, left - 1)
    } else {
      allowance.set(job.installation_id, 0)
      if (!deferredBy.has(job.installation_id)) deferredBy.set(job.installation_id, job)
    }
  }
  return { go, deferred: [...deferredBy.values()] }
})

/** The earliest time one of the deferred jobs' installations can write again; undefined when none was deferred. */
const earliestWrite = Effect.fnUntraced(function*(github: Context.Tag.Service<typeof Github>, deferred: ReadonlyArray<Job>) {
  if (deferred.length === 0) return undefined
  const now = yield* Clock.currentTimeMillis
  let earliest = Number.POSITIVE_INFINITY
  for (const job of deferred) {
    const wait = yield* github.writeWait({ installationId: job.installation_id, entityType: job.entity_type })
    earliest = Math.min(earliest, now + wait.waitMs)
  }
  return earliest
})

/** A capacity reading with the pods created since counted as holding their slots. */
export const withCreatedPods = (
  capacity: ReadonlyMap<string, PoolCapacity>,
  created: ReadonlyMap<string, number>
): ReadonlyMap<string, PoolCapacity> =>
  new Map([...capacity].map(([pool, c]) => {
    const n = created.get(pool) ?? 0
    return [pool, { ...c, active: c.active + n, available: c.available - n }]
  }))

const failBannedJobs = Effect.fn("Scheduler.failBannedJobs")(function*(jobs: ReadonlyArray<Job>) {
  const db = yield* Db
  for (const job of jobs) {
    const failed = yield* Effect.either(db.step(db.markJobFailed(job.job_id, failureV1("entity banned"))))
    if (Either.isLeft(failed)) {
      yield* Effect.logError("could not fail a banned entity's job").pipe(Effect.annotateLogs({ ...jobLogFields(job), error: failed.left.message }))
    } else {
      yield* Effect.logInfo("job failed: entity banned").pipe(Effect.annotateLogs(jobLogFields(job)))
    }
  }
})

/**
 * The worker row a reservation writes; `image` is what the pod will pull (see `resolveImage`), `cluster` where its
 * pool's boards live (so each cluster's phases reconcile their own workers).
 */
const workerFor = (job: Job, podName: string, image: string, cluster: string): NewWorker => ({
  pod_name: podName,
  provider: job.provider,
  entity_id: job.entity_id,
  entity_name: job.entity_name,
  entity_type: job.entity_type,
  installation_id: job.installation_id,
  // Personal accounts get repo-scoped runners, so the repository is part of where the runner lives.
  repo_full_name: runnerRepoOf(job),
  job_labels: job.job_labels,
  k8s_pool: job.k8s_pool,
  k8s_image: image,
  cluster
})

/**
 * A unique name for every job, reserved as pending workers in one step (one statement); a name that is taken
 * gets a fresh one in another round, up to `MAX_NAME_ATTEMPTS` rounds. Returns the job ids' names; a job left
 * out (the store failed, or its rounds ran out) is served by a later cycle.
 */
const reserveNames = Effect.fnUntraced(function*(jobs: ReadonlyArray<Job>, serially: Serially) {
  const db = yield* Db
  const kube = yield* Kube
  const settings = yield* SchedulerSettings
  const names = new Map<number, string>()
  let waiting = jobs
  for (let attempt = 1; attempt <= MAX_NAME_ATTEMPTS && waiting.length > 0; attempt++) {
    // distinct within the round, so a refused name is exactly one job's
    const round: Array<{ readonly job: Job; readonly worker: NewWorker }> = []
    const inRound = new Set<string>()
    const next: Array<Job> = []
    for (const job of waiting) {
      const name = settings.runnerPrefix + (yield* settings.runnerSuffix)
      if (inRound.has(name)) next.push(job)
      else {
        inRound.add(name)
        // the rule's image with the configured registry in front when it names none
        round.push({ job, worker: workerFor(job, name, resolveImage(job.k8s_image, settings.runnerConfig.imageRegistry), kube.clusterOf(job.k8s_pool)) })
      }
    }
    const taken = yield* Effect.either(serially(db.step(db.addWorkers(round.map((r) => r.worker)))))
    if (Either.isLeft(taken)) {
      yield* Effect.logError("cannot reserve runner names").pipe(Effect.annotateLogs({ runners: waiting.length, error: taken.left.message }))
      return names
    }
    const refused = new Set(taken.right)
    for (const { job, worker } of round) {
      if (refused.has(worker.pod_name)) next.push(job)
      else names.set(job.job_id, worker.pod_name)
    }
    waiting = next
  }
  for (const job of waiting) {
    yield* Effect.logError("runner name reservation exhausted its retries").pipe(Effect.annotateLogs(jobLogFields(job)))
  }
  return names
})

/**
 * A failed provisioning: the worker is failed with `pod_allocation_failure` (what the back-off counts), and the
 * group's reservations it will not use this cycle are given back, in one step of their own. The failure stands
 * whatever the rest of the cycle does.
 */
const recordFailure = Effect.fnUntraced(function*(
  job: Job,
  name: string,
  message: string,
  unused: ReadonlyArray<string>,
  serially: Serially
) {
  const db = yield* Db
  const info = failureV2("pod_allocation_failure", { pod_message: message })
  yield* serially(db.step(Effect.zipRight(db.markWorkerFailed(name, null, info, null), db.releaseWorkers(unused)))).pipe(
    Effect.catchAll((e) => Effect.logError("could not record a failed provisioning").pipe(Effect.annotateLogs({ ...jobLogFields(job), pod: name, error: e.message })))
  )
})

type Outcome = { readonly _tag: "provisioned" } | { readonly _tag: "failed"; readonly message: string }

const PROVISIONED: Outcome = { _tag: "provisioned" }

/** What provisioning needs, read once per cycle rather than once per runner. */
export interface Provisioning {
  readonly github: Context.Tag.Service<typeof Github>
  readonly kube: Context.Tag.Service<typeof Kube>
  readonly settings: Context.Tag.Service<typeof SchedulerSettings>
  readonly authenticate: Authenticate
}

/**
 * One runner whose name is reserved: authenticate, ensure the org's runner group, get a JIT config, and create the
 * pod. A failure is returned with its message (the caller records it); the job stays pending and is served by a
 * later attempt.
 *
 * A burst runs it hundreds of times, so it is plain steps (no generator, no Effect.fn stack traces) inside one span
 * per runner, which carries the job's id.
 */
export const provisioner = ({ authenticate, github, kube, settings }: Provisioning) =>
(job: Job, name: string, avoidNodes: ReadonlyArray<string> = []): Effect.Effect<Outcome> => {
  const subject = {
    installationId: job.installation_id,
    entityType: job.entity_type,
    entityId: job.entity_id,
    entityName: job.entity_name,
    repoFullName: job.repo_full_name
  }
  const request = { runnerName: name, labels: job.job_labels }
  const image = resolveImage(job.k8s_image, settings.runnerConfig.imageRegistry)
  let jit: JitRunner | undefined
  const steps = authenticate(subject).pipe(
    Effect.flatMap((ref) =>
      job.entity_type === "Organization"
        ? Effect.flatMap(
          github.ensureRunnerGroup(ref, job.entity_name, settings.runnerGroup),
          (groupId) => github.createJitConfigOrg(ref, job.entity_name, groupId, request)
        )
        : github.createJitConfigRepo(ref, job.repo_full_name, request)
    ),
    Effect.flatMap((runner) => {
      jit = runner
      return kube.createRunnerPod({
        name,
        jitConfig: runner.jitConfig,
        image,
        pool: job.k8s_pool,
        entity: { type: job.entity_type, id: job.entity_id, name: job.entity_name },
        installationId: job.installation_id,
        ...(avoidNodes.length === 0 ? {} : { avoidNodes })
      })
    })
  )
  const succeeded = Effect.zipRight(
    recordQueueWait(job),
    Effect.as(logInfoWith("runner provisioned", () => ({ ...jobLogFields(job), pod: name, pool: job.k8s_pool })), PROVISIONED)
  )
  const failedWith = (error: Effect.Effect.Error<typeof steps>) =>
    Effect.gen(function*() {
      const message = error._tag === "PodAlreadyExists" ? `createPod: a pod named ${error.podName} already exists` : error.message
      yield* Effect.logWarning("runner provisioning failed").pipe(Effect.annotateLogs({ ...jobLogFields(job), pod: name, error: message }))
      // GitHub already registered the runner when the pod could not be created: remove it now rather than leave it.
      const registered = jit as JitRunner | undefined
      if (registered !== undefined) {
        const ref = { installationId: job.installation_id, entityType: job.entity_type }
        yield* (job.entity_type === "Organization"
          ? github.deleteRunnerOrg(ref, job.entity_name, registered.runnerId)
          : github.deleteRunnerRepo(ref, job.repo_full_name, registered.runnerId)
        ).pipe(Effect.catchAll((e) => Effect.logWarning("could not remove the runner of a failed provisioning").pipe(Effect.annotateLogs({ ...jobLogFields(job), pod: name, error: e.message }))))
      }
      // The message names the step and GitHub's or the API server's answer; the layers keep secrets out of it.
      return { _tag: "failed", message } satisfies Outcome as Outcome
    })
  return Effect.matchEffect(steps, { onFailure: failedWith, onSuccess: () => succeeded }).pipe(
    leanSpan("Scheduler.provision", {
      // so a trace backend finds the provisioning of a job from the job's id (and the delivery's trace from it);
      // given when the span is made, which costs no steps of its own
      attributes: { "job.id": job.job_id, "entity.id": job.entity_id, "k8s.pool": job.k8s_pool }
    })
  )
}
