import { Effect, Either } from "effect"
import { finishedAt, type Pod, runnerStartedAt } from "../../domain/Pod.ts"
import { isActive } from "../../domain/Status.ts"
import type { Worker } from "../../domain/Worker.ts"
import { workerLogFields } from "../../observability/logFields.ts"
import { Db, type DbError, type WorkerMove } from "../../services/Db.ts"
import { Kube } from "../../services/Kube.ts"
import { succeededMove } from "../succeededPods.ts"
import { scopeOf } from "./runnerScope.ts"
import type { WorkerWrites } from "./workerWrites.ts"

/**
 * Phase 2: the pod's phase moves the worker on, with the times the containers report. Only a failed pod counts
 * as ended here: a succeeded one took its ephemeral runner with it.
 *
 * The plain moves (running, completed) of a cycle are one statement in one step (`Db.markWorkersMoved`): at 20
 * jobs a second a cycle records tens of them, and one step each (its BEGIN, the lock check and COMMIT around one
 * UPDATE) held the scheduler lock for hundreds of milliseconds ahead of new jobs. Should that step fail, each move
 * is written again in a step of its own, so one bad row holds back no other. A failed pod's diagnostics are collected first and it is written
 * alone, as before: no transaction stays open across a Kubernetes call.
 */
export const podPhaseSync = Effect.fn("Scheduler.podPhaseSync")(function*(
  workers: ReadonlyArray<Worker>,
  pods: ReadonlyMap<string, Pod>
) {
  const db = yield* Db
  const kube = yield* Kube
  let written = 0
  const ended = new Set<string>()
  const plain: Array<{ readonly worker: Worker; readonly move: WorkerMove }> = []
  const failed: Array<{ readonly worker: Worker; readonly pod: Pod }> = []
  for (const w of workers) {
    const pod = pods.get(w.pod_name)
    if (pod === undefined || !isActive(w.status)) continue
    // A pod that ran and ended between two cycles was never seen Running: its start is still recorded (in the
    // same step as its end), so board time and waits (the weekly usage report) know when its runner ran.
    const started = runnerStartedAt(pod)
    switch (pod.phase) {
      case "Running":
        if (w.status === "pending") {
          plain.push({ worker: w, move: { podName: w.pod_name, to: "running", node: pod.nodeName, runningAt: started, completedAt: null } })
        }
        break
      case "Succeeded":
        plain.push({ worker: w, move: succeededMove(pod) })
        break
      case "Failed":
        failed.push({ worker: w, pod })
        break
      case "Pending":
      case "Unknown":
        break
    }
  }
  const logged = (w: Worker) => (e: DbError) =>
    Effect.as(Effect.logError("could not record a pod phase").pipe(Effect.annotateLogs({ ...workerLogFields(w), error: e.message })), false)
  if (plain.length > 0) {
    const together = yield* Effect.either(db.step(db.markWorkersMoved(plain.map((p) => p.move))))
    if (Either.isRight(together)) written += together.right.length
    else {
      for (const p of plain) {
        const changed = yield* db.step(db.markWorkersMoved([p.move])).pipe(
          Effect.map((moved) => moved.length > 0),
          Effect.catchAll(logged(p.worker))
        )
        if (changed) written++
      }
    }
  }
  for (const { worker: w, pod } of failed) {
    const started = runnerStartedAt(pod)
    const changed = yield* kube.collectFailureInfo(pod, "pod_failed").pipe(
      Effect.flatMap((info) => {
        const fail = db.markWorkerFailed(w.pod_name, pod.nodeName, info, finishedAt(pod))
        return db.step(w.status === "pending" && started !== null ? Effect.zipRight(db.markWorkerRunning(w.pod_name, pod.nodeName, started), fail) : fail)
      }),
      Effect.catchAll(logged(w))
    )
    if (changed) {
      written++
      ended.add(scopeOf(w).key)
    }
  }
  return { written, ended } satisfies WorkerWrites
})
