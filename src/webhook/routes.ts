import { HttpRouter, HttpServerResponse } from "@effect/platform"
import { Effect } from "effect"
import { receiveDelivery } from "./delivery.ts"
import { type HttpEdgeError, renderError, textResponse } from "./errors.ts"
import { handleInstallation, handleInstallationTarget, handleOtherEvent, handlePing } from "./installationEvents.ts"
import { setupPage } from "./setupPages.ts"
import { handleWorkflowJob } from "./workflowJob.ts"
import { recordSignatureFailure } from "../observability/collect.ts"
import { webhookMetrics } from "./metricsRoute.ts"
import { openApiJson } from "../observability/openApiRoutes.ts"
import { readyRoute } from "../observability/readyRoute.ts"

/**
 * `POST /`: one GitHub delivery. It is verified before anything else happens, then dispatched on its event.
 * Every event that passes verification leaves exactly one `installation_events` row. One span per delivery, made
 * without `Effect.fn`'s two stack traces per call: this runs for every delivery.
 */
export const receiveWebhook = Effect.fnUntraced(function*() {
  const delivery = yield* receiveDelivery()
  const ok = (body: string) => textResponse(200, body)
  switch (delivery.event) {
    case "ping":
      return ok(yield* handlePing(delivery))
    case "installation":
    case "installation_repositories":
      return ok(yield* handleInstallation(delivery))
    case "installation_target":
      return ok(yield* handleInstallationTarget(delivery))
    case "workflow_job":
      return yield* handleWorkflowJob(delivery)
    default:
      return ok(yield* handleOtherEvent(delivery))
  }
}, Effect.withSpan("Webhook.receive"))

/**
 * Every route answers: an expected error becomes its status and text, and a defect (a bug) becomes a logged 500
 * rather than a dropped connection. Handlers are suspended so that each request runs them afresh.
 */
const answer = <R>(handler: () => Effect.Effect<HttpServerResponse.HttpServerResponse, HttpEdgeError, R>) =>
  Effect.suspend(handler).pipe(
    Effect.catchAll(renderError),
    Effect.catchAllDefect((defect) =>
      Effect.as(Effect.logError("unexpected failure", defect), textResponse(500, "internal error"))
    )
  )

/**
 * `POST /` as a handler: answered whatever happens, a rejected signature counted. The router serves it, and
 * `server.ts` answers it before the router does (`deliveriesFirst`).
 */
export const postWebhook = answer(() =>
  receiveWebhook().pipe(Effect.tapError((e) => (e._tag === "SignatureRejected" ? recordSignatureFailure : Effect.void)))
)

/**
 * The webhook program's plain routes (the original's `ghfe`); the trace API is served beside them through
 * `HttpApiBuilder` (see `server.ts`). `GET /health` answers `ok` while the process is up; it
 * is not logged, since probes call it every few seconds.
 */
export const webhookRouter = HttpRouter.empty.pipe(
  HttpRouter.get("/health", HttpServerResponse.text("ok")),
  HttpRouter.get("/ready", readyRoute),
  HttpRouter.get("/metrics", webhookMetrics),
  HttpRouter.get("/openapi.json", openApiJson),
  HttpRouter.post("/", postWebhook),
  HttpRouter.get("/setup/org", answer(setupPage("org"))),
  HttpRouter.get("/setup/personal", answer(setupPage("personal")))
)
