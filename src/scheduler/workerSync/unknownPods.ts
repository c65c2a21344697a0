import { Clock, Duration, Effect, Either, Metric } from "effect"
import { holdsSlot, type Pod } from "../../domain/Pod.ts"
import { isTerminal } from "../../domain/Status.ts"
import type { Worker } from "../../domain/Worker.ts"
import { orphanPodsDeleted } from "../../observability/metrics.ts"
import { podLogFields } from "../../observability/logFields.ts"
import { Db } from "../../services/Db.ts"
import { Github, type GithubRunner } from "../../services/Github.ts"
import { Kube } from "../../services/Kube.ts"
import type { Authenticate } from "../auth.ts"
import { ownsRunnerName, SchedulerSettings } from "../settings.ts"
import { deleteRunner, listRunners, type RunnerListings, type RunnerScope, scopeOf } from "./runnerScope.ts"

/** The pod label that names the entity a runner pod was made for (set by the pod spec). */
const ENTITY_ID_LABEL = "riseproject.dev/entity_id"

/**
 * The sweep of pods no row knows (after phase 4). A worker row is committed before its pod is created, so such a
 * pod is not ours in the usual course; it is what a crash left behind under the one-transaction cycle of earlier
 * versions (a rolling upgrade), or a row lost with a restored database. Phase 1 handles the opposite (a row without
 * its pod). A runner pod with our prefix, no worker row in any status, and older than the grace
 * (`SCHEDULER_ORPHAN_POD_GRACE`, 2 min) is deleted, after its GitHub runner, by the rules of the other clean-ups:
 * - its runner is looked for in the scopes listed this cycle, else in the scopes of the entity's known workers and
 *   active jobs (the pod's entity label says which); phase 4 already deleted an idle one of a listed scope;
 * - a busy runner, or one GitHub refuses to delete, keeps its pod until a later cycle;
 * - no runner in the scopes asked: the pod goes;
 * - no scope could be asked (none known, or GitHub did not answer): a pod that is not running goes (it cannot be
 *   running a job); a running one waits until it is older than the idle timeout, the longest a runner of ours may
 *   sit without a job, and then goes too, so it is never kept forever.
 * The same goes for a pod whose row is finished (completed or failed, longer ago than the grace) while the pod
 * still holds a board: a crash while the pod was being created can let phase 1 of the next cycle end the row
 * before the API server has made the pod.
 * Returns the names of the pods it deleted.
 */
export const sweepUnknownPods = Effect.fn("Scheduler.sweepUnknownPods")(function*(
  authenticate: Authenticate,
  pods: ReadonlyMap<string, Pod>,
  workers: ReadonlyArray<Worker>,
  listed: RunnerListings,
  runnersDeleted: ReadonlyArray<string>
) {
  const db = yield* Db
  const github = yield* Github
  const kube = yield* Kube
  const settings = yield* SchedulerSettings
  const now = yield* Clock.currentTimeMillis
  const graceMs = Duration.toMillis(settings.timeouts.orphanPodGrace)
  const known = new Map(workers.map((w) => [w.pod_name, w]))
  const oldEnough = (p: Pod) => ownsRunnerName(settings, p.name) && now - p.creationTime.getTime() >= graceMs
  const candidates = [...pods.values()].filter((p) => oldEnough(p) && !known.has(p.name))
  // A finished row whose pod still holds a board: its pod was created after the row ended (a crash while the pod
  // was being created, and phase 1 of the next cycle ran first). Nothing else stops that pod.
  const outlived = [...pods.values()].filter((p) => {
    const w = known.get(p.name)
    return w !== undefined && oldEnough(p) && isTerminal(w.status) && holdsSlot(p.phase) &&
      now - (w.completed_at ?? w.updated_at).getTime() >= graceMs
  })
  const deleted: Array<string> = []
  if (candidates.length === 0 && outlived.length === 0) return deleted
  // The reconcile rows hold active and recent workers only: an old finished row also knows its pod.
  const withRow = candidates.length === 0 ? new Set<string>() : yield* db.knownPodNames(candidates.map((p) => p.name))
  const unknown = [
    ...candidates.filter((p) => !withRow.has(p.name)).map((pod) => ({ pod, reason: "no_row" as const })),
    ...outlived.map((pod) => ({ pod, reason: "row_finished" as const }))
  ]
  if (unknown.length === 0) return deleted

  const deletedRunners = new Set(runnersDeleted)
  const inListings = (name: string): GithubRunner | undefined => {
    for (const l of listed.values()) {
      const r = l.runners.get(name)
      if (r !== undefined) return r
    }
    return undefined
  }
  // Scopes of the entity's known workers and active jobs, by entity id: where its runners may be registered.
  const scopesByEntity = new Map<number, Map<string, RunnerScope>>()
  const addScope = (scope: RunnerScope) => {
    const m = scopesByEntity.get(scope.entityId) ?? new Map<string, RunnerScope>()
    m.set(scope.key, scope)
    scopesByEntity.set(scope.entityId, m)
  }
  for (const w of workers) addScope(scopeOf(w))
  for (const j of yield* db.getActiveJobs) addScope(scopeOf({ ...j, repo_full_name: j.entity_type === "User" ? j.repo_full_name : null }))
  // Scopes listed here, so that two pods of one entity cost one listing.
  const extra = new Map<string, ReadonlyMap<string, GithubRunner> | null>()
  const listScope = (scope: RunnerScope) =>
    Effect.gen(function*() {
      if (extra.has(scope.key)) return extra.get(scope.key)!
      const auth = yield* Effect.either(authenticate({
        installationId: scope.ref.installationId,
        entityType: scope.ref.entityType,
        entityId: scope.entityId,
        entityName: scope._tag === "Org" ? scope.org : scope.owner,
        repoFullName: scope._tag === "Repo" ? scope.repo : undefined
      }))
      const result = Either.isLeft(auth)
        ? null
        : yield* listRunners(github, scope, settings.runnerGroup, settings.runnerPrefix).pipe(
          Effect.map((rs): ReadonlyMap<string, GithubRunner> | null => new Map(rs.map((r) => [r.name, r]))),
          Effect.catchAll((e) =>
            Effect.as(Effect.logWarning("cannot list runners for a pod no row knows").pipe(Effect.annotateLogs({ scope: scope.key, error: e.message })), null)
          )
        )
      extra.set(scope.key, result)
      return result
    })

  for (const { pod, reason } of unknown) {
    const fields = { ...podLogFields(pod), phase: pod.phase, age_s: Math.round((now - pod.creationTime.getTime()) / 1000), reason }
    let verdict: "delete" | "keep" = "delete"
    let why = "no runner registered"
    const listedRunner = inListings(pod.name)
    if (listedRunner !== undefined) {
      // phase 4 tried it: deleted, or GitHub refused (busy)
      if (!deletedRunners.has(pod.name)) [verdict, why] = ["keep", "its runner could not be deleted (busy?); next cycle"]
      else why = "its runner was deleted"
    } else {
      const entityId = Number(pod.labels[ENTITY_ID_LABEL] ?? Number.NaN)
      const scopes = [...(scopesByEntity.get(entityId)?.values() ?? [])].filter((s) => !listed.has(s.key))
      let asked = listed.size > 0 && [...listed.values()].some((l) => l.scope.entityId === entityId)
      let found: { readonly scope: RunnerScope; readonly runner: GithubRunner } | undefined
      for (const scope of scopes) {
        const runners = yield* listScope(scope)
        if (runners === null) continue
        asked = true
        const runner = runners.get(pod.name)
        if (runner !== undefined) {
          found = { scope, runner }
          break
        }
      }
      if (found !== undefined) {
        if (found.runner.busy) [verdict, why] = ["keep", "its runner is busy; next cycle"]
        else {
          const removed = yield* Effect.either(deleteRunner(github, found.scope, found.runner.id))
          if (Either.isLeft(removed)) [verdict, why] = ["keep", `GitHub did not delete its runner (${removed.left.message}); next cycle`]
          else why = "its runner was deleted"
        }
      } else if (!asked) {
        const idleMs = Duration.toMillis(settings.timeouts.idle)
        if (pod.phase === "Running" && now - pod.creationTime.getTime() < idleMs) {
          [verdict, why] = ["keep", "its runner scope is unknown and it is running; kept until the idle timeout"]
        } else why = "its runner scope is unknown"
      }
    }
    if (verdict === "keep") {
      yield* Effect.logWarning("a pod no worker row knows is kept for now").pipe(Effect.annotateLogs({ ...fields, why }))
      continue
    }
    yield* kube.deletePod(pod.name).pipe(
      Effect.tap(() => Effect.sync(() => deleted.push(pod.name))),
      Effect.tap(() => Metric.increment(Metric.tagged(orphanPodsDeleted, "reason", reason))),
      Effect.tap(() => Effect.logWarning("deleted a runner pod that no worker row knows").pipe(Effect.annotateLogs({ ...fields, why }))),
      Effect.catchAll((e) => Effect.logError("could not delete a pod no worker row knows").pipe(Effect.annotateLogs({ ...fields, error: e.message })))
    )
  }
  return deleted
})
