import { Clock, Duration, Effect, Either, Schema } from "effect"
import { maxWorkersFor, weightFor } from "../domain/RunnerConfig.ts"
import { Db, type DbError } from "../services/Db.ts"
import { yieldToEventLoop } from "../services/eventLoop.ts"
import { Kube } from "../services/Kube.ts"
import { blockedGroups, streakLookbackMs } from "../scheduler/allocationBackoff.ts"
import { planQueuePage, type QueueContext, type QueueInput, type QueuePage, type QueuePageRequest, typicalDurations } from "../scheduler/queueView.ts"
import { SchedulerSettings } from "../scheduler/settings.ts"
import { DEFAULT_QUEUE_LIMIT, firstIssue, firstValues, QueueParams } from "./paging.ts"

/** Finished workers of this window give the typical run time of a job. */
const DURATION_WINDOW_MS = 6 * 3_600_000
const DURATION_SAMPLE = 500


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

/**
 * What a queue page's decisions read besides the jobs: the demand matcher's inputs (capacity from one reading of
 * two Kube calls; every pool counts as full when it cannot be read), the back-off, and one page of recent workers
 * for the durations.
 */
const readQueueContext = Effect.gen(function*() {
  const db = yield* Db
  const kube = yield* Kube
  const settings = yield* SchedulerSettings
  const now = yield* Clock.currentTimeMillis
  const baseMs = Duration.toMillis(settings.timeouts.allocationBackoffBase)
  const maxMs = Duration.toMillis(settings.timeouts.allocationBackoffMax)
  const [active, recent, streaks, capacity] = yield* Effect.all([
    db.getActiveWorkers,
    db.listWorkers({ start: new Date(now - DURATION_WINDOW_MS), page: 0, perPage: DURATION_SAMPLE }),
    db.getAllocationFailures(streakLookbackMs(baseMs, maxMs) / 1000),
    Effect.either(kube.capacity)
  ], { concurrency: "unbounded" })
  const pools = Either.getOrElse(capacity, () => new Map())
  const durations = typicalDurations(recent.rows.filter((w) => w.status === "completed"))
  return {
    now: new Date(now),
    available: new Map([...pools.values()].map((c) => [c.pool, c.available])),
    total: new Map([...pools.values()].map((c) => [c.pool, c.total])),
    // a worker still starting is counted from its creation: its run ends about a typical run after it, and two
    // workers created apart do not end at the same estimated moment
    busy: active.map((w) => ({ pool: w.k8s_pool, entityId: w.entity_id, runningSince: w.running_at ?? w.created_at })),
    capFor: (id) => maxWorkersFor(settings.runnerConfig, id),
    weightFor: (id) => weightFor(settings.runnerConfig, id),
    policy: settings.runnerConfig.policy,
    blocked: blockedGroups(streaks, now, baseMs, maxMs),
    durations: durations.byPool,
    fallbackDurationMs: durations.overall
  } satisfies QueueContext
})

/**
 * The whole queue's inputs as one `QueueInput`, every pending job read in full (`Db.getQueueRows`): the route
 * before it read the index, kept for the benchmark's anchor.
 */
export const readQueueInput = Effect.gen(function*() {
  const db = yield* Db
  const [rows, ctx] = yield* Effect.all([db.getQueueRows, readQueueContext], { concurrency: "unbounded" })
  return { ...ctx, pending: rows.map((r) => r.job), demand: rows.filter((r) => r.lacksRunner) } satisfies QueueInput
})

/** Forecast steps between yields: a slice costs a few milliseconds at most, so `/health` is never kept waiting. */
const FORECAST_SLICE = 2_000

/**
 * One page of the pending jobs with their position, reason and estimated start (see `planQueuePage`): the queue's
 * index (ids and creation times, a few hundred rows), the forecast over it in slices that give the event loop back,
 * then full rows only of the page's jobs.
 */
export const readQueue = (request: QueuePageRequest): Effect.Effect<QueuePage, DbError, Db | Kube | SchedulerSettings> =>
  Effect.gen(function*() {
    const db = yield* Db
    const [groups, ctx] = yield* Effect.all([db.getQueueIndex, readQueueContext], { concurrency: "unbounded" })
    yield* yieldToEventLoop
    const plan = planQueuePage(groups, ctx, request)
    while (!plan.advance(FORECAST_SLICE)) yield* yieldToEventLoop
    const jobs = yield* db.getJobsByIds(plan.jobIds())
    yield* yieldToEventLoop
    return plan.decide(new Map(jobs.map((j) => [j.job_id, j])))
  }).pipe(Effect.withSpan("Scheduler.readQueue"))
