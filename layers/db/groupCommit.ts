/**
 * Group commit for statements that arrive one per request: callers put their item in a plain array, and a few
 * writers take whatever has queued up (at most `maxBatch`) and write it in one statement, so one commit (one WAL
 * flush) serves every request in the batch.
 *
 * Why an array and not Effect's request batching (`Effect.request`, `SqlResolver`) or a Queue with writer fibers:
 * request batching only batches the requests that one fiber makes concurrently, and each webhook delivery is a
 * fiber of its own; a Queue with a Deferred per item costs several fiber steps per delivery (measured: more than
 * the statement's own share). Here an item costs one `Effect.async`, and a fiber is started per batch, not per
 * item.
 *
 * No request waits for company beyond the event-loop turn it arrived in: the batch is cut once the turn's I/O
 * callbacks have run (`setImmediate`), so the deliveries parsed in one turn share a statement, and a lone one is
 * written at once. While every writer is busy, items keep queueing, and the next free writer takes them all.
 */
import { Cause, Effect, Exit, Fiber, Option, Runtime, type Scope } from "effect"

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
}

interface Pending<I, O, E> {
  readonly item: I
  /** answers the caller; a second call does nothing (the caller may have been interrupted meanwhile) */
  readonly resume: (result: Effect.Effect<O, E>) => void
}

/** The next turn of the event loop, after the I/O callbacks already waiting. */
const nextTurn: (f: () => void) => void = typeof setImmediate === "function" ? (f) => void setImmediate(f) : (f) => void setTimeout(f, 0)

/** A function that writes one item as part of whatever batch it lands in; the writers live as long as `Scope`. */
export const makeGroupCommit = <I, O, E>(
  options: GroupCommitOptions<I, O, E>
): Effect.Effect<(item: I) => Effect.Effect<O, E>, never, Scope.Scope> =>
  Effect.gen(function*() {
    // the batches run with the logger and tracer of whoever built the store
    const runFork = Runtime.runFork(yield* Effect.runtime<never>())
    let queued: Array<Pending<I, O, E>> = []
    const running = new Set<Fiber.RuntimeFiber<void>>()
    let cutScheduled = false
    let closed = false

    const writeBatch = (pending: ReadonlyArray<Pending<I, O, E>>): Effect.Effect<void> =>
      Effect.flatMap(Effect.exit(options.write(pending.map((p) => p.item))), (outcome) => {
        if (Exit.isSuccess(outcome)) {
          const results = outcome.value
          pending.forEach((p, i) => p.resume(Effect.succeed(results[i]!)))
          return Effect.void
        }
        const error = Cause.failureOption(outcome.cause)
        if (pending.length > 1 && Option.isSome(error) && options.retryAlone?.(error.value) === true) {
          // The statement failed, so nothing of the batch was written; alone, each item meets its own fate.
          return Effect.forEach(pending, (p) => writeBatch([p]), { discard: true })
        }
        // Nothing of the batch was written: every caller gets the failure.
        const failed = Effect.failCause(outcome.cause)
        for (const p of pending) p.resume(failed)
        return Effect.void
      })

    /** Starts writers while there are items and free writers; each takes at most `maxBatch`. */
    const startWriters = () => {
      while (!closed && queued.length > 0 && running.size < options.writers) {
        const batch = queued.length <= options.maxBatch ? queued : queued.slice(0, options.maxBatch)
        queued = batch === queued ? [] : queued.slice(options.maxBatch)
        const fiber = runFork(writeBatch(batch))
        running.add(fiber)
        fiber.addObserver((exit) => {
          running.delete(fiber)
          // A writer stopped mid-batch (the scope closing) answers its callers rather than leave them waiting.
          if (Exit.isFailure(exit)) for (const p of batch) p.resume(Effect.interrupt)
          startWriters()
        })
      }
    }

    const cut = () => {
      cutScheduled = false
      startWriters()
    }

    yield* Effect.addFinalizer(() =>
      Effect.suspend(() => {
        closed = true
        const waiting = queued
        queued = []
        for (const p of waiting) p.resume(Effect.interrupt)
        return Fiber.interruptAll(running)
      })
    )

    return (item: I) =>
      Effect.async<O, E>((resume) => {
        if (closed) return resume(Effect.interrupt)
        let answered = false
        const pending: Pending<I, O, E> = {
          item,
          resume: (result) => {
            if (answered) return
            answered = true
            resume(result)
          }
        }
        queued.push(pending)
        if (!cutScheduled) {
          cutScheduled = true
          nextTurn(cut)
        }
        // An interrupted caller still in the queue leaves it; one already in a batch is written all the same.
        return Effect.sync(() => {
          answered = true
          const at = queued.indexOf(pending)
          if (at >= 0) queued.splice(at, 1)
        })
      })
  })
