import { Duration } from "effect"
import type { ServerOptions } from "node:http"

/*
 * What bounds an unauthenticated client before its signature is checked. Anyone can open a connection to the
 * webhook and declare a body of up to 25 MiB, and the body must be held in full before its HMAC can be checked.
 * Two limits keep that from exhausting the process: a deadline for the whole request (enforced by Node's HTTP
 * server, see `webhookServerOptions`) and a process-wide budget of bytes held for bodies not yet verified.
 */

/** GitHub gives up on a delivery after 10 s; a request still arriving after this is not GitHub's. */
export const DEFAULT_REQUEST_TIMEOUT = Duration.seconds(15)

/** Room for two deliveries of GitHub's largest size at once, and for any number of ordinary ones. */
export const DEFAULT_UNVERIFIED_BODY_BUDGET = 64 * 1024 * 1024

/**
 * Options for `http.createServer` that make Node answer `408 Request Timeout` and close the connection of a
 * request (headers and body) that has not fully arrived within `timeout`. Node checks its connections every
 * `connectionsCheckingInterval` (30 s by default, far coarser than the deadline), so the check runs a few times
 * per deadline instead, at most once a second.
 */
export const webhookServerOptions = (timeout: Duration.Duration): ServerOptions => {
  const ms = Math.max(1, Math.round(Duration.toMillis(timeout)))
  return {
    requestTimeout: ms,
    // Node insists that the headers' deadline is not later than the request's
    headersTimeout: ms,
    connectionsCheckingInterval: Math.min(1000, Math.max(50, Math.floor(ms / 4)))
  }
}

/** What one request holds of the budget; released once, on whatever path the request ends. */
export interface BudgetLease {
  /** bytes this request holds now */
  readonly held: number
  /** takes `bytes` more; false (taking nothing) when the budget cannot spare them */
  readonly grow: (bytes: number) => boolean
  /** gives everything back; later calls do nothing */
  readonly release: () => void
}

/**
 * The process-wide count of bytes buffered for bodies whose signature has not been checked yet. A request takes
 * its declared `Content-Length` before reading a byte, or, for a chunked body, each chunk as it arrives; one that
 * would take the count past `capacity` is refused (503) instead.
 */
export class UnverifiedBodyBudget {
  #used = 0
  constructor(readonly capacity: number) {}

  /** bytes reserved right now, over every request in flight */
  get used(): number {
    return this.#used
  }

  lease(): BudgetLease {
    let held = 0
    let released = false
    return {
      get held() {
        return held
      },
      grow: (bytes) => {
        if (released || this.#used + bytes > this.capacity) return false
        this.#used += bytes
        held += bytes
        return true
      },
      release: () => {
        if (released) return
        released = true
        this.#used -= held
        held = 0
      }
    }
  }
}
