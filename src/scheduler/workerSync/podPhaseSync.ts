import { Effect } from "effect"
import { finishedAt, type Pod, runnerStartedAt } from "../../domain/Pod.ts"
import { isActive } from "../../domain/Status.ts"
import type { Worker } from "../../domain/Worker.ts"
import { workerLogFields } from "../../observability/logFields.ts"
import { Db } from "../../services/Db.ts"
import { Kube } from "../../services/Kube.ts"
import { scopeOf } from "./runnerScope.ts"
import type { WorkerWrites } from "./workerWrites.ts"

/**
 * Phase 2: the pod's phase moves the worker on, with the times the containers report. Only a failed pod counts
 * as ended here: a succeeded one took its ephemeral runner with it.
 */
export const podPhaseSync = Effect.fn("Scheduler.podPhaseSync")(function*(
  workers: ReadonlyArray<Worker>,
  pods: ReadonlyMap<string, Pod>
) {
  const db = yield* Db
  const kube = yield* Kube
  let written = 0
  const ended = new Set<string>()
  for (const w of workers) {
    const pod = pods.get(w.pod_name)
    if (pod === undefined || !isActive(w.status)) continue
    // A pod that ran and ended between two cycles was never seen Running: its start is still recorded (in the
    // same step as its end), so board time and waits (the weekly usage report) know when its runner ran.
    const started = runnerStartedAt(pod)
    const withStart = <A, E>(end: Effect.Effect<A, E>) =>
      w.status === "pending" && started !== null ? Effect.zipRight(db.markWorkerRunning(w.pod_name, pod.nodeName, started), end) : end
    const write = (() => {
      switch (pod.phase) {
        case "Running":
          return w.status === "pending" ? db.step(db.markWorkerRunning(w.pod_name, pod.nodeName, started)) : undefined
        case "Succeeded":
          return db.step(db.markWorkerCompleted(w.pod_name, pod.nodeName, finishedAt(pod), started))
        case "Failed":
          // the diagnostics are collected first: no transaction stays open across a Kubernetes call
          return Effect.flatMap(
            kube.collectFailureInfo(pod, "pod_failed"),
            (info) => db.step(withStart(db.markWorkerFailed(w.pod_name, pod.nodeName, info, finishedAt(pod))))
          )
        case "Pending":
        case "Unknown":
          return undefined
      }
    })()
    if (write === undefined) continue
    const changed = yield* write.pipe(
      Effect.catchAll((e) => Effect.as(Effect.logError("could not record a pod phase").pipe(Effect.annotateLogs({ ...workerLogFields(w), error: e.message })), false))
    )
    if (changed) written++
    if (changed && pod.phase === "Failed") ended.add(scopeOf(w).key)
  }
  return { written, ended } satisfies WorkerWrites
})
