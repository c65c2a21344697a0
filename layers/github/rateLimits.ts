import { Clock, Effect, Option } from "effect"
import { type GithubOperation, GithubRateLimited, type RateLimit } from "../../src/services/Github.ts"
import type { HeaderMap } from "./statusErrors.ts"

/**
 * Each installation's primary budget as GitHub last reported it in an answer's `x-ratelimit-*` headers, and the
 * guard that keeps the client from asking while that budget is spent.
 */
export interface RateLimits {
  /** Remembers the budget an installation-authenticated answer reports (core resource only). */
  readonly note: (installationId: number, headers: HeaderMap) => Effect.Effect<void>
  readonly get: (installationId: number) => Effect.Effect<Option.Option<RateLimit>>
  /**
   * Fails at once when GitHub last said the installation's budget is spent and the reset has not come yet: asking
   * again would only cost a round trip (and a token) to hear 403.
   */
  readonly guard: (installationId: number, operation: GithubOperation) => Effect.Effect<void, GithubRateLimited>
  /**
   * `note` and `guard` as plain calls, for the client's per-call chain (no step of their own): `record` notes an
   * answer's budget, `refusal` is the error `guard` fails with at `now` (epoch ms), if any.
   */
  readonly record: (installationId: number, headers: HeaderMap) => void
  readonly refusal: (installationId: number, operation: GithubOperation, now: number) => GithubRateLimited | undefined
}

/** The budget an answer reports, if its headers say one (and it is the `core` resource's). */
export const rateLimitOf = (headers: HeaderMap): RateLimit | undefined => {
  const limit = Number(headers["x-ratelimit-limit"])
  const remaining = Number(headers["x-ratelimit-remaining"])
  const reset = Number(headers["x-ratelimit-reset"])
  if (!Number.isFinite(limit) || !Number.isFinite(remaining) || !Number.isFinite(reset)) return undefined
  if (headers["x-ratelimit-resource"] !== undefined && headers["x-ratelimit-resource"] !== "core") return undefined
  const used = Number(headers["x-ratelimit-used"])
  return { limit, remaining, used: Number.isFinite(used) ? used : limit - remaining, resetAt: new Date(reset * 1000) }
}

// Noted and guarded on every call: one map changed in place (every change is one synchronous step, so no reader
// sees half of one), where copying the map per answer cost a copy of every installation's entry per call.
export const makeRateLimits: Effect.Effect<RateLimits> = Effect.sync(() => {
  const known = new Map<number, RateLimit>()
  const record = (installationId: number, headers: HeaderMap) => {
    const info = rateLimitOf(headers)
    if (info !== undefined) known.set(installationId, info)
  }
  /** Is the budget known to be spent? Then the clock says whether its reset has come. */
  const spent = (installationId: number) => {
    const budget = known.get(installationId)
    return budget === undefined || budget.remaining > 0 ? undefined : budget
  }
  const refused = (budget: RateLimit, operation: GithubOperation, now: number) =>
    budget.resetAt.getTime() > now
      ? new GithubRateLimited({
        operation,
        status: 403,
        message: `${operation}: the installation's rate-limit budget is spent until ${budget.resetAt.toISOString()}`,
        resetAt: budget.resetAt,
        retryAfterSeconds: undefined
      })
      : undefined
  return {
    note: (installationId, headers) => Effect.sync(() => record(installationId, headers)),
    get: (installationId) => Effect.sync(() => Option.fromNullable(known.get(installationId))),
    guard: (installationId, operation) =>
      Effect.suspend(() => {
        const budget = spent(installationId)
        // nothing to check while the budget is not known to be spent: no clock read
        if (budget === undefined) return Effect.void
        return Effect.flatMap(Clock.currentTimeMillis, (now) => {
          const error = refused(budget, operation, now)
          return error === undefined ? Effect.void : Effect.fail(error)
        })
      }),
    record,
    refusal: (installationId, operation, now) => {
      const budget = spent(installationId)
      return budget === undefined ? undefined : refused(budget, operation, now)
    }
  }
})
