import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Fiber, Option, TestClock } from "effect"
import { defaultWriteSpacing, makeWriteSpacing } from "../layers/github/writeSpacing.ts"

/*
 * GitHub's secondary limits per identity (`layers/github/writeSpacing.ts`), on Effect's TestClock: nothing here
 * waits for real time, and no assertion is about how long anything took, only about what may run before what.
 */

const spacing = () => makeWriteSpacing({ writeGapMs: 334, pointsPerMinute: 900 })

describe("write spacing per identity", () => {
  it.effect("a lone write of one installation does not wait behind another installation's write in flight", () =>
    Effect.gen(function*() {
      const s = spacing()
      const answerA = yield* Deferred.make<void>()
      const a = yield* Effect.fork(s.run("installation:1", true, Deferred.await(answerA)))
      yield* Effect.yieldNow()
      // installation 2's write runs (and finishes) while installation 1's is still unanswered; the clock never moved
      expect(yield* s.run("installation:2", true, Effect.succeed("done"))).toBe("done")
      expect(Option.isNone(yield* Fiber.poll(a))).toBe(true)
      yield* Deferred.succeed(answerA, undefined)
      yield* Fiber.join(a)
    }))

  it.effect("one installation's writes go one at a time, each at least the gap after the previous one started", () =>
    Effect.gen(function*() {
      const s = spacing()
      const started: Array<string> = []
      const answerFirst = yield* Deferred.make<void>()
      const first = yield* Effect.fork(s.run("installation:1", true, Effect.zipRight(Effect.sync(() => started.push("first")), Deferred.await(answerFirst))))
      yield* Effect.yieldNow()
      const second = yield* Effect.fork(s.run("installation:1", true, Effect.sync(() => started.push("second"))))
      yield* TestClock.adjust("1 second")
      // past the gap, but the first write has no answer yet: the second does not start
      expect(started).toEqual(["first"])
      yield* Deferred.succeed(answerFirst, undefined)
      yield* Fiber.join(first)
      yield* Fiber.join(second)
      expect(started).toEqual(["first", "second"])
      // the next one comes the gap after the second started, and not before
      const third = yield* Effect.fork(s.run("installation:1", true, Effect.sync(() => started.push("third"))))
      yield* TestClock.adjust("333 millis")
      expect(started).toHaveLength(2)
      yield* TestClock.adjust("1 millis")
      yield* Fiber.join(third)
      expect(started).toEqual(["first", "second", "third"])
    }))

  it.effect("reads are not spaced, but every request spends the identity's points per minute", () =>
    Effect.gen(function*() {
      const s = spacing()
      // 900 reads in the same instant: all go at once
      for (let i = 0; i < 900; i++) yield* s.run("installation:1", false, Effect.void)
      // the minute is spent: the next read waits for the oldest spend to leave the window
      const next = yield* Effect.fork(s.run("installation:1", false, Effect.succeed("late")))
      yield* TestClock.adjust("59 seconds")
      expect(Option.isNone(yield* Fiber.poll(next))).toBe(true)
      // another installation's budget is its own
      expect(yield* s.run("installation:2", false, Effect.succeed("own budget"))).toBe("own budget")
      yield* TestClock.adjust("1 second")
      expect(yield* Fiber.join(next)).toBe("late")
    }))

  it.effect("a burst of one installation's writes reaches 180 a minute, GitHub's 900 points at 5 a write", () =>
    Effect.gen(function*() {
      const s = spacing()
      let done = 0
      const burst = yield* Effect.fork(Effect.forEach(Array.from({ length: 200 }), () => s.run("installation:1", true, Effect.sync(() => done++)), {
        concurrency: "unbounded",
        discard: true
      }))
      yield* TestClock.adjust("59999 millis")
      expect(done).toBe(180)
      yield* TestClock.adjust("1 minute")
      yield* Fiber.join(burst)
      expect(done).toBe(200)
    }))
  it.effect("says how long the next write would wait without starting one: the gap, a write in flight, the minute's points", () =>
    Effect.gen(function*() {
      const s = spacing()
      expect(yield* s.writeWait("installation:1")).toEqual({ waitMs: 0, gapMs: 334, startNow: 1 })
      yield* s.run("installation:1", true, Effect.void)
      // the gap since that write started; asking again (or for another installation) changes nothing
      expect((yield* s.writeWait("installation:1")).waitMs).toBe(334)
      expect((yield* s.writeWait("installation:1")).waitMs).toBe(334)
      expect((yield* s.writeWait("installation:2")).waitMs).toBe(0)
      yield* TestClock.adjust("300 millis")
      expect((yield* s.writeWait("installation:1")).waitMs).toBe(34)
      yield* TestClock.adjust("34 millis")
      expect((yield* s.writeWait("installation:1")).waitMs).toBe(0)
      // a write that starts now books its slot: the next one waits the gap
      const answer = yield* Deferred.make<void>()
      const inFlight = yield* Effect.fork(s.run("installation:1", true, Deferred.await(answer)))
      yield* Effect.yieldNow()
      expect((yield* s.writeWait("installation:1")).waitMs).toBe(334)
      // one more waiting behind it: its turn comes a gap after the one in flight started
      const behind = yield* Effect.fork(s.run("installation:1", true, Effect.void))
      yield* Effect.yieldNow()
      expect((yield* s.writeWait("installation:1")).waitMs).toBe(668)
      yield* TestClock.adjust("1 second")
      expect((yield* s.writeWait("installation:1")).waitMs).toBe(334)
      yield* Deferred.succeed(answer, undefined)
      yield* Fiber.join(inFlight)
      yield* Fiber.join(behind)
      yield* TestClock.adjust("334 millis")
      expect((yield* s.writeWait("installation:1")).waitMs).toBe(0)
      // a write in flight past its gap holds the next one back only until it is answered: no wait for the spacing
      const slow = yield* Deferred.make<void>()
      const late = yield* Effect.fork(s.run("installation:1", true, Deferred.await(slow)))
      yield* Effect.yieldNow()
      yield* TestClock.adjust("334 millis")
      expect(yield* s.writeWait("installation:1")).toEqual({ waitMs: 0, gapMs: 334, startNow: 1 })
      yield* Deferred.succeed(slow, undefined)
      yield* Fiber.join(late)
      // the minute's points: 900 reads spend it, and a write must wait for the oldest to leave the window
      for (let i = 0; i < 900; i++) yield* s.run("installation:3", false, Effect.void)
      yield* TestClock.adjust("10 seconds")
      expect((yield* s.writeWait("installation:3")).waitMs).toBe(50_000)
    }))

  it.effect("a quiet installation's burst starts at once; after it, one start a gap, and it comes back one a gap", () =>
    Effect.gen(function*() {
      const s = makeWriteSpacing({ writeGapMs: 334, writeBurst: 3, pointsPerMinute: 900 })
      expect(yield* s.writeWait("installation:1")).toEqual({ waitMs: 0, gapMs: 334, startNow: 3 })
      const started: Array<number> = []
      // three writes back to back, one at a time, while the clock never moves
      for (let i = 1; i <= 3; i++) {
        expect((yield* s.writeWait("installation:1")).startNow).toBe(4 - i)
        yield* s.run("installation:1", true, Effect.sync(() => started.push(i)))
      }
      expect(started).toEqual([1, 2, 3])
      // the burst is spent: the fourth waits one gap, and says so
      expect(yield* s.writeWait("installation:1")).toEqual({ waitMs: 334, gapMs: 334, startNow: 0 })
      const fourth = yield* Effect.fork(s.run("installation:1", true, Effect.sync(() => started.push(4))))
      yield* TestClock.adjust("333 millis")
      expect(started).toHaveLength(3)
      yield* TestClock.adjust("1 millis")
      yield* Fiber.join(fourth)
      expect(started).toEqual([1, 2, 3, 4])
      // one write's worth comes back each gap, up to the burst
      yield* TestClock.adjust("334 millis")
      expect((yield* s.writeWait("installation:1")).startNow).toBe(1)
      yield* TestClock.adjust("668 millis")
      expect((yield* s.writeWait("installation:1")).startNow).toBe(3)
      yield* TestClock.adjust("10 seconds")
      expect((yield* s.writeWait("installation:1")).startNow).toBe(3)
    }))

  it.effect("with the default burst, a steady stream of one installation's writes still reaches only 180 a minute", () =>
    Effect.gen(function*() {
      const s = makeWriteSpacing(defaultWriteSpacing)
      let done = 0
      const stream = yield* Effect.fork(Effect.forEach(Array.from({ length: 200 }), () => s.run("installation:1", true, Effect.sync(() => done++)), {
        concurrency: "unbounded",
        discard: true
      }))
      // the points budget holds the minute: 180 writes of 5 points
      yield* TestClock.adjust("59999 millis")
      expect(done).toBe(180)
      expect(yield* s.writeWait("installation:1")).toMatchObject({ startNow: 0 })
      yield* TestClock.adjust("1 minute")
      yield* Fiber.join(stream)
      expect(done).toBe(200)
    }))
})
