/**
 * The command line: picks the roles and the layers, then launches. This file and the tests are the only places
 * that choose implementations for the services.
 *
 *   main.ts webhook | scheduler | all [--simulate [--demo]]
 *   main.ts migrate
 *   main.ts trace --entity-id N | --installation-id N | --job-id N | --entity-name LOGIN [--json] [--verbose]
 */
import { HttpServerError } from "@effect/platform"
import { NodeHttpClient, NodeHttpServer, NodeRuntime } from "@effect/platform-node"
import { Cause, ConfigError, Console, Effect, Layer, Logger, LogLevel, Option, Redacted } from "effect"
import { createServer } from "node:http"
import * as path from "node:path"
import { migrate } from "../layers/db/migrate.ts"
import { pgClientLayer } from "../layers/db/pgClient.ts"
import { DbPostgres } from "../layers/db/postgres.ts"
import { GithubMemory } from "../layers/github/memory.ts"
import { GithubLive } from "../layers/github/octokit.ts"
import { KubeLive } from "../layers/kube/client.ts"
import { withDevSecrets } from "../layers/sim/devSecrets.ts"
import { SimCluster, simulation } from "../layers/sim/simulation.ts"
import { parseArgs } from "./cli.ts"
import { traceMain } from "./cli/trace.ts"
import { type AppEnv, describeConfigError, loadAppEnv, StartupError } from "./config/env.ts"
import { loadRunnerConfig } from "./config/runnerConfig.ts"
import { EmbeddedPostgresError, EmbeddedPostgresInUse, startEmbeddedPostgres } from "./embedded/embeddedPostgres.ts"
import { MeteredDb } from "./observability/meteredDb.ts"
import { operatorLine } from "./observability/operatorLine.ts"
import { SchedulerLoop } from "./scheduler/loop.ts"
import { SchedulerServer } from "./operator/server.ts"
import { schedulerSettingsFromEnv } from "./scheduler/settings.ts"
import type { RunnerConfig } from "./domain/RunnerConfig.ts"
import type { Db } from "./services/Db.ts"
import type { Github, GithubConfigError } from "./services/Github.ts"
import { WebhookServer } from "./webhook/server.ts"
import { SIMULATION_WEBHOOK_SECRET, webhookSettingsLayer } from "./webhook/WebhookSettings.ts"

const httpOn = (port: number) => NodeHttpServer.layer(createServer, { port })

/**
 * The database: `POSTGRES_URL` when set, otherwise (only with --simulate) an embedded PostgreSQL whose data stays
 * under DATA_DIR between runs. `npm start` applies pending migrations itself; deployments run `migrate`.
 */
const databaseLayer = (env: AppEnv, autoMigrate: boolean) =>
  Option.match(env.postgresUrl, {
    onSome: (url) => DbPostgres({ url, schema: env.schema, migrate: autoMigrate, timeouts: env.dbTimeouts }),
    onNone: () =>
      Layer.unwrapScoped(Effect.gen(function*() {
        const dataDir = path.resolve(env.dataDir, "postgres")
        yield* operatorLine(env.logFormat)(`database: embedded PostgreSQL, data in ${dataDir}`)
        const pg = yield* startEmbeddedPostgres({ dataDir, persistent: true })
        return DbPostgres({ url: Redacted.make(pg.url), schema: env.schema, migrate: true, timeouts: env.dbTimeouts })
      }))
  })

/** The two apps' ids: from the environment, else from the runner config. */
const appIds = (env: AppEnv, runnerConfig: RunnerConfig) => ({
  orgAppId: Option.getOrElse(env.orgAppId, () => runnerConfig.apps.orgAppId),
  personalAppId: Option.getOrElse(env.personalAppId, () => runnerConfig.apps.personalAppId)
})

type GithubLayer = Layer.Layer<Github, GithubConfigError | StartupError>

/**
 * GitHub for every program of the process: the in-memory one under --simulate, else the live one when both app
 * private keys are set. One layer value serves both programs in `all`, so they share one token cache, one
 * runner-group cache and one view of the rate-limit budget.
 */
const githubLayer = (env: AppEnv, runnerConfig: RunnerConfig, simulate: boolean): Option.Option<GithubLayer> => {
  if (simulate) return Option.some(GithubMemory)
  const apps = appIds(env, runnerConfig)
  return Option.map(Option.all([env.orgPrivateKey, env.personalPrivateKey]), ([orgKey, personalKey]) =>
    GithubLive({
      orgApp: { appId: apps.orgAppId, privateKey: orgKey },
      personalApp: { appId: apps.personalAppId, privateKey: personalKey },
      apiUrl: env.githubApiUrl
    }))
}

/**
 * What the webhook program needs besides the database: its settings, an HTTP client for the staging proxy, and
 * GitHub for the setup pages' installation lookups (none without the app keys; the setup pages then answer 502).
 */
const webhookLayers = (env: AppEnv, runnerConfig: RunnerConfig, github: Option.Option<GithubLayer>) => {
  const settings = webhookSettingsLayer({
    // only --simulate may lack GHAPP_WEBHOOK_SECRET; its simulated GitHub signs with the well-known one
    webhookSecret: Option.getOrElse(env.webhookSecret, () => Redacted.make(SIMULATION_WEBHOOK_SECRET)),
    traceSecret: env.traceSecret,
    runnerConfig,
    prod: env.prod,
    stagingUrl: env.stagingUrl,
    apps: appIds(env, runnerConfig),
    trustedProxyHops: env.trustedProxyHops,
    setupPages: { ratePerMinute: env.setupRateLimit, rateBurst: env.setupRateBurst }
  })
  return Layer.mergeAll(settings, NodeHttpClient.layer, Option.getOrElse(github, () => Layer.empty))
}

/**
 * What the scheduler program needs besides the database: its settings (timeouts from `SCHEDULER_*`), GitHub and
 * the cluster. Live: both apps' keys, `GITHUB_API_URL`, and `K8S_KUBECONFIG` / `KUBECONFIG` (else the pod's
 * service account). Under --simulate: the in-memory GitHub and the simulated cluster (`SIM_NODES`, default 4 `scw-em-rv1` nodes of one slot).
 * A layer that cannot start (an unusable key or kubeconfig) is a start-up error.
 */
const schedulerLayers = (env: AppEnv, runnerConfig: RunnerConfig, simulate: boolean, githubOption: Option.Option<GithubLayer>) => {
  const settings = schedulerSettingsFromEnv({ ...runnerConfig, apps: appIds(env, runnerConfig) }, env.prod)
  const github = Option.getOrElse(
    githubOption,
    (): GithubLayer => Layer.fail(new StartupError("the scheduler needs GHAPP_ORG_PRIVATE_KEY and GHAPP_PERSONAL_PRIVATE_KEY"))
  )
  const kube = simulate
    ? SimCluster
    : KubeLive({ kubeconfigYaml: Option.getOrUndefined(env.kubeconfigYaml), kubeconfigPath: Option.getOrUndefined(env.kubeconfigPath) })
  return Layer.mergeAll(settings, github, kube).pipe(
    Layer.mapError((e) =>
      e instanceof StartupError
        ? e
        : new StartupError(ConfigError.isConfigError(e) ? `invalid environment: ${describeConfigError(e).join("; ")}` : `scheduler: ${e.message}`)
    )
  )
}

/**
 * The log: `Logger.json` prints one JSON object per line on stdout (`Logger.jsonLogger` alone only formats, and
 * installed as the logger it printed nothing at all); `Logger.pretty` prints readable lines.
 */
const logLayer = (env: AppEnv) =>
  Layer.mergeAll(
    env.logFormat === "json" ? Logger.json : Logger.pretty,
    Logger.minimumLogLevel(
      // by label (`warn`) or by name (`warning`); --simulate relies on `warning` working
      LogLevel.allLevels.find((l) => [l.label.toLowerCase(), l._tag.toLowerCase()].includes(env.logLevel.toLowerCase())) ?? LogLevel.Info
    )
  )

interface ListenPort {
  readonly port: number
  readonly variable: "PORT" | "SCHEDULER_PORT" | "SIM_PORT"
}

/**
 * The start-up failures an operator fixes by changing the environment, as one `StartupError` line that names the
 * problem and the variable: a port already taken (or not ours to open), an embedded data directory held by
 * another running server, an embedded server that would not start. Other failures pass through unchanged.
 */
const explainStartupFailure = (ports: ReadonlyArray<ListenPort>) => (error: unknown): unknown => {
  if (error instanceof HttpServerError.ServeError) {
    const cause = error.cause as { readonly code?: unknown; readonly port?: unknown } | undefined
    const port = typeof cause?.port === "number" ? cause.port : undefined
    const variable = ports.find((p) => p.port === port)?.variable ?? "PORT, SCHEDULER_PORT or SIM_PORT"
    switch (cause?.code) {
      case "EADDRINUSE":
        return new StartupError(`port ${port} is in use (${variable}); stop the other process or set ${variable} to a free port`)
      case "EACCES":
        return new StartupError(`port ${port} may not be opened by this user (${variable}); set ${variable} to a port above 1023`)
      default:
        return new StartupError(`cannot listen on port ${port} (${variable}): ${String((cause as { message?: unknown } | undefined)?.message ?? cause)}`)
    }
  }
  if (error instanceof EmbeddedPostgresInUse) {
    return new StartupError(
      `the embedded PostgreSQL data directory ${error.dataDir} (DATA_DIR) is in use by a running PostgreSQL (PID ${error.pid}${
        error.port === undefined ? "" : `, port ${error.port}`
      }), probably another npm start; stop it, or set DATA_DIR to another directory`
    )
  }
  if (error instanceof EmbeddedPostgresError) {
    return new StartupError(`${error.message} (DATA_DIR says where its data lives; POSTGRES_URL uses a server of your own instead)`)
  }
  return error
}

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
  const args = yield* Effect.try({ try: () => parseArgs(process.argv.slice(2)), catch: (e) => e as StartupError })
  // --simulate generates the webhook and trace secrets that are unset (printed once, in the banner) and, with
  // LOG_LEVEL unset, keeps the log to warnings so that the simulation's event lines stand out
  const env = yield* Effect.flatMap(loadAppEnv(args.role, args.simulate), (e) => withDevSecrets(e, args.simulate))
  // Read and check the runner config up front, so a bad file stops every role at start-up.
  const runnerConfig = yield* loadRunnerConfig(env.runnerConfigPath)

  const say = operatorLine(env.logFormat)

  if (args.role === "migrate") {
    const url = Option.getOrThrow(env.postgresUrl)
    return yield* Effect.gen(function*() {
      const applied = yield* migrate(env.schema).pipe(Effect.provide(pgClientLayer({ url, schema: env.schema })))
      yield* say(
        applied.length === 0 ? `schema ${env.schema}: up to date` : `schema ${env.schema}: applied ${applied.join(", ")}`,
        { schema: env.schema, applied }
      )
    }).pipe(reportUnexpected("migrate failed"), Effect.provide(logLayer(env)))
  }

  const github = githubLayer(env, runnerConfig, args.simulate)
  const servers: Array<Layer.Layer<never, unknown, Db>> = []
  const banner: Array<string> = []
  // which variable set each listening port, to name it when the port is taken
  const ports: Array<ListenPort> = []
  if (args.role === "webhook" || args.role === "all") {
    servers.push(WebhookServer.pipe(Layer.provide(httpOn(env.port)), Layer.provide(webhookLayers(env, runnerConfig, github))))
    banner.push(`webhook:   http://localhost:${env.port}/ (health: /health)`)
    ports.push({ port: env.port, variable: "PORT" })
  }
  if (args.role === "scheduler" || args.role === "all") {
    servers.push(
      Layer.mergeAll(SchedulerServer.pipe(Layer.provide(httpOn(env.schedulerPort))), SchedulerLoop).pipe(
        Layer.provide(schedulerLayers(env, runnerConfig, args.simulate, github))
      )
    )
    banner.push(`scheduler: http://localhost:${env.schedulerPort}/ (health: /health)`)
    ports.push({ port: env.schedulerPort, variable: args.role === "scheduler" ? "PORT" : "SCHEDULER_PORT" })
  }
  if (args.simulate) {
    const sim = yield* simulation({
      role: args.role,
      port: env.port,
      schedulerPort: env.schedulerPort,
      webhookSecret: Option.getOrElse(env.webhookSecret, () => Redacted.make(SIMULATION_WEBHOOK_SECRET)),
      traceSecret: env.traceSecret,
      devSecrets: env.devSecrets,
      runnerConfig,
      apps: appIds(env, runnerConfig),
      demo: args.demo,
      logFormat: env.logFormat
    })
    servers.push(sim.layer)
    banner.push(...sim.banner)
    if (Option.isSome(sim.controlPort)) ports.push({ port: sim.controlPort.value, variable: "SIM_PORT" })
  }
  const title = `riscv-runner ${args.role}${args.simulate ? " (simulated GitHub and cluster)" : ""} on schema ${env.schema}`
  const app = Layer.mergeAll(...(servers as [Layer.Layer<never, unknown, Db>])).pipe(
    // status changes are counted for /metrics whatever the store
    Layer.provide(MeteredDb.pipe(Layer.provide(databaseLayer(env, args.simulate)))),
    // printed once everything listens, so the URLs work when they appear; one log entry per line under JSON
    Layer.tap(() => Effect.forEach([title, ...banner], (line) => say(line), { discard: true }))
  )
  // A launched app fails only while it is being built, so every failure here is a start-up failure; the ones an
  // operator can fix become one line and status 2, anything else is still reported with its cause.
  yield* Layer.launch(app).pipe(
    Effect.mapError(explainStartupFailure(ports)),
    reportUnexpected("could not start"),
    Effect.provide(logLayer(env))
  )
})

// `trace` is a client of a running service's trace API, not a role: it needs no layers
// (exits explicitly: a library in this import graph would otherwise leave the status at 0)
if (process.argv[2] === "trace") void traceMain(process.argv.slice(3)).then((code) => process.exit(code))
else program.pipe(
  Effect.catchIf(
    (e): e is StartupError => e instanceof StartupError,
    // one line whatever the message holds (a server's own error output can span several)
    (e) => Effect.zipRight(Console.error(`riscv-runner: ${e.message.replace(/\s*\n\s*/g, " ").trim()}`), Effect.sync(() => process.exit(2)))
  ),
  NodeRuntime.runMain({ disablePrettyLogger: true })
)
