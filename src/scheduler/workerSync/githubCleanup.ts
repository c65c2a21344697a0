import { Duration, Effect, Either } from "effect"
import { isTerminal } from "../../domain/Status.ts"
import { workerLogFields } from "../../observability/logFields.ts"
import { Db } from "../../services/Db.ts"
import { Github } from "../../services/Github.ts"
import { ownsRunnerName, SchedulerSettings } from "../settings.ts"
import { deleteRunner, type RunnerListings } from "./runnerScope.ts"

/**
 * Phase 4: in the scopes listed this cycle, delete our runners whose worker is terminal or unknown (never
 * recorded, or finished before the lookback). Runners of pending or running workers stay. Returns the names of
 * the runners it deleted.
 */
export const githubCleanup = Effect.fn("Scheduler.githubCleanup")(function*(listed: RunnerListings) {
  const db = yield* Db
  const github = yield* Github
  const settings = yield* SchedulerSettings
  const deletedRunners: Array<string> = []
  if (listed.size === 0) return deletedRunners
  const workers = new Map((yield* db.getWorkersForReconcile(Duration.toMillis(settings.timeouts.reconcileLookback) / 1000)).map((w) => [w.pod_name, w]))
  for (const { runners, scope } of listed.values()) {
    for (const runner of runners.values()) {
      if (!ownsRunnerName(settings, runner.name)) continue
      const worker = workers.get(runner.name)
      if (worker !== undefined && !isTerminal(worker.status)) continue
      const deleted = yield* Effect.either(deleteRunner(github, scope, runner.id))
      if (Either.isLeft(deleted)) {
        yield* Effect.logWarning("could not delete a leftover runner").pipe(Effect.annotateLogs({ runner: runner.name, ...(worker === undefined ? { pod: runner.name } : workerLogFields(worker)), error: deleted.left.message }))
      } else {
        deletedRunners.push(runner.name)
        yield* Effect.logInfo("leftover runner deleted").pipe(
          Effect.annotateLogs({ runner: runner.name, ...(worker === undefined ? { pod: runner.name } : workerLogFields(worker)), worker: worker === undefined ? "unknown" : worker.status })
        )
      }
    }
  }
  return deletedRunners
})
