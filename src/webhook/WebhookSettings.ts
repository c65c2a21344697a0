import { Context, Duration, Layer, Option, type Redacted } from "effect"
import type { RunnerConfig } from "../domain/RunnerConfig.ts"
import { SetupGuard, setupGuardLayer } from "./SetupGuard.ts"
import { DEFAULT_REQUEST_TIMEOUT, DEFAULT_UNVERIFIED_BODY_BUDGET, UnverifiedBodyBudget } from "./requestLimits.ts"

/**
 * What the webhook program needs to know about its deployment. `main.ts` builds it from the environment and the
 * runner config file; tests build it directly. The two secrets stay `Redacted`, so printing the settings (or an
 * error that holds them) shows `<redacted>`.
 */
export interface WebhookSettingsShape {
  /** `GHAPP_WEBHOOK_SECRET`: the HMAC key of `X-Hub-Signature-256` */
  readonly webhookSecret: Redacted.Redacted<string>
  /** `TRACE_API_SECRET`; without it `/trace/*` answers 503 and stays closed */
  readonly traceSecret: Option.Option<Redacted.Redacted<string>>
  readonly runnerConfig: RunnerConfig
  /** prod resolves images to the `latest` channel and may forward staging repositories */
  readonly prod: boolean
  /** `STAGING_URL`: where prod forwards the deliveries of the config's staging repositories */
  readonly stagingUrl: Option.Option<string>
  /** our two GitHub Apps, for the setup pages' links and the trace's wrong-app diagnosis */
  readonly apps: { readonly orgAppId: number; readonly personalAppId: number }
  /** where a person installs each app; the setup pages link to them */
  readonly installUrls: { readonly org: string; readonly personal: string }
  /** bodies above this answer 413; GitHub caps payloads at 25 MiB */
  readonly maxBodyBytes: number
  /** the staging proxy gives up after this and answers 502 */
  readonly stagingTimeout: Duration.Duration
  /**
   * `TRUSTED_PROXY_HOPS`: how many reverse proxies in front of the service append the client's address to
   * `X-Forwarded-For`. 0 (the default) ignores the header and takes the socket's peer as the client.
   */
  readonly trustedProxyHops: number
  /** the setup pages' GitHub look-ups: cached per (app, installation id), rate limited per client address */
  readonly setupPages: SetupPagesLimits
  /**
   * `WEBHOOK_REQUEST_TIMEOUT`: a request (headers and body) must have arrived within this, else 408. Node's
   * server enforces it (`webhookServerOptions`); it is here for the `Retry-After` of a refused body.
   */
  readonly requestTimeout: Duration.Duration
  /**
   * `WEBHOOK_UNVERIFIED_BODY_BUDGET`: bytes held at once, over all requests, for bodies whose signature is not
   * checked yet; a body that would exceed it answers 503. One budget per settings value, so per process.
   */
  readonly unverifiedBodyBudget: UnverifiedBodyBudget
}

export interface SetupPagesLimits {
  /** how long a found or not-found installation is remembered */
  readonly lookupTtl: Duration.Duration
  readonly maxCachedLookups: number
  /** `SETUP_RATE_LIMIT`: requests per minute per client address, 0 for no limit */
  readonly ratePerMinute: number
  /** `SETUP_RATE_BURST`: requests a client may make at once */
  readonly rateBurst: number
  /** the most client addresses tracked; the least recently seen are forgotten first */
  readonly maxTrackedClients: number
}

export const DEFAULT_SETUP_PAGES_LIMITS: SetupPagesLimits = {
  lookupTtl: Duration.minutes(1),
  maxCachedLookups: 10_000,
  ratePerMinute: 10,
  rateBurst: 10,
  maxTrackedClients: 10_000
}

export class WebhookSettings extends Context.Tag("riscv-runner/WebhookSettings")<WebhookSettings, WebhookSettingsShape>() {}

/** GitHub does not send payloads above 25 MiB, so a larger body is not a GitHub delivery. */
export const MAX_BODY_BYTES = 25 * 1024 * 1024

export const DEFAULT_INSTALL_URLS = {
  org: "https://github.com/apps/rise-risc-v-runners/installations/new",
  personal: "https://github.com/apps/rise-risc-v-runners-personal/installations/new"
} as const

export interface WebhookSettingsInput {
  readonly webhookSecret: Redacted.Redacted<string>
  readonly runnerConfig: RunnerConfig
  readonly traceSecret?: Option.Option<Redacted.Redacted<string>> | undefined
  readonly prod?: boolean | undefined
  readonly stagingUrl?: Option.Option<string> | undefined
  readonly apps?: { readonly orgAppId: number; readonly personalAppId: number } | undefined
  readonly installUrls?: { readonly org: string; readonly personal: string } | undefined
  readonly maxBodyBytes?: number | undefined
  readonly stagingTimeout?: Duration.DurationInput | undefined
  readonly trustedProxyHops?: number | undefined
  readonly setupPages?: Partial<SetupPagesLimits> | undefined
  readonly requestTimeout?: Duration.DurationInput | undefined
  readonly unverifiedBodyBudgetBytes?: number | undefined
}

/**
 * Settings with the original's defaults for everything not given (app ids from the runner config). Each call
 * makes a fresh, empty body budget.
 */
export const makeWebhookSettings = (input: WebhookSettingsInput): WebhookSettingsShape => ({
  webhookSecret: input.webhookSecret,
  runnerConfig: input.runnerConfig,
  traceSecret: input.traceSecret ?? Option.none(),
  prod: input.prod ?? false,
  stagingUrl: input.stagingUrl ?? Option.none(),
  apps: input.apps ?? input.runnerConfig.apps,
  installUrls: input.installUrls ?? DEFAULT_INSTALL_URLS,
  maxBodyBytes: input.maxBodyBytes ?? MAX_BODY_BYTES,
  stagingTimeout: Duration.decode(input.stagingTimeout ?? Duration.seconds(10)),
  trustedProxyHops: input.trustedProxyHops ?? 0,
  setupPages: { ...DEFAULT_SETUP_PAGES_LIMITS, ...input.setupPages },
  requestTimeout: Duration.decode(input.requestTimeout ?? DEFAULT_REQUEST_TIMEOUT),
  unverifiedBodyBudget: new UnverifiedBodyBudget(input.unverifiedBodyBudgetBytes ?? DEFAULT_UNVERIFIED_BODY_BUDGET)
})

/**
 * The settings, and what lives as long as they do: the setup pages' look-up cache and rate limiter (built afresh,
 * empty, with each build of the layer).
 */
export const webhookSettingsLayer = (input: WebhookSettingsInput): Layer.Layer<WebhookSettings | SetupGuard> => {
  const settings = makeWebhookSettings(input)
  const limits = settings.setupPages
  return Layer.merge(
    Layer.succeed(WebhookSettings, settings),
    setupGuardLayer({
      lookups: { ttl: limits.lookupTtl, maxEntries: limits.maxCachedLookups },
      rateLimit: { perMinute: limits.ratePerMinute, burst: limits.rateBurst, maxKeys: limits.maxTrackedClients }
    })
  )
}
