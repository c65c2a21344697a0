import { Clock, Duration, Effect } from "effect"
import { finishedAt, isTerminal as isTerminalPhase, type Pod } from "../../domain/Pod.ts"
import { podLogFields } from "../../observability/logFields.ts"
import { Kube } from "../../services/Kube.ts"
import { SchedulerSettings } from "../settings.ts"

/**
 * Phase 5: finished pods are kept for diagnosis, then deleted; worker rows do not matter (strays go too).
 * Returns the names of the pods it deleted.
 */
export const deleteFinishedPods = Effect.fn("Scheduler.deleteFinishedPods")(function*(pods: ReadonlyMap<string, Pod>) {
  const kube = yield* Kube
  const settings = yield* SchedulerSettings
  const now = yield* Clock.currentTimeMillis
  const graceMs = Duration.toMillis(settings.timeouts.deleteGrace)
  const deletedPods: Array<string> = []
  for (const pod of pods.values()) {
    if (!isTerminalPhase(pod.phase)) continue
    const finished = finishedAt(pod) ?? pod.creationTime
    if (now - finished.getTime() < graceMs) continue
    yield* kube.deletePod(pod.name).pipe(
      Effect.tap(() => Effect.logInfo("finished pod deleted").pipe(Effect.annotateLogs(podLogFields(pod)))),
      Effect.tap(() => Effect.sync(() => deletedPods.push(pod.name))),
      Effect.catchAll((e) => Effect.logError("could not delete a finished pod").pipe(Effect.annotateLogs({ ...podLogFields(pod), error: e.message })))
    )
  }
  return deletedPods
})
