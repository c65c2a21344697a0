import { Effect } from "effect"

/**
 * The CPU time the in-memory twins (GitHub's server, the cluster) spend answering, so a benchmark can report the
 * scheduler's own time apart from theirs.
 *
 * A twin's answer is synchronous (Refs and plain maps, no I/O), so a fiber that starts one runs it to the end
 * without another fiber running in between, provided it does not stop to yield to the others: the metered effect
 * runs with no op limit before a yield, and the process's CPU time is read before and after it. A twin that
 * waited (an injected latency fault) would count the time of whatever ran meanwhile; the benchmarks inject none.
 * Nested metered calls (a twin calling another) count once.
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
  let startedAt = 0
  const meter = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
    Effect.suspend(() => {
      calls++
      if (depth++ === 0) startedAt = cpuMicros()
      return Effect.ensuring(
        effect,
        Effect.sync(() => {
          if (--depth === 0) micros += cpuMicros() - startedAt
        })
      )
    }).pipe(Effect.withMaxOpsBeforeYield(Number.MAX_SAFE_INTEGER))
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
