import { HttpServerResponse } from "@effect/platform"
import { Clock, Effect, Option } from "effect"
import { countBy, rateLimitInstallations, recordActive, recordGithubCalls, recordKubeCalls, recordQueue, recordRateLimit } from "../observability/collect.ts"
import { CONTENT_TYPE, renderRegistry } from "../observability/exposition.ts"
import { maxWorkersFor } from "../domain/RunnerConfig.ts"
import { SchedulerSettings } from "../scheduler/settings.ts"
import { Db } from "../services/Db.ts"
import { Github } from "../services/Github.ts"
import { Kube } from "../services/Kube.ts"

/**
 * `GET /metrics` on the scheduler port: refreshes what is read at scrape time (active jobs and workers from one
 * query each, the GitHub and Kube call counts, the last known rate limit of every installation with active work or
 * exported before, reported full once its window has reset)
 * and renders the whole registry. It makes no GitHub or Kubernetes call. A database failure leaves those gauges
 * at their previous values; the rest still renders.
 */
export const schedulerMetrics = Effect.gen(function*() {
  const db = yield* Db
  // optional, so the operator routes can be served without GitHub (as in the route tests)
  const github = yield* Effect.serviceOption(Github)
  const kube = yield* Kube
  const settings = yield* SchedulerSettings
  yield* Effect.gen(function*() {
    const [jobs, workers] = yield* Effect.all([db.getActiveJobs, db.getActiveWorkers])
    yield* recordActive(jobs, workers)
    const now = yield* Clock.currentTimeMillis
    // an entity whose active workers fill its cap gets no runner whatever boards are free: its jobs wait by design
    const activeWorkers = countBy(workers, (w) => String(w.entity_id))
    yield* recordQueue(jobs, now, (job) => {
      const cap = maxWorkersFor(settings.runnerConfig, job.entity_id)
      return cap !== null && (activeWorkers.get(String(job.entity_id)) ?? 0) >= cap
    })
    // those with active work, and every one exported before (whose work has ended: its budget still resets)
    const installations = new Set([...jobs.map((j) => j.installation_id), ...workers.map((w) => w.installation_id), ...rateLimitInstallations()])
    if (Option.isSome(github)) {
      yield* Effect.forEach(installations, (id) => Effect.flatMap(github.value.rateLimit(id), (limit) => recordRateLimit(id, limit, now)), { discard: true })
    }
  }).pipe(Effect.catchAll((e) => Effect.logWarning("metrics: cannot read the active jobs and workers").pipe(Effect.annotateLogs({ error: e.message }))))
  if (Option.isSome(github)) yield* recordGithubCalls(yield* github.value.callCounts)
  yield* recordKubeCalls(yield* kube.callCounts)
  return HttpServerResponse.text(yield* renderRegistry, { contentType: CONTENT_TYPE })
})
