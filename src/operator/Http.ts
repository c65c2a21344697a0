import { HttpApiBuilder, HttpApp, HttpServerResponse } from "@effect/platform"
import { Clock, Effect } from "effect"
import { storeFailure } from "../observability/storeFailure.ts"
import { Db } from "../services/Db.ts"
import { SchedulerApi } from "./Api.ts"
import { dashboardData } from "./dashboardRoute.ts"
import { linkHeader, type PagingParams, pagingQuery } from "./paging.ts"
import { queuePageRequest, readQueue } from "./queueRoute.ts"
import { readWeeklyUsage, weeklyUsageJson } from "./weeklyUsageRoute.ts"
import { DEFAULT_WEEKS } from "../domain/WeeklyUsage.ts"

/*
 * The handlers of the scheduler port's JSON routes. They receive decoded parameters and return what the program
 * holds (rows with Dates and nulls); the response schemas of `Api.ts` turn it into the original's JSON.
 */

/** A database failure: 503 with `Retry-After` when it did not answer in time, else 500; details to the log only. */
const orInternalError = <A, E extends { readonly message?: string }, R>(effect: Effect.Effect<A, E, R>) => storeFailure("operator route", effect)

/** Sets the `Link` header of the answer, when there is more than one page. */
const withLink = (link: string | undefined) =>
  link === undefined ? Effect.void : HttpApp.appendPreResponseHandler((_, response) => Effect.succeed(HttpServerResponse.setHeader(response, "link", link)))

const listJobs = (path: string, params: PagingParams) =>
  orInternalError(Effect.gen(function*() {
    const query = pagingQuery(params, yield* Clock.currentTimeMillis)
    const page = yield* (yield* Db).listJobs(query.request)
    yield* withLink(linkHeader(path, query, page.total))
    return page.rows
  }))

const listWorkers = (path: string, params: PagingParams) =>
  orInternalError(Effect.gen(function*() {
    const query = pagingQuery(params, yield* Clock.currentTimeMillis)
    const page = yield* (yield* Db).listWorkers(query.request)
    yield* withLink(linkHeader(path, query, page.total))
    return page.rows
  }))

/** The scheduler group's handlers; needs `Db`, `Kube` and `SchedulerSettings`. */
export const OperatorHttp = HttpApiBuilder.group(SchedulerApi, "scheduler", (handlers) =>
  handlers
    .handle("usage", () =>
      orInternalError(Effect.gen(function*() {
        const db = yield* Db
        const [jobs, workers] = yield* Effect.all([db.getActiveJobs, db.getActiveWorkers])
        return { jobs, workers }
      })))
    .handle("jobs", ({ urlParams }) => listJobs("/jobs.json", urlParams))
    .handle("history", ({ urlParams }) => listJobs("/history.json", urlParams))
    .handle("workers", ({ urlParams }) => listWorkers("/workers.json", urlParams))
    .handle("queue", ({ urlParams }) => orInternalError(readQueue(queuePageRequest(urlParams))))
    .handle("dashboard", () => orInternalError(dashboardData))
    .handle("weeklyUsage", ({ urlParams }) =>
      orInternalError(Effect.map(readWeeklyUsage(urlParams.weeks ?? DEFAULT_WEEKS), weeklyUsageJson))))
