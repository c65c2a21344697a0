import { HttpServerResponse } from "@effect/platform"
import { Duration, Effect } from "effect"
import { Db } from "../services/Db.ts"

/** How long `/ready` waits for the database; below the probes' own 3 s timeout. */
export const READY_TIMEOUT = Duration.seconds(2)

const text = (status: number, body: string) => HttpServerResponse.text(body, { status, contentType: "text/plain; charset=utf-8" })

/**
 * `GET /ready`, on both ports: `200 ready` while the database answers a `SELECT 1` within `READY_TIMEOUT`, else
 * `503` with the reason, so that Kubernetes stops routing deliveries to a replica that cannot store them.
 * Liveness stays `/health`: a database outage must not restart every replica. Not logged: probes call it every
 * few seconds, and the failures that matter are logged where requests fail.
 */
export const readyRoute = Effect.gen(function*() {
  const db = yield* Db
  // disconnected: a timed-out ping is cancelled in the background, so a frozen server cannot hold the answer
  return yield* Effect.disconnect(db.ping).pipe(
    Effect.timeoutFail({
      duration: READY_TIMEOUT,
      onTimeout: () => ({ message: `the database did not answer within ${Duration.format(READY_TIMEOUT)}` })
    }),
    Effect.match({
      onSuccess: () => text(200, "ready"),
      onFailure: (e) => text(503, `not ready: ${e.message}`)
    })
  )
})
