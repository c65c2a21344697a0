import { Effect } from "effect"

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
  Effect.sync(() => {
    // changed in place, each change one synchronous step: a copy per poll was a copy of up to 10,000 entries
    const entries = new Map<string, { readonly etag: string; readonly data: unknown }>()
    const cache: EtagCache = {
      get: (key) => Effect.sync(() => entries.get(key)),
      set: (key, etag, data) =>
        Effect.sync(() => {
          entries.delete(key)
          if (etag !== undefined) entries.set(key, { etag, data })
          for (const k of entries.keys()) {
            if (entries.size <= maxEntries) break
            entries.delete(k)
          }
        })
    }
    return cache
  })
