import { Clock, Duration, Effect, Either } from "effect"
import { failureV2 } from "../domain/FailureInfo.ts"
import type { BoardState } from "../domain/BoardQuarantine.ts"
import type { Job } from "../domain/Job.ts"
import { maxWorkersFor, weightFor } from "../domain/RunnerConfig.ts"
import type { NewWorker } from "../domain/Worker.ts"
import { recordCapacity, recordQueueWait } from "../observability/collect.ts"
import { jobLogFields } from "../observability/logFields.ts"
import { Db } from "../services/Db.ts"
import { Github, type JitRunner } from "../services/Github.ts"
import { Kube } from "../services/Kube.ts"
import { blockedGroups, streakLookbackMs } from "./allocationBackoff.ts"
import type { Authenticate, Serially } from "./auth.ts"
import { groupKey, planProvisioning } from "./demandPlan.ts"
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
}

const MAX_NAME_ATTEMPTS = 5

export const matchDemand = Effect.fn("Scheduler.matchDemand")(function*(
  authenticate: Authenticate,
  serially: Serially,
  boards: ReadonlyArray<BoardState> = []
) {
  const db = yield* Db
  const kube = yield* Kube
  const settings = yield* SchedulerSettings
  const none: MatchResult = { provisioned: 0, failed: 0 }

  // Capacity first: with every board taken (the usual state under a backlog) the backlog need not be read at all.
  const reading = yield* Effect.either(kube.capacity)
  if (Either.isLeft(reading)) {
    yield* Effect.logError("cannot read board capacity; no provisioning this cycle").pipe(Effect.annotateLogs({ error: reading.left.message }))
    return none
  }
  // Quarantined boards are no capacity, and a board on trial offers one slot.
  const capacity = trustedCapacity(reading.right, boards)
  yield* recordCapacity(capacity)
  if (![...capacity.values()].some((c) => c.available > 0)) return none
  const demand = yield* db.getDemand
  if (demand.length === 0) return none

  const now = yield* Clock.currentTimeMillis
  const baseMs = Duration.toMillis(settings.timeouts.allocationBackoffBase)
  const maxMs = Duration.toMillis(settings.timeouts.allocationBackoffMax)
  const streaks = yield* db.getAllocationFailures(streakLookbackMs(baseMs, maxMs) / 1000)
  const blocked = blockedGroups(streaks, now, baseMs, maxMs)

  const config = settings.runnerConfig
  const plan = planProvisioning({
    demand,
    available: new Map([...capacity.values()].map((c) => [c.pool, c.available])),
    capFor: (id) => maxWorkersFor(config, id),
    weightFor: (id) => weightFor(config, id),
    policy: config.policy,
    blocked: new Set(blocked.keys())
  })
  if (blocked.size > 0) {
    yield* Effect.logInfo("provisioning backs off after allocation failures").pipe(
      Effect.annotateLogs({ groups: [...blocked.entries()].map(([k, until]) => `${k} until ${until.toISOString()}`).join("; ") })
    )
  }

  // Groups go concurrently (GitHub and the API server are the slow part); inside a group the jobs go in order, and
  // after a failure the rest of the group waits for its back-off: one failed worker per group per attempt.
  const groups = new Map<string, Array<Job>>()
  for (const { job } of plan.provisions) {
    const key = groupKey(job.entity_id, job.job_labels)
    groups.set(key, [...(groups.get(key) ?? []), job])
  }
  let provisioned = 0
  let failed = 0
  yield* Effect.forEach(
    groups.values(),
    (jobs) =>
      Effect.gen(function*() {
        for (const job of jobs) {
          const outcome = yield* provision(job, authenticate, serially, quarantinedNodes(boards, job.k8s_pool))
          if (outcome === "provisioned") provisioned++
          if (outcome === "failed") {
            failed++
            return
          }
        }
      }),
    { concurrency: settings.githubConcurrency, discard: true }
  )
  yield* Effect.logDebug("demand matched").pipe(
    Effect.annotateLogs({ demand: demand.length, planned: plan.provisions.length, provisioned, failed })
  )
  return { provisioned, failed } satisfies MatchResult
})

type Outcome = "provisioned" | "failed" | "not_reserved"

/**
 * One runner: reserve a unique name as a pending worker (its own durable step), then authenticate, ensure the
 * org's runner group, get a JIT config, and create the pod. Any failure after the reservation marks the worker
 * failed with `pod_allocation_failure`, which is what the back-off counts; the job stays pending and is served by
 * a later attempt.
 */
export const provision = Effect.fn("Scheduler.provision")(function*(
  job: Job,
  authenticate: Authenticate,
  serially: Serially,
  avoidNodes: ReadonlyArray<string> = []
) {
  const db = yield* Db
  const github = yield* Github
  const kube = yield* Kube
  const settings = yield* SchedulerSettings

  const worker = (podName: string): NewWorker => ({
    pod_name: podName,
    provider: job.provider,
    entity_id: job.entity_id,
    entity_name: job.entity_name,
    entity_type: job.entity_type,
    installation_id: job.installation_id,
    // Personal accounts get repo-scoped runners, so the repository is part of where the runner lives.
    repo_full_name: job.entity_type === "User" ? job.repo_full_name : null,
    job_labels: job.job_labels,
    k8s_pool: job.k8s_pool,
    k8s_image: job.k8s_image
  })

  let podName: string | undefined
  for (let attempt = 1; attempt <= MAX_NAME_ATTEMPTS && podName === undefined; attempt++) {
    const candidate = settings.runnerPrefix + (yield* settings.runnerSuffix)
    const reserved = yield* Effect.either(serially(db.step(db.addWorker(worker(candidate)))))
    if (Either.isRight(reserved)) podName = candidate
    else if (reserved.left._tag === "DbError") {
      yield* Effect.logError("cannot reserve a runner name").pipe(Effect.annotateLogs({ ...jobLogFields(job), error: reserved.left.message }))
      return "not_reserved" satisfies Outcome as Outcome
    }
  }
  if (podName === undefined) {
    yield* Effect.logError("runner name reservation exhausted its retries").pipe(Effect.annotateLogs(jobLogFields(job)))
    return "not_reserved" satisfies Outcome as Outcome
  }
  const name = podName

  const subject = {
    installationId: job.installation_id,
    entityType: job.entity_type,
    entityId: job.entity_id,
    entityName: job.entity_name,
    repoFullName: job.repo_full_name
  }
  const request = { runnerName: name, labels: job.job_labels }
  let jit: JitRunner | undefined
  const steps = Effect.gen(function*() {
    const ref = yield* authenticate(subject)
    jit = job.entity_type === "Organization"
      ? yield* Effect.flatMap(
        github.ensureRunnerGroup(ref, job.entity_name, settings.runnerGroup),
        (groupId) => github.createJitConfigOrg(ref, job.entity_name, groupId, request)
      )
      : yield* github.createJitConfigRepo(ref, job.repo_full_name, request)
    yield* kube.createRunnerPod({
      name,
      jitConfig: jit.jitConfig,
      image: job.k8s_image,
      pool: job.k8s_pool,
      entity: { type: job.entity_type, id: job.entity_id, name: job.entity_name },
      ...(avoidNodes.length === 0 ? {} : { avoidNodes })
    })
  })
  const result = yield* Effect.either(steps)
  if (Either.isRight(result)) {
    yield* recordQueueWait(job)
    yield* Effect.logInfo("runner provisioned").pipe(Effect.annotateLogs({ ...jobLogFields(job), pod: name, pool: job.k8s_pool }))
    return "provisioned" satisfies Outcome as Outcome
  }

  const error = result.left
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
  yield* serially(db.step(db.markWorkerFailed(name, null, failureV2("pod_allocation_failure", { pod_message: message }), null))).pipe(
    Effect.catchAll((e) => Effect.logError("could not record a failed provisioning").pipe(Effect.annotateLogs({ ...jobLogFields(job), pod: name, error: e.message })))
  )
  return "failed" satisfies Outcome as Outcome
})

