import { Cause, Clock, Effect } from "effect"

/**
 * What one scheduler process remembers between cycles. Only economies live here (what to skip asking GitHub);
 * every decision that matters survives a restart because it is read from the database or the APIs.
 */
export interface SchedulerState {
  /** job id -> when we last polled it; its news is the later of this and its `updated_at` */
  readonly lastPoll: Map<number, number>
  /** runner scope key -> when we last listed its runners */
  readonly lastListed: Map<string, number>
  /** a scope never listed by this process counts as listed at start-up, so the first listing is not immediate */
  readonly startedAt: number
}

export const makeSchedulerState: Effect.Effect<SchedulerState> = Effect.map(Clock.currentTimeMillis, (now) => ({
  lastPoll: new Map(),
  lastListed: new Map(),
  startedAt: now
}))

/**
 * Runs one part of a cycle so that an unexpected failure is logged with its cause and the cycle goes on with the
 * next part, which then gets `fallback` for this part's result. Interruption is not swallowed: it must reach the
 * loop.
 */
export const guardedOr = <A, R>(what: string, effect: Effect.Effect<A, unknown, R>, fallback: A): Effect.Effect<A, never, R> =>
  effect.pipe(
    Effect.catchAllCause((cause) =>
      Cause.isInterruptedOnly(cause) ? Effect.interrupt : Effect.as(Effect.logError(`${what} failed`, cause), fallback)
    )
  )

/** `guardedOr` for a part whose result nobody reads. */
export const guarded = <R>(what: string, effect: Effect.Effect<unknown, unknown, R>): Effect.Effect<void, never, R> =>
  guardedOr(what, Effect.asVoid(effect), undefined)
