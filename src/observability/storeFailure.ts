import { HttpApp, HttpServerResponse } from "@effect/platform"
import { Effect } from "effect"
import { isDbUnavailable } from "../services/Db.ts"
import { InternalError, Unavailable } from "./apiErrors.ts"

/** How long a client is asked to wait when the database did not answer in time. */
export const STORE_RETRY_AFTER_SECONDS = 10

/**
 * A JSON route's store failure, as both ports answer it: `503` with `Retry-After` when the database did not answer
 * in time (the pool's deadlines, `layers/db/timeouts.ts`), so a dashboard or a client backs off instead of
 * reporting a bug; any other failure is `500 internal error`. The cause goes to the log only, never to the body.
 */
export const storeFailure = <A, E extends { readonly message?: string }, R>(
  operation: string,
  effect: Effect.Effect<A, E, R>
): Effect.Effect<A, InternalError | Unavailable, R> =>
  Effect.catchAll(effect, (cause): Effect.Effect<never, InternalError | Unavailable> => {
    const unavailable = isDbUnavailable(cause)
    const log = Effect.logError(unavailable ? "database unavailable" : "internal error").pipe(
      Effect.annotateLogs({ status: unavailable ? 503 : 500, error: "StoreFailed", detail: `${operation}: ${cause.message ?? String(cause)}` })
    )
    return unavailable
      ? log.pipe(
        Effect.zipRight(HttpApp.appendPreResponseHandler((_, response) =>
          Effect.succeed(HttpServerResponse.setHeader(response, "retry-after", String(STORE_RETRY_AFTER_SECONDS)))
        )),
        Effect.zipRight(Effect.fail(new Unavailable({ message: "database unavailable: it did not answer in time; try again later" })))
      )
      : Effect.zipRight(log, Effect.fail(new InternalError({ message: "internal error" })))
  })
