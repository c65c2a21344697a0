import { Clock, Duration, Effect, Either } from "effect"
import { type BoardNode, unreachableForMs } from "../../domain/Board.ts"
import type { FailureInfoV2, FailureReason } from "../../domain/FailureInfo.ts"
import { imagePullFailure, type Pod } from "../../domain/Pod.ts"
import { isActive } from "../../domain/Status.ts"
import type { Worker } from "../../domain/Worker.ts"
import { podLogFields, workerLogFields } from "../../observability/logFields.ts"
import { Db } from "../../services/Db.ts"
import { Github, type GithubRunner } from "../../services/Github.ts"
import { Kube } from "../../services/Kube.ts"
import type { Authenticate } from "../auth.ts"
import { classifyWorker, type HealthLimits, needsRunnerView } from "../healthChecks.ts"
import { SchedulerSettings } from "../settings.ts"
import { guardedOr, type SchedulerState } from "../state.ts"
import { deleteRunner, listRunners, type RunnerListings, type RunnerScope, scopeOf } from "./runnerScope.ts"

const ms = Duration.toMillis

/** What phase 3 did: the workers it failed, and GitHub's listings for phase 4 (less the runners it deleted). */
export interface HealthCheckResult {
  /** pod names of the workers failed by their health check */
  readonly failed: ReadonlyArray<string>
  readonly listed: RunnerListings
}

export const noHealthChecks: HealthCheckResult = { failed: [], listed: new Map() }

/** A listing as phase 3 keeps it: a runner it deletes is taken out, so phase 4 does not delete it again. */
interface MutableListing {
  readonly scope: RunnerScope
  readonly runners: Map<string, GithubRunner>
}

/**
 * Phase 3: classify every active worker that has a pod; fail the unhealthy ones after deleting their runner.
 * `ended` holds the scopes whose workers phases 1-2 ended: they are listed too, so phase 4 can clean them.
 */
export const healthChecks = Effect.fn("Scheduler.healthChecks")(function*(
  state: SchedulerState,
  authenticate: Authenticate,
  pods: ReadonlyMap<string, Pod>,
  workers: ReadonlyArray<Worker>,
  ended: ReadonlySet<string>
) {
  const db = yield* Db
  const github = yield* Github
  const settings = yield* SchedulerSettings
  const now = yield* Clock.currentTimeMillis
  const limits: HealthLimits = {
    registrationMs: ms(settings.timeouts.registration),
    idleMs: ms(settings.timeouts.idle),
    podPendingMs: ms(settings.timeouts.podPending),
    nodeUnreachableMs: ms(settings.timeouts.nodeUnreachable)
  }
  const refreshMs = ms(settings.timeouts.runnerListRefresh)
  // Which runners have a job running on them, as the webhook (or a poll) told us; asked only when some running
  // worker is old enough for its verdict to depend on it.
  const someRunningWorkerIsOld = workers.some((w) =>
    w.status === "running" && (w.running_at === null || now - w.running_at.getTime() >= limits.registrationMs)
  )
  const busyPods: ReadonlySet<string> = someRunningWorkerIsOld ? new Set(yield* db.getRunningJobPods) : new Set()
  const boards = yield* boardsOfActivePods(workers, pods)
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
    jobActiveOnPod: busyPods.has(worker.pod_name),
    imagePullFailed: worker.status === "pending" && imagePullFailure(pod) !== undefined,
    nodeUnreachableMs: pod.nodeName === null || !boards.has(pod.nodeName) ? 0 : unreachableForMs(boards.get(pod.nodeName)!, now)
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
    // On failure the whole scope is skipped, and phase 4 skips it too (it is not in the listings).
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
  const listed = new Map<string, MutableListing>()
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
    listed.set(scope.key, { scope, runners: new Map(result.right.map((r) => [r.name, r])) })
  }

  const failed: Array<string> = []
  for (const { scope, workers: ws } of groups.values()) {
    const cached = listed.get(scope.key)
    for (const { pod, worker } of ws) {
      const base = ageOf(worker, pod)
      // Not listed: nothing about this worker depends on its runner (it waits or is healthy whatever GitHub says),
      // or GitHub could not be asked, and then it is judged next cycle. Never fail a worker blind.
      if (cached === undefined) continue
      // One worker's trouble (a failed query, say) must not stop the checks of the others.
      const wasFailed = yield* guardedOr("health check", Effect.gen(function*() {
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
            yield* Effect.logDebug("worker health").pipe(
              Effect.annotateLogs({ ...workerLogFields(worker), verdict: decision._tag, why: decision.why })
            )
            return false
          case "Unexpected":
            yield* Effect.logError("health check met a worker in an unexpected status").pipe(
              Effect.annotateLogs({ ...workerLogFields(worker), status: decision.status })
            )
            return false
          case "Fail":
            return yield* failAndCleanup(worker, pod, cached, runner, decision.reason, pod.nodeName === null ? undefined : boards.get(pod.nodeName))
        }
      }), false)
      if (wasFailed) failed.push(worker.pod_name)
    }
  }
  return { failed, listed } satisfies HealthCheckResult
})

/**
 * The boards the active workers' pods are on, by name, from one node listing; asked only when some active pod is
 * on a node. When the nodes cannot be listed every node counts as reachable this cycle: never fail a worker blind.
 */
const boardsOfActivePods = Effect.fn("Scheduler.boardsOfActivePods")(function*(
  workers: ReadonlyArray<Worker>,
  pods: ReadonlyMap<string, Pod>
) {
  const kube = yield* Kube
  const placed = workers.some((w) => isActive(w.status) && (pods.get(w.pod_name)?.nodeName ?? null) !== null)
  if (!placed) return new Map<string, BoardNode>()
  const listed = yield* Effect.either(kube.listBoards)
  if (Either.isLeft(listed)) {
    yield* Effect.logWarning("cannot list the boards; node checks skipped this cycle").pipe(
      Effect.annotateLogs({ error: listed.left.message })
    )
    return new Map<string, BoardNode>()
  }
  return new Map(listed.right.map((b) => [b.name, b]))
})

/** The node's conditions for `failure_info`, so an operator sees what the node controller said. */
const nodeFailure = (node: BoardNode): NonNullable<FailureInfoV2["node"]> => ({
  name: node.name,
  conditions: node.conditions.map((c) => ({
    type: c.type,
    status: c.status,
    reason: c.reason,
    message: c.message,
    ...(c.lastTransitionTime === null ? {} : { last_transition: c.lastTransitionTime.toISOString().replace(/\.\d{3}Z$/, "Z") })
  }))
})

/**
 * Deletes the GitHub runner first: if GitHub refuses (busy, or any error), the worker is left alone until the
 * next cycle, so we never kill a pod whose runner may be running a job. Then the worker is failed with full
 * diagnostics and the pod is stopped through its active deadline (it stays listed for phase 5), or deleted when
 * it was never placed on a node. True when this check moved the worker's row to failed.
 */
const failAndCleanup = Effect.fn("Scheduler.failAndCleanup")(function*(
  worker: Worker,
  pod: Pod,
  cached: MutableListing,
  runner: GithubRunner | undefined,
  reason: FailureReason,
  node: BoardNode | undefined
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
      return false
    }
    cached.runners.delete(runner.name)
  }
  const collected = yield* kube.collectFailureInfo(pod, reason)
  const info = reason === "node_unreachable" && node !== undefined ? { ...collected, node: nodeFailure(node) } : collected
  const at = new Date(yield* Clock.currentTimeMillis)
  const changed = yield* db.step(db.markWorkerFailed(worker.pod_name, pod.nodeName ?? worker.k8s_node, info, at))
  yield* Effect.logWarning("worker failed its health check").pipe(Effect.annotateLogs({ ...workerLogFields(worker), reason }))
  // The active deadline counts from the pod's start on a node: a pod never placed on one would stay Pending (and
  // hold a slot in the capacity count) forever, so it is deleted instead; its diagnostics are already stored. A
  // pod on an unreachable node is deleted with grace 0: a kubelet that is gone honours neither a deadline nor a
  // graceful deletion.
  const stop = reason === "node_unreachable"
    ? kube.deletePod(pod.name, { gracePeriodSeconds: 0 })
    : pod.nodeName === null
    ? kube.deletePod(pod.name)
    : kube.killPod(pod.name)
  yield* stop.pipe(
    Effect.catchAll((e) => Effect.logError("could not stop the pod; the worker is already failed").pipe(Effect.annotateLogs({ ...podLogFields(pod), error: e.message })))
  )
  return changed
})
