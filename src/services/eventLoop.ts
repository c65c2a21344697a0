import { Effect } from "effect"

/**
 * Resumes on the event loop's next turn, after the I/O callbacks already waiting (a `/health` probe, a webhook
 * delivery). Long synchronous work is cut into slices with this between them.
 *
 * `Effect.yieldNow()` is not enough for that: Effect's default scheduler resumes a yielded fiber on a microtask,
 * for up to 2,048 yields in a row before it falls back to a timer, and no I/O callback runs between microtasks.
 * Not a service: a primitive the programs and the layers both need, so it lives beside the tags.
 */
export const yieldToEventLoop: Effect.Effect<void> = Effect.async<void>((resume) => {
  if (typeof setImmediate === "function") {
    const handle = setImmediate(() => resume(Effect.void))
    return Effect.sync(() => clearImmediate(handle))
  }
  const handle = setTimeout(() => resume(Effect.void), 0)
  return Effect.sync(() => clearTimeout(handle))
})
