import { createPrivateKey } from "node:crypto"
import { createAppAuth } from "@octokit/auth-app"
import { Octokit } from "@octokit/core"
import { Duration, Effect, Layer, Redacted } from "effect"
import type { EntityType } from "../../src/domain/Entity.ts"
import { Github, GithubConfigError, type GithubOperation, type GithubShape } from "../../src/services/Github.ts"
import { type CallCounter, makeCallCounter } from "./callCounter.ts"
import { makeGithubClient } from "./client.ts"
import type { HeaderMap } from "./statusErrors.ts"
import { type GithubAnswer, type GithubRequest, type GithubTransport, NoAnswer, type TransportAuth } from "./transport.ts"
import { makeWriteSpacing, type WriteSpacingOptions } from "./writeSpacing.ts"

/** One of our two GitHub Apps: its numeric id and its PEM private key (PKCS#1 as GitHub issues it, or PKCS#8). */
export interface GithubAppCredentials {
  readonly appId: number
  readonly privateKey: Redacted.Redacted<string>
}

export interface GithubLiveOptions {
  /** serves `Organization` installations (`GHAPP_ORG_ID`, `GHAPP_ORG_PRIVATE_KEY`) */
  readonly orgApp: GithubAppCredentials
  /** serves `User` installations (`GHAPP_PERSONAL_ID`, `GHAPP_PERSONAL_PRIVATE_KEY`) */
  readonly personalApp: GithubAppCredentials
  /** `GITHUB_API_URL`; for GitHub Enterprise Server it is `https://<host>/api/v3` */
  readonly apiUrl?: string | undefined
  /** per HTTP attempt; the original had none, and one hung connection stalled a whole scheduler cycle */
  readonly requestTimeout?: Duration.DurationInput | undefined
  readonly limits?: {
    /**
     * The longest wait GitHub may ask for (Retry-After, or until the primary budget resets) that we sit out
     * inside a call before retrying. Longer waits fail at once with GithubRateLimited, so the scheduler can go on
     * with other installations instead of holding its cycle. Default 15 s, one scheduler tick.
     */
    readonly maxWaitSeconds?: number | undefined
    /** retries after a rate-limit answer, and (separately) after 5xx answers; default 2 */
    readonly maxRetries?: number | undefined
    /** how long one second of "please wait" lasts, in ms; tests set 1 so nothing really waits. Default 1000 */
    readonly millisPerSecond?: number | undefined
    /**
     * GitHub's secondary limits per identity (`writeSpacing.ts`): each installation's writes one at a time and
     * spaced, and its points per minute. Default on with `defaultWriteSpacing`; tests that do not test it turn it
     * off. Octokit's throttling plugin (its one write a second for the whole process made one
     * organisation's JIT config wait behind another's) is not used.
     */
    readonly spaceWrites?: boolean | undefined
    readonly writeSpacing?: WriteSpacingOptions | undefined
  } | undefined
}

// Our code tells our fetch which operation a request belongs to through this header; the fetch removes it before
// the request leaves, so GitHub never sees it. Counting in fetch (not around `octokit.request`) counts every
// attempt, retries included, because every attempt spends budget.
const operationHeader = "x-riscv-runner-operation"

const apiVersionHeaders = { "x-github-api-version": "2022-11-28" }

const normalisePem = (pem: string) => pem.replace(/\\n/g, "\n").trim()

const checkApp = (label: string, app: GithubAppCredentials) =>
  Effect.try({
    try: () => {
      if (!Number.isSafeInteger(app.appId) || app.appId <= 0) throw new Error("bad id")
      createPrivateKey(normalisePem(Redacted.value(app.privateKey)))
    },
    // The library's message may quote the key; ours names the setting only.
    catch: () =>
      new GithubConfigError({
        message: `the ${label} app's id or private key is not usable (expected a positive id and a PEM RSA key)`
      })
  })

/** Octokit, whose fetch times out each attempt and counts it. */
const makeOctokit = (options: GithubLiveOptions, counter: CallCounter) => {
  const baseUrl = (options.apiUrl ?? "https://api.github.com").replace(/\/+$/, "")
  const timeoutMillis = Duration.toMillis(options.requestTimeout ?? Duration.seconds(30))

  const countingFetch = async (url: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const headers = new Headers(init?.headers)
    const operation = headers.get(operationHeader) as GithubOperation | null
    headers.delete(operationHeader)
    const signal = init?.signal
      ? AbortSignal.any([init.signal, AbortSignal.timeout(timeoutMillis)])
      : AbortSignal.timeout(timeoutMillis)
    try {
      const response = await fetch(url, { ...init, headers, signal })
      if (operation !== null) Effect.runSync(counter.record(operation, response.status))
      return response
    } catch (error) {
      if (operation !== null) Effect.runSync(counter.record(operation, 0))
      throw error
    }
  }

  // Plain @octokit/core. The retry and throttling plugins queue every request through several Bottleneck limiters,
  // whose timer hops cost about 14 ms a request even on an idle process (a warm JIT config took 18 ms instead of
  // 4); their retries, waits and concurrency limit are done in Effect by the transport below instead.
  return new Octokit({
    baseUrl,
    userAgent: "riscv-runner",
    log: { debug: () => {}, info: () => {}, warn: () => {}, error: () => {} },
    request: { fetch: countingFetch }
  })
}

/** The limits of `makeOctokit`'s callers, with their defaults. */
interface RetryLimits {
  readonly maxWaitSeconds: number
  readonly maxRetries: number
  readonly millisPerSecond: number
}

/** Answers that are answers, not hiccups: never retried (429 and 403 are rate limits, handled apart). */
const DO_NOT_RETRY: ReadonlySet<number> = new Set([304, 400, 401, 403, 404, 409, 410, 422, 429, 451])

/** GitHub asked us to wait this many seconds before trying again (a secondary or a primary limit), if it did. */
export const rateLimitWaitSeconds = (answer: GithubAnswer, nowMs: number): number | undefined => {
  if (answer.status !== 403 && answer.status !== 429) return undefined
  const message = String((answer.data as { message?: unknown } | undefined)?.message ?? "")
  if (/\bsecondary rate\b/i.test(message)) return Number(answer.headers["retry-after"]) || 60
  if (answer.headers["x-ratelimit-remaining"] === "0") {
    // one second past the reset, as GitHub advises
    return Math.max(Math.ceil((Number(answer.headers["x-ratelimit-reset"]) * 1000 - nowMs) / 1000) + 1, 0)
  }
  return undefined
}

/**
 * How long to wait before the next attempt, or undefined to stop with this outcome: a rate limit is sat out when
 * GitHub asks for at most `maxWaitSeconds` (longer waits are answered at once, as GithubRateLimited), a 5xx or no
 * answer is tried again after 1, 4, 9 s; each kind at most `maxRetries` times. The counts are the caller's.
 */
export const retryWaitMillis = (
  outcome: GithubAnswer | NoAnswer,
  counts: { readonly limited: number; readonly failed: number },
  limits: RetryLimits,
  nowMs: number
): { readonly ms: number; readonly kind: "limited" | "failed" } | undefined => {
  if (outcome instanceof NoAnswer || (outcome.status >= 400 && !DO_NOT_RETRY.has(outcome.status))) {
    return counts.failed < limits.maxRetries ? { ms: (counts.failed + 1) ** 2 * limits.millisPerSecond, kind: "failed" } : undefined
  }
  const seconds = rateLimitWaitSeconds(outcome, nowMs)
  if (seconds === undefined || counts.limited >= limits.maxRetries || seconds > limits.maxWaitSeconds) return undefined
  return { ms: seconds * limits.millisPerSecond, kind: "limited" }
}

/** GitHub's waits are wall-clock time (shrunk in tests by `millisPerSecond`), not Effect's Clock. */
const wallSleep = (ms: number) => Effect.promise(() => new Promise<void>((resolve) => setTimeout(resolve, ms)))

/** At most this many requests of the process in flight, well inside GitHub's 100 concurrent. */
const MAX_IN_FLIGHT = 10

/** Creating an installation token is the app authenticating (as the throttling plugin counts it), not a write. */
const TOKEN_PATH = /^\/app\/installations\/[^/]+\/access_tokens$/

/** Whose secondary limits a request spends: its installation's, or its app's (a JWT). */
const identityOf = (auth: TransportAuth): string =>
  auth._tag === "installation" ? installationIdentity(auth.installationId) : `app:${auth.app}`
const installationIdentity = (installationId: number) => `installation:${installationId}`

/** The transport on Octokit: app requests carry a fresh JWT, installation requests the token. */
const octokitTransport = (options: GithubLiveOptions, counter: CallCounter): GithubTransport => {
  const octokit = makeOctokit(options, counter)
  const spacing = options.limits?.spaceWrites === false ? undefined : makeWriteSpacing(options.limits?.writeSpacing)
  const limited = <A, E>(request: GithubRequest, effect: Effect.Effect<A, E>) =>
    spacing === undefined
      ? effect
      : spacing.run(identityOf(request.auth), request.method !== "GET" && !TOKEN_PATH.test(request.path), effect)
  const apps = {
    Organization: options.orgApp,
    User: options.personalApp
  } satisfies Record<EntityType, GithubAppCredentials>
  const signer = (app: GithubAppCredentials) =>
    createAppAuth({ appId: app.appId, privateKey: normalisePem(Redacted.value(app.privateKey)) })
  const signers = { Organization: signer(apps.Organization), User: signer(apps.User) }

  const authorization = (auth: TransportAuth) =>
    auth._tag === "installation"
      ? Effect.succeed(`token ${Redacted.value(auth.token)}`)
      : Effect.tryPromise({
        try: () => signers[auth.app]({ type: "app" }),
        catch: () => new NoAnswer({ message: `could not sign a JWT for app ${apps[auth.app].appId}` })
      }).pipe(Effect.map((a) => `bearer ${a.token}`))

  const limits: RetryLimits = {
    maxWaitSeconds: options.limits?.maxWaitSeconds ?? 15,
    maxRetries: options.limits?.maxRetries ?? 2,
    millisPerSecond: options.limits?.millisPerSecond ?? 1000
  }
  const inFlight = Effect.unsafeMakeSemaphore(MAX_IN_FLIGHT)

  /** One attempt: GitHub's answer (Octokit throws for 304 and every error status; those are answers all the same). */
  const attempt = (request: GithubRequest, headers: Record<string, string>) =>
    inFlight.withPermits(1)(Effect.tryPromise({
      try: (signal) =>
        octokit.request({
          method: request.method,
          url: request.path,
          ...request.query,
          ...(request.body === undefined ? {} : { data: request.body }),
          headers,
          request: { signal }
        }),
      catch: (error) => error
    })).pipe(
      Effect.map(({ status, headers, data }): GithubAnswer | NoAnswer => ({ status, headers: headers as HeaderMap, data })),
      Effect.catchAll((failure) => {
        const error = failure as { status?: unknown; response?: GithubAnswer }
        if (error?.response === undefined || typeof error.status !== "number") {
          const what = failure instanceof Error ? `${failure.name}: ${failure.message}` : "request failed"
          return Effect.succeed<GithubAnswer | NoAnswer>(new NoAnswer({ message: what }))
        }
        return Effect.succeed<GithubAnswer | NoAnswer>({ status: error.response.status, headers: error.response.headers, data: error.response.data })
      })
    )

  /** Attempts until an answer stands, sitting out the waits `retryWaitMillis` allows. */
  const attempts = Effect.fnUntraced(function*(request: GithubRequest, headers: Record<string, string>) {
    const counts = { limited: 0, failed: 0 }
    while (true) {
      const outcome = yield* attempt(request, headers)
      const wait = retryWaitMillis(outcome, counts, limits, Date.now())
      if (wait === undefined) return outcome instanceof NoAnswer ? yield* outcome : outcome
      counts[wait.kind] += 1
      yield* wallSleep(wait.ms)
    }
  })

  return {
    // the spacing's own state answers how long the next write would wait; unspaced, the client answers 0
    ...(spacing === undefined ? {} : { writeWait: (installationId: number) => spacing.writeWait(installationIdentity(installationId)) }),
    request: (request) =>
      Effect.flatMap(authorization(request.auth), (authorization) =>
        limited(request, attempts(request, {
          ...apiVersionHeaders,
          ...(request.etag === undefined ? {} : { "if-none-match": request.etag }),
          authorization,
          [operationHeader]: request.operation
        })))
  }
}

const make = (options: GithubLiveOptions): Effect.Effect<GithubShape, GithubConfigError> =>
  Effect.gen(function*() {
    yield* checkApp("org", options.orgApp)
    yield* checkApp("personal", options.personalApp)
    const counter = yield* makeCallCounter
    return yield* makeGithubClient({
      transport: octokitTransport(options, counter),
      counter,
      appIds: { Organization: options.orgApp.appId, User: options.personalApp.appId }
    })
  })

/** The Github service on GitHub's REST API (github.com or GitHub Enterprise Server). */
export const GithubLive = (options: GithubLiveOptions): Layer.Layer<Github, GithubConfigError> =>
  Layer.effect(Github, make(options))
