import { HttpServer } from "@effect/platform"
import { webhookRouter } from "./routes.ts"

/** Serves the webhook routes on whatever HttpServer the caller provides (main.ts picks the port). */
export const WebhookServer = HttpServer.serve(webhookRouter)
