import { Clock, Duration, Effect, Ref } from "effect"

/**
 * Runner-group ids, remembered per (org, group name) so provisioning does not list the org's groups for every
 * runner. Ids are stable, but an operator may delete the group; entries therefore expire after an hour, and a
 * caller that gets a 404 for a group id drops it at once with `forgetId`.
 */
export interface RunnerGroupCache {
  readonly get: (org: string, groupName: string) => Effect.Effect<number | undefined>
  readonly set: (org: string, groupName: string, id: number) => Effect.Effect<void>
  readonly forgetId: (org: string, id: number) => Effect.Effect<void>
}

// GitHub logins are case-insensitive; group names are compared exactly, as GitHub does.
const keyOf = (org: string, groupName: string) => `${org.toLowerCase()}\u0000${groupName}`

export const makeRunnerGroupCache = (
  ttl: Duration.DurationInput = Duration.hours(1)
): Effect.Effect<RunnerGroupCache> =>
  Effect.gen(function* () {
    const ttlMillis = Duration.toMillis(ttl)
    const entries = yield* Ref.make(
      new Map<string, { readonly org: string; readonly id: number; readonly expiresAt: number }>()
    )
    return {
      // asked once per runner provisioned: two reads, no generator
      get: (org, groupName) =>
        Effect.clockWith((clock) =>
          Effect.map(Ref.get(entries), (m) => {
            const entry = m.get(keyOf(org, groupName))
            return entry !== undefined && entry.expiresAt > clock.unsafeCurrentTimeMillis() ? entry.id : undefined
          })),
      set: (org, groupName, id) =>
        Effect.gen(function* () {
          const now = yield* Clock.currentTimeMillis
          yield* Ref.update(
            entries,
            (m) => new Map(m).set(keyOf(org, groupName), { org: org.toLowerCase(), id, expiresAt: now + ttlMillis })
          )
        }),
      forgetId: (org, id) =>
        Ref.update(entries, (m) => {
          const next = new Map(m)
          for (const [k, e] of m) if (e.org === org.toLowerCase() && e.id === id) next.delete(k)
          return next
        })
    }
  })
