import { Clock, Effect } from "effect"
import type { WriteWait } from "../../src/services/Github.ts"

/*
 * GitHub's secondary rate limits, applied per identity. Each installation token is an identity of its own (and so
 * is each app's JWT), so one organisation's requests never wait for another's. Per identity:
 *
 * - mutating requests go one at a time ("make requests for a single user or client ID serially"); after a burst of
 *   `writeBurst` starts, the next ones are at least `writeGapMs` apart (a virtual schedule: each write books the
 *   next slot a gap after the last booked one, and may start up to `writeBurst - 1` gaps ahead of its slot), so an
 *   installation that writes now and then never waits, and one that writes steadily gets one start a gap;
 * - every request spends points within a rolling minute, at most `pointsPerMinute` (GitHub documents 900 for
 *   REST): a GET costs 1, a POST, PATCH, PUT or DELETE costs 5. With the default 334 ms gap, writes alone reach
 *   at most 180 a minute (900 points), and the budget makes reads share that minute instead of exceeding it.
 *
 * The process-wide ceiling on concurrent requests (GitHub's 100) is far above the live layer's own
 * limit of 10 requests in flight (`octokit.ts`).
 */

export interface WriteSpacingOptions {
  /** least time between the starts of two mutating requests of one identity, once its burst is spent */
  readonly writeGapMs: number
  /**
   * how many writes of an identity that has been quiet may start back to back (still one at a time); it comes back
   * at one a gap. Default 1: every write waits out the gap after the previous one's start.
   */
  readonly writeBurst?: number | undefined
  /** the points one identity may spend in a rolling minute */
  readonly pointsPerMinute: number
}

/**
 * GitHub's documented points per minute for REST, and the gap that keeps writes alone within them. A burst of 3
 * lets a quiet installation's JIT configs go at once (an organisation whose jobs come a few hundred ms apart never
 * waits), and spends at most 2 gaps ahead of the 180-a-minute pace; the points budget still holds the minute.
 */
export const defaultWriteSpacing: WriteSpacingOptions = { writeGapMs: 334, writeBurst: 3, pointsPerMinute: 900 }

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
   * What `identity`'s next write would wait for if it were asked now, and how many could start now, without
   * starting one: its burst and slots, the writes ahead of it, and the rolling minute's points. Starts nothing and
   * spends nothing.
   */
  readonly writeWait: (identity: string) => Effect.Effect<WriteWait>
}

interface Identity {
  readonly writes: Effect.Semaphore
  /** the start of the next free slot of the virtual schedule (Clock ms); a write may start `ahead` ms before it */
  nextSlot: number
  /** writes asked for that have not started yet (waiting for the one in flight, or for their slot) */
  writesWaiting: number
  /** the spends of the last minute, oldest first: [time ms, points] */
  readonly spent: Array<readonly [number, number]>
}

const MINUTE_MS = 60_000

/** The points an identity spent in the rolling minute that ends at `now`. */
const spentInMinute = (who: Identity, now: number): number => {
  let total = 0
  for (const [t, p] of who.spent) if (t > now - MINUTE_MS) total += p
  return total
}

/** An identity that has not asked for anything: what `writeWait` answers for one never seen. */
const quiet: Identity = { writes: Effect.unsafeMakeSemaphore(1), nextSlot: 0, writesWaiting: 0, spent: [] }

export const makeWriteSpacing = (options: WriteSpacingOptions = defaultWriteSpacing): WriteSpacing => {
  const identities = new Map<string, Identity>()
  const identityOf = (key: string): Identity => {
    let found = identities.get(key)
    if (found === undefined) {
      found = { writes: Effect.unsafeMakeSemaphore(1), nextSlot: 0, writesWaiting: 0, spent: [] }
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

  const gapMs = options.writeGapMs
  const burst = Math.max(1, Math.floor(options.writeBurst ?? 1))
  /** how far ahead of its slot a write may start: the burst's other writes' gaps */
  const ahead = (burst - 1) * gapMs

  /** Waits until the identity's next slot is at most `ahead` away, then books it. */
  const afterGap = (who: Identity): Effect.Effect<void> =>
    Effect.flatMap(Clock.currentTimeMillis, (now) => {
      const wait = who.nextSlot - ahead - now
      return wait > 0 ? Effect.zipRight(Effect.sleep(wait), afterGap(who)) : Effect.sync(() => {
        who.nextSlot = Math.max(who.nextSlot, now) + gapMs
      })
    })

  /** When `points` more would fit in the identity's rolling minute, as `spend` would find it at `now`. */
  const pointsFitAt = (who: Identity, points: number, now: number): number => {
    let total = spentInMinute(who, now)
    if (total + points <= options.pointsPerMinute) return now
    // the spends leave the window oldest first; the first moment enough of them have left
    for (const [t, p] of who.spent) {
      if (t <= now - MINUTE_MS) continue
      total -= p
      if (total + points <= options.pointsPerMinute || total === 0) return t + MINUTE_MS
    }
    return now
  }

  const writeWait = (key: string): Effect.Effect<WriteWait> =>
    Effect.map(Clock.currentTimeMillis, (now) => {
      const who = identities.get(key) ?? quiet
      // The writes waiting for their turn book the next slots first; one in flight has booked its slot already
      // and holds the next write back only until it is answered (a request's time, not a gap).
      const slot = Math.max(who.nextSlot, now) + who.writesWaiting * gapMs
      const pointsAt = pointsFitAt(who, WRITE_POINTS, now)
      const startAt = Math.max(slot - ahead, pointsAt)
      if (startAt > now) return { waitMs: startAt - now, gapMs, startNow: 0 }
      // the slots that may start now (the gap's share), and the writes the minute's points still allow
      const bySlots = gapMs > 0 ? Math.floor((now + ahead - slot) / gapMs) + 1 : burst
      const byPoints = Math.floor((options.pointsPerMinute - spentInMinute(who, now)) / WRITE_POINTS)
      return { waitMs: 0, gapMs, startNow: Math.max(1, Math.min(bySlots, byPoints)) }
    })

  return {
    run: (key, write, request) => {
      const who = identityOf(key)
      if (!write) return Effect.zipRight(spend(who, READ_POINTS), request)
      return Effect.suspend(() => {
        // counted as waiting until its slot is booked (or it is interrupted before that)
        who.writesWaiting++
        let waiting = true
        const booked = Effect.sync(() => {
          if (waiting) who.writesWaiting--
          waiting = false
        })
        const spaced = who.writes.withPermits(1)(
          Effect.zipRight(Effect.zipRight(Effect.zipRight(afterGap(who), booked), spend(who, WRITE_POINTS)), request)
        )
        return Effect.ensuring(spaced, booked)
      })
    },
    writeWait
  }
}
