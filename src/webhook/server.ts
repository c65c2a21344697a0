import { HttpApiBuilder, type HttpApp, HttpServerRequest } from "@effect/platform"
import { Effect, Layer } from "effect"
import { textErrors } from "../observability/apiErrors.ts"
import { portApp, portLayer, servePort } from "../observability/apiServer.ts"
import { postWebhook, webhookRouter } from "./routes.ts"
import { TraceHttp } from "./trace.ts"
import { TraceApi } from "./traceApi.ts"

/** The webhook port: the trace API through `HttpApiBuilder`, and the plain routes (`POST /`, setup pages, ...). */
export const WebhookPort = portLayer(
  Layer.mergeAll(HttpApiBuilder.api(TraceApi).pipe(Layer.provide(TraceHttp)), textErrors(TraceApi)),
  webhookRouter
)

/** `POST /` (any query string): the route of every GitHub delivery. */
const isDelivery = (request: HttpServerRequest.HttpServerRequest): boolean =>
  request.method === "POST" && (request.url === "/" || request.url.startsWith("/?"))

// The server runs every request uninterruptibly and the router makes each route interruptible again, so that the
// staging proxy's timeout, a client that goes away and the request deadline can stop it; so does this path.
const interruptibleDelivery = Effect.interruptible(postWebhook)

/**
 * Deliveries are answered before the router sees them: the same handler as the router's `POST /`, without the
 * HttpApi router's matching, its middleware and the plain routes' per-request context merge, which together cost
 * more than the handler's own steps. Every other request goes to the router as before.
 */
const deliveriesFirst = (app: HttpApp.Default) =>
  Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) => (isDelivery(request) ? interruptibleDelivery : app))

/**
 * Serves the webhook routes on whatever HttpServer the caller provides (main.ts picks the port). Needs `Db`,
 * `WebhookSettings` and an `HttpClient` (for the staging proxy); `Github`, when provided, serves the setup pages'
 * installation lookups.
 */
export const WebhookServer = servePort(WebhookPort, "webhook", deliveriesFirst)

/** The webhook port as one HttpApp, to call in process. */
export const webhookApp = portApp(WebhookPort)
