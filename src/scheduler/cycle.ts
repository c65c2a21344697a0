import { Effect } from "effect"
import { Db } from "../services/Db.ts"
import { makeCycleAuthenticator, type Serially } from "./auth.ts"
import { matchDemand } from "./demandMatch.ts"
import { syncJobs } from "./jobSync.ts"
import { pruneCompletedJobs } from "./retention.ts"
import { guarded, type SchedulerState } from "./state.ts"
import { syncWorkers } from "./workerSync.ts"

/**
 * One scheduler cycle: job sync, the five-phase worker sync, demand matching, in that order, while holding the
 * workers lock (design decision 3), so one scheduler at a time runs a cycle and a second replica waits its turn.
 * Inside, every state change is its own savepoint (`Db.step`): a failing statement or API call undoes only its
 * own step, and a part that fails unexpectedly is logged while the next part still runs.
 */
export const runCycle = Effect.fn("Scheduler.cycle")(function*(state: SchedulerState) {
  const db = yield* Db
  yield* db.withWorkerLock(Effect.gen(function*() {
    const mutex = yield* Effect.makeSemaphore(1)
    const serially: Serially = (effect) => mutex.withPermits(1)(effect)
    const authenticate = yield* makeCycleAuthenticator(serially)
    yield* guarded("job sync", syncJobs(state, authenticate))
    yield* guarded("worker sync", syncWorkers(state, authenticate))
    yield* guarded("demand matching", matchDemand(authenticate, serially))
    yield* guarded("job retention", pruneCompletedJobs(state))
  }))
})
