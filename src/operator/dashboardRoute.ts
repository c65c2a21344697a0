import { HttpServerResponse } from "@effect/platform"
import { Clock, Effect, Either } from "effect"
import { describeFailure } from "../domain/FailureInfo.ts"
import { maxWorkersFor } from "../domain/RunnerConfig.ts"
import { Db } from "../services/Db.ts"
import { Kube } from "../services/Kube.ts"
import { dashboardHtml } from "./dashboardPage.ts"
import { boardRows, groupRows, type PendingGroup, poolRows, queueHistory } from "./dashboardData.ts"
import { trustedCapacity } from "../scheduler/quarantine.ts"
import { SchedulerSettings } from "../scheduler/settings.ts"

const HOUR = 3_600_000
/** jobs created this far back are read for the chart, so a job that waited into the hour still counts */
const HISTORY_LOOKBACK = 3 * HOUR
const FAILURES_SHOWN = 20

/**
 * `GET /dashboard.json`: what the dashboard shows besides the queue: boards per pool (total, usable, busy, free)
 * and each board with why it is not usable, the (entity, label set)
 * groups, the latest failed workers with their diagnostics, and the queue depth and oldest wait of the last hour
 * (one point a minute). When capacity cannot be read the pools are left out and `capacity_error` says so.
 */
export const dashboardData = Effect.gen(function*() {
  const db = yield* Db
  const kube = yield* Kube
  const settings = yield* SchedulerSettings
  const now = yield* Clock.currentTimeMillis
  const since = new Date(now - HISTORY_LOOKBACK)
  const [index, running, workers, waits, failures, reading, boardStates] = yield* Effect.all([
    db.getQueueIndex,
    db.getRunningJobs,
    db.getActiveWorkers,
    db.getWaitSpans(since),
    db.getRecentFailures(FAILURES_SHOWN),
    Effect.either(kube.capacity),
    db.getBoardStates
  ])
  // As demand matching sees it: quarantined boards are not usable, a board on trial offers one slot.
  const capacity = Either.map(reading, (c) => [...trustedCapacity(c, boardStates).values()].sort((a, b) => a.pool.localeCompare(b.pool)))
  // the pending jobs come from the queue's index (ids and times, no rows); the others from their rows
  const pendingCreated = Float64Array.from(index.flatMap((g) => g.createdMs)).sort()
  // the entity's login as the newest pending job of each group names it: a few hundred rows read by id, where the
  // index itself stays free of names (they would cost the queue's query a visit to every pending row)
  const newest = yield* db.getJobsByIds(index.map((g) => g.jobIds[g.jobIds.length - 1]!))
  const nameOf = new Map(newest.map((j) => [j.job_id, j.entity_name]))
  const pending = index.map((g): PendingGroup => ({
    entity_id: g.entityId,
    entity_name: nameOf.get(g.jobIds[g.jobIds.length - 1]!) ?? String(g.entityId),
    job_labels: g.labels,
    k8s_pool: g.pool,
    count: g.jobIds.length,
    oldestMs: g.createdMs[0]!
  }))
  return {
    generated_at: new Date(now).toISOString(),
    deployment: settings.prod ? "Prod" as const : "Staging" as const,
    pools: Either.match(capacity, { onLeft: () => [], onRight: (c) => poolRows(c, kube.clusterOf) }),
    boards: Either.match(capacity, { onLeft: () => [], onRight: (c) => boardRows(c, kube.clusterOf) }),
    capacity_error: Either.isLeft(capacity) ? "cannot read the cluster's capacity" : null,
    groups: groupRows(pending, running, workers, (id) => maxWorkersFor(settings.runnerConfig, id), now),
    failures: failures.map((w) => ({
      pod_name: w.pod_name,
      entity_name: w.entity_name,
      k8s_pool: w.k8s_pool,
      job_labels: w.job_labels,
      at: (w.completed_at ?? w.updated_at).toISOString(),
      summary: w.failure_info === null ? "failed" : describeFailure(w.failure_info),
      failure_info: w.failure_info
    })),
    history: queueHistory(pendingCreated, waits, now, HOUR, 60_000)
  }
})

export const dashboardPage = HttpServerResponse.text(dashboardHtml, { contentType: "text/html; charset=utf-8" })
