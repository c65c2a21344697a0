import { Config, ConfigError, Duration, Effect, Either, LogLevel, Option, Redacted } from "effect"
import { DEFAULT_REQUEST_TIMEOUT, DEFAULT_UNVERIFIED_BODY_BUDGET } from "../webhook/requestLimits.ts"
import { StartupError } from "./StartupError.ts"

/** The process roles `main.ts` can run. */
export type Role = "webhook" | "scheduler" | "all" | "migrate"

/**
 * Everything the service reads from its environment. Secrets stay `Redacted` from here on, so they print as
 * `<redacted>` in logs and errors.
 */
export interface AppEnv {
  readonly prod: boolean
  /** `prod` or `staging`: the PostgreSQL schema, the runner prefix and the image channel follow it */
  readonly schema: "prod" | "staging"
  readonly port: number
  readonly schedulerPort: number
  readonly postgresUrl: Option.Option<Redacted.Redacted<string>>
  /** `DB_CONNECT_TIMEOUT_MS`, `DB_STATEMENT_TIMEOUT_MS`, `DB_LOCK_TIMEOUT_MS`: how long to wait for PostgreSQL */
  readonly dbTimeouts: { readonly connectMs: number; readonly statementMs: number; readonly lockMs: number }
  readonly webhookSecret: Option.Option<Redacted.Redacted<string>>
  readonly orgAppId: Option.Option<number>
  readonly personalAppId: Option.Option<number>
  readonly orgPrivateKey: Option.Option<Redacted.Redacted<string>>
  readonly personalPrivateKey: Option.Option<Redacted.Redacted<string>>
  readonly stagingUrl: Option.Option<string>
  readonly traceSecret: Option.Option<Redacted.Redacted<string>>
  readonly kubeconfigPath: Option.Option<string>
  readonly kubeconfigYaml: Option.Option<Redacted.Redacted<string>>
  readonly githubApiUrl: string
  readonly runnerConfigPath: Option.Option<string>
  /** `RUNNER_IMAGE_REGISTRY`: replaces the runner config's `imageRegistry` when set */
  readonly imageRegistry: Option.Option<string>
  /** `LOG_LEVEL`, by label (`warn`) or by name (`warning`); unset: `info`, or `warning` under --simulate */
  readonly logLevel: LogLevel.LogLevel
  readonly logFormat: "json" | "pretty"
  /** where the embedded PostgreSQL keeps its data when POSTGRES_URL is unset */
  readonly dataDir: string
  /** `TRUSTED_PROXY_HOPS`: reverse proxies in front of the webhook whose `X-Forwarded-For` entries are believed */
  readonly trustedProxyHops: number
  /** `SETUP_RATE_LIMIT`, `SETUP_RATE_BURST`: the setup pages' requests per minute and burst per client address */
  readonly setupRateLimit: number
  readonly setupRateBurst: number
  /** `WEBHOOK_REQUEST_TIMEOUT` (default 15 s): a webhook request not fully arrived by then gets 408 */
  readonly webhookRequestTimeout: Duration.Duration
  /** `WEBHOOK_UNVERIFIED_BODY_BUDGET` (bytes, default 64 MiB): bodies held before their signature is checked */
  readonly webhookUnverifiedBodyBudget: number
}

/** An empty value counts as unset, as in the original. */
const optionalString = (name: string) =>
  Config.string(name).pipe(Config.option, Config.map(Option.filter((s) => s.trim() !== "")))
const optionalSecret = (name: string) =>
  Config.redacted(name).pipe(Config.option, Config.map(Option.filter((s) => Redacted.value(s).trim() !== "")))
const optionalInt = (name: string) =>
  optionalString(name).pipe(
    Config.mapOrFail((o) =>
      Option.match(o, {
        onNone: () => Either.right(Option.none<number>()),
        onSome: (s) =>
          /^\d+$/.test(s.trim())
            ? Either.right(Option.some(Number(s.trim())))
            : Either.left(ConfigError.InvalidData([name], `must be a positive integer, got "${s}"`))
      })
    )
  )
const count = (name: string, fallback: number) =>
  Config.integer(name).pipe(
    Config.validate({ message: "must be a whole number >= 0", validation: (n) => n >= 0 }),
    Config.withDefault(fallback)
  )
const port = (name: string, fallback: number) =>
  Config.integer(name).pipe(
    Config.validate({ message: "must be a port number (1-65535)", validation: (n) => n >= 0 && n <= 65535 }),
    Config.withDefault(fallback)
  )

/** Milliseconds within [min, max], default `fallback`; a unit suffix ("5s") is refused rather than guessed. */
const millis = (name: string, fallback: number, min: number, max: number, zero: string) =>
  Config.integer(name).pipe(
    Config.validate({
      message: `must be a whole number of milliseconds from ${min} to ${max}${zero}`,
      validation: (n) => n >= min && n <= max
    }),
    Config.withDefault(fallback)
  )

/**
 * A log level by its label (`warn`, `off`) or its name (`warning`, `none`), in any case; an empty value counts as
 * unset. Anything else is refused, naming the accepted values, rather than quietly logging at `info`.
 */
const logLevel = (name: string) =>
  optionalString(name).pipe(
    Config.mapOrFail((o) =>
      Option.match(o, {
        onNone: () => Either.right(Option.none<LogLevel.LogLevel>()),
        onSome: (s) => {
          const wanted = s.trim().toLowerCase()
          const level = LogLevel.allLevels.find((l) => l.label.toLowerCase() === wanted || l._tag.toLowerCase() === wanted)
          return level !== undefined
            ? Either.right(Option.some(level))
            : Either.left(ConfigError.InvalidData([name], `must be one of ${LOG_LEVEL_NAMES}, got "${s}"`))
        }
      })
    )
  )
const LOG_LEVEL_NAMES = LogLevel.allLevels
  .map((l) => l.label.toLowerCase() === l._tag.toLowerCase() ? l.label.toLowerCase() : `${l.label.toLowerCase()} (${l._tag.toLowerCase()})`)
  .join(", ")

const dbTimeoutsConfig = Config.all({
  connectMs: millis("DB_CONNECT_TIMEOUT_MS", 5000, 100, 60_000, ""),
  statementMs: millis("DB_STATEMENT_TIMEOUT_MS", 5000, 0, 600_000, " (0: none)"),
  lockMs: millis("DB_LOCK_TIMEOUT_MS", 3000, 0, 600_000, " (0: none)")
})

/**
 * The environment of `role`. Under `simulate` an unset LOG_LEVEL keeps the log to warnings, so that the
 * simulation's event lines stand out (`LOG_LEVEL=info npm start` shows the service's own log as well).
 */
export const appEnvConfig = (role: Role, simulate: boolean): Config.Config<AppEnv> =>
  Config.all({
    prod: optionalString("PROD").pipe(Config.map((o) => Option.getOrElse(o, () => "").toLowerCase() === "true")),
    port: port("PORT", 8080),
    // In `all` the scheduler's routes need a port of their own; alone, the scheduler listens on PORT.
    schedulerPort: role === "scheduler" ? port("PORT", 8080) : port("SCHEDULER_PORT", 8081),
    postgresUrl: optionalSecret("POSTGRES_URL"),
    dbTimeouts: dbTimeoutsConfig,
    webhookSecret: optionalSecret("GHAPP_WEBHOOK_SECRET"),
    orgAppId: optionalInt("GHAPP_ORG_ID"),
    personalAppId: optionalInt("GHAPP_PERSONAL_ID"),
    orgPrivateKey: optionalSecret("GHAPP_ORG_PRIVATE_KEY"),
    personalPrivateKey: optionalSecret("GHAPP_PERSONAL_PRIVATE_KEY"),
    stagingUrl: optionalString("STAGING_URL"),
    traceSecret: optionalSecret("TRACE_API_SECRET"),
    kubeconfigPath: optionalString("KUBECONFIG"),
    kubeconfigYaml: optionalSecret("K8S_KUBECONFIG"),
    githubApiUrl: Config.string("GITHUB_API_URL").pipe(Config.withDefault("https://api.github.com")),
    runnerConfigPath: optionalString("RUNNER_CONFIG"),
    imageRegistry: optionalString("RUNNER_IMAGE_REGISTRY"),
    logLevel: logLevel("LOG_LEVEL").pipe(Config.map(Option.getOrElse(() => simulate ? LogLevel.Warning : LogLevel.Info))),
    logFormat: Config.literal("json", "pretty")("LOG_FORMAT").pipe(Config.withDefault("pretty" as const)),
    dataDir: Config.string("DATA_DIR").pipe(Config.withDefault(".data")),
    trustedProxyHops: count("TRUSTED_PROXY_HOPS", 0),
    setupRateLimit: count("SETUP_RATE_LIMIT", 10),
    setupRateBurst: count("SETUP_RATE_BURST", 10),
    webhookRequestTimeout: Config.duration("WEBHOOK_REQUEST_TIMEOUT").pipe(
      Config.validate({ message: "must be a positive duration, like `15 seconds`", validation: (d) => Duration.toMillis(d) >= 1 }),
      Config.withDefault(DEFAULT_REQUEST_TIMEOUT)
    ),
    // at least one delivery of GitHub's largest size (25 MiB) must fit
    webhookUnverifiedBodyBudget: Config.integer("WEBHOOK_UNVERIFIED_BODY_BUDGET").pipe(
      Config.validate({
        message: "must be a number of bytes of at least 26214400 (25 MiB, GitHub's largest delivery)",
        validation: (n) => n >= 25 * 1024 * 1024
      }),
      Config.withDefault(DEFAULT_UNVERIFIED_BODY_BUDGET)
    )
  }).pipe(Config.map((env) => ({ ...env, schema: env.prod ? "prod" as const : "staging" as const })))

/**
 * The variables a role cannot start without. `--simulate` replaces GitHub and the cluster and may use the
 * embedded database, so it needs none.
 */
export const requiredVariables = (role: Role, simulate: boolean): ReadonlyArray<keyof AppEnv> => {
  if (simulate) return []
  const db = ["postgresUrl"] as const
  const webhook = ["webhookSecret"] as const
  const scheduler = ["orgPrivateKey", "personalPrivateKey"] as const
  switch (role) {
    case "migrate":
      return db
    case "webhook":
      return [...db, ...webhook]
    case "scheduler":
      return [...db, ...scheduler]
    case "all":
      return [...db, ...webhook, ...scheduler]
  }
}

export const ENV_NAMES: Partial<Record<keyof AppEnv, string>> = {
  postgresUrl: "POSTGRES_URL",
  webhookSecret: "GHAPP_WEBHOOK_SECRET",
  orgPrivateKey: "GHAPP_ORG_PRIVATE_KEY",
  personalPrivateKey: "GHAPP_PERSONAL_PRIVATE_KEY"
}

/** Flattens a ConfigError tree into "NAME: problem" items, so one line can name every bad variable. */
export const describeConfigError = (error: ConfigError.ConfigError): ReadonlyArray<string> => {
  switch (error._op) {
    case "And":
    case "Or":
      return [...describeConfigError(error.left), ...describeConfigError(error.right)]
    case "MissingData":
      return [`${error.path.join(".")} is missing`]
    case "InvalidData":
    case "SourceUnavailable":
    case "Unsupported":
      return [`${error.path.join(".")}: ${error.message}`]
  }
}

/** Reads the environment for `role`; fails with one message naming every missing or invalid variable. */
export const loadAppEnv = (role: Role, simulate: boolean) =>
  Effect.gen(function*() {
    // Missing and invalid variables are gathered separately so that one line can name all of them.
    const required = requiredVariables(role, simulate).map((key) => ENV_NAMES[key]!)
    const present = yield* Config.all(required.map(optionalString)).pipe(Effect.orElseSucceed(() => required.map(() => Option.none())))
    const missing = required.filter((_, i) => Option.isNone(present[i]!))
    const env = yield* Effect.either(appEnvConfig(role, simulate))
    const problems = [
      ...(missing.length > 0 ? [`missing required environment: ${missing.join(", ")}`] : []),
      ...(env._tag === "Left" ? [`invalid environment: ${describeConfigError(env.left).join("; ")}`] : [])
    ]
    if (problems.length > 0 || env._tag === "Left") return yield* new StartupError({ message: problems.join("; ") })
    return env.right
  })
