import { HttpApiSchema, HttpServerRespondable, HttpServerResponse } from "@effect/platform"
import { Effect, Schema } from "effect"
import { isDbUnavailable } from "../services/Db.ts"
import { STORE_RETRY_AFTER_SECONDS } from "../observability/storeFailure.ts"

/*
 * The errors that end a webhook-program request. Each carries its HTTP status as a Schema annotation and renders
 * itself as the plain-text body the original sent (GitHub shows that body in the delivery log, so it is worth
 * being specific). A 5xx body never carries the underlying error: that goes to the log only.
 */

export const TEXT = "text/plain; charset=utf-8"

export const textResponse = (status: number, body: string) => HttpServerResponse.text(body, { status, contentType: TEXT })

/** A store that did not answer in time (or is unreachable) is a 503 that says when to try again. */
const storeUnavailable = (error: HttpEdgeError): boolean => error._tag === "StoreFailed" && isDbUnavailable(error.cause)

/** The status annotated on the error's class; 503 for a store that is unavailable. */
export const statusOf = (error: HttpEdgeError): number =>
  storeUnavailable(error) ? 503 : HttpApiSchema.getStatusErrorAST((error.constructor as unknown as Schema.Schema.Any).ast)

/** The headers an error's answer carries besides its content type: `Retry-After` for a refusal that passes. */
const headersOf = (error: HttpEdgeError): Record<string, string> =>
  storeUnavailable(error)
    ? { "retry-after": String(STORE_RETRY_AFTER_SECONDS) }
    : error._tag === "BodyBudgetExhausted"
    ? { "retry-after": String(error.retryAfterSeconds) }
    : {}

const errorResponse = (error: HttpEdgeError) =>
  HttpServerResponse.text(error.body, { status: statusOf(error), contentType: TEXT, headers: headersOf(error) })

const respond = (error: HttpEdgeError) => Effect.succeed(errorResponse(error))

/** A delivery that is not a well-formed GitHub webhook: missing header or field, not JSON. Nothing is written. */
export class BadDelivery extends Schema.TaggedError<BadDelivery>()("BadDelivery", { message: Schema.String }, HttpApiSchema.annotations({ status: 400 })) {
  get body() {
    return this.message
  }
  [HttpServerRespondable.symbol]() {
    return respond(this)
  }
}

/** The signature header is missing or does not match the body. Nothing is written. */
export class SignatureRejected extends Schema.TaggedError<SignatureRejected>()(
  "SignatureRejected",
  { message: Schema.String },
  HttpApiSchema.annotations({ status: 401 })
) {
  get body() {
    return this.message
  }
  [HttpServerRespondable.symbol]() {
    return respond(this)
  }
}

/** The body is larger than GitHub ever sends. */
export class PayloadTooLarge extends Schema.TaggedError<PayloadTooLarge>()(
  "PayloadTooLarge",
  { limitBytes: Schema.Number },
  HttpApiSchema.annotations({ status: 413 })
) {
  get body() {
    return `Payload too large: the limit is ${this.limitBytes} bytes`
  }
  [HttpServerRespondable.symbol]() {
    return respond(this)
  }
}

/**
 * Too many bytes are held already for bodies not yet verified (`WEBHOOK_UNVERIFIED_BODY_BUDGET`): this body is
 * refused before it is read. Every reservation ends within one request deadline, hence the `Retry-After`.
 */
export class BodyBudgetExhausted extends Schema.TaggedError<BodyBudgetExhausted>()(
  "BodyBudgetExhausted",
  { retryAfterSeconds: Schema.Number },
  HttpApiSchema.annotations({ status: 503 })
) {
  get body() {
    return "Too many request bodies awaiting verification; retry later"
  }
  [HttpServerRespondable.symbol]() {
    return respond(this)
  }
}

/**
 * A write to the store failed. For the audit row this is deliberate: the 500 marks the attempt failed in GitHub's
 * delivery log (GitHub does not re-deliver on its own; the scheduler's redelivery pass asks it to), and the
 * re-delivery converges because every job write is idempotent.
 */
export class StoreFailed extends Schema.TaggedError<StoreFailed>()(
  "StoreFailed",
  { operation: Schema.String, cause: Schema.Defect },
  HttpApiSchema.annotations({ status: 500 })
) {
  get body() {
    return isDbUnavailable(this.cause) ? "database unavailable: it did not answer in time; try again later" : "internal error"
  }
  [HttpServerRespondable.symbol]() {
    return respond(this)
  }
}

/** Staging did not answer (connection refused, reset, or no answer within the timeout). */
export class StagingProxyFailed extends Schema.TaggedError<StagingProxyFailed>()(
  "StagingProxyFailed",
  { message: Schema.String },
  HttpApiSchema.annotations({ status: 502 })
) {
  get body() {
    return "staging proxy failed"
  }
  [HttpServerRespondable.symbol]() {
    return respond(this)
  }
}

/** `/trace/*` without `TRACE_API_SECRET`: closed, never open. */
export class TraceDisabled extends Schema.TaggedError<TraceDisabled>()("TraceDisabled", {}, HttpApiSchema.annotations({ status: 503 })) {
  get body() {
    return "trace API disabled: TRACE_API_SECRET is not set"
  }
  [HttpServerRespondable.symbol]() {
    return respond(this)
  }
}

export class Unauthorized extends Schema.TaggedError<Unauthorized>()("Unauthorized", {}, HttpApiSchema.annotations({ status: 401 })) {
  get body() {
    return "Unauthorized"
  }
  [HttpServerRespondable.symbol]() {
    return respond(this)
  }
}

/** A path id that is not an integer; `param` names it as the original did (`entity_id`, `job_id`, ...). */
export class InvalidId extends Schema.TaggedError<InvalidId>()("InvalidId", { param: Schema.String }, HttpApiSchema.annotations({ status: 400 })) {
  get body() {
    return `Invalid ${this.param}`
  }
  [HttpServerRespondable.symbol]() {
    return respond(this)
  }
}

export class NotFound extends Schema.TaggedError<NotFound>()("NotFound", { message: Schema.String }, HttpApiSchema.annotations({ status: 404 })) {
  get body() {
    return this.message
  }
  [HttpServerRespondable.symbol]() {
    return respond(this)
  }
}

export type HttpEdgeError =
  | BadDelivery
  | SignatureRejected
  | PayloadTooLarge
  | BodyBudgetExhausted
  | StoreFailed
  | StagingProxyFailed
  | TraceDisabled
  | Unauthorized
  | InvalidId
  | NotFound

/** What the log says about an error beyond its body: the underlying failure, when there is one. */
const detail = (error: HttpEdgeError): string | undefined => {
  switch (error._tag) {
    case "StoreFailed": {
      const cause = error.cause as { readonly message?: unknown } | undefined
      return `${error.operation}: ${typeof cause?.message === "string" ? cause.message : String(cause)}`
    }
    case "StagingProxyFailed":
      return error.message
    default:
      return undefined
  }
}

/**
 * Turns an error into its response and logs it: a failure of ours (5xx) at ERROR with what went wrong underneath,
 * anything the sender must fix at WARN. A closed trace API or a spent body budget (503) is a deliberate limit, so
 * WARN as well. Errors never hold secrets, so logging them is safe.
 */
export const renderError = (error: HttpEdgeError) => {
  const status = statusOf(error)
  const why = detail(error)
  const log = status >= 500 && status !== 503 ? Effect.logError(error.body) : Effect.logWarning(error.body)
  return log.pipe(
    Effect.annotateLogs({ status, error: error._tag, ...(why === undefined ? {} : { detail: why }) }),
    Effect.as(errorResponse(error))
  )
}
