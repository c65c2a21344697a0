import { type HttpClient, Headers, HttpServerError, type HttpServerResponse, HttpTraceContext } from "@effect/platform"
import { Cause, Chunk, Context, Effect, Exit, type Fiber, FiberRef, HashMap, Layer, Option, Runtime, Tracer } from "effect"
import { Buffer } from "node:buffer"
import type { IncomingMessage, ServerResponse } from "node:http"
import { deliveryCounter, httpResponseCounter, recordHttpResponse } from "../observability/collect.ts"
import { Db } from "../services/Db.ts"
import { type FrontHandler, HttpFrontDoor } from "../services/HttpFrontDoor.ts"
import { storedOutcome } from "./auditLog.ts"
import { budgetRetryAfterSeconds, checkDelivery, type Delivery } from "./delivery.ts"
import { BadDelivery, BodyBudgetExhausted, type HttpEdgeError, PayloadTooLarge, StoreFailed, textResponse } from "./errors.ts"
import { answered, countSignatureFailures, DELIVERY_SPAN, dispatchDelivery } from "./routes.ts"
import { WebhookSettings } from "./WebhookSettings.ts"
import { accessLineOf, carryOutWorkflowJob, withAccessLog } from "./workflowJob.ts"
import { checkWorkflowJob, type WorkflowJobDecision } from "./workflowJobChecks.ts"

type QueuedDecision = Extract<WorkflowJobDecision, { _tag: "Queued" }>

/*
 * `POST /` on the served port, below `@effect/platform`'s server. The platform makes every request a fiber of
 * its own with a Scope, the tracer's server span and the router's work, which together cost more than a delivery's
 * own steps. Here the body is read with Node's events (the same limits as `readBody`), checked with the same
 * `checkDelivery`, and the delivery runs through the same `dispatchDelivery` in one fiber of the runtime captured
 * when the port was built: the same span (`Webhook.receive`), log line, metrics and answers as the router's
 * `POST /` (`routes.ts`), which still serves the in-process app.
 */

/** `POST /` (any query string): the route of every GitHub delivery. */
export const isDeliveryRequest = (method: string | undefined, url: string | undefined): boolean =>
  method === "POST" && url !== undefined && (url === "/" || url.startsWith("/?"))

/** What a delivery's fiber needs: `dispatchDelivery`'s services. */
type DeliveryServices = Db | WebhookSettings | HttpClient.HttpClient

/** The answer written to Node's response, as the platform's server writes it (`writeHead`, then `end`). */
const writeAnswer = (res: ServerResponse, answer: HttpServerResponse.HttpServerResponse): void => {
  if (res.writableEnded || res.destroyed) return
  const body = answer.body
  switch (body._tag) {
    case "Uint8Array":
      res.writeHead(answer.status, answer.headers)
      res.end(body.body)
      return
    case "Empty":
      res.writeHead(answer.status, answer.headers)
      res.end()
      return
    default:
      // no handler of `POST /` answers with a stream or a form; a new one that did would need writing here
      res.writeHead(500, { "content-type": "text/plain; charset=utf-8" })
      res.end("internal error")
  }
}

/** The fiber's current span from here on (what `withParentSpan` sets for the length of one effect). */
const parentSpanIs = (span: Tracer.Span) =>
  FiberRef.update(FiberRef.currentContext, (context) => Context.add(context, Tracer.ParentSpan, span))

/** Ends a span made with `makeSpan` with the exit of what it spanned, at the Clock's time (as `useSpan` does). */
const endSpan = (span: Tracer.Span, exit: Exit.Exit<unknown, unknown>) =>
  Effect.clockWith((clock) => Effect.sync(() => span.end(clock.unsafeCurrentTimeNanos(), exit)))

/** The front handler for deliveries, made from the port's services once; every other request is left alone. */
export const makeDeliveryFront = Effect.gen(function*() {
  const settings = yield* WebhookSettings
  const runtime = yield* Effect.runtime<DeliveryServices>()
  const runFork = Runtime.runFork(runtime)
  const retryAfterSeconds = budgetRetryAfterSeconds(settings.requestTimeout)
  const maxBodyBytes = settings.maxBodyBytes

  /**
   * Runs the rest of the request in one fiber and writes its answer; a client that goes away interrupts it. The
   * request's server span is the platform's (`http.server POST`, continuing a `traceparent` the sender gave),
   * with its method, path, scheme, user agent, client address and status, but not every header as attributes:
   * those include the signature, which a trace backend has no need of. Under it, `Webhook.receive` (the router's
   * `deliverySpan`) spans the delivery's own work and ends with its exit, before the answer is rendered.
   *
   * Both spans are made and ended here, and the fiber's parent span is set in place rather than with
   * `withSpan`/`withParentSpan`, which put it back when their effect ends: the fiber is the request's own and ends
   * with it, so there is nothing to put back, and each put-back was a further copy of the fiber's refs and context.
   */
  const tracer = yield* Effect.tracer
  const clock = yield* Effect.clock
  const db = yield* Db
  const tracing = yield* FiberRef.get(FiberRef.currentTracerEnabled)
  const timing = yield* FiberRef.get(FiberRef.currentTracerTimingEnabled)
  const spanAnnotations = yield* FiberRef.get(FiberRef.currentTracerSpanAnnotations)
  const spanLinks = Chunk.toReadonlyArray(yield* FiberRef.get(FiberRef.currentTracerSpanLinks))
  const metricLabels = yield* FiberRef.get(FiberRef.currentMetricLabels)
  const nanos = () => (timing ? clock.unsafeCurrentTimeNanos() : BigInt(0))

  /**
   * A span as `Effect.makeSpan` makes it in this runtime (its tracer, its span annotations and links), without a
   * fiber step: the plain `queued` path opens both of its spans before its one fiber starts.
   */
  const openSpan = (name: string, parent: Tracer.AnySpan | undefined, kind: Tracer.SpanKind): Tracer.Span => {
    const span = tracer.span(name, Option.fromNullable(parent), Context.empty(), spanLinks, nanos(), kind, { captureStackTrace: false })
    HashMap.forEach(spanAnnotations, (value, key) => span.attribute(key, value))
    return span
  }

  /** The server span's attributes: method, path, scheme, user agent and client address (not every header). */
  const describeServer = (server: Tracer.Span, req: IncomingMessage, headers: Headers.Headers) => {
    const url = req.url ?? "/"
    const query = url.indexOf("?")
    server.attribute("http.request.method", "POST")
    server.attribute("url.path", query === -1 ? url : url.slice(0, query))
    if (query !== -1 && query < url.length - 1) server.attribute("url.query", url.slice(query + 1))
    server.attribute("url.scheme", "http")
    if (headers["user-agent"] !== undefined) server.attribute("user_agent.original", headers["user-agent"])
    if (req.socket.remoteAddress !== undefined) server.attribute("client.address", req.socket.remoteAddress)
  }

  /**
   * The rest of a request under its two spans, answered whatever happens: `Webhook.receive` spans the
   * delivery's own work and ends with its exit, then the answer is rendered on the server span, which ends last.
   * The span is set inside `onExit`, so an interruption at any step still ends it.
   */
  const underSpans = (
    server: Tracer.Span,
    receive: Tracer.Span,
    work: Effect.Effect<HttpServerResponse.HttpServerResponse, HttpEdgeError, DeliveryServices>
  ) =>
    answered(Effect.onExit(
      Effect.zipRight(parentSpanIs(receive), countSignatureFailures(work)),
      (exit) => Effect.zipRight(endSpan(receive, exit), parentSpanIs(server))
    )).pipe(
      Effect.tap((response) => {
        server.attribute("http.response.status_code", response.status)
        return recordHttpResponse("webhook", response.status)
      }),
      Effect.onExit((exit) => endSpan(server, exit))
    )

  /** Writes the fiber's answer when it ends; a client that goes away interrupts it. */
  const answerWhenDone = (res: ServerResponse, fiber: Fiber.RuntimeFiber<HttpServerResponse.HttpServerResponse>, onExit?: (exit: Exit.Exit<HttpServerResponse.HttpServerResponse>) => void) => {
    fiber.addObserver((exit) => {
      onExit?.(exit)
      if (Exit.isSuccess(exit)) writeAnswer(res, exit.value)
      else if (res.writableEnded || res.destroyed) return
      // Every path answers its defects itself (`answered`), so this is a fault no path foresaw: a sender still
      // listening is told so with a 500, which GitHub shows and lets an operator redeliver, rather than a reset.
      else if (!Exit.isInterrupted(exit) && !res.headersSent) writeAnswer(res, textResponse(500, "internal error"))
      else res.destroy()
    })
    res.once("close", () => {
      if (!res.writableEnded) fiber.unsafeInterruptAsFork(HttpServerError.clientAbortFiberId)
    })
  }

  /**
   * Runs the rest of the request in one fiber and writes its answer. The request's server span is the
   * platform's (`http.server POST`, continuing a `traceparent` the sender gave), with its method, path, scheme,
   * user agent, client address and status, but not every header as attributes: those include the signature,
   * which a trace backend has no need of. Under it, `Webhook.receive` (the router's `deliverySpan`).
   *
   * Both spans are made and ended here, and the fiber's parent span is set in place rather than with
   * `withSpan`/`withParentSpan`, which put it back when their effect ends: the fiber is the request's own and ends
   * with it, so there is nothing to put back, and each put-back was a further copy of the fiber's refs and context.
   */
  const respond = (
    req: IncomingMessage,
    res: ServerResponse,
    headers: Headers.Headers,
    work: Effect.Effect<HttpServerResponse.HttpServerResponse, HttpEdgeError, DeliveryServices>
  ) => {
    const fiber = runFork(Effect.flatMap(
      Effect.makeSpan("http.server POST", {
        parent: Option.getOrUndefined(HttpTraceContext.fromHeaders(headers)),
        kind: "server",
        captureStackTrace: false
      }),
      (server) => {
        describeServer(server, req, headers)
        return Effect.flatMap(
          Effect.makeSpan(DELIVERY_SPAN, { parent: server, captureStackTrace: false }),
          (receive) => underSpans(server, receive, work)
        )
      }
    ))
    answerWhenDone(res, fiber)
  }

  /**
   * A `queued` job to store, the webhook's busiest request, with one Effect step that must be one: the store
   * (group-committed with the deliveries beside it), then the access line, which is written by a fiber as every
   * line is. The spans are opened and ended, the metrics counted and the answer made in plain code, with the same
   * spans, attributes, line, counts and answer as `respond` would give. A failed store goes on as `respond`'s
   * path does (`underSpans`: the line with its status, the error rendered and logged on the server span).
   */
  const respondQueued = (
    req: IncomingMessage,
    res: ServerResponse,
    headers: Headers.Headers,
    delivery: Delivery,
    queued: QueuedDecision
  ) => {
    const server = openSpan("http.server POST", Option.getOrUndefined(HttpTraceContext.fromHeaders(headers)), "server")
    describeServer(server, req, headers)
    const receive = openSpan(DELIVERY_SPAN, server, "internal")
    for (const key in queued.span) receive.attribute(key, queued.span[key])
    const { write } = queued
    const fiber = runFork(Effect.zipRight(
      parentSpanIs(receive),
      Effect.matchCauseEffect(db.storeDelivery(write), {
        onSuccess: (stored) => {
          // Plain code run by the fiber: a throw here is a defect of this path, answered as the handler's path
          // answers one (a logged 500 with its access line), not a connection reset.
          try {
            const outcome = storedOutcome(write, stored)
            deliveryCounter(write.event.event, outcome).unsafeUpdate(1, metricLabels)
            const response = textResponse(200, outcome === "job_stored" ? `Job ${queued.jobId} stored.` : `Job ${queued.jobId} already exists.`)
            return Effect.as(accessLineOf(delivery.startedAt, queued.logFields, 200, clock.unsafeCurrentTimeMillis()), response)
          } catch (defect) {
            return underSpans(server, receive, withAccessLog(delivery.startedAt, queued.logFields)(Effect.die(defect)))
          }
        },
        onFailure: (cause) =>
          underSpans(
            server,
            receive,
            withAccessLog(delivery.startedAt, queued.logFields)(
              Effect.failCause(Cause.map(cause, (e) => new StoreFailed({ operation: "storeDelivery", cause: e })))
            )
          )
      })
    ))
    // Both spans end with the fiber (an answer, or an interruption by a client gone away), the receive span
    // first; on the failed store's path they have ended already, and ending again does nothing.
    answerWhenDone(res, fiber, (exit) => {
      if (receive.status._tag !== "Ended") receive.end(nanos(), exit)
      if (server.status._tag !== "Ended") {
        if (Exit.isSuccess(exit)) {
          server.attribute("http.response.status_code", exit.value.status)
          httpResponseCounter("webhook", exit.value.status).unsafeUpdate(1, metricLabels)
        }
        server.end(nanos(), exit)
      }
    })
  }

  const refuse = (req: IncomingMessage, res: ServerResponse, headers: Headers.Headers, error: HttpEdgeError) =>
    respond(req, res, headers, Effect.fail(error))

  const receive = (req: IncomingMessage, res: ServerResponse): void => {
    const startedAt = Date.now()
    const headers = Headers.fromInput(req.headers)
    const lengthHeader = headers["content-length"]
    const declared = lengthHeader !== undefined && /^\d+$/.test(lengthHeader) ? Number(lengthHeader) : undefined
    if (declared !== undefined && declared > maxBodyBytes) return refuse(req, res, headers, new PayloadTooLarge({ limitBytes: maxBodyBytes }))
    // The lease holds nothing until it grows, and is given back once the signature is checked or the request ends.
    const lease = settings.unverifiedBodyBudget.lease()
    if (declared !== undefined && !lease.grow(declared)) return refuse(req, res, headers, new BodyBudgetExhausted({ retryAfterSeconds }))

    // A declared body goes into one buffer of its size (Node never delivers more than `Content-Length`); a
    // chunked one is kept chunk by chunk, each reserved as it arrives. A streamed body that turns out too large, or
    // outgrows the budget, is read to its end but not kept, so that the sender sees the answer.
    const whole = declared === undefined ? undefined : Buffer.allocUnsafe(declared)
    let filled = 0
    let parts: Array<Buffer> = []
    let total = 0
    let overBudget = false
    let settled = false
    const onData = (chunk: Buffer) => {
      total += chunk.length
      if (whole !== undefined) {
        chunk.copy(whole, filled, 0, Math.min(chunk.length, declared! - filled))
        filled = Math.min(declared!, filled + chunk.length)
        return
      }
      if (total > maxBodyBytes || overBudget) return
      if (lease.grow(chunk.length)) {
        parts.push(chunk)
      } else {
        overBudget = true
        parts = []
        lease.release()
      }
    }
    const fail = () => {
      if (settled) return
      settled = true
      lease.release()
      if (!res.destroyed) refuse(req, res, headers, new BadDelivery({ message: "Failed to read body" }))
    }
    const onEnd = () => {
      if (settled) return
      settled = true
      // The checks are plain code on a stranger's bytes: should one throw, the sender gets a logged 500 and the
      // process goes on (a throw from an event listener would end it).
      try {
        settle()
      } catch (defect) {
        if (!res.headersSent && !res.destroyed) respond(req, res, headers, Effect.die(defect))
      }
    }
    const settle = () => {
      if (whole !== undefined && filled !== declared) {
        lease.release()
        return refuse(req, res, headers, new BadDelivery({ message: "Failed to read body" }))
      }
      if (total > maxBodyBytes) {
        lease.release()
        return refuse(req, res, headers, new PayloadTooLarge({ limitBytes: maxBodyBytes }))
      }
      if (overBudget) return refuse(req, res, headers, new BodyBudgetExhausted({ retryAfterSeconds }))
      const body = whole ?? Buffer.concat(parts, total)
      const checked = checkDelivery(settings, headers, body, startedAt)
      // verified or refused: either way its bytes are no longer held for an unknown sender
      lease.release()
      if ("_tag" in checked) return respond(req, res, headers, Effect.fail(checked))
      if (checked.event === "workflow_job" && checked.action === "queued") {
        // the busiest request, decided in plain code; a job to store takes the plain path, the rest the handler's
        const decision = checkWorkflowJob(settings, checked)
        if (decision._tag === "Queued" && tracing) return respondQueued(req, res, headers, checked, decision)
        return respond(req, res, headers, carryOutWorkflowJob(checked, decision, settings))
      }
      respond(req, res, headers, dispatchDelivery(checked))
    }
    req.on("data", onData)
    req.once("end", onEnd)
    req.once("error", fail)
    // the deadline (Node's 408) or a client gone before the end: nothing to answer, the bytes go back
    res.once("close", () => {
      if (!settled) {
        settled = true
        lease.release()
      }
    })
  }

  const handler: FrontHandler = (req, res) => {
    if (!isDeliveryRequest(req.method, req.url)) return false
    receive(req, res)
    return true
  }
  return handler
})

/** Opens the front door of the served port to `makeDeliveryFront` for as long as the port serves. */
export const DeliveryFront = Layer.scopedDiscard(
  Effect.flatMap(Effect.zip(HttpFrontDoor, makeDeliveryFront), ([door, handler]) => door.open(handler))
)

