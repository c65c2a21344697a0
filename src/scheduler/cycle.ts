import { Effect, Option } from "effect"
import type { Pod } from "../domain/Pod.ts"
import type { BoardState } from "../domain/BoardQuarantine.ts"
import { Db } from "../services/Db.ts"
import { makeCycleAuthenticator, type Serially } from "./auth.ts"
import { reviewBoards } from "./boardReview.ts"
import { matchDemand, type MatchResult } from "./demandMatch.ts"
import { syncJobs } from "./jobSync.ts"
import { pruneCompletedJobs } from "./retention.ts"
import { guarded, guardedOr, type SchedulerState } from "./state.ts"
import { recordSucceeded } from "./succeededPods.ts"
import { foldWeeklyUsage } from "./weeklyUsageFold.ts"
import { syncWorkers } from "./workerSync.ts"

const noMatch: MatchResult = { provisioned: 0, failed: 0, jobIds: [] }

/**
 * Asks the loop for demand matching at a time (Clock ms): when jobs were left behind for their installation's
 * write spacing (`MatchResult.retryAt`), so they are provisioned as soon as their installation can write.
 */
export type RetryDemandAt = (at: number) => Effect.Effect<void>

const noRetry: RetryDemandAt = () => Effect.void

const retryIfDeferred = (m: MatchResult, retryDemandAt: RetryDemandAt) =>
  m.retryAt === undefined ? Effect.void : retryDemandAt(m.retryAt)

/**
 * One scheduler cycle: job sync, the worker sync, the board review (quarantine), demand matching, in that order, while holding the scheduler
 * lock (design decision 3: a session advisory lock, see `docs/scheduler.md`), so one scheduler at a time runs a
 * cycle and a second replica waits its turn. No transaction spans the cycle: every state change is its own short
 * transaction (`Db.step`), committed before the next GitHub or Kubernetes call, so a failing statement or API call
 * undoes only its own step, a crash leaves the committed steps behind, and a part that fails unexpectedly is
 * logged while the next part still runs. A lost lock stops the cycle (no step commits after it is noticed).
 */
export const runCycle = Effect.fn("Scheduler.cycle")(function*(
  state: SchedulerState,
  takeDemand: Effect.Effect<boolean> = Effect.succeed(false),
  retryDemandAt: RetryDemandAt = noRetry
) {
  const db = yield* Db
  // the cycle's own span, which names the jobs it provisioned runners for (see docs/operating.md, traces)
  const cycleSpan = yield* Effect.option(Effect.currentSpan)
  yield* db.withWorkerLock(Effect.gen(function*() {
    const mutex = yield* Effect.makeSemaphore(1)
    const serially: Serially = (effect) => mutex.withPermits(1)(effect)
    const authenticate = yield* makeCycleAuthenticator(serially)
    const jobIds: Array<number> = []
    let provisioned = 0
    const match = (boards: Effect.Effect<ReadonlyArray<BoardState>>) =>
      Effect.tap(guardedOr("demand matching", matchDemand(authenticate, serially, boards), noMatch), (m) =>
        Effect.zipRight(
          Effect.sync(() => {
            jobIds.push(...m.jobIds)
            provisioned += m.provisioned
          }),
          retryIfDeferred(m, retryDemandAt)
        ))
    // New demand stored while the cycle runs is matched between its parts, as the fast path would match it, with
    // the board standings the last review decided: a job that arrives as a full cycle starts waits for one part,
    // not for the whole cycle (the in-memory benchmark's 0.5 s tail was jobs waiting behind full cycles).
    const between = Effect.flatMap(takeDemand, (due) => (due ? Effect.asVoid(match(guardedOr("board states", db.getBoardStates, []))) : Effect.void))
    yield* guarded("job sync", syncJobs(state, authenticate))
    yield* between
    yield* guarded("worker sync", syncWorkers(state, authenticate, between))
    // Before matching, so this cycle's failures already keep runners off a board that earned its quarantine.
    const boards = yield* guardedOr("board review", reviewBoards(), [])
    // what is pending now, this matching serves: the loop need not run the fast path for it afterwards
    yield* takeDemand
    yield* match(Effect.succeed(boards))
    if (Option.isSome(cycleSpan) && jobIds.length > 0) {
      cycleSpan.value.attribute("job.ids", jobIds)
      cycleSpan.value.attribute("runners.provisioned", provisioned)
    }
    yield* guarded("job retention", pruneCompletedJobs(state))
  }))
  // outside the lock: the roll-up's pass locks its own mark, and the next cycle need not wait for it
  yield* guarded("weekly usage fold", foldWeeklyUsage(state))
})

/**
 * The fast path for new demand, run when a job was stored: demand matching alone (capacity, demand, provisioning)
 * under the same lock, without job sync and the five phases, so a queued job gets its pod without waiting for
 * GitHub reads it does not need. What the fast path skips still runs on the tick and after every pod change.
 * `succeeded` hands it the pods the watch saw succeed since the last one (`succeededPods.ts`): their workers are
 * recorded completed first, so a runner that is gone no longer counts as serving a pending job.
 */
export const runDemandCycle = Effect.fn("Scheduler.demandCycle")(function*(
  retryDemandAt: RetryDemandAt = noRetry,
  succeeded: Effect.Effect<ReadonlyArray<Pod>> = Effect.succeed([])
) {
  const db = yield* Db
  const cycleSpan = yield* Effect.option(Effect.currentSpan)
  yield* db.withWorkerLock(Effect.gen(function*() {
    const mutex = yield* Effect.makeSemaphore(1)
    const serially: Serially = (effect) => mutex.withPermits(1)(effect)
    const authenticate = yield* makeCycleAuthenticator(serially)
    // taken under the lock, so a full cycle between the watch's report and here has nothing left to race with
    // (the usual fast path, for a stored job, has none: no span and no statement then)
    const ended = yield* succeeded
    if (ended.length > 0) yield* guarded("recording succeeded pods", recordSucceeded(ended))
    // the boards' quarantine holds on the fast path too: it reads the standings the last full cycle decided (one
    // query, made beside the capacity reading), and leaves the review of new failures to the full cycle
    const boards = guardedOr("board states", db.getBoardStates, [])
    const matched = yield* guardedOr("demand matching", matchDemand(authenticate, serially, boards), noMatch)
    yield* retryIfDeferred(matched, retryDemandAt)
    // like the full cycle's span, the fast path's names the jobs it provisioned runners for
    if (Option.isSome(cycleSpan) && matched.jobIds.length > 0) {
      cycleSpan.value.attribute("job.ids", matched.jobIds)
      cycleSpan.value.attribute("runners.provisioned", matched.provisioned)
    }
  }))
})
