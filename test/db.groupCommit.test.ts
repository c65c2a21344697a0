/**
 * The group commit under `storeDelivery`, on its own: what arrives in one event-loop turn shares a batch, a lone
 * item is written alone, a failure one item may cause is retried item by item, an interrupted caller still queued
 * is not written, and closing the scope answers every caller still waiting.
 */
import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Either, Exit, Fiber, Scope } from "effect"
import { makeGroupCommit } from "../layers/db/groupCommit.ts"

class Refused {
  readonly _tag = "Refused"
  constructor(readonly alone: boolean) {}
}

/** A writer that records its batches; an item "bad" makes the statement fail (retryable alone). */
const recorder = (gate?: Deferred.Deferred<void>) => {
  const batches: Array<ReadonlyArray<string>> = []
  const write = (batch: ReadonlyArray<string>) =>
    Effect.gen(function*() {
      batches.push(batch)
      if (gate !== undefined) yield* Deferred.await(gate)
      if (batch.includes("bad")) return yield* Effect.fail(new Refused(true))
      return batch.map((item) => item.toUpperCase())
    })
  return { batches, write }
}

describe("makeGroupCommit", () => {
  it.live("the items of one turn share one batch; a later lone item is written alone", () =>
    Effect.scoped(Effect.gen(function*() {
      const { batches, write } = recorder()
      const enqueue = yield* makeGroupCommit({ writers: 2, maxBatch: 10, write })
      const results = yield* Effect.all(["a", "b", "c"].map(enqueue), { concurrency: "unbounded" })
      expect(results).toEqual(["A", "B", "C"])
      expect(yield* enqueue("d")).toBe("D")
      expect(batches).toEqual([["a", "b", "c"], ["d"]])
    })))

  it.live("a batch holds at most maxBatch items, and no more writers run than allowed", () =>
    Effect.scoped(Effect.gen(function*() {
      const gate = yield* Deferred.make<void>()
      const { batches, write } = recorder(gate)
      const enqueue = yield* makeGroupCommit({ writers: 1, maxBatch: 2, write })
      const all = yield* Effect.fork(Effect.all(["a", "b", "c", "d", "e"].map(enqueue), { concurrency: "unbounded" }))
      yield* Effect.sleep("50 millis")
      // one writer, busy with the first batch: the rest wait for it
      expect(batches).toEqual([["a", "b"]])
      yield* Deferred.succeed(gate, undefined)
      expect(yield* Fiber.join(all)).toEqual(["A", "B", "C", "D", "E"])
      expect(batches).toEqual([["a", "b"], ["c", "d"], ["e"]])
    })))

  it.live("a failure one item may cause fails only that item; one that may not fails the whole batch", () =>
    Effect.scoped(Effect.gen(function*() {
      const { batches, write } = recorder()
      const alone = yield* makeGroupCommit({ writers: 1, maxBatch: 10, write, retryAlone: (e: Refused) => e.alone })
      const outcomes = yield* Effect.all(["a", "bad", "c"].map((i) => Effect.either(alone(i))), { concurrency: "unbounded" })
      expect(outcomes.map(Either.isLeft)).toEqual([false, true, false])
      expect(batches).toEqual([["a", "bad", "c"], ["a"], ["bad"], ["c"]])

      const together = yield* makeGroupCommit({ writers: 1, maxBatch: 10, write, retryAlone: () => false })
      const all = yield* Effect.all(["x", "bad"].map((i) => Effect.either(together(i))), { concurrency: "unbounded" })
      expect(all.map(Either.isLeft)).toEqual([true, true])
    })))

  it.live("an interrupted caller still queued is not written; closing the scope answers the callers left", () =>
    Effect.gen(function*() {
      const gate = yield* Deferred.make<void>()
      const { batches, write } = recorder(gate)
      const scope = yield* Scope.make()
      const enqueue = yield* makeGroupCommit({ writers: 1, maxBatch: 1, write }).pipe(Scope.extend(scope))
      const first = yield* Effect.fork(enqueue("first"))
      yield* Effect.sleep("20 millis")
      const second = yield* Effect.fork(enqueue("second"))
      const third = yield* Effect.fork(enqueue("third"))
      yield* Effect.sleep("20 millis")
      yield* Fiber.interrupt(second)
      yield* Scope.close(scope, Exit.void)
      // the batch in flight was stopped, and the queued caller answered: nobody is left waiting
      expect(Exit.isInterrupted(yield* Fiber.await(first))).toBe(true)
      expect(Exit.isInterrupted(yield* Fiber.await(third))).toBe(true)
      expect(batches).toEqual([["first"]])
    }))
})
