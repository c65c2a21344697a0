import { HttpApiBuilder } from "@effect/platform"
import { Layer } from "effect"
import { textErrors } from "../observability/apiErrors.ts"
import { initialiseSignatureFailures } from "../observability/collect.ts"
import { portApp, portLayer, servePort } from "../observability/apiServer.ts"
import { DeliveryFront } from "./deliveryFront.ts"
import { webhookRouter } from "./routes.ts"
import { TraceHttp } from "./trace.ts"
import { TraceApi } from "./traceApi.ts"

/** The webhook port: the trace API through `HttpApiBuilder`, and the plain routes (`POST /`, setup pages, ...). */
export const WebhookPort = portLayer(
  Layer.mergeAll(HttpApiBuilder.api(TraceApi).pipe(Layer.provide(TraceHttp)), textErrors(TraceApi)),
  webhookRouter
)

/**
 * Serves the webhook routes on whatever HttpServer the caller provides (main.ts picks the port), with deliveries
 * (`POST /`) answered at the server's front door (`deliveryFront.ts`), below the platform's per-request fiber,
 * Scope and span, and every other request by the router. Needs `Db`, `WebhookSettings`, an `HttpClient` (for the
 * staging proxy) and the server's `HttpFrontDoor`; `Github`, when provided, serves the setup pages' installation
 * lookups. Its signature failures, like its answers by status class, are exported at 0 from the start.
 */
export const WebhookServer = Layer.mergeAll(servePort(WebhookPort, "webhook"), DeliveryFront, Layer.effectDiscard(initialiseSignatureFailures))

/** The webhook port as one HttpApp, to call in process (deliveries through the router's `POST /`). */
export const webhookApp = portApp(WebhookPort)
