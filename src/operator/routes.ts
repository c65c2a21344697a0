import { HttpRouter, HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { Clock, Effect, Either } from "effect"
import { isActive } from "../domain/Status.ts"
import type { Worker } from "../domain/Worker.ts"
import { Db } from "../services/Db.ts"
import { Kube } from "../services/Kube.ts"
import { schedulerMetrics } from "./metricsRoute.ts"
import { dashboardPage } from "./dashboardRoute.ts"
import { openApiJson } from "../observability/openApiRoutes.ts"
import { readyRoute } from "../observability/readyRoute.ts"
import { storeFailure } from "../observability/storeFailure.ts"
import { pageLinks, pageSummary, parsePaging } from "./paging.ts"
import { htmlPage, jobsText, type LiveEvents, usageText, workersText } from "./render.ts"
import { SchedulerSettings } from "../scheduler/settings.ts"
import { weeklyUsageCsvRoute, weeklyUsagePage } from "./weeklyUsageRoute.ts"

/**
 * The scheduler port's plain routes (reference §6): `/health`, `/ready`, `/metrics`, the dashboard page, and the
 * HTML pages `/usage`, `/jobs` and `/history`, `/workers`, `/stats/weekly-usage` (and its `.csv`). Their `.json`
 * twins are the HttpApi's (`Http.ts`).
 */

const html = (body: string) => HttpServerResponse.text(body, { contentType: "text/html; charset=utf-8" })
const badRequest = (message: string) => HttpServerResponse.text(message, { status: 400 })

const deployment = Effect.map(SchedulerSettings, (s) => (s.prod ? "Prod" as const : "Staging" as const))

/** The request's path and query. */
const requestUrl = Effect.map(HttpServerRequest.HttpServerRequest, (req) => new URL(req.url, "http://localhost"))

/** Each event list is one API call: a page asks for at most this many. */
const MAX_LIVE_EVENT_READS = 100

/**
 * Live pod events for the active workers on a page (finished ones show their stored failure info, or nothing:
 * their pods may be gone, and a page of them would cost one API call each).
 */
const liveEvents = (workers: ReadonlyArray<Worker>) =>
  Effect.gen(function*() {
    const kube = yield* Kube
    const fetched = yield* Effect.forEach(
      workers.filter((w) => isActive(w.status)).slice(0, MAX_LIVE_EVENT_READS),
      (w) =>
        kube.podEvents(w.pod_name).pipe(
          Effect.map((events): LiveEvents => ({ _tag: "Events", events })),
          Effect.orElseSucceed((): LiveEvents => ({ _tag: "Error" })),
          Effect.map((live) => [w.pod_name, live] as const)
        ),
      { concurrency: 8 }
    )
    const byPod = new Map(fetched)
    return (w: Worker): LiveEvents => byPod.get(w.pod_name) ?? { _tag: "NotFetched" }
  })

const usage = Effect.gen(function*() {
  const db = yield* Db
  const [jobs, workers] = yield* Effect.all([db.getActiveJobs, db.getActiveWorkers])
  const live = yield* liveEvents(workers)
  return html(htmlPage("Usage", yield* deployment, usageText(jobs, workers, live)))
})

const paged = (kind: "jobs" | "workers", title: string) =>
  Effect.gen(function*() {
    const db = yield* Db
    const url = yield* requestUrl
    const query = parsePaging(url.searchParams, yield* Clock.currentTimeMillis)
    if (Either.isLeft(query)) return badRequest(query.left)
    const q = query.right
    const nav = (total: number, shown: number) => ({
      links: pageLinks(url.pathname, q, total),
      summary: pageSummary(q.request.page, q.request.perPage, total, shown)
    })
    if (kind === "jobs") {
      const page = yield* db.listJobs(q.request)
      return html(htmlPage(title, yield* deployment, jobsText(page.rows), nav(page.total, page.rows.length)))
    }
    const page = yield* db.listWorkers(q.request)
    const live = yield* liveEvents(page.rows)
    return html(htmlPage(title, yield* deployment, workersText(page.rows, live), nav(page.total, page.rows.length)))
  })

/**
 * A database failure: a fixed text, the details to the log only. `503` with `Retry-After` when the database did not
 * answer in time (the JSON routes answer the same, `storeFailure`), else `500`.
 */
const orInternalError = <E extends { readonly message?: string }, R>(effect: Effect.Effect<HttpServerResponse.HttpServerResponse, E, R>) =>
  storeFailure("operator page", effect).pipe(
    Effect.catchAll((e) => Effect.succeed(HttpServerResponse.text(e.message, { status: e._tag === "Unavailable" ? 503 : 500 })))
  )

export const operatorPages = HttpRouter.empty.pipe(
  HttpRouter.get("/health", HttpServerResponse.text("ok")),
  HttpRouter.get("/ready", readyRoute),
  HttpRouter.get("/metrics", schedulerMetrics),
  HttpRouter.get("/", dashboardPage),
  HttpRouter.get("/openapi.json", openApiJson),
  HttpRouter.get("/usage", orInternalError(usage)),
  HttpRouter.get("/jobs", orInternalError(paged("jobs", "History"))),
  HttpRouter.get("/history", orInternalError(paged("jobs", "History"))),
  HttpRouter.get("/workers", orInternalError(paged("workers", "Workers"))),
  HttpRouter.get("/stats/weekly-usage", orInternalError(weeklyUsagePage)),
  HttpRouter.get("/stats/weekly-usage.csv", orInternalError(weeklyUsageCsvRoute))
)
