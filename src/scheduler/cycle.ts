import { Effect } from "effect"
import { Db } from "../services/Db.ts"
import { makeCycleAuthenticator, type Serially } from "./auth.ts"
import { reviewBoards } from "./boardReview.ts"
import { matchDemand } from "./demandMatch.ts"
import { syncJobs } from "./jobSync.ts"
import { pruneCompletedJobs } from "./retention.ts"
import { guarded, guardedOr, type SchedulerState } from "./state.ts"
import { syncWorkers } from "./workerSync.ts"

/**
 * One scheduler cycle: job sync, the worker sync, the board review (quarantine), demand matching, in that order, while holding the scheduler
 * lock (design decision 3: a session advisory lock, see `docs/scheduler.md`), so one scheduler at a time runs a
 * cycle and a second replica waits its turn. No transaction spans the cycle: every state change is its own short
 * transaction (`Db.step`), committed before the next GitHub or Kubernetes call, so a failing statement or API call
 * undoes only its own step, a crash leaves the committed steps behind, and a part that fails unexpectedly is
 * logged while the next part still runs. A lost lock stops the cycle (no step commits after it is noticed).
 */
export const runCycle = Effect.fn("Scheduler.cycle")(function*(state: SchedulerState) {
  const db = yield* Db
  yield* db.withWorkerLock(Effect.gen(function*() {
    const mutex = yield* Effect.makeSemaphore(1)
    const serially: Serially = (effect) => mutex.withPermits(1)(effect)
    const authenticate = yield* makeCycleAuthenticator(serially)
    yield* guarded("job sync", syncJobs(state, authenticate))
    yield* guarded("worker sync", syncWorkers(state, authenticate))
    // Before matching, so this cycle's failures already keep runners off a board that earned its quarantine.
    const boards = yield* guardedOr("board review", reviewBoards(), [])
    yield* guarded("demand matching", matchDemand(authenticate, serially, boards))
    yield* guarded("job retention", pruneCompletedJobs(state))
  }))
})
