import { Effect, Ref } from "effect"

/**
 * The ETag and body of the last 200 answer per polled resource, for conditional GETs: a 304 costs no budget and
 * the kept body is served. Bounded; the oldest entry goes first.
 */
export interface EtagCache {
  readonly get: (key: string) => Effect.Effect<{ readonly etag: string; readonly data: unknown } | undefined>
  /** Keeps a fresh answer's body under its ETag; an answer without an ETag drops what was kept. */
  readonly set: (key: string, etag: string | undefined, data: unknown) => Effect.Effect<void>
}

export const makeEtagCache = (maxEntries = 10_000): Effect.Effect<EtagCache> =>
  Effect.gen(function*() {
    const entries = yield* Ref.make(new Map<string, { readonly etag: string; readonly data: unknown }>())
    return {
      get: (key) => Ref.get(entries).pipe(Effect.map((m) => m.get(key))),
      set: (key, etag, data) =>
        Ref.update(entries, (m) => {
          const next = new Map(m)
          next.delete(key)
          if (etag !== undefined) next.set(key, { etag, data })
          for (const k of next.keys()) {
            if (next.size <= maxEntries) break
            next.delete(k)
          }
          return next
        })
    }
  })
