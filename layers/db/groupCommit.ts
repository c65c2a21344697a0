/**
 * Group commit for statements that arrive one per request: callers queue their item, a few writer fibers take
 * whatever has queued up since their last write (at most `maxBatch`) and write it in one statement, so one commit
 * (one WAL flush) serves every request in the batch.
 *
 * Why a queue and not Effect's request batching (`Effect.request`, `SqlResolver`): those batch the requests that
 * one fiber makes concurrently (`Effect.all` with batching). Each webhook delivery is a fiber of its own, and the
 * deliveries that arrive together are exactly the ones to write together, so they have to meet somewhere shared.
 *
 * No request waits for company: a writer that is free takes a lone item at once. Batches form only while every
 * writer is busy with the previous ones, which is when waiting costs nothing extra.
 */
import { Cause, Deferred, Effect, Option, Queue, type Scope } from "effect"

export interface GroupCommitOptions<I, O, E> {
  /** how many batches may be in flight at once (each holds one pooled connection while it runs) */
  readonly writers: number
  readonly maxBatch: number
  /** writes the batch; returns one result per item, in order */
  readonly write: (batch: ReadonlyArray<I>) => Effect.Effect<ReadonlyArray<O>, E>
  /**
   * Which failures of a batch of several may be the fault of one item (a row the statement rejects): the batch is
   * then written again item by item, so only that item's caller fails. Others (the database is unreachable)
   * fail the whole batch at once.
   */
  readonly retryAlone?: ((error: E) => boolean) | undefined
  /** runs after the batch's results are handed out (its callers do not wait for it), e.g. a NOTIFY */
  readonly afterCommit?: ((batch: ReadonlyArray<I>, results: ReadonlyArray<O>) => Effect.Effect<void>) | undefined
}

interface Pending<I, O, E> {
  readonly item: I
  readonly done: Deferred.Deferred<O, E>
}

/** A function that writes one item as part of whatever batch it lands in; the writers live as long as `Scope`. */
export const makeGroupCommit = <I, O, E>(
  options: GroupCommitOptions<I, O, E>
): Effect.Effect<(item: I) => Effect.Effect<O, E>, never, Scope.Scope> =>
  Effect.gen(function*() {
    const queue = yield* Effect.acquireRelease(Queue.unbounded<Pending<I, O, E>>(), Queue.shutdown)

    const writeBatch: (pending: ReadonlyArray<Pending<I, O, E>>) => Effect.Effect<void> = Effect.fnUntraced(function*(pending) {
      const items = pending.map((p) => p.item)
      // A writer stopped mid-batch (the scope closing) answers its callers rather than leave them waiting.
      const outcome = yield* Effect.exit(options.write(items)).pipe(
        Effect.onInterrupt(() => Effect.sync(() => pending.forEach((p) => Deferred.unsafeDone(p.done, Effect.interrupt))))
      )
      if (outcome._tag === "Failure") {
        const error = Cause.failureOption(outcome.cause)
        if (pending.length > 1 && Option.isSome(error) && options.retryAlone?.(error.value) === true) {
          // The statement failed, so nothing of the batch was written; alone, each item meets its own fate.
          return yield* Effect.forEach(pending, (p): Effect.Effect<void> => writeBatch([p]), { discard: true })
        }
        // Nothing of the batch was written: every caller gets the failure.
        const failed = Effect.failCause(outcome.cause)
        for (const p of pending) Deferred.unsafeDone(p.done, failed)
        return
      }
      const results = outcome.value
      pending.forEach((p, i) => Deferred.unsafeDone(p.done, Effect.succeed(results[i]!)))
      if (options.afterCommit !== undefined) yield* options.afterCommit(items, results)
    })

    const writer = Queue.takeBetween(queue, 1, options.maxBatch).pipe(
      Effect.flatMap((chunk) => writeBatch(Array.from(chunk))),
      // A defect after the answers (in `afterCommit`) must not stop the writer.
      Effect.catchAllCause((cause) => Effect.logError("group commit: after-commit work failed", cause)),
      Effect.forever
    )
    for (let i = 0; i < options.writers; i++) yield* Effect.forkScoped(writer)

    return (item: I) =>
      Effect.flatMap(Deferred.make<O, E>(), (done) =>
        Effect.zipRight(Queue.offer(queue, { item, done }), Deferred.await(done)))
  })
