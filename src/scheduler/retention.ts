import { Clock, Config, Duration, Effect } from "effect"
import { Db } from "../services/Db.ts"
import type { SchedulerState } from "./state.ts"

/** Completed jobs are kept this many days unless `JOB_RETENTION_DAYS` says otherwise. */
export const DEFAULT_JOB_RETENTION_DAYS = 15

/** The clean-up runs at most this often per scheduler process; a missed hour only leaves rows a little longer. */
export const JOB_RETENTION_INTERVAL = Duration.hours(1)

export const jobRetentionDaysConfig = Config.integer("JOB_RETENTION_DAYS").pipe(
  Config.validate({ message: "must be a whole number of days, at least 1", validation: (n) => n >= 1 }),
  Config.withDefault(DEFAULT_JOB_RETENTION_DAYS)
)

// When each scheduler state last pruned. Kept beside the state rather than in it, so the state's shape is unchanged.
const lastPruned = new WeakMap<SchedulerState, number>()

/**
 * Deletes completed jobs older than `JOB_RETENTION_DAYS` (default 15), at most once an hour: the first cycle of a
 * process prunes, then the first cycle after each hour. Failed jobs (their failure_info explains an incident) and
 * workers (the audit of every pod) are never deleted. An invalid setting is logged and nothing is deleted.
 */
export const pruneCompletedJobs = Effect.fn("Scheduler.pruneCompletedJobs")(function*(state: SchedulerState) {
  const now = yield* Clock.currentTimeMillis
  const last = lastPruned.get(state)
  if (last !== undefined && now - last < Duration.toMillis(JOB_RETENTION_INTERVAL)) return
  lastPruned.set(state, now)
  const days = yield* jobRetentionDaysConfig
  const db = yield* Db
  const cutoff = new Date(now - Duration.toMillis(Duration.days(days)))
  const deleted = yield* db.step(db.deleteCompletedJobsBefore(cutoff))
  if (deleted > 0) {
    yield* Effect.logInfo("deleted completed jobs past retention").pipe(
      Effect.annotateLogs({ deleted, retentionDays: days, cutoff: cutoff.toISOString() })
    )
  }
})
