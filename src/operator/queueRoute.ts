import { Clock, Duration, Effect, Either, Schema } from "effect"
import { maxWorkersFor, weightFor } from "../domain/RunnerConfig.ts"
import { Db } from "../services/Db.ts"
import { Kube } from "../services/Kube.ts"
import { blockedGroups, streakLookbackMs } from "../scheduler/allocationBackoff.ts"
import { type QueueInput, type QueuePage, type QueuePageRequest, queueSteps, typicalDurations } from "../scheduler/queueView.ts"
import { SchedulerSettings } from "../scheduler/settings.ts"
import { DEFAULT_QUEUE_LIMIT, firstIssue, firstValues, QueueParams } from "./paging.ts"

/** Finished workers of this window give the typical run time of a job. */
const DURATION_WINDOW_MS = 6 * 3_600_000
const DURATION_SAMPLE = 500

/** Jobs walked between two yields to the event loop. */
const CHUNK = 2_000

/** The decoded `?pool=NAME&offset=N&limit=N` as a page request (each is optional). */
export const queuePageRequest = (params: QueueParams): QueuePageRequest => ({
  pool: params.pool ?? null,
  offset: params.offset ?? 0,
  limit: params.limit ?? DEFAULT_QUEUE_LIMIT
})

/** `?pool=NAME&offset=N&limit=N` read from a URL's query: a page request, or the 400 text naming the bad one. */
export const parseQueueQuery = (params: URLSearchParams): Either.Either<QueuePageRequest, string> =>
  Either.match(Schema.decodeUnknownEither(QueueParams)(firstValues(params)), {
    onLeft: (e) => Either.left(firstIssue(e)),
    onRight: (decoded) => Either.right(queuePageRequest(decoded))
  })

/** `queueSteps` run to its end, giving the event loop back after every chunk of jobs. */
export const computeQueuePage = (input: QueueInput, request: QueuePageRequest): Effect.Effect<QueuePage> =>
  Effect.suspend(() => {
    const steps = queueSteps(input, request, CHUNK)
    return Effect.gen(function*() {
      for (;;) {
        const step = steps.next()
        if (step.done === true) return step.value
        yield* Effect.yieldNow()
      }
    })
  })

/**
 * The inputs of the queue's decisions: what a demand matching reads (the pending jobs and the demand, from one
 * query), plus one page of recent workers for the durations; one capacity reading (two Kube calls). When capacity
 * cannot be read every pool counts as full.
 */
export const readQueueInput = Effect.gen(function*() {
  const db = yield* Db
  const kube = yield* Kube
  const settings = yield* SchedulerSettings
  const now = yield* Clock.currentTimeMillis
  const baseMs = Duration.toMillis(settings.timeouts.allocationBackoffBase)
  const maxMs = Duration.toMillis(settings.timeouts.allocationBackoffMax)
  const [rows, active, recent, streaks, capacity] = yield* Effect.all([
    db.getQueueRows,
    db.getActiveWorkers,
    db.listWorkers({ start: new Date(now - DURATION_WINDOW_MS), page: 0, perPage: DURATION_SAMPLE }),
    db.getAllocationFailures(streakLookbackMs(baseMs, maxMs) / 1000),
    Effect.either(kube.capacity)
  ], { concurrency: "unbounded" })
  const pools = Either.getOrElse(capacity, () => new Map())
  const durations = typicalDurations(recent.rows.filter((w) => w.status === "completed"))
  return {
    now: new Date(now),
    pending: rows.map((r) => r.job),
    demand: rows.filter((r) => r.lacksRunner),
    available: new Map([...pools.values()].map((c) => [c.pool, c.available])),
    total: new Map([...pools.values()].map((c) => [c.pool, c.total])),
    busy: active.map((w) => ({ pool: w.k8s_pool, runningSince: w.running_at })),
    capFor: (id) => maxWorkersFor(settings.runnerConfig, id),
    weightFor: (id) => weightFor(settings.runnerConfig, id),
    policy: settings.runnerConfig.policy,
    blocked: blockedGroups(streaks, now, baseMs, maxMs),
    durations: durations.byPool,
    fallbackDurationMs: durations.overall
  } satisfies QueueInput
})

/** One page of the pending jobs with their position, reason and estimated start (see `queueView`). */
export const readQueue = (request: QueuePageRequest) => Effect.flatMap(readQueueInput, (input) => computeQueuePage(input, request))
