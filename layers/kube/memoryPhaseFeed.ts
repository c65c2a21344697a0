import { Cause, Effect, PubSub, type Queue, type Scope, Stream } from "effect"
import type { PodChange } from "./memoryModel.ts"

/**
 * The feed of pod phase changes an in-memory cluster announces: a PubSub for the streams and subscriptions, and
 * the handlers that run inline, before the call that caused the change returns. One cluster (`memoryState.ts`) and
 * several combined (`memoryClusters.ts`) announce through the same feed, so their consumers see the same thing.
 */
export interface PhaseChangeFeed {
  /** for the pod watch, which subscribes before its listing */
  readonly pubsub: PubSub.PubSub<PodChange>
  /** Publishes the changes, then runs every handler on each; a failing handler is logged and the rest still run. */
  readonly announce: (changes: ReadonlyArray<PodChange>) => Effect.Effect<void>
  /** what `KubeMemoryControl` offers of the feed (documented there) */
  readonly changes: Stream.Stream<PodChange>
  readonly subscribe: Effect.Effect<Queue.Dequeue<PodChange>, never, Scope.Scope>
  readonly onPhaseChange: (handler: (change: PodChange) => Effect.Effect<void>) => Effect.Effect<void, never, Scope.Scope>
}

export const makePhaseChangeFeed: Effect.Effect<PhaseChangeFeed> = Effect.map(PubSub.unbounded<PodChange>(), (pubsub) => {
  const handlers = new Set<(change: PodChange) => Effect.Effect<void>>()
  const runHandlers = (change: PodChange) =>
    Effect.forEach([...handlers], (handler) =>
      handler(change).pipe(
        Effect.catchAllCause((cause) =>
          Effect.logWarning("pod change handler failed", Cause.pretty(cause)).pipe(Effect.annotateLogs({ pod: change.name }))
        )
      ), { discard: true })
  return {
    pubsub,
    announce: (changes) =>
      changes.length === 0
        ? Effect.void
        : Effect.zipRight(PubSub.publishAll(pubsub, changes), Effect.forEach(changes, runHandlers, { discard: true })),
    changes: Stream.fromPubSub(pubsub),
    subscribe: PubSub.subscribe(pubsub),
    onPhaseChange: (handler) =>
      Effect.acquireRelease(
        Effect.sync(() => void handlers.add(handler)),
        () => Effect.sync(() => void handlers.delete(handler))
      )
  }
})
