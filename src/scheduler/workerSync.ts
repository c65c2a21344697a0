import { Clock, Duration, Effect, Either } from "effect"
import type { FailureReason } from "../domain/FailureInfo.ts"
import { finishedAt, isTerminal as isTerminalPhase, type Pod, runnerStartedAt } from "../domain/Pod.ts"
import { isActive, isTerminal } from "../domain/Status.ts"
import type { Worker } from "../domain/Worker.ts"
import { Db } from "../services/Db.ts"
import { podLogFields, workerLogFields } from "../observability/logFields.ts"
import { Github, type GithubRunner, type InstallationRef } from "../services/Github.ts"
import { Kube } from "../services/Kube.ts"
import type { Authenticate } from "./auth.ts"
import { classifyWorker, type HealthLimits, needsRunnerView } from "./healthChecks.ts"
import { ownsRunnerName, SchedulerSettings } from "./settings.ts"
import { guarded, type SchedulerState } from "./state.ts"

/**
 * The five phases of the worker sync (reference §5, `syncWorkersState`), run in order inside the locked cycle:
 * 1. orphan sweep, 2. pod phase -> worker status, 3. health checks, 4. GitHub-side cleanup, 5. deletion of
 * finished pods. One pod listing serves all phases; the worker rows are re-read before phases 3 and 4 so each
 * sees the previous phases' writes. Every write is its own `Db.step`, and a phase that fails unexpectedly is
 * logged while the next one still runs.
 */

/** Where a worker's runner is registered: the org's runner group, or (personal accounts) one repository. */
export type RunnerScope =
  | {
    readonly _tag: "Org"
    readonly key: string
    readonly ref: InstallationRef
    readonly entityId: number
    readonly org: string
  }
  | {
    readonly _tag: "Repo"
    readonly key: string
    readonly ref: InstallationRef
    readonly entityId: number
    readonly owner: string
    readonly repo: string
  }

export const scopeOf = (w: Pick<Worker, "installation_id" | "entity_type" | "entity_id" | "entity_name" | "repo_full_name">): RunnerScope => {
  const ref: InstallationRef = { installationId: w.installation_id, entityType: w.entity_type }
  return w.entity_type === "Organization"
    ? { _tag: "Org", key: `org|${w.installation_id}|${w.entity_id}|${w.entity_name}`, ref, entityId: w.entity_id, org: w.entity_name }
    : {
      _tag: "Repo",
      key: `repo|${w.installation_id}|${w.entity_id}|${w.entity_name}|${w.repo_full_name ?? ""}`,
      ref,
      entityId: w.entity_id,
      owner: w.entity_name,
      repo: w.repo_full_name ?? ""
    }
}

/** The runners GitHub listed for a scope this cycle, by name. Deleted ones are taken out. */
type RunnerCache = Map<string, { readonly scope: RunnerScope; readonly runners: Map<string, GithubRunner> }>

const ms = Duration.toMillis

export const syncWorkers = Effect.fn("Scheduler.syncWorkers")(function*(state: SchedulerState, authenticate: Authenticate) {
  const db = yield* Db
  const kube = yield* Kube
  const settings = yield* SchedulerSettings
  const lookbackSeconds = ms(settings.timeouts.reconcileLookback) / 1000

  // Without the pod listing no phase can tell a vanished pod from an unknown one: skip them all this cycle.
  const podList = yield* Effect.either(kube.listRunnerPods)
  if (Either.isLeft(podList)) {
    yield* Effect.logError("cannot list runner pods; worker sync skipped this cycle").pipe(Effect.annotateLogs({ error: podList.left.message }))
    return
  }
  const pods = new Map(podList.right.map((p) => [p.name, p]))

  const first = yield* db.getWorkersForReconcile(lookbackSeconds)
  // Scopes whose workers ended in phases 1-2: their runners may linger, so phase 3 lists them for phase 4.
  const ended = new Set<string>()
  const writes = { count: 0 }
  yield* guarded("phase 1 (orphan sweep)", orphanSweep(first, pods, ended, writes))
  yield* guarded("phase 2 (pod phases)", podPhaseSync(first, pods, ended, writes))

  const runnerCache: RunnerCache = new Map()
  // Phase 3 sees phases 1-2's writes: the rows are read again, unless nothing was written.
  const second = writes.count === 0 ? first : yield* db.getWorkersForReconcile(lookbackSeconds)
  yield* guarded("phase 3 (health checks)", healthChecks(state, authenticate, pods, second, ended, runnerCache))
  yield* guarded("phase 4 (GitHub cleanup)", githubCleanup(runnerCache))
  yield* guarded("phase 5 (finished pods)", deleteFinishedPods(pods))
})

/** Phase 1: an active worker whose pod is gone ends `completed` (no failure_info), as the original does. */
const orphanSweep = Effect.fn("Scheduler.orphanSweep")(function*(
  workers: ReadonlyArray<Worker>,
  pods: ReadonlyMap<string, Pod>,
  ended: Set<string>,
  writes: { count: number }
) {
  const db = yield* Db
  for (const w of workers) {
    if (!isActive(w.status) || pods.has(w.pod_name)) continue
    const changed = yield* db.step(db.markWorkerOrphaned(w.pod_name)).pipe(
      Effect.catchAll((e) => Effect.as(Effect.logError("could not mark an orphaned worker").pipe(Effect.annotateLogs({ ...workerLogFields(w), error: e.message })), false))
    )
    if (changed) {
      writes.count++
      ended.add(scopeOf(w).key)
      yield* Effect.logInfo("worker orphaned: its pod is gone").pipe(Effect.annotateLogs({ ...workerLogFields(w) }))
    }
  }
})

/** Phase 2: the pod's phase moves the worker on, with the times the containers report. */
const podPhaseSync = Effect.fn("Scheduler.podPhaseSync")(function*(
  workers: ReadonlyArray<Worker>,
  pods: ReadonlyMap<string, Pod>,
  ended: Set<string>,
  writes: { count: number }
) {
  const db = yield* Db
  const kube = yield* Kube
  for (const w of workers) {
    const pod = pods.get(w.pod_name)
    if (pod === undefined || !isActive(w.status)) continue
    const write = (() => {
      switch (pod.phase) {
        case "Running":
          return w.status === "pending" ? db.markWorkerRunning(w.pod_name, pod.nodeName, runnerStartedAt(pod)) : undefined
        case "Succeeded":
          return db.markWorkerCompleted(w.pod_name, pod.nodeName, finishedAt(pod))
        case "Failed":
          return Effect.flatMap(
            kube.collectFailureInfo(pod, "pod_failed"),
            (info) => db.markWorkerFailed(w.pod_name, pod.nodeName, info, finishedAt(pod))
          )
        case "Pending":
        case "Unknown":
          return undefined
      }
    })()
    if (write === undefined) continue
    const changed = yield* db.step(write).pipe(
      Effect.catchAll((e) => Effect.as(Effect.logError("could not record a pod phase").pipe(Effect.annotateLogs({ ...workerLogFields(w), error: e.message })), false))
    )
    if (changed) writes.count++
    if (changed && pod.phase === "Failed") ended.add(scopeOf(w).key)
  }
})

/** Phase 3: classify every active worker that has a pod; fail the unhealthy ones after deleting their runner. */
const healthChecks = Effect.fn("Scheduler.healthChecks")(function*(
  state: SchedulerState,
  authenticate: Authenticate,
  pods: ReadonlyMap<string, Pod>,
  workers: ReadonlyArray<Worker>,
  ended: ReadonlySet<string>,
  runnerCache: RunnerCache
) {
  const db = yield* Db
  const github = yield* Github
  const settings = yield* SchedulerSettings
  const now = yield* Clock.currentTimeMillis
  const limits: HealthLimits = {
    registrationMs: ms(settings.timeouts.registration),
    idleMs: ms(settings.timeouts.idle),
    podPendingMs: ms(settings.timeouts.podPending)
  }
  const refreshMs = ms(settings.timeouts.runnerListRefresh)
  // Which runners have a job running on them, as the webhook (or a poll) told us; asked only when some running
  // worker is old enough for its verdict to depend on it.
  const someRunningWorkerIsOld = workers.some((w) =>
    w.status === "running" && (w.running_at === null || now - w.running_at.getTime() >= limits.registrationMs)
  )
  const busyPods: ReadonlySet<string> = someRunningWorkerIsOld ? new Set(yield* db.getRunningJobPods) : new Set()
  const groups = new Map<string, { scope: RunnerScope; workers: Array<{ readonly worker: Worker; readonly pod: Pod }> }>()
  for (const w of workers) {
    const scope = scopeOf(w)
    if (isActive(w.status)) {
      const group = groups.get(scope.key) ?? { scope, workers: [] }
      const pod = pods.get(w.pod_name)
      if (pod !== undefined) group.workers.push({ worker: w, pod })
      groups.set(scope.key, group)
    } else if (ended.has(scope.key) && !groups.has(scope.key)) {
      groups.set(scope.key, { scope, workers: [] })
    }
  }

  const ageOf = (worker: Worker, pod: Pod) => ({
    workerStatus: worker.status,
    pendingAgeMs: now - pod.creationTime.getTime(),
    runningAgeMs: worker.running_at === null ? Number.POSITIVE_INFINITY : now - worker.running_at.getTime(),
    jobActiveOnPod: busyPods.has(worker.pod_name)
  })

  // Which scopes need GitHub's view: a worker whose verdict depends on its runner, a worker that just ended, or a
  // listing older than the refresh period (so leftovers are cleaned even while every worker is healthy).
  const toList = [...groups.values()].filter(({ scope, workers: ws }) =>
    ended.has(scope.key) ||
    now - (state.lastListed.get(scope.key) ?? state.startedAt) >= refreshMs ||
    ws.some(({ pod, worker }) => needsRunnerView(ageOf(worker, pod), limits))
  )

  // Authenticate (sequentially: a failure writes an audit row), then list concurrently.
  const authed: Array<RunnerScope> = []
  for (const { scope, workers: ws } of toList) {
    const sample = ws[0]?.worker
    const auth = yield* Effect.either(authenticate({
      installationId: scope.ref.installationId,
      entityType: scope.ref.entityType,
      entityId: scope.entityId,
      entityName: scope._tag === "Org" ? scope.org : scope.owner,
      repoFullName: scope._tag === "Repo" ? scope.repo : sample?.repo_full_name
    }))
    // On failure the whole scope is skipped, and phase 4 skips it too (it is not in the cache).
    if (Either.isRight(auth)) authed.push(scope)
  }
  const listings = yield* Effect.forEach(
    authed,
    (scope) =>
      listRunners(github, scope, settings.runnerGroup, settings.runnerPrefix).pipe(
        Effect.either,
        Effect.map((result) => ({ scope, result }))
      ),
    { concurrency: settings.githubConcurrency }
  )
  for (const { result, scope } of listings) {
    if (Either.isLeft(result)) {
      // The original cached an empty list here, and then failed healthy runners as never registered during a
      // GitHub outage. We skip the scope instead: its workers are judged next cycle.
      yield* Effect.logWarning("cannot list runners; health checks of this scope skipped").pipe(
        Effect.annotateLogs({ scope: scope.key, error: result.left.message })
      )
      continue
    }
    state.lastListed.set(scope.key, now)
    runnerCache.set(scope.key, { scope, runners: new Map(result.right.map((r) => [r.name, r])) })
  }

  for (const { scope, workers: ws } of groups.values()) {
    const cached = runnerCache.get(scope.key)
    for (const { pod, worker } of ws) {
      const base = ageOf(worker, pod)
      // Not listed: nothing about this worker depends on its runner (it waits or is healthy whatever GitHub says),
      // or GitHub could not be asked, and then it is judged next cycle. Never fail a worker blind.
      if (cached === undefined) continue
      // One worker's trouble (a failed query, say) must not stop the checks of the others.
      yield* guarded("health check", Effect.gen(function*() {
        const runner = cached.runners.get(worker.pod_name)
        // Whether a job ran on it matters only for a missing runner past the registration timeout.
        const jobRanOnPod = worker.status === "running" && runner === undefined && !base.jobActiveOnPod &&
            base.runningAgeMs >= limits.registrationMs
          ? yield* db.jobExistsForPod(worker.pod_name)
          : false
        const decision = classifyWorker({ ...base, runner, jobRanOnPod }, limits)
        switch (decision._tag) {
          case "Wait":
          case "Healthy":
            return yield* Effect.logDebug("worker health").pipe(
              Effect.annotateLogs({ ...workerLogFields(worker), verdict: decision._tag, why: decision.why })
            )
          case "Unexpected":
            return yield* Effect.logError("health check met a worker in an unexpected status").pipe(
              Effect.annotateLogs({ ...workerLogFields(worker), status: decision.status })
            )
          case "Fail":
            return yield* failAndCleanup(worker, pod, cached, runner, decision.reason)
        }
      }))
    }
  }
})

/** Org: the runner group (found or created), every runner in it. Personal: the repository's runners with our prefix. */
const listRunners = (github: Github["Type"], scope: RunnerScope, groupName: string, prefix: string) =>
  scope._tag === "Org"
    ? Effect.flatMap(github.ensureRunnerGroup(scope.ref, scope.org, groupName), (groupId) => github.listRunnersOrgGroup(scope.ref, scope.org, groupId))
    : github.listRunnersRepo(scope.ref, scope.repo, { namePrefix: prefix })

const deleteRunner = (github: Github["Type"], scope: RunnerScope, runnerId: number) =>
  scope._tag === "Org" ? github.deleteRunnerOrg(scope.ref, scope.org, runnerId) : github.deleteRunnerRepo(scope.ref, scope.repo, runnerId)

/**
 * Deletes the GitHub runner first: if GitHub refuses (busy, or any error), the worker is left alone until the
 * next cycle, so we never kill a pod whose runner may be running a job. Then the worker is failed with full
 * diagnostics and the pod is stopped through its active deadline (it stays listed for phase 5), or deleted when
 * it was never placed on a node.
 */
const failAndCleanup = Effect.fn("Scheduler.failAndCleanup")(function*(
  worker: Worker,
  pod: Pod,
  cached: { readonly scope: RunnerScope; readonly runners: Map<string, GithubRunner> },
  runner: GithubRunner | undefined,
  reason: FailureReason
) {
  const db = yield* Db
  const github = yield* Github
  const kube = yield* Kube
  if (runner !== undefined) {
    const deleted = yield* Effect.either(deleteRunner(github, cached.scope, runner.id))
    if (Either.isLeft(deleted)) {
      yield* Effect.logWarning("aborting cleanup: GitHub did not delete the runner; retrying next cycle").pipe(
        Effect.annotateLogs({ ...workerLogFields(worker), reason, error: deleted.left.message })
      )
      return
    }
    cached.runners.delete(runner.name)
  }
  const info = yield* kube.collectFailureInfo(pod, reason)
  const at = new Date(yield* Clock.currentTimeMillis)
  yield* db.step(db.markWorkerFailed(worker.pod_name, pod.nodeName ?? worker.k8s_node, info, at))
  yield* Effect.logWarning("worker failed its health check").pipe(Effect.annotateLogs({ ...workerLogFields(worker), reason }))
  // The active deadline counts from the pod's start on a node: a pod never placed on one would stay Pending (and
  // hold a slot in the capacity count) forever, so it is deleted instead; its diagnostics are already stored.
  const stop = pod.nodeName === null ? kube.deletePod(pod.name) : kube.killPod(pod.name)
  yield* stop.pipe(
    Effect.catchAll((e) => Effect.logError("could not stop the pod; the worker is already failed").pipe(Effect.annotateLogs({ ...podLogFields(pod), error: e.message })))
  )
})

/**
 * Phase 4: in the scopes listed this cycle, delete our runners whose worker is terminal or unknown (never
 * recorded, or finished before the lookback). Runners of pending or running workers stay.
 */
const githubCleanup = Effect.fn("Scheduler.githubCleanup")(function*(runnerCache: RunnerCache) {
  const db = yield* Db
  const github = yield* Github
  const settings = yield* SchedulerSettings
  if (runnerCache.size === 0) return
  const workers = new Map((yield* db.getWorkersForReconcile(ms(settings.timeouts.reconcileLookback) / 1000)).map((w) => [w.pod_name, w]))
  for (const { runners, scope } of runnerCache.values()) {
    for (const runner of [...runners.values()]) {
      if (!ownsRunnerName(settings, runner.name)) continue
      const worker = workers.get(runner.name)
      if (worker !== undefined && !isTerminal(worker.status)) continue
      const deleted = yield* Effect.either(deleteRunner(github, scope, runner.id))
      if (Either.isLeft(deleted)) {
        yield* Effect.logWarning("could not delete a leftover runner").pipe(Effect.annotateLogs({ runner: runner.name, ...(worker === undefined ? { pod: runner.name } : workerLogFields(worker)), error: deleted.left.message }))
      } else {
        runners.delete(runner.name)
        yield* Effect.logInfo("leftover runner deleted").pipe(
          Effect.annotateLogs({ runner: runner.name, ...(worker === undefined ? { pod: runner.name } : workerLogFields(worker)), worker: worker === undefined ? "unknown" : worker.status })
        )
      }
    }
  }
})

/** Phase 5: finished pods are kept for diagnosis, then deleted; worker rows do not matter (strays go too). */
const deleteFinishedPods = Effect.fn("Scheduler.deleteFinishedPods")(function*(pods: ReadonlyMap<string, Pod>) {
  const kube = yield* Kube
  const settings = yield* SchedulerSettings
  const now = yield* Clock.currentTimeMillis
  const graceMs = ms(settings.timeouts.deleteGrace)
  for (const pod of pods.values()) {
    if (!isTerminalPhase(pod.phase)) continue
    const finished = finishedAt(pod) ?? pod.creationTime
    if (now - finished.getTime() < graceMs) continue
    yield* kube.deletePod(pod.name).pipe(
      Effect.tap(() => Effect.logInfo("finished pod deleted").pipe(Effect.annotateLogs(podLogFields(pod)))),
      Effect.catchAll((e) => Effect.logError("could not delete a finished pod").pipe(Effect.annotateLogs({ ...podLogFields(pod), error: e.message })))
    )
  }
})
