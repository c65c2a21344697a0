/**
 * The command line: parses the arguments (`main/mainArgs.ts`), reads the environment and the runner config, then
 * runs `migrate` or launches the layer `main/appLayer.ts` chooses. This file, `src/main/` and the tests are the only
 * places that choose implementations for the services (bench/ and scripts/ are entrypoints of their own).
 *
 *   main.ts webhook | scheduler | all [--simulate [--demo]]
 *   main.ts migrate
 *   main.ts trace --entity-id N | --installation-id N | --job-id N | --entity-name LOGIN [--json] [--verbose]
 */
import { NodeRuntime } from "@effect/platform-node"
import { Cause, Console, Effect, Layer, Logger, Option } from "effect"
import { withDevSecrets } from "../layers/sim/devSecrets.ts"
import { traceMain } from "./cli/trace.ts"
import { type AppEnv, describeConfigError, loadAppEnv } from "./config/env.ts"
import { loadRunnerConfig, withImageRegistry } from "./config/runnerConfig.ts"
import { StartupError } from "./config/StartupError.ts"
import { appLayer } from "./main/appLayer.ts"
import type { ArgumentError } from "./main/mainArgs.ts"
import { runMigrations } from "./main/migrateRole.ts"
import { parseMainArgs } from "./main/mainArgs.ts"
import { BufferedJsonLog } from "./observability/jsonLog.ts"
import { operatorLine } from "./observability/operatorLine.ts"
import { tracingLayer } from "./observability/tracing.ts"

/**
 * The log: under JSON one object per line on stdout, as `Logger.json` prints it, written once per event-loop turn
 * (`observability/jsonLog.ts`: a line per delivery was a write per delivery; what is buffered at exit is written
 * then); `Logger.pretty` prints readable lines. LOG_LEVEL was read and checked with the environment.
 */
const logLayer = (env: AppEnv) =>
  Layer.mergeAll(env.logFormat === "json" ? BufferedJsonLog : Logger.pretty, Logger.minimumLogLevel(env.logLevel))

/**
 * A failure nobody foresaw (not a `StartupError`) still ends the process with status 1 and its whole cause, but
 * reported through the configured logger, so that under LOG_FORMAT=json it is one JSON entry like every other
 * stdout line rather than runMain's plain-text report after the JSON ones.
 */
const reportUnexpected = (what: string) => <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, StartupError, R> =>
  Effect.catchAllCause(self, (cause) => {
    const failure = Cause.failureOption(cause)
    if (Option.isSome(failure) && failure.value instanceof StartupError) return Effect.fail(failure.value)
    if (Cause.isInterruptedOnly(cause)) return Effect.failCause(cause as Cause.Cause<never>)
    return Effect.zipRight(Effect.logError(what, cause), Effect.sync(() => process.exit(1)))
  })

const program = Effect.gen(function*() {
  const args = yield* parseMainArgs(process.argv.slice(2))
  // --simulate generates the webhook and trace secrets that are unset (printed once, in the banner)
  const env = yield* Effect.flatMap(loadAppEnv(args.role, args.simulate), (e) => withDevSecrets(e, args.simulate))
  // Read and check the runner config up front, so a bad file stops every role at start-up.
  const runnerConfig = yield* Effect.flatMap(loadRunnerConfig(env.runnerConfigPath), (c) => withImageRegistry(c, env.imageRegistry))

  const say = operatorLine(env.logFormat)

  if (args.role === "migrate") {
    return yield* Effect.gen(function*() {
      // required for migrate, so reading the environment has already refused to start without it
      const url = yield* Option.match(env.postgresUrl, {
        onNone: () => new StartupError({ message: "missing required environment: POSTGRES_URL" }),
        onSome: Effect.succeed
      })
      const applied = yield* runMigrations(url, env.schema, env.dbTimeouts)
      yield* say(
        applied.length === 0 ? `schema ${env.schema}: up to date` : `schema ${env.schema}: applied ${applied.join(", ")}`,
        { schema: env.schema, applied }
      )
    }).pipe(reportUnexpected("migrate failed"), Effect.provide(logLayer(env)))
  }

  // A launched app fails only while it is being built: a failure an operator can fix is one line and status 2,
  // anything else is still reported with its cause.
  // Spans go to OTEL_EXPORTER_OTLP_ENDPOINT when it is set; unset, the exporter is not even imported.
  const tracing = tracingLayer(args.role, { prod: env.prod, simulate: args.simulate }).pipe(
    Layer.mapError((e) => new StartupError({ message: `invalid environment: ${describeConfigError(e).join("; ")}` }))
  )
  yield* Layer.launch(appLayer({ ...args, role: args.role }, env, runnerConfig)).pipe(
    Effect.provide(tracing),
    reportUnexpected("could not start"),
    Effect.provide(logLayer(env))
  )
})

/** Bad arguments or a start-up problem: one line whatever the message holds (a server's own error output can span several), status 2. */
const exitWithLine = (e: ArgumentError | StartupError) =>
  Effect.zipRight(Console.error(`riscv-runner: ${e.message.replace(/\s*\n\s*/g, " ").trim()}`), Effect.sync(() => process.exit(2)))

// `trace` is a client of a running service's trace API, not a role: it needs no layers
// (exits explicitly: a library in this import graph would otherwise leave the status at 0)
if (process.argv[2] === "trace") void traceMain(process.argv.slice(3)).then((code) => process.exit(code))
else program.pipe(
  Effect.catchTags({ ArgumentError: exitWithLine, StartupError: exitWithLine }),
  NodeRuntime.runMain({ disablePrettyLogger: true })
)
