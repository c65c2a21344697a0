import { Clock, Context, Effect, type Exit, FiberRef, Tracer } from "effect"

/**
 * `Effect.withSpan(name, { ...options, captureStackTrace: false })` in half the steps, for spans made once per
 * runner or per poll (a burst makes a thousand of them).
 *
 * The same span: made by `Effect.makeSpan` (parent from the context, the tracer, links and annotations of the
 * fiber, timing), the parent of everything `self` does, ended with `self`'s exit at the clock's time when `self`
 * ends, however it ends (failure and interruption included), and the context put back after. What it saves is
 * the machinery around it: `withSpan` opens an uninterruptible region for the span and a second one (an
 * acquire-use-release) to provide the span to `self`, each with its own flag changes and exit handling; here one
 * region does both.
 */
export const leanSpan = (name: string, options: Omit<Tracer.SpanOptions, "captureStackTrace"> = {}) => {
  const spanOptions: Tracer.SpanOptions = { ...options, captureStackTrace: false }
  return <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
    Effect.uninterruptibleMask((restore) =>
      Effect.flatMap(Effect.makeSpan(name, spanOptions), (span) =>
        Effect.withFiberRuntime<A, E, R>((fiber) => {
          const outer = fiber.currentContext
          const clock = Context.get(fiber.currentDefaultServices, Clock.Clock)
          const timing = fiber.getFiberRef(FiberRef.currentTracerTimingEnabled)
          const close = (exit: Exit.Exit<A, E>) =>
            Effect.zipRight(
              FiberRef.set(FiberRef.currentContext, outer),
              Effect.suspend(() => {
                if (span.status._tag !== "Ended") span.end(timing ? clock.unsafeCurrentTimeNanos() : BigInt(0), exit)
                return exit
              })
            )
          return Effect.zipRight(
            FiberRef.set(FiberRef.currentContext, Context.add(outer, Tracer.ParentSpan, span)),
            Effect.flatMap(Effect.exit(restore(self)), close)
          )
        })
      )
    )
}
