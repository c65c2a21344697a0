import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Fiber, PubSub, Ref, Scope, Stream, TestClock } from "effect"
import { wakeLoop } from "../src/scheduler/loop.ts"

/** A loop over a PubSub of notifications whose cycle only counts, on TestClock. */
const harness = (cycleTime = 0) =>
  Effect.gen(function*() {
    const pubsub = yield* PubSub.unbounded<string>()
    const cycles = yield* Ref.make(0)
    const finished = yield* Ref.make(0)
    const scope = yield* Scope.make()
    yield* wakeLoop({
      wakeups: Stream.fromPubSub(pubsub),
      pollInterval: "15 seconds",
      debounce: "100 millis",
      cycle: Effect.gen(function*() {
        yield* Ref.update(cycles, (n) => n + 1)
        if (cycleTime > 0) yield* Effect.sleep(cycleTime)
        yield* Ref.update(finished, (n) => n + 1)
      })
    }).pipe(Scope.extend(scope))
    // let the forked fibers subscribe
    yield* TestClock.adjust(0)
    return { pubsub, cycles: Ref.get(cycles), finished: Ref.get(finished), scope }
  })

describe("the scheduler's wake-up loop", () => {
  it.effect("runs a cycle at start, then every poll interval", () =>
    Effect.gen(function*() {
      const h = yield* harness()
      yield* TestClock.adjust("1 second")
      expect(yield* h.cycles).toBe(1)
      yield* TestClock.adjust("14 seconds")
      expect(yield* h.cycles).toBe(1) // the tick at 15 s waits out the debounce
      yield* TestClock.adjust("100 millis")
      expect(yield* h.cycles).toBe(2)
      yield* TestClock.adjust("30 seconds")
      expect(yield* h.cycles).toBe(4)
      yield* Scope.close(h.scope, Exit.void)
    }))

  it.effect("a burst of notifications gives one cycle", () =>
    Effect.gen(function*() {
      const h = yield* harness()
      yield* TestClock.adjust("1 second")
      expect(yield* h.cycles).toBe(1)
      for (let i = 0; i < 50; i++) yield* PubSub.publish(h.pubsub, String(i))
      yield* TestClock.adjust("50 millis")
      for (let i = 50; i < 100; i++) yield* PubSub.publish(h.pubsub, String(i))
      yield* TestClock.adjust("1 second")
      expect(yield* h.cycles).toBe(2)
      yield* Scope.close(h.scope, Exit.void)
    }))

  it.effect("notifications during a cycle leave exactly one more cycle behind", () =>
    Effect.gen(function*() {
      const h = yield* harness(3_000)
      yield* TestClock.adjust("500 millis")
      expect(yield* h.cycles).toBe(1)
      for (let i = 0; i < 20; i++) {
        yield* PubSub.publish(h.pubsub, String(i))
        yield* TestClock.adjust("100 millis")
      }
      yield* TestClock.adjust("10 seconds")
      expect(yield* h.cycles).toBe(2)
      expect(yield* h.finished).toBe(2)
      yield* Scope.close(h.scope, Exit.void)
    }))

  it.effect("closing the scope (SIGTERM) lets the running cycle finish, then stops the loop", () =>
    Effect.gen(function*() {
      const h = yield* harness(5_000)
      yield* TestClock.adjust("1 second")
      expect(yield* h.cycles).toBe(1)
      const closing = yield* Effect.fork(Scope.close(h.scope, Exit.void))
      yield* TestClock.adjust("1 second")
      expect(closing.unsafePoll()).toBeNull() // still waiting for the cycle
      yield* TestClock.adjust("4 seconds")
      yield* Fiber.join(closing)
      expect(yield* h.finished).toBe(1)
      yield* TestClock.adjust("1 minute")
      expect(yield* h.cycles).toBe(1)
    }))

  it.effect("a lost notification stream is listened to again; the tick keeps cycles going meanwhile", () =>
    Effect.gen(function*() {
      const subscriptions = yield* Ref.make(0)
      const cycles = yield* Ref.make(0)
      const connected = yield* Deferred.make<void>()
      const pubsub = yield* PubSub.unbounded<string>()
      const wakeups = Stream.unwrap(Effect.gen(function*() {
        const n = yield* Ref.updateAndGet(subscriptions, (x) => x + 1)
        if (n === 1) return Stream.fail("connection lost" as const)
        yield* Deferred.succeed(connected, undefined)
        return Stream.fromPubSub(pubsub)
      }))
      const scope = yield* Scope.make()
      yield* wakeLoop({ wakeups, pollInterval: "15 seconds", debounce: "100 millis", cycle: Ref.update(cycles, (n) => n + 1) }).pipe(Scope.extend(scope))
      yield* TestClock.adjust("2 seconds")
      yield* Deferred.await(connected)
      expect(yield* Ref.get(subscriptions)).toBe(2)
      yield* PubSub.publish(pubsub, "1")
      yield* TestClock.adjust("1 second")
      expect(yield* Ref.get(cycles)).toBe(2)
      yield* Scope.close(scope, Exit.void)
    }))
})

/** A loop with both kinds of cycle and no debounce (the default), on TestClock; each cycle logs its kind. */
const twoPaths = (cycleTime = 0) =>
  Effect.gen(function*() {
    const jobs = yield* PubSub.unbounded<string>()
    const pods = yield* PubSub.unbounded<string>()
    const ran = yield* Ref.make<ReadonlyArray<"full" | "demand">>([])
    const scope = yield* Scope.make()
    const cycle = (kind: "full" | "demand") =>
      Effect.gen(function*() {
        yield* Ref.update(ran, (r) => [...r, kind])
        if (cycleTime > 0) yield* Effect.sleep(cycleTime)
      })
    yield* wakeLoop({
      wakeups: Stream.fromPubSub(jobs),
      podChanges: Stream.fromPubSub(pods),
      pollInterval: "15 seconds",
      debounce: 0,
      cycle: cycle("full"),
      demandCycle: cycle("demand")
    }).pipe(Scope.extend(scope))
    yield* TestClock.adjust(0)
    return { jobs, pods, ran: Ref.get(ran), scope }
  })

describe("the wake-up loop's two paths", () => {
  it.effect("a job notification runs demand matching only, at once: no fixed delay for a lone job", () =>
    Effect.gen(function*() {
      const h = yield* twoPaths()
      expect(yield* h.ran).toEqual(["full"]) // the first tick
      yield* PubSub.publish(h.jobs, "1")
      yield* TestClock.adjust(0) // no time passes
      expect(yield* h.ran).toEqual(["full", "demand"])
      yield* Scope.close(h.scope, Exit.void)
    }))

  it.effect("a pod change runs the full cycle, at once", () =>
    Effect.gen(function*() {
      const h = yield* twoPaths()
      yield* PubSub.publish(h.pods, "ended")
      yield* TestClock.adjust(0)
      expect(yield* h.ran).toEqual(["full", "full"])
      yield* Scope.close(h.scope, Exit.void)
    }))

  it.effect("the tick runs the full cycle even under a steady stream of notifications", () =>
    Effect.gen(function*() {
      const h = yield* twoPaths(50)
      for (let i = 0; i < 40; i++) {
        yield* PubSub.publish(h.jobs, String(i))
        yield* TestClock.adjust("400 millis")
      }
      const ran = yield* h.ran
      // 16 s of notifications: the start and the tick at 15 s were full cycles, the rest demand matching
      expect(ran.filter((k) => k === "full")).toHaveLength(2)
      expect(ran.filter((k) => k === "demand")).toHaveLength(40)
      yield* Scope.close(h.scope, Exit.void)
    }))

  it.effect("a burst during a cycle leaves at most one cycle of each kind behind, new demand first", () =>
    Effect.gen(function*() {
      const h = yield* twoPaths(1_000)
      yield* TestClock.adjust("1 second") // the first (full) cycle is done
      yield* PubSub.publish(h.jobs, "a")
      yield* TestClock.adjust(0) // a demand cycle runs for 1 s
      for (let i = 0; i < 30; i++) yield* PubSub.publish(h.jobs, String(i))
      yield* TestClock.adjust("5 seconds")
      expect(yield* h.ran).toEqual(["full", "demand", "demand"])
      yield* PubSub.publish(h.jobs, "b")
      yield* TestClock.adjust(0)
      for (let i = 0; i < 10; i++) yield* PubSub.publish(h.jobs, String(i))
      yield* PubSub.publish(h.pods, "ended")
      yield* TestClock.adjust("5 seconds")
      expect(yield* h.ran).toEqual(["full", "demand", "demand", "demand", "demand", "full"])
      // a full cycle asked for alone (a pod; the tick is at 15 s) runs alone
      yield* PubSub.publish(h.pods, "ended")
      yield* TestClock.adjust("3 seconds")
      expect((yield* h.ran).slice(6)).toEqual(["full"])
      yield* Scope.close(h.scope, Exit.void)
    }))

  it.effect("new demand does not wait behind a full cycle asked for at the same time", () =>
    Effect.gen(function*() {
      const h = yield* twoPaths(1_000)
      yield* TestClock.adjust("1 second") // the first (full) cycle is done
      yield* PubSub.publish(h.jobs, "a")
      yield* TestClock.adjust(0) // a demand cycle runs for 1 s
      yield* PubSub.publish(h.pods, "ended")
      yield* PubSub.publish(h.jobs, "b")
      yield* TestClock.adjust("1 second") // both asked while it ran: the demand cycle goes first
      expect(yield* h.ran).toEqual(["full", "demand", "demand"])
      yield* TestClock.adjust("1 second")
      expect(yield* h.ran).toEqual(["full", "demand", "demand", "full"])
      yield* TestClock.adjust("1 second") // let the full cycle finish before closing
      yield* Scope.close(h.scope, Exit.void)
    }))

  it.effect("a full cycle that matches the demand stored while it runs leaves no fast path behind for it", () =>
    Effect.gen(function*() {
      const jobs = yield* PubSub.unbounded<string>()
      const pods = yield* PubSub.unbounded<string>()
      const ran = yield* Ref.make<ReadonlyArray<string>>([])
      const scope = yield* Scope.make()
      // a full cycle of two 1 s parts that matches pending demand between them, as runCycle does
      const cycle = (takeDemand: Effect.Effect<boolean>) =>
        Effect.gen(function*() {
          yield* Ref.update(ran, (r) => [...r, "full"])
          yield* Effect.sleep("1 second")
          if (yield* takeDemand) yield* Ref.update(ran, (r) => [...r, "matched between parts"])
          yield* Effect.sleep("1 second")
        })
      yield* wakeLoop({
        wakeups: Stream.fromPubSub(jobs),
        podChanges: Stream.fromPubSub(pods),
        pollInterval: "15 seconds",
        debounce: 0,
        cycle,
        demandCycle: Ref.update(ran, (r) => [...r, "demand"])
      }).pipe(Scope.extend(scope))
      yield* TestClock.adjust(0) // the first tick's full cycle starts
      yield* PubSub.publish(jobs, "a")
      yield* TestClock.adjust("3 seconds")
      expect(yield* Ref.get(ran)).toEqual(["full", "matched between parts"])
      // demand stored after the cycle's last hand-off still gets the fast path once the cycle is done
      yield* PubSub.publish(pods, "ended")
      yield* TestClock.adjust("1500 millis") // in the second part
      yield* PubSub.publish(jobs, "b")
      yield* TestClock.adjust("1 second")
      expect(yield* Ref.get(ran)).toEqual(["full", "matched between parts", "full", "demand"])
      yield* Scope.close(scope, Exit.void)
    }))

  it.effect("a lost pod watch is subscribed again; notifications and the tick go on meanwhile", () =>
    Effect.gen(function*() {
      const subscriptions = yield* Ref.make(0)
      const ran = yield* Ref.make<ReadonlyArray<string>>([])
      const pods = yield* PubSub.unbounded<string>()
      const jobs = yield* PubSub.unbounded<string>()
      const podChanges = Stream.unwrap(Effect.gen(function*() {
        const n = yield* Ref.updateAndGet(subscriptions, (x) => x + 1)
        return n === 1 ? Stream.fail("watch failed" as const) : Stream.fromPubSub(pods)
      }))
      const scope = yield* Scope.make()
      yield* wakeLoop({
        wakeups: Stream.fromPubSub(jobs),
        podChanges,
        pollInterval: "15 seconds",
        debounce: 0,
        cycle: Ref.update(ran, (r) => [...r, "full"]),
        demandCycle: Ref.update(ran, (r) => [...r, "demand"])
      }).pipe(Scope.extend(scope))
      yield* TestClock.adjust(0)
      yield* PubSub.publish(jobs, "1")
      yield* TestClock.adjust(0)
      expect(yield* Ref.get(ran)).toEqual(["full", "demand"])
      yield* TestClock.adjust("2 seconds")
      expect(yield* Ref.get(subscriptions)).toBe(2)
      yield* PubSub.publish(pods, "ended")
      yield* TestClock.adjust(0)
      expect(yield* Ref.get(ran)).toEqual(["full", "demand", "full"])
      yield* Scope.close(scope, Exit.void)
    }))
})

/** `twoPaths` whose pod changes say whether they are clean ends, with clean ends' full cycles 500 ms apart. */
const withCleanEnds = (cycleTime = 0) =>
  Effect.gen(function*() {
    const jobs = yield* PubSub.unbounded<string>()
    const pods = yield* PubSub.unbounded<"succeeded" | "failed">()
    const ran = yield* Ref.make<ReadonlyArray<"full" | "demand">>([])
    const scope = yield* Scope.make()
    const cycle = (kind: "full" | "demand") =>
      Effect.gen(function*() {
        yield* Ref.update(ran, (r) => [...r, kind])
        if (cycleTime > 0) yield* Effect.sleep(cycleTime)
      })
    yield* wakeLoop({
      wakeups: Stream.fromPubSub(jobs),
      podChanges: Stream.fromPubSub(pods),
      isCleanEnd: (change) => change === "succeeded",
      podEndSpacing: "500 millis",
      pollInterval: "15 seconds",
      debounce: 0,
      cycle: cycle("full"),
      demandCycle: cycle("demand")
    }).pipe(Scope.extend(scope))
    yield* TestClock.adjust(0)
    return { jobs, pods, ran: Ref.get(ran), scope }
  })

describe("the wake-up loop and clean pod ends", () => {
  it.effect("a clean end runs demand matching at once and the full cycle once the spacing has passed", () =>
    Effect.gen(function*() {
      const h = yield* withCleanEnds()
      expect(yield* h.ran).toEqual(["full"]) // the first tick, at 0
      yield* TestClock.adjust("100 millis")
      yield* PubSub.publish(h.pods, "succeeded")
      yield* TestClock.adjust(0)
      expect(yield* h.ran).toEqual(["full", "demand"])
      yield* TestClock.adjust("300 millis") // 400 ms after the last full cycle
      expect(yield* h.ran).toEqual(["full", "demand"])
      yield* TestClock.adjust("100 millis") // 500 ms: due
      expect(yield* h.ran).toEqual(["full", "demand", "full"])
      yield* Scope.close(h.scope, Exit.void)
    }))

  it.effect("a stream of clean ends gives demand matching for each and one full cycle per spacing", () =>
    Effect.gen(function*() {
      const h = yield* withCleanEnds()
      for (let i = 0; i < 20; i++) {
        yield* PubSub.publish(h.pods, "succeeded")
        yield* TestClock.adjust("50 millis")
      }
      const ran = yield* h.ran
      // ends at 0-950 ms: the start's full cycle, then one at 500 ms and one at 1 s, and a demand cycle per end
      expect(ran.filter((k) => k === "demand")).toHaveLength(20)
      expect(ran.filter((k) => k === "full")).toHaveLength(3)
      yield* TestClock.adjust("2 seconds")
      // the cycle at 1 s recorded the last ends: no further one without new ends (the tick is at 15 s)
      expect((yield* h.ran).filter((k) => k === "full")).toHaveLength(3)
      yield* Scope.close(h.scope, Exit.void)
    }))

  it.effect("a failed pod runs the full cycle at once, spacing or not", () =>
    Effect.gen(function*() {
      const h = yield* withCleanEnds()
      yield* PubSub.publish(h.pods, "failed")
      yield* TestClock.adjust(0)
      expect(yield* h.ran).toEqual(["full", "full"])
      yield* Scope.close(h.scope, Exit.void)
    }))

  it.effect("a clean end after the spacing has passed runs both at once, demand first", () =>
    Effect.gen(function*() {
      const h = yield* withCleanEnds()
      yield* TestClock.adjust("2 seconds")
      yield* PubSub.publish(h.pods, "succeeded")
      yield* TestClock.adjust(0)
      expect(yield* h.ran).toEqual(["full", "demand", "full"])
      yield* Scope.close(h.scope, Exit.void)
    }))
  it.effect("a demand wake-up asked for by a cycle comes at its time; an earlier one replaces it; none is left after shutdown", () =>
    Effect.gen(function*() {
      const pubsub = yield* PubSub.unbounded<string>()
      const scope = yield* Scope.make()
      const demandRuns: Array<number> = []
      // what each demand cycle asks for, in order: a time relative to when it runs
      const asks: Array<ReadonlyArray<number>> = [[1_000, 2_000, 500], [], [3_000]]
      yield* wakeLoop({
        wakeups: Stream.fromPubSub(pubsub),
        pollInterval: "1 hour",
        debounce: 0,
        cycle: Effect.void,
        demandCycle: (retryDemandAt) =>
          Effect.gen(function*() {
            const now = yield* TestClock.currentTimeMillis
            demandRuns.push(now)
            for (const after of asks.shift() ?? []) yield* retryDemandAt(now + after)
          })
      }).pipe(Scope.extend(scope))
      yield* TestClock.adjust(0)
      yield* PubSub.publish(pubsub, "job")
      yield* TestClock.adjust(0)
      expect(demandRuns).toEqual([0])
      // the later asks (1 s, 2 s) gave way to the earliest (500 ms); no fixed delay is added to it
      yield* TestClock.adjust(499)
      expect(demandRuns).toEqual([0])
      yield* TestClock.adjust(1)
      expect(demandRuns).toEqual([0, 500])
      // the replaced timers never fire
      yield* TestClock.adjust(5_000)
      expect(demandRuns).toEqual([0, 500])
      // the third cycle asks for a wake-up 3 s on; the loop stops before it is due, and nothing runs after
      yield* PubSub.publish(pubsub, "job")
      yield* TestClock.adjust(0)
      expect(demandRuns).toHaveLength(3)
      yield* Scope.close(scope, Exit.void)
      yield* TestClock.adjust(10_000)
      expect(demandRuns).toHaveLength(3)
    }))
})
