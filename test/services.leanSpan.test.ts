import { describe, expect, it } from "@effect/vitest"
import { Clock, Effect, Exit, Fiber, Option, TestClock, Tracer } from "effect"
import { leanSpan } from "../src/services/leanSpan.ts"

/*
 * `leanSpan` must make the span `Effect.withSpan` makes, with the same parent, attributes, timing and exit, be the
 * parent of what runs inside it, and give the context back however the inside ends.
 */

interface Seen {
  readonly name: string
  readonly parent: string | undefined
  readonly attributes: Record<string, unknown>
  readonly kind: string
  readonly start: bigint
  readonly end: bigint | undefined
  readonly exit: string | undefined
}

const recorded = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.gen(function*() {
    const spans: Array<Tracer.Span> = []
    const base = yield* Effect.tracer
    const tracer = Tracer.make({
      span: (...args) => {
        const s = base.span(...args)
        spans.push(s)
        return s
      },
      context: (f, fiber) => base.context(f, fiber)
    })
    const t0 = yield* Clock.currentTimeNanos
    const exit = yield* Effect.exit(Effect.withTracer(effect, tracer))
    const seen: Array<Seen> = spans.map((s) => ({
      name: s.name,
      parent: Option.getOrUndefined(Option.map(s.parent, (p) => (p._tag === "Span" ? p.name : "external"))),
      attributes: Object.fromEntries(s.attributes),
      kind: s.kind,
      // both runs share the test's clock: times from the start of each
      start: s.status.startTime - t0,
      end: s.status._tag === "Ended" ? s.status.endTime - t0 : undefined,
      exit: s.status._tag === "Ended" ? (Exit.isSuccess(s.status.exit) ? "success" : Exit.isInterrupted(s.status.exit) ? "interrupted" : "failure") : undefined
    }))
    return { exit, seen }
  })

type Wrap = (name: string, attributes: Record<string, unknown>) => <A, E, R>(self: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
const lean: Wrap = (name, attributes) => leanSpan(name, { attributes })
const standard: Wrap = (name, attributes) => Effect.withSpan(name, { attributes, captureStackTrace: false })

// a parent span, a wrapped step that takes 5 s of TestClock and makes a child span, and a sibling after it
const scenario = (wrap: Wrap, inner: Effect.Effect<unknown, string>) =>
  Effect.gen(function*() {
    const body = Effect.zipRight(Effect.sleep("5 seconds"), Effect.withSpan("child")(inner))
    const fiber = yield* Effect.fork(
      Effect.withSpan("outer")(
        Effect.zipRight(
          Effect.either(wrap("wrapped", { "job.id": 7, "k8s.pool": "scw-em-rv1" })(body)),
          Effect.withSpan("sibling")(Effect.currentSpan)
        )
      )
    )
    yield* TestClock.adjust("10 seconds")
    return yield* Fiber.join(fiber)
  })

describe("leanSpan", () => {
  for (const [label, inner] of [
    ["succeeds", Effect.succeed(1)],
    ["fails", Effect.fail("boom")],
    ["dies", Effect.die("defect")]
  ] as const) {
    it.effect(`records what withSpan records when the inside ${label}`, () =>
      Effect.gen(function*() {
        const ours = yield* recorded(scenario(lean, inner))
        const theirs = yield* recorded(scenario(standard, inner))
        expect(ours.seen).toEqual(theirs.seen)
        // a defect is not caught by `either`: nothing runs after the wrapped step then
        const sibling = label === "dies" ? [] : [["sibling", "outer"]]
        expect(ours.seen.map((s) => [s.name, s.parent])).toEqual([["outer", undefined], ["wrapped", "outer"], ["child", "wrapped"], ...sibling])
        expect(ours.seen[1]!.end! - ours.seen[1]!.start).toBe(BigInt(5_000_000_000))
        expect(Exit.isSuccess(ours.exit)).toBe(Exit.isSuccess(theirs.exit))
      }))
  }

  it.effect("an interrupted inside ends the span interrupted, and the context is given back", () =>
    Effect.gen(function*() {
      const run = (wrap: Wrap) =>
        recorded(Effect.gen(function*() {
          const fiber = yield* Effect.fork(Effect.withSpan("outer")(wrap("wrapped", {})(Effect.never)))
          yield* TestClock.adjust("1 second")
          yield* Fiber.interrupt(fiber)
          return yield* Effect.withSpan("after")(Effect.currentParentSpan.pipe(Effect.option))
        }))
      const ours = yield* run(lean)
      const theirs = yield* run(standard)
      expect(ours.seen).toEqual(theirs.seen)
      expect(ours.seen.find((s) => s.name === "wrapped")?.exit).toBe("interrupted")
    }))
})
