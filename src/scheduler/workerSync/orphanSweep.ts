import { Effect } from "effect"
import type { Pod } from "../../domain/Pod.ts"
import { isActive } from "../../domain/Status.ts"
import type { Worker } from "../../domain/Worker.ts"
import { workerLogFields } from "../../observability/logFields.ts"
import { Db } from "../../services/Db.ts"
import { scopeOf } from "./runnerScope.ts"
import type { WorkerWrites } from "./workerWrites.ts"

/** Phase 1: an active worker whose pod is gone ends `completed` (no failure_info), as the original does. */
export const orphanSweep = Effect.fn("Scheduler.orphanSweep")(function*(
  workers: ReadonlyArray<Worker>,
  pods: ReadonlyMap<string, Pod>
) {
  const db = yield* Db
  let written = 0
  const ended = new Set<string>()
  for (const w of workers) {
    if (!isActive(w.status) || pods.has(w.pod_name)) continue
    const changed = yield* db.step(db.markWorkerOrphaned(w.pod_name)).pipe(
      Effect.catchAll((e) => Effect.as(Effect.logError("could not mark an orphaned worker").pipe(Effect.annotateLogs({ ...workerLogFields(w), error: e.message })), false))
    )
    if (changed) {
      written++
      ended.add(scopeOf(w).key)
      yield* Effect.logInfo("worker orphaned: its pod is gone").pipe(Effect.annotateLogs({ ...workerLogFields(w) }))
    }
  }
  return { written, ended } satisfies WorkerWrites
})
