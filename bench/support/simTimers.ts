import { Effect } from "effect"

/**
 * TestClock yields to the event loop with `setTimeout(0)` a few times for every sleep it wakes, and Node makes each
 * of those wait at least a millisecond: a simulated day would take minutes of idle waiting. While a simulation
 * runs, zero-delay timeouts become `setImmediate` (the same macrotask position, minus the 1 ms floor); timers with a
 * real delay are untouched. Restored when the scope closes.
 */
export const fastZeroTimers = Effect.acquireRelease(
  Effect.sync(() => {
    const original = { setTimeout: globalThis.setTimeout, clearTimeout: globalThis.clearTimeout }
    const immediates = new WeakSet<object>()
    const patched = ((handler: (...args: Array<unknown>) => void, delay?: number, ...args: Array<unknown>) => {
      if (typeof handler === "function" && (delay === undefined || delay <= 0)) {
        const immediate = setImmediate(handler, ...args)
        immediates.add(immediate)
        return immediate
      }
      return original.setTimeout(handler, delay, ...args)
    }) as unknown as typeof globalThis.setTimeout
    globalThis.setTimeout = patched
    globalThis.clearTimeout = ((timer: unknown) => {
      if (typeof timer === "object" && timer !== null && immediates.has(timer)) clearImmediate(timer as NodeJS.Immediate)
      else original.clearTimeout(timer as NodeJS.Timeout)
    }) as typeof globalThis.clearTimeout
    return original
  }),
  (original) =>
    Effect.sync(() => {
      globalThis.setTimeout = original.setTimeout
      globalThis.clearTimeout = original.clearTimeout
    })
)
