import { Effect } from "effect"
import { finishedAt, type Pod, runnerStartedAt } from "../domain/Pod.ts"
import { Db, type WorkerMove } from "../services/Db.ts"
import type { RunnerPodChange } from "../services/Kube.ts"

/*
 * Runner pods the watch saw succeed, handed to the fast path. A succeeded pod's worker still counts as supply for
 * its group until its row says completed (`Db.getDemand`): left to phase 2 of the next full cycle, which a clean
 * end asks for only `SCHEDULER_POD_END_SPACING` after the last one, a job that arrived meanwhile looked served by
 * a runner that was gone, and waited for that cycle (the live benchmark's slowest jobs, all served by a full
 * cycle). The fast path records these ends first, as phase 2 would, then matches demand.
 */

/** The move phase 2 makes for a worker whose pod succeeded: to completed, with the times its container reports. */
export const succeededMove = (pod: Pod): WorkerMove => ({
  podName: pod.name,
  to: "completed",
  node: pod.nodeName,
  runningAt: runnerStartedAt(pod),
  completedAt: finishedAt(pod)
})

export interface SucceededPods {
  /** keeps the pod of a change that reports a succeeded pod (modified, or deleted after it succeeded) */
  readonly note: (change: RunnerPodChange) => void
  /** the pods kept since the last take, each once */
  readonly take: Effect.Effect<ReadonlyArray<Pod>>
}

export const makeSucceededPods = (): SucceededPods => {
  // by name, so a pod reported twice (modified, then deleted) is recorded once; emptied by every fast path,
  // which a clean end always asks for, so it holds no more than the ends between two cycles
  let kept = new Map<string, Pod>()
  return {
    note: (change) => {
      if (change._tag !== "Listed" && change.pod.phase === "Succeeded") kept.set(change.pod.name, change.pod)
    },
    take: Effect.sync(() => {
      const pods = [...kept.values()]
      kept = new Map()
      return pods
    })
  }
}

/**
 * Records the succeeded pods' workers as completed in one step; a worker already ended (or unknown) is left as
 * it is, so a pod the full cycle recorded first changes nothing. Returns the pods whose workers moved.
 */
export const recordSucceeded = Effect.fn("Scheduler.recordSucceeded")(function*(pods: ReadonlyArray<Pod>) {
  if (pods.length === 0) return []
  const db = yield* Db
  return yield* db.step(db.markWorkersMoved(pods.map(succeededMove)))
})
