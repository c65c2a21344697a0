import { Clock, Duration, Effect } from "effect"
import { Db } from "../services/Db.ts"
import type { SchedulerState } from "./state.ts"

/** Once the roll-up has caught up, the next pass waits this long: a day can be folded once a day. */
export const WEEKLY_USAGE_FOLD_INTERVAL = Duration.minutes(10)

// When each scheduler state's last pass found nothing to fold. Kept beside the state, as the retention's clock is.
const lastIdle = new WeakMap<SchedulerState, number>()

/**
 * The weekly usage roll-up's background pass (`Db.foldWeeklyUsage`), after a cycle, outside the scheduler lock:
 * the pass locks the roll-up's mark itself, so replicas never fold a day twice and a cycle never waits for a
 * fold. While it is behind (a year of history after the upgrade), each cycle folds up to `FOLD_MAX_DAYS` more;
 * once it has caught up, it looks again every `WEEKLY_USAGE_FOLD_INTERVAL`.
 */
export const foldWeeklyUsage = Effect.fn("Scheduler.foldWeeklyUsage")(function*(state: SchedulerState) {
  const now = yield* Clock.currentTimeMillis
  const idle = lastIdle.get(state)
  if (idle !== undefined && now - idle < Duration.toMillis(WEEKLY_USAGE_FOLD_INTERVAL)) return
  const db = yield* Db
  const pass = yield* db.foldWeeklyUsage(new Date(now))
  if (pass.days === 0) lastIdle.set(state, now)
  else {
    lastIdle.delete(state)
    yield* Effect.logDebug("folded weekly usage").pipe(
      Effect.annotateLogs({ days: pass.days, foldedUntil: pass.foldedUntil?.toISOString() ?? null })
    )
  }
})
