import { Cause, Clock, Deferred, Duration, Effect, Exit, Ref } from "effect"
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
    // A Map used as a value: every change makes a new one, so `Ref.modify` stays atomic.
    const slots = yield* Ref.make(new Map<string, Slot<E>>())

    const settle = (
      key: string,
      deferred: Deferred.Deferred<Redacted.Redacted<string>, E>,
      slot: Slot<E> | undefined
    ) =>
      Ref.update(slots, (m) => {
        const current = m.get(key)
        if (current?._tag !== "Loading" || current.deferred !== deferred) return m
        const next = new Map(m)
        next.delete(key)
        if (slot !== undefined) {
          next.set(key, slot)
          // Insertion order is age order; drop the oldest ready tokens beyond the bound.
          for (const [k, s] of next) {
            if (next.size <= maxEntries) break
            if (s._tag === "Ready") next.delete(k)
          }
        }
        return next
      })

    // Every authenticated request asks for its token, so a hit is two reads: no Deferred, no mask, no generator.
    const get = (
      key: string,
      fetch: Effect.Effect<Redacted.Redacted<string>, E>
    ): Effect.Effect<Redacted.Redacted<string>, E> =>
      // the clock read in the same step as the map (`clockWith`), not as two steps of its own
      Effect.clockWith((clock) =>
        Effect.flatMap(Ref.get(slots), (m) => {
          const slot = m.get(key)
          return slot?._tag === "Ready" && slot.expiresAt > clock.unsafeCurrentTimeMillis()
            ? Effect.succeed(slot.token)
            : load(key, fetch)
        }))

    /** A miss (or a token about to expire): one request per key, shared by the callers that arrive meanwhile. */
    const load = (
      key: string,
      fetch: Effect.Effect<Redacted.Redacted<string>, E>
    ): Effect.Effect<Redacted.Redacted<string>, E> =>
      Effect.uninterruptibleMask((restore) =>
        Effect.gen(function* () {
          const now = yield* Clock.currentTimeMillis
          const mine = yield* Deferred.make<Redacted.Redacted<string>, E>()
          const decision = yield* Ref.modify(slots, (m): readonly [
            { readonly _tag: "hit"; readonly token: Redacted.Redacted<string> } | {
              readonly _tag: "wait"
              readonly deferred: Deferred.Deferred<Redacted.Redacted<string>, E>
            } | { readonly _tag: "load" },
            Map<string, Slot<E>>
          ] => {
            const slot = m.get(key)
            if (slot?._tag === "Ready" && slot.expiresAt > now) return [{ _tag: "hit", token: slot.token }, m]
            if (slot?._tag === "Loading") return [{ _tag: "wait", deferred: slot.deferred }, m]
            const next = new Map(m)
            next.set(key, { _tag: "Loading", deferred: mine })
            return [{ _tag: "load" }, next]
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
      Ref.update(slots, (m) => {
        if (m.get(key)?._tag !== "Ready") return m
        const next = new Map(m)
        next.delete(key)
        return next
      })

    return { get, invalidate }
  })
