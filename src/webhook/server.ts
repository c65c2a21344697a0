import { HttpApiBuilder } from "@effect/platform"
import { Layer } from "effect"
import { textErrors } from "../observability/apiErrors.ts"
import { portApp, portLayer, servePort } from "../observability/apiServer.ts"
import { webhookRouter } from "./routes.ts"
import { TraceHttp } from "./trace.ts"
import { TraceApi } from "./traceApi.ts"

/** The webhook port: the trace API through `HttpApiBuilder`, and the plain routes (`POST /`, setup pages, ...). */
export const WebhookPort = portLayer(
  Layer.mergeAll(HttpApiBuilder.api(TraceApi).pipe(Layer.provide(TraceHttp)), textErrors(TraceApi)),
  webhookRouter
)

/**
 * Serves the webhook routes on whatever HttpServer the caller provides (main.ts picks the port). Needs `Db`,
 * `WebhookSettings` and an `HttpClient` (for the staging proxy); `Github`, when provided, serves the setup pages'
 * installation lookups.
 */
export const WebhookServer = servePort(WebhookPort, "webhook")

/** The webhook port as one HttpApp, to call in process. */
export const webhookApp = portApp(WebhookPort)
