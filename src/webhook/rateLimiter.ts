import { Clock, Effect } from "effect"

/*
 * A token bucket per key (a client address): `burst` requests at once, then `perMinute` a minute. It is kept in
 * the equivalent "generic cell rate" form, one number per key: the time at which the key's bucket will be full
 * again, so the arithmetic is on whole milliseconds and exact. The decision is a pure function of that time and
 * the clock; the limiter keeps the state of at most `maxKeys` keys, forgetting the least recently seen first. A
 * key whose bucket is already full again is the same as a forgotten one, so under the cap forgetting costs
 * nothing; above it (requests from more addresses than the cap within a refill) the oldest buckets are refilled
 * early, and memory stays bounded either way.
 */

export interface RateLimit {
  /** sustained requests per minute per key; 0 turns the limit off */
  readonly perMinute: number
  /** requests a key may make at once, after a quiet spell */
  readonly burst: number
  /** the most keys tracked at a time */
  readonly maxKeys: number
}

/** When the key's bucket is full again (epoch milliseconds); at or before now means full. */
export type FullAt = number

export type Decision =
  | { readonly _tag: "Allowed" }
  /** `retryAfterSeconds`: whole seconds until the next request is allowed, at least 1 (an HTTP `Retry-After`) */
  | { readonly _tag: "Limited"; readonly retryAfterSeconds: number }

/** Counts one request at `now` against a key's state (undefined for a key not seen yet). Pure. */
export const take = (limit: RateLimit, state: FullAt | undefined, now: number): { decision: Decision; state: FullAt } => {
  const interval = 60_000 / limit.perMinute
  const fullAt = Math.max(state ?? now, now)
  // Each request pushes "full again" one interval further. The bucket holds `burst` requests, so one more fits
  // while "full again" is at most `burst - 1` intervals away; otherwise the client waits until it is.
  const wait = fullAt - now - (limit.burst - 1) * interval
  if (wait <= 0) return { decision: { _tag: "Allowed" }, state: fullAt + interval }
  return { decision: { _tag: "Limited", retryAfterSeconds: Math.max(1, Math.ceil(wait / 1000)) }, state: fullAt }
}

export interface RateLimiter {
  /** Counts one request of `key` against its bucket, at Effect's Clock time. */
  readonly take: (key: string) => Effect.Effect<Decision>
  /** how many keys are tracked now (for tests and metrics) */
  readonly size: Effect.Effect<number>
}

export const makeRateLimiter = (options: RateLimit): RateLimiter => {
  // a bucket smaller than one request would refuse everything, and a cap of 0 keys would forget the one asking
  const limit: RateLimit = { ...options, burst: Math.max(1, options.burst), maxKeys: Math.max(1, options.maxKeys) }
  // A Map iterates in insertion order; re-inserting a key on every request keeps the least recently seen first.
  const buckets = new Map<string, FullAt>()
  return {
    take: (key) =>
      limit.perMinute <= 0
        ? Effect.succeed({ _tag: "Allowed" })
        : Effect.map(Clock.currentTimeMillis, (now) => {
          const result = take(limit, buckets.get(key), now)
          buckets.delete(key)
          buckets.set(key, result.state)
          for (const oldest of buckets.keys()) {
            if (buckets.size <= limit.maxKeys) break
            buckets.delete(oldest)
          }
          return result.decision
        }),
    size: Effect.sync(() => buckets.size)
  }
}
