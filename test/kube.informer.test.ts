import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Fiber, Queue, Scope, TestClock } from "effect"
import { type Informer, type InformerChange, makeInformer, type InformerSource, type WatchEnd } from "../layers/kube/informer.ts"
import { KubeError } from "../src/services/Kube.ts"

/*
 * The informer behind the live layer's capacity (layers/kube/informer.ts), on a source the test drives by hand:
 * a listing it answers, and watch sessions it opens, feeds and ends. The orderings here are the ones a real API
 * server produces only by chance: a pod's watch event before or after the answer to its create.
 */

interface Item {
  readonly name: string
  readonly done: boolean
}

/** A source whose listing and watch sessions the test controls. */
const handSource = Effect.gen(function*() {
  const listings: Array<{ items: ReadonlyArray<Item>; version: string } | KubeError | "die"> = []
  const sessions = yield* Queue.unbounded<{
    readonly version: string
    readonly opened: () => void
    readonly emit: (type: "Added" | "Modified" | "Deleted", item: Item) => void
    readonly end: Deferred.Deferred<WatchEnd>
  }>()
  let listCalls = 0
  const source: InformerSource<Item> = {
    kind: "test",
    operation: "watchPods",
    keyOf: (i) => i.name,
    keep: (i) => !i.done,
    list: Effect.suspend(() => {
      listCalls += 1
      const next = listings.shift() ?? { items: [], version: "1" }
      return next === "die" ? Effect.dieMessage("a bug") : next instanceof KubeError ? Effect.fail(next) : Effect.succeed(next)
    }),
    watch: (version, handlers) =>
      Effect.flatMap(Deferred.make<WatchEnd>(), (end) =>
        Effect.zipRight(
          Queue.offer(sessions, { version, opened: handlers.opened, emit: handlers.onEvent, end }),
          Deferred.await(end)
        ))
  }
  return { source, listings, sessions, listCalls: () => listCalls }
})

/** An informer on a hand-driven source, in the case's scope, with the case's runtime. */
const informerOnHand = Effect.gen(function*() {
  const hand = yield* handSource
  const informer = makeInformer(hand.source, yield* Effect.scope, yield* Effect.runtime<never>())
  return { hand, informer }
})

/** Starts the informer and opens its first watch session, which the case then drives. */
const following = (informer: Informer<Item>, hand: Effect.Effect.Success<typeof handSource>) =>
  Effect.gen(function*() {
    yield* informer.ensure
    const session = yield* Queue.take(hand.sessions)
    session.opened()
    return session
  })

const names = (items: ReadonlyArray<Item> | undefined) => items?.map((i) => i.name).sort()

describe("the informer", () => {
  it.scoped("is trusted only while a watch is open, and follows what the watch says", () =>
    Effect.gen(function*() {
      const { hand, informer } = yield* informerOnHand
      expect(informer.current()).toBeUndefined()
      // a cold read lists, and starts the informer from that listing
      hand.listings.push({ items: [{ name: "a", done: false }, { name: "old", done: true }], version: "5" })
      expect(names(yield* informer.read)).toEqual(["a"])
      // listed, but no watch open yet: a reader must list for itself
      expect(informer.current()).toBeUndefined()
      const session = yield* Queue.take(hand.sessions)
      expect(session.version).toBe("5")
      session.opened()
      expect(names(informer.current())).toEqual(["a"])
      // following: a read is the cache, no listing
      expect(names(yield* informer.read)).toEqual(["a"])
      expect(hand.listCalls()).toBe(1)
      session.emit("Added", { name: "b", done: false })
      session.emit("Modified", { name: "a", done: true })
      expect(names(informer.current())).toEqual(["b"])
      // a failed watch is not trusted until the next one opens (after its pause)
      yield* Deferred.succeed(session.end, { _tag: "Failed", error: new KubeError({ operation: "watchPods", status: 500, message: "x" }) })
      yield* Effect.yieldNow()
      expect(informer.current()).toBeUndefined()
      yield* TestClock.adjust("1 second")
      const again = yield* Queue.take(hand.sessions)
      again.opened()
      expect(names(informer.current())).toEqual(["b"])
      expect(hand.listCalls()).toBe(1)
    }))

  it.scoped("its own creation counts from the create's answer, unless the watch told of it first", () =>
    Effect.gen(function*() {
      const { hand, informer } = yield* informerOnHand
      const session = yield* following(informer, hand)
      // answer first, watch later
      informer.creating("x")
      informer.created("x", { name: "x", done: false })
      expect(names(informer.current())).toEqual(["x"])
      session.emit("Added", { name: "x", done: false })
      expect(names(informer.current())).toEqual(["x"])
      // the watch first, and the pod already finished by the time the answer comes: the answer does not revive it
      informer.creating("y")
      session.emit("Added", { name: "y", done: false })
      session.emit("Modified", { name: "y", done: true })
      informer.created("y", { name: "y", done: false })
      expect(names(informer.current())).toEqual(["x"])
      // a create that failed adds nothing
      informer.creating("z")
      informer.created("z", undefined)
      expect(names(informer.current())).toEqual(["x"])
      // an answer with no watch event yet, then the pod's deletion: gone
      informer.creating("w")
      informer.created("w", { name: "w", done: false })
      session.emit("Deleted", { name: "w", done: false })
      expect(names(informer.current())).toEqual(["x"])
    }))

  it.scoped("a subscriber gets Listed (at once when already listed), then every change after the cache has it", () =>
    Effect.gen(function*() {
      const { hand, informer } = yield* informerOnHand
      hand.listings.push({ items: [{ name: "a", done: false }], version: "3" })
      const first: Array<string> = []
      yield* informer.subscribe((c) => first.push(tell(c, informer.current())), () => first.push("failed"))
      const session = yield* Queue.take(hand.sessions)
      session.opened()
      session.emit("Added", { name: "b", done: false })
      expect(first).toEqual(["Listed", "Added b [a,b]"])
      const late: Array<string> = []
      const unsubscribe = yield* informer.subscribe((c) => late.push(tell(c, informer.current())), () => late.push("failed"))
      session.emit("Deleted", { name: "a", done: false })
      unsubscribe()
      session.emit("Added", { name: "c", done: false })
      expect(late).toEqual(["Listed", "Deleted a [b]"])
      // 410: listed again, and every subscriber is told
      hand.listings.push({ items: [{ name: "c", done: false }], version: "9" })
      yield* Deferred.succeed(session.end, { _tag: "Gone" })
      const relisted = yield* Queue.take(hand.sessions)
      expect(relisted.version).toBe("9")
      expect(first.at(-1)).toBe("Listed")
      relisted.opened()
      expect(names(informer.current())).toEqual(["c"])
    }))

  it.scoped("a listing that fails stops it and fails its subscribers; the next use starts it again", () =>
    Effect.gen(function*() {
      const { hand, informer } = yield* informerOnHand
      hand.listings.push(new KubeError({ operation: "listPods", status: 503, message: "listPods failed with HTTP 503" }))
      const failed = yield* Deferred.make<KubeError>()
      yield* informer.subscribe(() => {}, (e) => Deferred.unsafeDone(failed, Exit.succeed(e)))
      expect((yield* Deferred.await(failed)).status).toBe(503)
      expect(informer.current()).toBeUndefined()
      yield* following(informer, hand)
      expect(informer.current()).toEqual([])
      expect(hand.listCalls()).toBe(2)
    }))

  it.scoped("a defect stops it like a failed listing: no frozen cache passes for live, and the next use starts it", () =>
    Effect.gen(function*() {
      const { hand, informer } = yield* informerOnHand
      const session = yield* following(informer, hand)
      expect(informer.current()).toEqual([])
      const failed = yield* Deferred.make<KubeError>()
      yield* informer.subscribe(() => {}, (e) => Deferred.unsafeDone(failed, Exit.succeed(e)))
      // the watch ends with 410 and the listing that follows dies
      hand.listings.push("die")
      yield* Deferred.succeed(session.end, { _tag: "Gone" })
      expect((yield* Deferred.await(failed)).message).toContain("unexpected error")
      expect(informer.current()).toBeUndefined()
      yield* informer.ensure
      const next = yield* Queue.take(hand.sessions)
      next.opened()
      expect(informer.current()).toEqual([])
    }))

  it.effect("closing its scope ends the watch it runs", () =>
    Effect.gen(function*() {
      const scope = yield* Scope.make()
      const hand = yield* handSource
      const informer = makeInformer(hand.source, scope, yield* Effect.runtime<never>())
      // started from where interruption is off, as a stream's acquire is: the scope must still be able to end it
      yield* Effect.uninterruptible(informer.ensure)
      yield* Queue.take(hand.sessions)
      // (an informer fiber that inherited the uninterruptible region would hold this close, and the case, forever)
      yield* Fiber.join(yield* Effect.fork(Scope.close(scope, Exit.void)))
      yield* informer.ensure
      expect(yield* Queue.size(hand.sessions), "the informer stopped with its scope; a closed scope starts nothing").toBe(0)
    }))
})

const tell = (c: InformerChange<Item>, now: ReadonlyArray<Item> | undefined) =>
  c._tag === "Listed" ? "Listed" : `${c._tag} ${c.item.name} [${names(now)?.join(",")}]`
