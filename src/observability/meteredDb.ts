import { Effect, Layer } from "effect"
import { Db } from "../services/Db.ts"
import { recordJobTransition, recordNodeFailure, recordWorkerFailure } from "./collect.ts"

/**
 * Wraps whatever Db is provided so that the status changes this process makes are counted: jobs moved to
 * running, completed or failed, and workers failed by reason. Only writes that changed a row count, so a
 * repeated webhook or a second scheduler replica does not count twice.
 */
export const MeteredDb = Layer.effect(
  Db,
  Effect.map(Db, (db) => ({
    ...db,
    markJobRunning: (jobId, runner) =>
      Effect.tap(db.markJobRunning(jobId, runner), (t) => (t.found && t.changed ? recordJobTransition("running") : Effect.void)),
    markJobCompleted: (jobId, runner) =>
      Effect.tap(db.markJobCompleted(jobId, runner), (t) => (t.found && t.changed ? recordJobTransition("completed") : Effect.void)),
    markJobFailed: (jobId, info) =>
      Effect.tap(db.markJobFailed(jobId, info), (t) => (t.found && t.changed ? recordJobTransition("failed") : Effect.void)),
    markWorkerFailed: (pod, node, info, at) =>
      Effect.tap(db.markWorkerFailed(pod, node, info, at), (changed) =>
        changed ? Effect.zipRight(recordWorkerFailure(info), recordNodeFailure(node)) : Effect.void)
  }))
)
