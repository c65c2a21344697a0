import { Effect, Fiber, Runtime, Scheduler } from "effect"

/**
 * The CPU time the in-memory twins (GitHub's server, the cluster) spend answering, so a benchmark can report the
 * scheduler's own time apart from theirs.
 *
 * A twin's answer is synchronous (Refs and plain maps, no I/O). The meter runs it on a fiber of its own, forked
 * from the caller's fiber (its context and fiber refs: clock, tracer and parent span, log annotations), on a
 * synchronous scheduler, and reads the process's CPU time before the fork and after the answer: nothing else
 * runs in between, and the fork and the answer are the twin's, so what the caller's side spends on the meter
 * itself is one step and one clock read (half of each of the two reads lands on either side). The meter used to
 * run the answer in the caller's fiber under a raised op limit (so it could not yield): the limit's set and
 * restore and the finalizer were about twenty Effect steps per twin call on our side, a sixth of a warm burst's
 * steps.
 *
 * A twin that waits (an injected latency fault) is counted until it first waits; the caller then waits for its
 * answer as usual. The benchmarks inject none. Nested metered calls (a twin calling another) count once.
 */
export interface TwinMeter {
  readonly meter: <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
  /** CPU milliseconds counted so far */
  readonly cpuMs: () => number
  readonly calls: () => number
}

const cpuMicros = () => {
  const c = process.cpuUsage()
  return c.user + c.system
}

export const makeTwinMeter = (): TwinMeter => {
  let micros = 0
  let calls = 0
  let depth = 0
  const meter = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
    Effect.withFiberRuntime<A, E, R>((fiber) => {
      calls++
      // inside another twin's answer, which is already being counted (and already on the meter's own fiber)
      if (depth > 0) return effect
      const runtime = Runtime.make({
        context: fiber.currentContext,
        fiberRefs: fiber.getFiberRefs(),
        runtimeFlags: Runtime.defaultRuntimeFlags
      })
      const scheduler = new Scheduler.SyncScheduler()
      const startedAt = cpuMicros()
      depth++
      let child: Fiber.RuntimeFiber<A, E>
      try {
        child = Runtime.runFork(runtime)(effect as Effect.Effect<A, E>, { scheduler })
        scheduler.flush()
      } finally {
        depth--
      }
      micros += cpuMicros() - startedAt
      const done = child.unsafePoll()
      if (done !== null) return done
      return Effect.flatMap(Fiber.await(child), (exit) => exit).pipe(Effect.onInterrupt(() => Fiber.interrupt(child)))
    })
  return { meter, cpuMs: () => micros / 1000, calls: () => calls }
}

/** Every method of a service object whose result is an effect (and every effect it holds) run through `meter`. */
export const meteredService = <S extends object>(service: S, meter: TwinMeter["meter"]): S =>
  Object.fromEntries(
    Object.entries(service).map(([key, value]) => {
      if (Effect.isEffect(value)) return [key, meter(value)]
      if (typeof value === "function") {
        return [key, (...args: Array<unknown>) => {
          const result = (value as (...a: Array<unknown>) => unknown)(...args)
          return Effect.isEffect(result) ? meter(result) : result
        }]
      }
      return [key, value]
    })
  ) as S
