import { type HttpApi, type HttpApp, HttpApiBuilder, HttpApiError, type HttpApiGroup, HttpApiSchema } from "@effect/platform"
import { Effect, Schema } from "effect"

/*
 * The errors of the JSON routes (the trace API and the scheduler's operator routes). The original answers each
 * of them with a plain-text body, and the texts are promised (docs/http-api.md), so each error schema encodes to
 * `text/plain` under its status: the error's message is the body. `HttpApiClient` decodes them back from the same
 * schemas, by status.
 */

const TEXT = "text/plain; charset=utf-8"

/** What every text error carries: the body it is answered with. */
const fields = { message: Schema.String }

/** The schema an endpoint lists: a plain-text body on the wire, the error class in the program. */
const asText = <Self extends { readonly _tag: Tag; readonly message: string }, Tag extends string>(
  error: Schema.Schema<Self, { readonly _tag: Tag; readonly message: string }>,
  tag: Tag,
  status: number,
  description: string
) =>
  Schema.transform(Schema.String, error, {
    strict: true,
    decode: (message) => ({ _tag: tag, message }),
    encode: (e) => e.message
  }).pipe(HttpApiSchema.withEncoding({ kind: "Text", contentType: TEXT })).annotations(HttpApiSchema.annotations({ status, description }))

/** A path id or query parameter the route does not accept; the message names it as the original did. */
export class BadRequest extends Schema.TaggedError<BadRequest>()("BadRequest", fields) {}
export const BadRequestText = asText(BadRequest, "BadRequest", 400, "a parameter is invalid; the body names it")

/** `Authorization` is not exactly `Bearer <TRACE_API_SECRET>`. */
export class Unauthorized extends Schema.TaggedError<Unauthorized>()("Unauthorized", fields) {}
export const UnauthorizedText = asText(Unauthorized, "Unauthorized", 401, "Authorization is not `Bearer <TRACE_API_SECRET>`")

export class NotFound extends Schema.TaggedError<NotFound>()("NotFound", fields) {}
export const NotFoundText = asText(NotFound, "NotFound", 404, "no such entity or event")

/** The store failed; the details go to the log, never into the body. */
export class InternalError extends Schema.TaggedError<InternalError>()("InternalError", fields) {}
export const InternalErrorText = asText(InternalError, "InternalError", 500, "the store failed (`internal error`)")

/** The trace API is closed (TRACE_API_SECRET unset), or the store did not answer in time (with Retry-After). */
export class Unavailable extends Schema.TaggedError<Unavailable>()("Unavailable", fields) {}
export const UnavailableText = asText(Unavailable, "Unavailable", 503, "the trace API is disabled (TRACE_API_SECRET unset), or the store did not answer in time")

/**
 * The first issue's message of a request that did not decode: the parameter schemas carry the original's texts
 * (`Invalid entity_id`, `invalid parameter start, must be YYYY-MM-DD`) as their messages.
 */
export const decodeMessage = (error: HttpApiError.HttpApiDecodeError): string => error.issues[0]?.message ?? error.message

/**
 * An API-wide middleware: a request whose path or query does not decode is answered `400` with the parameter's
 * own text rather than the platform's JSON list of issues, and a defect (a bug) is a logged `500 internal error`.
 * The API lists both errors (`BadRequestText`, `InternalErrorText`), so its error schema encodes them.
 */
export const textErrors = <Id extends string, Groups extends HttpApiGroup.HttpApiGroup.Any, E, R>(
  api: HttpApi.HttpApi<Id, Groups, E | BadRequest | InternalError, R>
) =>
  HttpApiBuilder.middleware(api, (app) =>
    // the platform types the app's failures as `never`, though a route's own failures travel through it
    (app as HttpApp.Default<unknown>).pipe(
      Effect.catchIf(
        (e): e is HttpApiError.HttpApiDecodeError => e instanceof HttpApiError.HttpApiDecodeError,
        (e) => Effect.fail(new BadRequest({ message: decodeMessage(e) }))
      ),
      Effect.catchAllDefect((defect) =>
        Effect.zipRight(Effect.logError("unexpected failure", defect), Effect.fail(new InternalError({ message: "internal error" })))
      )
    ) as HttpApp.Default<BadRequest | InternalError>)
