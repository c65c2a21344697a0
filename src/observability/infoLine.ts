import { Effect, FiberRef, LogLevel } from "effect"

/**
 * `Effect.logInfo(message)` carrying `annotations` on that line alone, as `Effect.annotateLogs` would add them.
 *
 * The fiber drops a line below its minimum log level (`LOG_LEVEL=warn`, the benchmarks) only after the
 * annotations were set around it and restored: for a line written once per runner provisioned, that set and
 * restore was more of a burst's steps than the line itself. A dropped line here costs one step and builds
 * nothing; a written line is the same line as before.
 */
export const logInfoWith = (message: string, annotations: () => Record<string, unknown>): Effect.Effect<void> =>
  Effect.withFiberRuntime((fiber) =>
    // the check `fiber.log` makes before it writes
    LogLevel.greaterThan(fiber.getFiberRef(FiberRef.currentMinimumLogLevel), LogLevel.Info)
      ? Effect.void
      : Effect.annotateLogs(Effect.logInfo(message), annotations())
  )
