import { HttpServerResponse } from "@effect/platform"
import { Effect } from "effect"
import { CONTENT_TYPE, renderRegistry } from "../observability/exposition.ts"

/**
 * `GET /metrics` on the webhook port: the process registry (deliveries by event and outcome, signature failures,
 * job transitions; in `all` also everything the scheduler records).
 */
export const webhookMetrics = Effect.map(renderRegistry, (text) => HttpServerResponse.text(text, { contentType: CONTENT_TYPE }))
