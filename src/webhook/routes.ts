import { HttpRouter, HttpServerResponse } from "@effect/platform"
import { Effect } from "effect"
import { type Delivery, receiveDelivery } from "./delivery.ts"
import { type HttpEdgeError, renderError, textResponse } from "./errors.ts"
import { handleInstallation, handleInstallationTarget, handleOtherEvent, handlePing } from "./installationEvents.ts"
import { setupPage } from "./setupPages.ts"
import { handleWorkflowJob } from "./workflowJob.ts"
import { recordSignatureFailure } from "../observability/collect.ts"
import { webhookMetrics } from "./metricsRoute.ts"
import { openApiJson } from "../observability/openApiRoutes.ts"
import { readyRoute } from "../observability/readyRoute.ts"

/** A verified delivery dispatched on its event; every event that passes verification leaves one row. */
export const dispatchDelivery = (delivery: Delivery) => {
  switch (delivery.event) {
    case "ping":
      return Effect.map(handlePing(delivery), ok)
    case "installation":
    case "installation_repositories":
      return Effect.map(handleInstallation(delivery), ok)
    case "installation_target":
      return Effect.map(handleInstallationTarget(delivery), ok)
    case "workflow_job":
      return handleWorkflowJob(delivery)
    default:
      return Effect.map(handleOtherEvent(delivery), ok)
  }
}

const ok = (body: string) => textResponse(200, body)

/** The request's one span: no stack trace captured (this runs for every delivery), the job's ids as attributes. */
export const DELIVERY_SPAN = "Webhook.receive"
export const deliverySpan = Effect.withSpan(DELIVERY_SPAN, { captureStackTrace: false })

/**
 * `POST /` on the router: one GitHub delivery. It is verified before anything else happens, then dispatched on
 * its event. One span per delivery, made without `Effect.fn`'s two stack traces per call.
 */
export const receiveWebhook = () => deliverySpan(Effect.flatMap(receiveDelivery(), dispatchDelivery))

/**
 * Every route answers: an expected error becomes its status and text, and a defect (a bug) becomes a logged 500
 * rather than a dropped connection. Handlers are suspended so that each request runs them afresh.
 */
const answer = <R>(handler: () => Effect.Effect<HttpServerResponse.HttpServerResponse, HttpEdgeError, R>) =>
  answered(Effect.suspend(handler))

/** An answer whatever happens: an expected error as its status and text, a defect as a logged 500. */
export const answered = <R>(handler: Effect.Effect<HttpServerResponse.HttpServerResponse, HttpEdgeError, R>) =>
  handler.pipe(
    Effect.catchAll(renderError),
    Effect.catchAllDefect((defect) =>
      Effect.as(Effect.logError("unexpected failure", defect), textResponse(500, "internal error"))
    )
  )

/**
 * `POST /` as a handler: answered whatever happens, a rejected signature counted. The router serves it, and
 * `server.ts` answers it before the router does (`deliveriesFirst`).
 */
export const postWebhook = answer(() => countSignatureFailures(receiveWebhook()))

/** A rejected signature is counted (`riscv_runner_webhook_signature_failures_total`), on both ways in. */
export const countSignatureFailures = <A, R>(effect: Effect.Effect<A, HttpEdgeError, R>) =>
  Effect.tapError(effect, (e) => (e._tag === "SignatureRejected" ? recordSignatureFailure : Effect.void))

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
