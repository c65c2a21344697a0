import { Cause, Clock, Deferred, Duration, Effect, Exit } from "effect"
import type { Redacted } from "effect"

/**
 * Installation tokens, remembered per (installation, app) key. GitHub's tokens live 60 minutes; we keep them 59
 * so a cached token is never used in its last minute. Time comes from Effect's Clock, so TestClock can prove the
 * rule. Failures are not remembered: a broken installation is asked again on the next call. Concurrent misses
 * for one key share one request.
 */
export interface TokenCache<E> {
  readonly get: (
    key: string,
    fetch: Effect.Effect<Redacted.Redacted<string>, E>
  ) => Effect.Effect<Redacted.Redacted<string>, E>
  /** Forgets a token GitHub no longer accepts (401), so the next call fetches a fresh one. */
  readonly invalidate: (key: string) => Effect.Effect<void>
  /** The token `get` would answer from memory at `now` (epoch ms), without a step: undefined when it would load. */
  readonly peek: (key: string, now: number) => Redacted.Redacted<string> | undefined
}

type Slot<E> =
  | { readonly _tag: "Ready"; readonly token: Redacted.Redacted<string>; readonly expiresAt: number }
  | { readonly _tag: "Loading"; readonly deferred: Deferred.Deferred<Redacted.Redacted<string>, E> }

export const tokenTtl = Duration.minutes(59)

export const makeTokenCache = <E>(options?: {
  readonly ttl?: Duration.DurationInput
  /** the original keeps 1024; more installations than that only cost extra token requests */
  readonly maxEntries?: number
}): Effect.Effect<TokenCache<E>> =>
  Effect.gen(function* () {
    const ttlMillis = Duration.toMillis(options?.ttl ?? tokenTtl)
    const maxEntries = options?.maxEntries ?? 1024
    // One map changed in place: every change is one synchronous step, so no other fiber sees half of one (what
    // `Ref.modify` gave), and a burst's first token of each of hundreds of installations no longer copies the
    // map of all the others twice.
    const slots = new Map<string, Slot<E>>()

    const settle = (
      key: string,
      deferred: Deferred.Deferred<Redacted.Redacted<string>, E>,
      slot: Slot<E> | undefined
    ) =>
      Effect.sync(() => {
        const current = slots.get(key)
        if (current?._tag !== "Loading" || current.deferred !== deferred) return
        slots.delete(key)
        if (slot !== undefined) {
          slots.set(key, slot)
          // Insertion order is age order; drop the oldest ready tokens beyond the bound.
          for (const [k, s] of slots) {
            if (slots.size <= maxEntries) break
            if (s._tag === "Ready") slots.delete(k)
          }
        }
      })

    const peek = (key: string, now: number) => {
      const slot = slots.get(key)
      return slot?._tag === "Ready" && slot.expiresAt > now ? slot.token : undefined
    }

    // Every authenticated request asks for its token, so a hit is one read: no Deferred, no mask, no generator.
    const get = (
      key: string,
      fetch: Effect.Effect<Redacted.Redacted<string>, E>
    ): Effect.Effect<Redacted.Redacted<string>, E> =>
      // the clock read in the same step as the map (`clockWith`)
      Effect.clockWith((clock) => {
        const token = peek(key, clock.unsafeCurrentTimeMillis())
        return token !== undefined ? Effect.succeed(token) : load(key, fetch)
      })

    type Decision =
      | { readonly _tag: "hit"; readonly token: Redacted.Redacted<string> }
      | { readonly _tag: "wait"; readonly deferred: Deferred.Deferred<Redacted.Redacted<string>, E> }
      | { readonly _tag: "load" }

    /** A miss (or a token about to expire): one request per key, shared by the callers that arrive meanwhile. */
    const load = (
      key: string,
      fetch: Effect.Effect<Redacted.Redacted<string>, E>
    ): Effect.Effect<Redacted.Redacted<string>, E> =>
      Effect.uninterruptibleMask((restore) =>
        Effect.gen(function* () {
          const now = yield* Clock.currentTimeMillis
          const mine = yield* Deferred.make<Redacted.Redacted<string>, E>()
          // the look-up and the claim in one synchronous step, so two fibers cannot both become the loader
          const decision = yield* Effect.sync((): Decision => {
            const slot = slots.get(key)
            if (slot?._tag === "Ready" && slot.expiresAt > now) return { _tag: "hit", token: slot.token }
            if (slot?._tag === "Loading") return { _tag: "wait", deferred: slot.deferred }
            slots.set(key, { _tag: "Loading", deferred: mine })
            return { _tag: "load" }
          })
          if (decision._tag === "hit") return decision.token
          if (decision._tag === "wait") {
            const exit = yield* restore(Deferred.await(decision.deferred)).pipe(Effect.exit)
            // The loader was interrupted (not failed): its caller went away, ours did not; try ourselves.
            if (Exit.isFailure(exit) && Cause.isInterruptedOnly(exit.cause)) return yield* restore(get(key, fetch))
            return yield* exit
          }
          const exit = yield* restore(fetch).pipe(Effect.exit)
          // The token's life started when we asked for it, so the 59 minutes count from `now`.
          yield* settle(
            key,
            mine,
            Exit.isSuccess(exit) ? { _tag: "Ready", token: exit.value, expiresAt: now + ttlMillis } : undefined
          )
          yield* Deferred.done(mine, exit)
          return yield* exit
        })
      )

    const invalidate = (key: string) =>
      Effect.sync(() => {
        if (slots.get(key)?._tag === "Ready") slots.delete(key)
      })

    return { get, invalidate, peek }
  })
