import { Duration, Effect } from "effect"

/**
 * Runner-group ids, remembered per (org, group name) so provisioning does not list the org's groups for every
 * runner. Ids are stable, but an operator may delete the group; entries therefore expire after an hour, and a
 * caller that gets a 404 for a group id drops it at once with `forgetId`.
 */
export interface RunnerGroupCache {
  readonly get: (org: string, groupName: string) => Effect.Effect<number | undefined>
  readonly set: (org: string, groupName: string, id: number) => Effect.Effect<void>
  readonly forgetId: (org: string, id: number) => Effect.Effect<void>
  /** What `get` answers at `now` (epoch ms), without a step. */
  readonly peek: (org: string, groupName: string, now: number) => number | undefined
}

// GitHub logins are case-insensitive; group names are compared exactly, as GitHub does.
const keyOf = (org: string, groupName: string) => `${org.toLowerCase()}\u0000${groupName}`

export const makeRunnerGroupCache = (
  ttl: Duration.DurationInput = Duration.hours(1)
): Effect.Effect<RunnerGroupCache> =>
  Effect.sync(() => {
    const ttlMillis = Duration.toMillis(ttl)
    // changed in place, each change one synchronous step: a burst's first runner of each of hundreds of
    // organisations copied the map of all the others per group it learned
    const entries = new Map<string, { readonly org: string; readonly id: number; readonly expiresAt: number }>()
    const peek = (org: string, groupName: string, now: number) => {
      const entry = entries.get(keyOf(org, groupName))
      return entry !== undefined && entry.expiresAt > now ? entry.id : undefined
    }
    const cache: RunnerGroupCache = {
      peek,
      get: (org, groupName) => Effect.clockWith((clock) => Effect.succeed(peek(org, groupName, clock.unsafeCurrentTimeMillis()))),
      set: (org, groupName, id) =>
        Effect.clockWith((clock) =>
          Effect.sync(() => {
            entries.set(keyOf(org, groupName), { org: org.toLowerCase(), id, expiresAt: clock.unsafeCurrentTimeMillis() + ttlMillis })
          })
        ),
      forgetId: (org, id) =>
        Effect.sync(() => {
          for (const [k, e] of entries) if (e.org === org.toLowerCase() && e.id === id) entries.delete(k)
        })
    }
    return cache
  })
