import { HttpServer } from "@effect/platform"
import { webhookRouter } from "./routes.ts"

/**
 * Serves the webhook routes on whatever HttpServer the caller provides (main.ts picks the port). Needs `Db`,
 * `WebhookSettings` and an `HttpClient` (for the staging proxy); `Github`, when provided, serves the setup pages'
 * installation lookups.
 */
export const WebhookServer = HttpServer.serve(webhookRouter)
