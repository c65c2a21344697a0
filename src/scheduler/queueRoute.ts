import { HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { Clock, Duration, Effect, Either } from "effect"
import { maxWorkersFor, weightFor } from "../domain/RunnerConfig.ts"
import { Db, type DbError } from "../services/Db.ts"
import { Kube } from "../services/Kube.ts"
import { blockedGroups, streakLookbackMs } from "./allocationBackoff.ts"
import { planQueuePage, type QueueContext, type QueueInput, type QueuePage, type QueuePageRequest, typicalDurations } from "./queueView.ts"
import { SchedulerSettings } from "./settings.ts"

/** Finished workers of this window give the typical run time of a job. */
const DURATION_WINDOW_MS = 6 * 3_600_000
const DURATION_SAMPLE = 500

/** `limit` when none is given, and the most one page may ask for. */
export const DEFAULT_LIMIT = 100
export const MAX_LIMIT = 1_000

/**
 * `?pool=NAME&offset=N&limit=N`. Each is optional; a bad value is a message for a 400, naming the parameter.
 */
export const parseQueueQuery = (params: URLSearchParams): Either.Either<QueuePageRequest, string> => {
  const pool = params.get("pool")
  if (pool !== null && pool.trim() === "") return Either.left("invalid parameter pool, must be a pool name")
  const integer = (name: string, fallback: number, min: number, max: number): Either.Either<number, string> => {
    const text = params.get(name)
    if (text === null) return Either.right(fallback)
    const n = /^\d{1,9}$/.test(text) ? Number(text) : NaN
    return n >= min && n <= max ? Either.right(n) : Either.left(`invalid parameter ${name}, must be an integer from ${min} to ${max}`)
  }
  return Either.gen(function*() {
    const limit = yield* integer("limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
    const offset = yield* integer("offset", 0, 0, 999_999_999)
    return { pool, offset, limit }
  })
}

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
    busy: active.map((w) => ({ pool: w.k8s_pool, runningSince: w.running_at })),
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

/**
 * One page of the pending jobs with their position, reason and estimated start (see `planQueuePage`): the queue's
 * index (ids and positions, a few hundred rows), then full rows only of the page's jobs and of those the planner
 * could take.
 */
export const readQueue = (request: QueuePageRequest): Effect.Effect<QueuePage, DbError, Db | Kube | SchedulerSettings> =>
  Effect.gen(function*() {
    const db = yield* Db
    const [groups, ctx] = yield* Effect.all([db.getQueueIndex, readQueueContext], { concurrency: "unbounded" })
    const plan = planQueuePage(groups, ctx, request)
    yield* Effect.yieldNow()
    const jobs = yield* db.getJobsByIds(plan.jobIds)
    yield* Effect.yieldNow()
    return plan.decide(new Map(jobs.map((j) => [j.job_id, j])))
  }).pipe(Effect.withSpan("Scheduler.readQueue"))

/**
 * `GET /queue.json`: one page of the pending jobs, ordered by pool then position, with every pool's totals; a bad
 * parameter is a 400 naming it.
 */
export const queueJson = Effect.gen(function*() {
  const req = yield* HttpServerRequest.HttpServerRequest
  const query = parseQueueQuery(new URL(req.url, "http://localhost").searchParams)
  if (Either.isLeft(query)) return HttpServerResponse.text(query.left, { status: 400 })
  const page = yield* readQueue(query.right)
  return HttpServerResponse.text(JSON.stringify(page), { contentType: "application/json" })
})
