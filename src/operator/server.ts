import { HttpApiBuilder } from "@effect/platform"
import { Layer } from "effect"
import { textErrors } from "../observability/apiErrors.ts"
import { portApp, portLayer, servePort } from "../observability/apiServer.ts"
import { SchedulerApi } from "./Api.ts"
import { BoardsHttp } from "./boardsRoute.ts"
import { OperatorHttp } from "./Http.ts"
import { operatorPages } from "./routes.ts"

/** The scheduler port: its JSON routes through `HttpApiBuilder`, and the plain routes and HTML pages beside them. */
export const SchedulerApiLive = Layer.mergeAll(HttpApiBuilder.api(SchedulerApi).pipe(Layer.provide([OperatorHttp, BoardsHttp])), textErrors(SchedulerApi))
export const SchedulerPort = portLayer(SchedulerApiLive, operatorPages)

/** Serves the scheduler's operator routes on the HttpServer the caller provides. */
export const SchedulerServer = servePort(SchedulerPort, "scheduler")

/** The scheduler port as one HttpApp, to call in process (the route tests). */
export const schedulerApp = portApp(SchedulerPort)
