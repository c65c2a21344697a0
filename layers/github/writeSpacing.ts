import { Clock, Effect } from "effect"
import type { WriteWait } from "../../src/services/Github.ts"

/*
 * GitHub's secondary rate limits, applied per identity. Each installation token is an identity of its own (and so
 * is each app's JWT), so one organisation's requests never wait for another's. Per identity:
 *
 * - mutating requests go one at a time ("make requests for a single user or client ID serially") and their
 *   starts are at least `writeGapMs` apart;
 * - every request spends points within a rolling minute, at most `pointsPerMinute` (GitHub documents 900 for
 *   REST): a GET costs 1, a POST, PATCH, PUT or DELETE costs 5. With the default 334 ms gap, writes alone reach
 *   at most 180 a minute (900 points), and the budget makes reads share that minute instead of exceeding it.
 *
 * The process-wide ceiling on concurrent requests (GitHub's 100) is far above the live layer's own
 * limit of 10 requests in flight (`octokit.ts`).
 */

export interface WriteSpacingOptions {
  /** least time between the starts of two mutating requests of one identity */
  readonly writeGapMs: number
  /** the points one identity may spend in a rolling minute */
  readonly pointsPerMinute: number
}

/** GitHub's documented points per minute for REST, and the gap that keeps writes alone within them. */
export const defaultWriteSpacing: WriteSpacingOptions = { writeGapMs: 334, pointsPerMinute: 900 }

export const READ_POINTS = 1
export const WRITE_POINTS = 5

export interface WriteSpacing {
  /**
   * Runs one request of `identity` once GitHub's limits for it allow: a write (`write` true) after the identity's
   * previous write has been answered and the gap since its start has passed, any request once the minute's points
   * allow it.
   */
  readonly run: <A, E, R>(identity: string, write: boolean, request: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
  /**
   * What `identity`'s next write would wait for if it were asked now, without starting one: the gap since its
   * last write started, the writes ahead of it, and the rolling minute's points. Starts nothing and spends nothing.
   */
  readonly writeWait: (identity: string) => Effect.Effect<WriteWait>
}


interface Identity {
  readonly writes: Effect.Semaphore
  nextWriteAt: number
  /** writes asked for and not yet answered: the one in flight and those waiting for their turn */
  writesPending: number
  /** the spends of the last minute, oldest first: [time ms, points] */
  readonly spent: Array<readonly [number, number]>
}

const MINUTE_MS = 60_000

export const makeWriteSpacing = (options: WriteSpacingOptions = defaultWriteSpacing): WriteSpacing => {
  const identities = new Map<string, Identity>()
  const identityOf = (key: string): Identity => {
    let found = identities.get(key)
    if (found === undefined) {
      found = { writes: Effect.unsafeMakeSemaphore(1), nextWriteAt: 0, writesPending: 0, spent: [] }
      identities.set(key, found)
    }
    return found
  }

  /** Waits until `points` fit in the identity's rolling minute, then spends them. */
  const spend = (who: Identity, points: number): Effect.Effect<void> =>
    Effect.flatMap(Clock.currentTimeMillis, (now) => {
      while (who.spent.length > 0 && who.spent[0]![0] <= now - MINUTE_MS) who.spent.shift()
      let total = 0
      for (const [, p] of who.spent) total += p
      if (total + points <= options.pointsPerMinute || who.spent.length === 0) {
        who.spent.push([now, points])
        return Effect.void
      }
      // the oldest spend leaves the window first; look again then
      return Effect.zipRight(Effect.sleep(who.spent[0]![0] + MINUTE_MS - now), spend(who, points))
    })

  const afterGap = (who: Identity): Effect.Effect<void> =>
    Effect.flatMap(Clock.currentTimeMillis, (now) => {
      const wait = who.nextWriteAt - now
      return wait > 0 ? Effect.zipRight(Effect.sleep(wait), afterGap(who)) : Effect.sync(() => {
        who.nextWriteAt = now + options.writeGapMs
      })
    })

  /** When `points` more would fit in the identity's rolling minute, as `spend` would find it at `now`. */
  const pointsFitAt = (who: Identity, points: number, now: number): number => {
    let total = 0
    for (const [t, p] of who.spent) if (t > now - MINUTE_MS) total += p
    if (total + points <= options.pointsPerMinute) return now
    // the spends leave the window oldest first; the first moment enough of them have left
    for (const [t, p] of who.spent) {
      if (t <= now - MINUTE_MS) continue
      total -= p
      if (total + points <= options.pointsPerMinute || total === 0) return t + MINUTE_MS
    }
    return now
  }

  const gapMs = options.writeGapMs
  const writeWait = (key: string): Effect.Effect<WriteWait> =>
    Effect.map(Clock.currentTimeMillis, (now) => {
      const who = identities.get(key)
      if (who === undefined) return { waitMs: 0, gapMs }
      // Each pending write takes its turn first. The one in flight started when `nextWriteAt` was set; once its
      // gap has passed, how long it still takes is unknown, so a whole gap is the guess (never a busy retry).
      const queued = who.nextWriteAt + Math.max(0, who.writesPending - 1) * gapMs
      const afterPending = who.writesPending === 0 || queued > now ? queued : now + Math.max(gapMs, 1)
      const startAt = Math.max(afterPending, pointsFitAt(who, WRITE_POINTS, now))
      return { waitMs: Math.max(0, startAt - now), gapMs }
    })

  return {
    run: (key, write, request) => {
      const who = identityOf(key)
      if (!write) return Effect.zipRight(spend(who, READ_POINTS), request)
      const spaced = who.writes.withPermits(1)(Effect.zipRight(Effect.zipRight(afterGap(who), spend(who, WRITE_POINTS)), request))
      return Effect.acquireUseRelease(
        Effect.sync(() => {
          who.writesPending++
        }),
        () => spaced,
        () =>
          Effect.sync(() => {
            who.writesPending--
          })
      )
    },
    writeWait
  }
}
