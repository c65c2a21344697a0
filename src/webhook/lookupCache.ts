import { Clock, Duration, Effect, Exit, Option } from "effect"

/*
 * Remembers the answers of a look-up for a while, per key, at Effect's Clock time. Only the answers `keep` picks
 * are remembered (say, a hit and a 404, but not a 5xx or a dropped connection, which should be asked again).
 * At most `maxEntries` answers are kept; every entry lives equally long, so the oldest one, dropped first, is also
 * the one that expires first.
 */

export interface LookupCacheOptions {
  readonly ttl: Duration.DurationInput
  readonly maxEntries: number
}

export interface LookupCache<A, E> {
  /** The remembered answer for `key`, or `lookup`'s (remembered when `keep` says so). */
  readonly get: (key: string, lookup: Effect.Effect<A, E>, keep: (exit: Exit.Exit<A, E>) => boolean) => Effect.Effect<A, E>
  /** how many answers are remembered now, expired ones included until they are next touched */
  readonly size: Effect.Effect<number>
}

interface Entry<A, E> {
  readonly exit: Exit.Exit<A, E>
  readonly expiresAt: number
}

export const makeLookupCache = <A, E>(options: LookupCacheOptions): LookupCache<A, E> => {
  const ttl = Duration.toMillis(options.ttl)
  const maxEntries = Math.max(1, options.maxEntries)
  const entries = new Map<string, Entry<A, E>>()

  const remembered = (key: string, now: number): Option.Option<Exit.Exit<A, E>> => {
    const entry = entries.get(key)
    if (entry === undefined) return Option.none()
    if (entry.expiresAt > now) return Option.some(entry.exit)
    entries.delete(key)
    return Option.none()
  }

  const remember = (key: string, exit: Exit.Exit<A, E>, now: number) => {
    entries.delete(key)
    entries.set(key, { exit, expiresAt: now + ttl })
    for (const oldest of entries.keys()) {
      if (entries.size <= maxEntries) break
      entries.delete(oldest)
    }
  }

  return {
    get: (key, lookup, keep) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) =>
        Option.match(remembered(key, now), {
          onSome: (exit) => exit,
          onNone: () =>
            lookup.pipe(
              Effect.exit,
              Effect.tap((exit) =>
                keep(exit) ? Effect.map(Clock.currentTimeMillis, (at) => remember(key, exit, at)) : Effect.void
              ),
              Effect.flatten
            )
        })),
    size: Effect.sync(() => entries.size)
  }
}
