import { HttpServerResponse } from "@effect/platform"
import { Clock, Duration, Effect, Either } from "effect"
import { maxWorkersFor, weightFor } from "../domain/RunnerConfig.ts"
import { Db } from "../services/Db.ts"
import { Kube } from "../services/Kube.ts"
import { blockedGroups, streakLookbackMs } from "./allocationBackoff.ts"
import { queueView, typicalDurations } from "./queueView.ts"
import { SchedulerSettings } from "./settings.ts"

/** Finished workers of this window give the typical run time of a job. */
const DURATION_WINDOW_MS = 6 * 3_600_000
const DURATION_SAMPLE = 500

/**
 * The pending jobs with their position, reason and estimated start (see `queueView`). Reads what a demand
 * matching reads, plus one page of recent workers for the durations; one capacity reading (two Kube calls). When
 * capacity cannot be read every pool counts as full.
 */
export const readQueue = Effect.gen(function*() {
  const db = yield* Db
  const kube = yield* Kube
  const settings = yield* SchedulerSettings
  const now = yield* Clock.currentTimeMillis
  const baseMs = Duration.toMillis(settings.timeouts.allocationBackoffBase)
  const maxMs = Duration.toMillis(settings.timeouts.allocationBackoffMax)
  const [pending, demand, active, recent, streaks, capacity] = yield* Effect.all([
    db.getPendingJobs,
    db.getDemand,
    db.getActiveWorkers,
    db.listWorkers({ start: new Date(now - DURATION_WINDOW_MS), page: 0, perPage: DURATION_SAMPLE }),
    db.getAllocationFailures(streakLookbackMs(baseMs, maxMs) / 1000),
    Effect.either(kube.capacity)
  ])
  const pools = Either.getOrElse(capacity, () => new Map())
  const durations = typicalDurations(recent.rows.filter((w) => w.status === "completed"))
  return queueView({
    now: new Date(now),
    pending,
    demand,
    available: new Map([...pools.values()].map((c) => [c.pool, c.available])),
    total: new Map([...pools.values()].map((c) => [c.pool, c.total])),
    busy: active.map((w) => ({ pool: w.k8s_pool, runningSince: w.running_at })),
    capFor: (id) => maxWorkersFor(settings.runnerConfig, id),
    weightFor: (id) => weightFor(settings.runnerConfig, id),
    policy: settings.runnerConfig.policy,
    blocked: blockedGroups(streaks, now, baseMs, maxMs),
    durations: durations.byPool,
    fallbackDurationMs: durations.overall
  })
})

/** `GET /queue.json`: a bare array, like the other lists, ordered by pool then position. */
export const queueJson = Effect.map(readQueue, (entries) =>
  HttpServerResponse.text(JSON.stringify(entries), { contentType: "application/json" }))
