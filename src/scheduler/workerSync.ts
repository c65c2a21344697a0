import { Duration, Effect, Either, Option } from "effect"
import type { Worker } from "../domain/Worker.ts"
import { recordClusterReadings } from "../observability/collect.ts"
import { Db } from "../services/Db.ts"
import type { Github } from "../services/Github.ts"
import { Kube, type Pod } from "../services/Kube.ts"
import type { Authenticate } from "./auth.ts"
import { SchedulerSettings } from "./settings.ts"
import { guardedOr, type SchedulerState } from "./state.ts"
import { deleteFinishedPods } from "./workerSync/finishedPods.ts"
import { githubCleanup } from "./workerSync/githubCleanup.ts"
import { healthChecks, noHealthChecks } from "./workerSync/healthCheckPhase.ts"
import { orphanSweep } from "./workerSync/orphanSweep.ts"
import { podPhaseSync } from "./workerSync/podPhaseSync.ts"
import { sweepUnknownPods } from "./workerSync/unknownPods.ts"
import { combineWrites, noWrites, type WorkerWrites } from "./workerSync/workerWrites.ts"

/**
 * The five phases of the worker sync (reference §5, `syncWorkersState`), run in order inside the locked cycle:
 * 1. orphan sweep (a row without its pod), 2. pod phase -> worker status, 3. health checks, 4. GitHub-side
 * cleanup, then the sweep of unknown pods (a pod without a row: ours), 5. deletion of finished pods (one file
 * each in `workerSync/`). One pod listing serves all phases; the worker rows are re-read
 * before phases 3 and 4 so each sees the previous phases' writes. Every write is its own `Db.step`, and a phase
 * that fails unexpectedly is logged while the next one still runs (with an empty result from the failed one).
 * Each phase returns what it did; this combines the results and hands each phase what it needs of the others.
 */

/** What one worker sync did, phase by phase. */
export interface WorkerSyncResult {
  /** phases 1 and 2 together: worker rows changed, and the runner scopes of the workers they ended */
  readonly writes: WorkerWrites
  /** phase 3: pod names of the workers failed by their health check */
  readonly failed: ReadonlyArray<string>
  /** phase 4: names of the leftover runners deleted from GitHub */
  readonly runnersDeleted: ReadonlyArray<string>
  /** the sweep after phase 4: names of the pods no worker row knew, deleted */
  readonly unknownPodsDeleted: ReadonlyArray<string>
  /** phase 5: names of the finished pods deleted */
  readonly podsDeleted: ReadonlyArray<string>
  /** the clusters whose pods could not be listed: their workers were left alone this cycle */
  readonly unreachableClusters: ReadonlyArray<string>
}

/**
 * The cluster a worker's pod is in: the one recorded when its name was reserved (its pool's cluster then), which
 * stays right for a pod already running when the config later moves its pool.
 */
const workerCluster = (worker: Worker): string => worker.cluster

/**
 * The worker sync; none when the pods could not be listed, and then no phase ran. `between` runs after phases 1-2
 * (once the rows for phase 3 are read) and after phase 3: the full cycle matches new demand there, so a job stored
 * meanwhile does not wait for the whole cycle. Phases 3-5 work from the listing and rows read before it, in which
 * the runners it provisions do not appear (as if provisioned after the cycle); phase 4 reads the rows afresh, and a
 * runner's row is written before its runner exists, so a new runner is never taken for a leftover.
 */
export const syncWorkers = Effect.fn("Scheduler.syncWorkers")(function*(
  state: SchedulerState,
  authenticate: Authenticate,
  between: Effect.Effect<void, never, Db | Github | Kube | SchedulerSettings> = Effect.void
) {
  const db = yield* Db
  const kube = yield* Kube
  const settings = yield* SchedulerSettings
  const lookbackSeconds = Duration.toMillis(settings.timeouts.reconcileLookback) / 1000

  // Without a cluster's pod listing no phase can tell a vanished pod from an unknown one: that cluster's workers
  // are left out of every phase this cycle (never taken for workers whose pods are gone), the others go on.
  const readings = yield* kube.runnerPodsByCluster
  yield* recordClusterReadings(readings)
  const unreachable = new Set<string>()
  const pods = new Map<string, Pod>()
  for (const { cluster, result } of readings) {
    if (Either.isRight(result)) for (const p of result.right) pods.set(p.name, p)
    else {
      unreachable.add(cluster)
      yield* Effect.logError("cannot list runner pods; worker sync skipped in this cluster this cycle").pipe(
        Effect.annotateLogs({ cluster, error: result.left.message })
      )
    }
  }
  if (unreachable.size === readings.length) return Option.none<WorkerSyncResult>()
  const reachable = (rows: ReadonlyArray<Worker>) =>
    unreachable.size === 0 ? rows : rows.filter((w) => !unreachable.has(workerCluster(w)))

  const first = reachable(yield* db.getWorkersForReconcile(lookbackSeconds))
  const orphaned = yield* guardedOr("phase 1 (orphan sweep)", orphanSweep(first, pods), noWrites)
  const phased = yield* guardedOr("phase 2 (pod phases)", podPhaseSync(first, pods), noWrites)
  // Scopes whose workers ended in phases 1-2: their runners may linger, so phase 3 lists them for phase 4.
  const writes = combineWrites(orphaned, phased)

  // Phase 3 sees phases 1-2's writes: the rows are read again, unless nothing was written.
  const second = writes.written === 0 ? first : reachable(yield* db.getWorkersForReconcile(lookbackSeconds))
  yield* between
  const health = yield* guardedOr("phase 3 (health checks)", healthChecks(state, authenticate, pods, second, writes.ended), noHealthChecks)
  yield* between
  const runnersDeleted = yield* guardedOr("phase 4 (GitHub cleanup)", githubCleanup(health.listed), [])
  const unknownPodsDeleted = yield* guardedOr(
    "sweep of unknown pods",
    sweepUnknownPods(authenticate, pods, second, health.listed, runnersDeleted),
    []
  )
  const gone = new Set(unknownPodsDeleted)
  const podsDeleted = yield* guardedOr("phase 5 (finished pods)", deleteFinishedPods(new Map([...pods].filter(([name]) => !gone.has(name)))), [])
  return Option.some<WorkerSyncResult>({
    writes,
    failed: health.failed,
    runnersDeleted,
    unknownPodsDeleted,
    podsDeleted,
    unreachableClusters: [...unreachable]
  })
})
