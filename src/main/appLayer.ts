/**
 * What `main.ts` launches for a serving role (`webhook`, `scheduler`, `all`), as a pure function of its arguments,
 * its environment and the runner config: which programs run on which ports, and which GitHub, cluster and
 * database they use. `appPlan` is that choice as data; `appLayer` wires it. Building the layer starts everything
 * and prints the banner; a failure an operator can fix is a `StartupError`, anything else a defect.
 */
import { HttpServerError } from "@effect/platform"
import { NodeHttpClient, NodeHttpServer } from "@effect/platform-node"
import { ConfigError, Effect, Either, Layer, Option, Redacted } from "effect"
import { createServer, type ServerOptions } from "node:http"
import * as path from "node:path"
import { DbPostgres } from "../../layers/db/postgres.ts"
import { NodeHttpServerWithFrontDoor } from "../../layers/http/nodeFrontDoor.ts"
import { GithubMemory } from "../../layers/github/memory.ts"
import { GithubLive } from "../../layers/github/octokit.ts"
import { KubeLive } from "../../layers/kube/client.ts"
import { KubeClusters } from "../../layers/kube/clusters.ts"
import { type DevSecret, SIMULATION_WEBHOOK_SECRET } from "../../layers/sim/devSecrets.ts"
import { SimCluster, simulatedRunnerConfig, simulation } from "../../layers/sim/simulation.ts"
import { type AppEnv, describeConfigError, ENV_NAMES, requiredVariables, type Role } from "../config/env.ts"
import { StartupError } from "../config/StartupError.ts"
import { DEFAULT_CLUSTER, type RunnerConfig } from "../domain/RunnerConfig.ts"
import { EmbeddedPostgresError, EmbeddedPostgresInUse, startEmbeddedPostgres } from "../embedded/embeddedPostgres.ts"
import { MeteredDb } from "../observability/meteredDb.ts"
import { operatorLine } from "../observability/operatorLine.ts"
import { SchedulerLoop } from "../scheduler/loop.ts"
import { RecoveryPasses } from "../scheduler/recovery.ts"
import { recoverySettingsFromEnv } from "../scheduler/recoverySettings.ts"
import { SchedulerServer } from "../operator/server.ts"
import { schedulerSettingsFromEnv } from "../scheduler/settings.ts"
import type { Db } from "../services/Db.ts"
import type { Github, GithubConfigError } from "../services/Github.ts"
import type { Kube } from "../services/Kube.ts"
import { webhookServerOptions } from "../webhook/requestLimits.ts"
import { WebhookServer } from "../webhook/server.ts"
import { webhookSettingsLayer } from "../webhook/WebhookSettings.ts"

/** The roles that launch servers; `migrate` runs once and exits. */
export type ServeRole = Exclude<Role, "migrate">

export interface ServeArgs {
  readonly role: ServeRole
  readonly simulate: boolean
  readonly demo: boolean
}

/** The environment as `main.ts` read it, with the development secrets `--simulate` generated. */
export type ServeEnv = AppEnv & { readonly devSecrets: ReadonlyArray<DevSecret> }

/** A port the process listens on, and the variable that set it (named when the port is taken). */
export interface ListenPort {
  readonly port: number
  readonly variable: "PORT" | "SCHEDULER_PORT" | "SIM_PORT"
}

/** Which programs run and what they run against: the choice `appLayer` wires, as data. */
export interface AppPlan {
  readonly webhook: Option.Option<ListenPort>
  /** the scheduler's operator routes; the loop runs with them */
  readonly scheduler: Option.Option<ListenPort>
  /**
   * The GitHub both programs share: the in-memory one under --simulate, the live API when both app keys are set,
   * else none (only a lone webhook may lack it; its setup pages then answer 502).
   */
  readonly github: "memory" | "live" | "none"
  /** the scheduler's cluster: the simulated one under --simulate, else the live one; none without a scheduler */
  readonly cluster: "memory" | "live" | "none"
  /** `POSTGRES_URL`, else (only --simulate may lack it) the embedded PostgreSQL under DATA_DIR */
  readonly database: "postgres" | "embedded"
  /** --simulate: the simulated world (in `all` the closed loop: control API on SIM_PORT, event lines, --demo) */
  readonly simulation: boolean
}

/**
 * The choice for `args` in `env`. A variable the role cannot start without is a `StartupError` naming every one
 * missing, the same rule (and line) as reading the environment.
 */
export const appPlan = (args: ServeArgs, env: AppEnv): Either.Either<AppPlan, StartupError> => {
  const missing = requiredVariables(args.role, args.simulate).filter((key) => {
    const value: unknown = env[key]
    return Option.isOption(value) && Option.isNone(value)
  })
  if (missing.length > 0) {
    return Either.left(new StartupError({ message: `missing required environment: ${missing.map((key) => ENV_NAMES[key] ?? key).join(", ")}` }))
  }
  const hasScheduler = args.role === "scheduler" || args.role === "all"
  return Either.right({
    webhook: args.role === "scheduler" ? Option.none() : Option.some({ port: env.port, variable: "PORT" }),
    scheduler: hasScheduler
      ? Option.some({ port: env.schedulerPort, variable: args.role === "scheduler" ? "PORT" : "SCHEDULER_PORT" })
      : Option.none(),
    github: args.simulate ? "memory" : Option.isSome(appKeys(env)) ? "live" : "none",
    cluster: !hasScheduler ? "none" : args.simulate ? "memory" : "live",
    database: Option.isSome(env.postgresUrl) ? "postgres" : "embedded",
    simulation: args.simulate
  })
}

/** The layer `main.ts` launches: `appPlan` wired. */
export const appLayer = (args: ServeArgs, env: ServeEnv, runnerConfig: RunnerConfig): Layer.Layer<never, StartupError> =>
  Either.match(appPlan(args, env), {
    onLeft: (error) => Layer.fail(error),
    onRight: (plan) =>
      !args.simulate
        ? planLayer(plan, args, env, runnerConfig)
        // under --simulate the runner config's `clusters` are SIM_NODES' simulated ones
        : Layer.unwrapEffect(
          simulatedRunnerConfig(runnerConfig).pipe(
            Effect.mapBoth({
              onFailure: (e) =>
                new StartupError({ message: typeof e === "string" ? e : `invalid environment: ${describeConfigError(e).join("; ")}` }),
              onSuccess: (config) => planLayer(plan, args, env, config)
            })
          )
        )
  })

/** A Node HTTP server on `port` (the webhook's, with its front door and request deadline, is built above). */
const httpOn = (port: number, options: ServerOptions = {}) => NodeHttpServer.layer(() => createServer(options), { port })

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
export const appIds = (env: AppEnv, runnerConfig: RunnerConfig) => ({
  orgAppId: Option.getOrElse(env.orgAppId, () => runnerConfig.apps.orgAppId),
  personalAppId: Option.getOrElse(env.personalAppId, () => runnerConfig.apps.personalAppId)
})

/** Both apps' private keys, or none. */
const appKeys = (env: AppEnv) => Option.all([env.orgPrivateKey, env.personalPrivateKey])

type GithubLayer = Layer.Layer<Github, GithubConfigError | StartupError>

/**
 * GitHub for every program of the process: the in-memory one under --simulate, else the live one when both app
 * private keys are set. One layer value serves both programs in `all`, so they share one token cache, one
 * runner-group cache and one view of the rate-limit budget.
 */
const githubLayer = (env: AppEnv, runnerConfig: RunnerConfig, simulate: boolean): Option.Option<GithubLayer> => {
  if (simulate) return Option.some(GithubMemory)
  const apps = appIds(env, runnerConfig)
  return Option.map(appKeys(env), ([orgKey, personalKey]) =>
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
    setupPages: { ratePerMinute: env.setupRateLimit, rateBurst: env.setupRateBurst },
    requestTimeout: env.webhookRequestTimeout,
    unverifiedBodyBudgetBytes: env.webhookUnverifiedBodyBudget
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
    (): GithubLayer => Layer.fail(new StartupError({ message: "the scheduler needs GHAPP_ORG_PRIVATE_KEY and GHAPP_PERSONAL_PRIVATE_KEY" }))
  )
  const kube = simulate ? SimCluster : liveClusters(env, runnerConfig)
  return Layer.mergeAll(settings, recoverySettingsFromEnv, github, kube).pipe(
    Layer.mapError((e) =>
      e instanceof StartupError
        ? e
        : new StartupError({
          message: ConfigError.isConfigError(e) ? `invalid environment: ${describeConfigError(e).join("; ")}` : `scheduler: ${e.message}`
        })
    )
  )
}

/**
 * The live cluster: the default one (`K8S_KUBECONFIG` / `KUBECONFIG`, else the service account) alone, as before,
 * or, when the runner config lists `clusters`, one `KubeLive` per cluster from its kubeconfig file, routed by pool.
 * A cluster whose kubeconfig cannot be read or lacks its context stops start-up, naming the cluster.
 */
const liveClusters = (env: AppEnv, runnerConfig: RunnerConfig): Layer.Layer<Kube, StartupError> => {
  const defaultCluster = KubeLive({
    kubeconfigYaml: Option.getOrUndefined(env.kubeconfigYaml),
    kubeconfigPath: Option.getOrUndefined(env.kubeconfigPath)
  }).pipe(Layer.mapError((e) => new StartupError({ message: `scheduler: ${e.message}` })))
  if (runnerConfig.clusters.length === 0) return defaultCluster
  return KubeClusters([
    { name: DEFAULT_CLUSTER, pools: [], layer: defaultCluster },
    ...runnerConfig.clusters.map((c) => ({
      name: c.name,
      pools: c.pools,
      layer: KubeLive({ kubeconfigPath: c.kubeconfig, context: c.context, namespace: c.namespace }).pipe(
        Layer.mapError((e) => new StartupError({ message: `RUNNER_CONFIG clusters "${c.name}": ${e.message}` }))
      )
    }))
  ])
}

/**
 * The simulated world, its banner lines and the control API's port; nothing without --simulate. A bad `SIM_*`
 * setting is a start-up error, found before the database starts.
 */
const simulationPart = (args: ServeArgs, env: ServeEnv, runnerConfig: RunnerConfig) =>
  !args.simulate
    ? Effect.succeed({ layer: Layer.empty, banner: [], controlPort: Option.none<number>() })
    : simulation({
      role: args.role,
      port: env.port,
      schedulerPort: env.schedulerPort,
      webhookSecret: Option.getOrElse(env.webhookSecret, () => Redacted.make(SIMULATION_WEBHOOK_SECRET)),
      traceSecret: env.traceSecret,
      devSecrets: env.devSecrets,
      runnerConfig,
      apps: appIds(env, runnerConfig),
      demo: args.demo,
      logFormat: env.logFormat,
      printLine: operatorLine(env.logFormat)
    }).pipe(Effect.mapError((e) => new StartupError({ message: `invalid environment: ${describeConfigError(e).join("; ")}` })))

const planLayer = (plan: AppPlan, args: ServeArgs, env: ServeEnv, runnerConfig: RunnerConfig): Layer.Layer<never, StartupError> => {
  const github = githubLayer(env, runnerConfig, args.simulate)
  const webhook = Option.match(plan.webhook, {
    onNone: (): Layer.Layer<never, unknown, Db> => Layer.empty,
    onSome: ({ port }) =>
      WebhookServer.pipe(
        // deliveries are answered at the server's front door, below the platform's per-request work
        Layer.provide(NodeHttpServerWithFrontDoor({ port }, webhookServerOptions(env.webhookRequestTimeout))),
        Layer.provide(webhookLayers(env, runnerConfig, github))
      )
  })
  const scheduler = Option.match(plan.scheduler, {
    onNone: (): Layer.Layer<never, unknown, Db> => Layer.empty,
    onSome: ({ port }) =>
      Layer.mergeAll(SchedulerServer.pipe(Layer.provide(httpOn(port))), SchedulerLoop, RecoveryPasses).pipe(
        Layer.provide(schedulerLayers(env, runnerConfig, args.simulate, github))
      )
  })
  const title = `riscv-runner ${args.role}${args.simulate ? " (simulated GitHub and cluster)" : ""} on schema ${env.schema}`
  const banner = [
    title,
    ...Option.toArray(Option.map(plan.webhook, ({ port }) => `webhook:   http://localhost:${port}/ (health: /health)`)),
    ...Option.toArray(Option.map(plan.scheduler, ({ port }) => `scheduler: http://localhost:${port}/ (health: /health)`))
  ]
  const say = operatorLine(env.logFormat)
  return Layer.unwrapEffect(Effect.map(simulationPart(args, env, runnerConfig), (sim) => {
    const ports: ReadonlyArray<ListenPort> = [
      ...Option.toArray(plan.webhook),
      ...Option.toArray(plan.scheduler),
      ...Option.toArray(Option.map(sim.controlPort, (port): ListenPort => ({ port, variable: "SIM_PORT" })))
    ]
    return Layer.mergeAll(webhook, scheduler, sim.layer).pipe(
      // status changes are counted for /metrics whatever the store
      Layer.provide(MeteredDb.pipe(Layer.provide(databaseLayer(env, args.simulate)))),
      // printed once everything listens, so the URLs work when they appear; one log entry per line under JSON
      Layer.tap(() => Effect.forEach([...banner, ...sim.banner], (line) => say(line), { discard: true })),
      // a launched app fails only while it is being built, so every failure here is a start-up failure: the ones
      // an operator can fix become one line and status 2, anything else is a defect reported with its cause
      Layer.catchAll((error) => {
        const explained = explainStartupFailure(ports, error)
        return explained === undefined ? Layer.die(error) : Layer.fail(explained)
      })
    )
  }))
}

/**
 * The start-up failures an operator fixes by changing the environment, as one `StartupError` line that names the
 * problem and the variable: a port already taken (or not ours to open), an embedded data directory held by
 * another running server, an embedded server that would not start. Undefined for any other failure.
 */
export const explainStartupFailure = (ports: ReadonlyArray<ListenPort>, error: unknown): StartupError | undefined => {
  if (error instanceof StartupError) return error
  if (error instanceof HttpServerError.ServeError) {
    const cause = error.cause as { readonly code?: unknown; readonly port?: unknown } | undefined
    const port = typeof cause?.port === "number" ? cause.port : undefined
    const variable = ports.find((p) => p.port === port)?.variable ?? "PORT, SCHEDULER_PORT or SIM_PORT"
    switch (cause?.code) {
      case "EADDRINUSE":
        return new StartupError({ message: `port ${port} is in use (${variable}); stop the other process or set ${variable} to a free port` })
      case "EACCES":
        return new StartupError({ message: `port ${port} may not be opened by this user (${variable}); set ${variable} to a port above 1023` })
      default:
        return new StartupError({
          message: `cannot listen on port ${port} (${variable}): ${String((cause as { message?: unknown } | undefined)?.message ?? cause)}`
        })
    }
  }
  if (error instanceof EmbeddedPostgresInUse) {
    return new StartupError({
      message: `the embedded PostgreSQL data directory ${error.dataDir} (DATA_DIR) is in use by a running PostgreSQL (PID ${error.pid}${
        error.port === undefined ? "" : `, port ${error.port}`
      }), probably another npm start; stop it, or set DATA_DIR to another directory`
    })
  }
  if (error instanceof EmbeddedPostgresError) {
    return new StartupError({ message: `${error.message} (DATA_DIR says where its data lives; POSTGRES_URL uses a server of your own instead)` })
  }
  return undefined
}
