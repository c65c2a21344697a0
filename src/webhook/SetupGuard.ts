import { Context, type Effect, Exit, Layer } from "effect"
import type { EntityType } from "../domain/Entity.ts"
import type { GithubError, GithubInstallation } from "../services/Github.ts"
import { type LookupCacheOptions, makeLookupCache } from "./lookupCache.ts"
import { type Decision, makeRateLimiter, type RateLimit } from "./rateLimiter.ts"

/*
 * What keeps the public setup pages from spending the app's GitHub budget for anyone: each page hit would mint
 * an app JWT and call `GET /app/installations/{id}`. Answers are remembered per (app, installation id) for a
 * minute, found and not found alike (a failure of GitHub's is asked again), and each client address gets a token
 * bucket. It lives as long as the webhook program's settings, so one process has one cache and one limiter.
 */

export interface SetupGuardOptions {
  readonly lookups: LookupCacheOptions
  readonly rateLimit: RateLimit
}

export interface SetupGuardShape {
  /** Counts one setup-page request from `address`. */
  readonly admit: (address: string) => Effect.Effect<Decision>
  /** `lookup` for the app serving `app`, or its answer from the last minute. */
  readonly installation: (
    app: EntityType,
    installationId: number,
    lookup: Effect.Effect<GithubInstallation, GithubError>
  ) => Effect.Effect<GithubInstallation, GithubError>
}

export class SetupGuard extends Context.Tag("riscv-runner/SetupGuard")<SetupGuard, SetupGuardShape>() {}

/** A hit or a 404 is the installation's state; anything else is GitHub's trouble, worth asking about again. */
const worthKeeping = (exit: Exit.Exit<GithubInstallation, GithubError>): boolean =>
  Exit.isSuccess(exit) || (exit.cause._tag === "Fail" && exit.cause.error._tag === "GithubNotFound")

export const makeSetupGuard = (options: SetupGuardOptions): SetupGuardShape => {
  const cache = makeLookupCache<GithubInstallation, GithubError>(options.lookups)
  const limiter = makeRateLimiter(options.rateLimit)
  return {
    admit: limiter.take,
    installation: (app, installationId, lookup) => cache.get(`${app}:${installationId}`, lookup, worthKeeping)
  }
}

/** A fresh guard (empty cache, full buckets) each time the layer is built. */
export const setupGuardLayer = (options: SetupGuardOptions): Layer.Layer<SetupGuard> =>
  Layer.sync(SetupGuard, () => makeSetupGuard(options))
