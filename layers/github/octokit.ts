import { createPrivateKey } from "node:crypto"
import { createAppAuth } from "@octokit/auth-app"
import { Octokit } from "@octokit/core"
import { retry } from "@octokit/plugin-retry"
import { throttling } from "@octokit/plugin-throttling"
import { Data, Duration, Effect, Layer, Option, Redacted, Ref, Schema } from "effect"
import type { EntityType } from "../../src/domain/Entity.ts"
import {
  Github,
  GithubConfigError,
  type GithubError,
  GithubHttpError,
  GithubInstallation,
  GithubJob,
  GithubNotFound,
  type GithubOperation,
  GithubRun,
  GithubRunner,
  type GithubShape,
  type InstallationRef,
  type JitConfigRequest,
  type JitRunner,
  type ListRunnersOptions,
  type RateLimit
} from "../../src/services/Github.ts"
import { makeCallCounter } from "./callCounter.ts"
import { makeRunnerGroupCache } from "./runnerGroupCache.ts"
import { errorFromStatus, guardSpentBudget, type HeaderMap, transportError } from "./statusErrors.ts"
import { makeTokenCache } from "./tokenCache.ts"

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
     * GitHub asks integrations to leave a second between mutating requests; the throttling plugin does that by
     * default. Tests turn it off.
     */
    readonly spaceWrites?: boolean | undefined
  } | undefined
}

// Our code tells our fetch which operation a request belongs to through this header; the fetch removes it before
// the request leaves, so GitHub never sees it. Counting in fetch (not around `octokit.request`) counts every
// attempt, retries included, because every attempt spends budget.
const operationHeader = "x-riscv-runner-operation"

const apiVersionHeaders = { "x-github-api-version": "2022-11-28" }

/** A 304 answer to a conditional GET: the cached body is still current. Internal to this layer. */
class NotModified extends Data.TaggedError("NotModified")<{ readonly operation: GithubOperation }> {}

type Auth =
  | { readonly _tag: "app"; readonly jwt: Redacted.Redacted<string> }
  | { readonly _tag: "installation"; readonly installationId: number; readonly token: Redacted.Redacted<string> }

interface Answer {
  readonly status: number
  readonly headers: HeaderMap
  readonly data: unknown
}

const readable = <A, I>(operation: GithubOperation, schema: Schema.Schema<A, I>) => (data: unknown) =>
  Schema.decodeUnknown(schema)(data).pipe(
    Effect.mapError(() => transportError(operation, "the answer did not have the expected shape"))
  )

/** `owner/name` split for the URL; anything else cannot name a repository GitHub knows. */
const splitRepo = (operation: GithubOperation, fullName: string) => {
  const parts = fullName.split("/")
  const [owner, repo] = parts
  return parts.length === 2 && owner && repo ? Effect.succeed({ owner, repo }) : Effect.fail(
    new GithubNotFound({ operation, message: `${operation}: "${fullName}" is not an owner/name repository` })
  )
}

/** The `rel="next"` address of a Link header, if there is one. */
const nextLink = (headers: HeaderMap): string | undefined => {
  for (const part of (headers["link"] ?? "").split(",")) {
    const m = /<([^>]+)>\s*;\s*rel="next"/.exec(part)
    if (m?.[1] !== undefined) return m[1]
  }
  return undefined
}

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

let instances = 0

const make = (options: GithubLiveOptions): Effect.Effect<GithubShape, GithubConfigError> =>
  Effect.gen(function* () {
    yield* checkApp("org", options.orgApp)
    yield* checkApp("personal", options.personalApp)
    const baseUrl = (options.apiUrl ?? "https://api.github.com").replace(/\/+$/, "")
    const timeoutMillis = Duration.toMillis(options.requestTimeout ?? Duration.seconds(30))
    const maxWaitSeconds = options.limits?.maxWaitSeconds ?? 15
    const maxRetries = options.limits?.maxRetries ?? 2
    const millisPerSecond = options.limits?.millisPerSecond ?? 1000

    const counter = yield* makeCallCounter
    const tokens = yield* makeTokenCache<GithubError>()
    const groups = yield* makeRunnerGroupCache()
    const rateLimits = yield* Ref.make(new Map<number, RateLimit>())
    // ETag and body of the last 200 per conditional URL; bounded, oldest first out.
    const etags = yield* Ref.make(new Map<string, { readonly etag: string; readonly data: unknown }>())
    const maxEtags = 10_000

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

    // Waits GitHub asks for are sat out by the plugins only when short; see `maxWaitSeconds`.
    const shouldWait = (retryAfter: number, _options: unknown, _octokit: unknown, retryCount: number) =>
      retryCount < maxRetries && retryAfter <= maxWaitSeconds
    const Client = Octokit.plugin(retry, throttling)
    const octokit = new Client({
      baseUrl,
      userAgent: "riscv-runner",
      log: { debug: () => {}, info: () => {}, warn: () => {}, error: () => {} },
      request: { fetch: countingFetch },
      retry: {
        retries: maxRetries,
        retryAfterBaseValue: millisPerSecond,
        // 429 is left to the throttling plugin, which reads Retry-After; the rest are answers, not hiccups.
        doNotRetry: [400, 401, 403, 404, 409, 410, 422, 429, 451]
      },
      throttle: {
        // The plugin's limiters are shared by every client in the process and keyed by this id.
        id: `riscv-runner-${++instances}`,
        retryAfterBaseValue: millisPerSecond,
        onRateLimit: shouldWait,
        onSecondaryRateLimit: shouldWait,
        ...(options.limits?.spaceWrites === false ? { write: immediateLimiter } : {})
      }
    })

    const appAuth = {
      Organization: {
        appId: options.orgApp.appId,
        auth: createAppAuth({
          appId: options.orgApp.appId,
          privateKey: normalisePem(Redacted.value(options.orgApp.privateKey))
        })
      },
      User: {
        appId: options.personalApp.appId,
        auth: createAppAuth({
          appId: options.personalApp.appId,
          privateKey: normalisePem(Redacted.value(options.personalApp.privateKey))
        })
      }
    } satisfies Record<EntityType, unknown>

    const appJwt = (operation: GithubOperation, entityType: EntityType) =>
      Effect.tryPromise({
        try: () => appAuth[entityType].auth({ type: "app" }),
        catch: () => transportError(operation, `could not sign a JWT for app ${appAuth[entityType].appId}`)
      }).pipe(Effect.map((a): Auth => ({ _tag: "app", jwt: Redacted.make(a.token) })))

    const noteRateLimit = (auth: Auth, headers: HeaderMap) =>
      Effect.gen(function* () {
        if (auth._tag !== "installation") return
        const limit = Number(headers["x-ratelimit-limit"])
        const remaining = Number(headers["x-ratelimit-remaining"])
        const reset = Number(headers["x-ratelimit-reset"])
        if (!Number.isFinite(limit) || !Number.isFinite(remaining) || !Number.isFinite(reset)) return
        if (headers["x-ratelimit-resource"] !== undefined && headers["x-ratelimit-resource"] !== "core") return
        const used = Number(headers["x-ratelimit-used"])
        const info: RateLimit = {
          limit,
          remaining,
          used: Number.isFinite(used) ? used : limit - remaining,
          resetAt: new Date(reset * 1000)
        }
        yield* Ref.update(rateLimits, (m) => new Map(m).set(auth.installationId, info))
      })

    /** One request (with the plugins' retries inside). Errors are mapped; 304 comes back as NotModified. */
    const send = (
      operation: GithubOperation,
      auth: Auth,
      request: { readonly method: string; readonly url: string; readonly [param: string]: unknown },
      extraHeaders: Record<string, string> = {}
    ): Effect.Effect<Answer, GithubError | NotModified> =>
      Effect.gen(function* () {
        const authorization = auth._tag === "app"
          ? `bearer ${Redacted.value(auth.jwt)}`
          : `token ${Redacted.value(auth.token)}`
        const outcome = yield* Effect.tryPromise({
          try: (signal) =>
            octokit.request({
              ...request,
              headers: { ...apiVersionHeaders, ...extraHeaders, authorization, [operationHeader]: operation },
              request: { signal }
            }),
          catch: (error) => error
        }).pipe(Effect.either)
        if (outcome._tag === "Right") {
          const answer: Answer = {
            status: outcome.right.status,
            headers: outcome.right.headers as HeaderMap,
            data: outcome.right.data
          }
          yield* noteRateLimit(auth, answer.headers)
          return answer
        }
        const error = outcome.left as {
          status?: unknown
          response?: { status: number; headers: HeaderMap; data: unknown }
        }
        const response = error?.response
        // No response means the request never got an answer (refused, reset, timed out, aborted).
        if (response === undefined || typeof error.status !== "number") {
          const what = error instanceof Error ? `${error.name}: ${error.message}` : "request failed"
          return yield* transportError(operation, what)
        }
        yield* noteRateLimit(auth, response.headers)
        if (response.status === 304) return yield* new NotModified({ operation })
        const data = response.data as { message?: unknown } | string | undefined
        const githubMessage = typeof data === "string" ? data : typeof data?.message === "string" ? data.message : ""
        return yield* errorFromStatus(operation, response.status, githubMessage, response.headers)
      })

    const expect = (operation: GithubOperation, statuses: ReadonlyArray<number>) => (answer: Answer) =>
      statuses.includes(answer.status) ? Effect.succeed(answer) : Effect.fail(
        new GithubHttpError({
          operation,
          status: answer.status,
          message: `${operation}: GitHub answered ${answer.status}, expected ${statuses.join(" or ")}`
        })
      )

    const appKey = (ref: InstallationRef) => `${ref.installationId}/${appAuth[ref.entityType].appId}`

    const fetchToken = (ref: InstallationRef) =>
      Effect.gen(function* () {
        const auth = yield* appJwt("installationToken", ref.entityType)
        const answer = yield* send("installationToken", auth, {
          method: "POST",
          url: "/app/installations/{installation_id}/access_tokens",
          installation_id: ref.installationId
        }).pipe(
          Effect.catchTag("NotModified", (e) => Effect.fail(notModifiedUnexpected(e.operation))),
          Effect.flatMap(expect("installationToken", [201]))
        )
        const body = yield* readable("installationToken", Schema.Struct({ token: Schema.String }))(answer.data)
        yield* Effect.logDebug("fetched an installation token").pipe(
          Effect.annotateLogs({ installationId: ref.installationId, appId: appAuth[ref.entityType].appId })
        )
        return Redacted.make(body.token)
      })

    const installationToken = Effect.fn("Github.installationToken")(function* (ref: InstallationRef) {
      return yield* tokens.get(appKey(ref), fetchToken(ref))
    })

    /** Sends with the installation's token; a 401 means the token was revoked, so it is forgotten. */
    const authed = (
      operation: GithubOperation,
      ref: InstallationRef,
      request: { readonly method: string; readonly url: string; readonly [param: string]: unknown },
      extraHeaders?: Record<string, string>
    ) =>
      Effect.gen(function* () {
        yield* guardSpentBudget(rateLimits, ref.installationId, operation)
        const token = yield* installationToken(ref)
        return yield* send(
          operation,
          { _tag: "installation", installationId: ref.installationId, token },
          request,
          extraHeaders
        ).pipe(
          Effect.tapError((
            e
          ) => (e._tag === "GithubHttpError" && e.status === 401 ? tokens.invalidate(appKey(ref)) : Effect.void))
        )
      })

    const plain = (
      operation: GithubOperation,
      ref: InstallationRef,
      request: { readonly method: string; readonly url: string; readonly [param: string]: unknown },
      statuses: ReadonlyArray<number>
    ) =>
      authed(operation, ref, request).pipe(
        Effect.catchTag("NotModified", (e) => Effect.fail(notModifiedUnexpected(e.operation))),
        Effect.flatMap(expect(operation, statuses))
      )

    /** Every page of a listing: `per_page=100`, then the Link header's `rel="next"` until there is none. */
    const listAll = <A>(
      operation: GithubOperation,
      ref: InstallationRef,
      request: { readonly method: string; readonly url: string; readonly [param: string]: unknown },
      itemsOf: (data: unknown) => Effect.Effect<ReadonlyArray<A>, GithubError>,
      stopWhen: (items: ReadonlyArray<A>) => boolean = () => false
    ) =>
      Effect.gen(function* () {
        const all: Array<A> = []
        let answer = yield* plain(operation, ref, { ...request, per_page: 100 }, [200])
        for (let page = 1;; page++) {
          const items = yield* itemsOf(answer.data)
          all.push(...items)
          const next = nextLink(answer.headers)
          // A listing longer than 1000 pages is a loop in someone's Link header, not a real org.
          if (next === undefined || stopWhen(items) || page >= 1000) return all
          answer = yield* plain(operation, ref, { method: "GET", url: next }, [200])
        }
      })

    const runnerGroupsOf = (data: unknown) =>
      readable(
        "listRunnerGroups",
        Schema.Struct({ runner_groups: Schema.Array(Schema.Struct({ id: Schema.Number, name: Schema.String })) })
      )(data).pipe(
        Effect.map((d) => d.runner_groups)
      )

    const findGroup = (ref: InstallationRef, org: string, groupName: string) =>
      listAll(
        "listRunnerGroups",
        ref,
        { method: "GET", url: "/orgs/{org}/actions/runner-groups", org },
        runnerGroupsOf,
        (items) => items.some((g) => g.name === groupName)
      ).pipe(Effect.map((all) => all.find((g) => g.name === groupName)?.id))

    const ensureRunnerGroup = Effect.fn("Github.ensureRunnerGroup")(
      function* (ref: InstallationRef, org: string, groupName: string) {
        const cached = yield* groups.get(org, groupName)
        if (cached !== undefined) return cached
        const found = yield* findGroup(ref, org, groupName)
        if (found !== undefined) {
          yield* groups.set(org, groupName, found)
          return found
        }
        const created = yield* plain(
          "createRunnerGroup",
          ref,
          {
            method: "POST",
            url: "/orgs/{org}/actions/runner-groups",
            org,
            name: groupName,
            visibility: "all",
            allows_public_repositories: true
          },
          [201]
        ).pipe(
          Effect.flatMap((a) => readable("createRunnerGroup", Schema.Struct({ id: Schema.Number }))(a.data)),
          Effect.map((d) => d.id),
          // Another scheduler created it between our listing and our create: list again.
          Effect.catchIf(
            (e): e is GithubHttpError => e._tag === "GithubHttpError" && (e.status === 409 || e.status === 422),
            (e) =>
              findGroup(ref, org, groupName).pipe(
                Effect.flatMap((id) => (id === undefined ? Effect.fail(e) : Effect.succeed(id)))
              )
          )
        )
        yield* groups.set(org, groupName, created)
        return created
      }
    )

    const JitAnswer = Schema.Struct({ runner: Schema.Struct({ id: Schema.Number }), encoded_jit_config: Schema.String })
    const jitOf = (operation: GithubOperation) => (answer: Answer) =>
      readable(operation, JitAnswer)(answer.data).pipe(
        Effect.map((d): JitRunner => ({ runnerId: d.runner.id, jitConfig: Redacted.make(d.encoded_jit_config) }))
      )

    const createJitConfigOrg = Effect.fn("Github.createJitConfigOrg")(function* (
      ref: InstallationRef,
      org: string,
      groupId: number,
      request: JitConfigRequest
    ) {
      const answer = yield* plain(
        "createJitConfigOrg",
        ref,
        {
          method: "POST",
          url: "/orgs/{org}/actions/runners/generate-jitconfig",
          org,
          name: request.runnerName,
          runner_group_id: groupId,
          labels: [...request.labels],
          work_folder: "../../../work"
        },
        [201]
      ).pipe(Effect.tapErrorTag("GithubNotFound", () => groups.forgetId(org, groupId)))
      return yield* jitOf("createJitConfigOrg")(answer)
    })

    const createJitConfigRepo = Effect.fn("Github.createJitConfigRepo")(function* (
      ref: InstallationRef,
      repoFullName: string,
      request: JitConfigRequest
    ) {
      const { owner, repo } = yield* splitRepo("createJitConfigRepo", repoFullName)
      const answer = yield* plain(
        "createJitConfigRepo",
        ref,
        {
          method: "POST",
          url: "/repos/{owner}/{repo}/actions/runners/generate-jitconfig",
          owner,
          repo,
          name: request.runnerName,
          // Repository runners live in the default group, whose id is always 1.
          runner_group_id: 1,
          labels: [...request.labels],
          work_folder: "../../../work"
        },
        [201]
      )
      return yield* jitOf("createJitConfigRepo")(answer)
    })

    const runnersOf = (operation: GithubOperation, namePrefix: string | undefined) => (data: unknown) =>
      readable(operation, Schema.Struct({ runners: Schema.Array(GithubRunner) }))(data).pipe(
        Effect.map((d) => d.runners),
        Effect.map((rs) => (namePrefix === undefined ? rs : rs.filter((r) => r.name.startsWith(namePrefix))))
      )

    const listRunnersOrgGroup = Effect.fn("Github.listRunnersOrgGroup")(function* (
      ref: InstallationRef,
      org: string,
      groupId: number,
      options?: ListRunnersOptions
    ) {
      return yield* listAll(
        "listRunnersOrgGroup",
        ref,
        {
          method: "GET",
          url: "/orgs/{org}/actions/runner-groups/{runner_group_id}/runners",
          org,
          runner_group_id: groupId
        },
        runnersOf("listRunnersOrgGroup", options?.namePrefix)
      ).pipe(Effect.tapErrorTag("GithubNotFound", () => groups.forgetId(org, groupId)))
    })

    const listRunnersRepo = Effect.fn("Github.listRunnersRepo")(function* (
      ref: InstallationRef,
      repoFullName: string,
      options?: ListRunnersOptions
    ) {
      const { owner, repo } = yield* splitRepo("listRunnersRepo", repoFullName)
      return yield* listAll(
        "listRunnersRepo",
        ref,
        { method: "GET", url: "/repos/{owner}/{repo}/actions/runners", owner, repo },
        runnersOf("listRunnersRepo", options?.namePrefix)
      )
    })

    // 204 removed; 404 already gone, which is what we wanted.
    const deleted = (effect: Effect.Effect<Answer, GithubError>) =>
      effect.pipe(Effect.asVoid, Effect.catchTag("GithubNotFound", () => Effect.void))

    const deleteRunnerOrg = Effect.fn("Github.deleteRunnerOrg")(
      function* (ref: InstallationRef, org: string, runnerId: number) {
        yield* deleted(
          plain("deleteRunnerOrg", ref, {
            method: "DELETE",
            url: "/orgs/{org}/actions/runners/{runner_id}",
            org,
            runner_id: runnerId
          }, [204])
        )
      }
    )

    const deleteRunnerRepo = Effect.fn("Github.deleteRunnerRepo")(
      function* (ref: InstallationRef, repoFullName: string, runnerId: number) {
        const { owner, repo } = yield* splitRepo("deleteRunnerRepo", repoFullName)
        yield* deleted(
          plain("deleteRunnerRepo", ref, {
            method: "DELETE",
            url: "/repos/{owner}/{repo}/actions/runners/{runner_id}",
            owner,
            repo,
            runner_id: runnerId
          }, [204])
        )
      }
    )

    /**
     * A GET that sends the ETag of our last copy. GitHub answers 304 without spending budget when nothing
     * changed, and we serve the body we kept.
     */
    const conditionalGet = <A>(
      operation: GithubOperation,
      ref: InstallationRef,
      request: { readonly method: string; readonly url: string; readonly [param: string]: unknown },
      cacheKey: string,
      decode: (data: unknown) => Effect.Effect<A, GithubError>
    ) =>
      Effect.gen(function* () {
        const kept = (yield* Ref.get(etags)).get(cacheKey)
        const answer = yield* authed(operation, ref, request, kept === undefined ? {} : { "if-none-match": kept.etag })
          .pipe(
            Effect.flatMap(expect(operation, [200])),
            Effect.map((a) => Option.some(a)),
            Effect.catchTag("NotModified", (e) => (kept === undefined
              ? Effect.fail(notModifiedUnexpected(e.operation))
              : Effect.succeed(Option.none<Answer>())))
          )
        if (Option.isNone(answer)) return yield* decode(kept!.data)
        const value = yield* decode(answer.value.data)
        const etag = answer.value.headers["etag"]
        yield* Ref.update(etags, (m) => {
          const next = new Map(m)
          next.delete(cacheKey)
          if (etag !== undefined) {
            next.set(cacheKey, { etag, data: answer.value.data })
          }
          for (const k of next.keys()) {
            if (next.size <= maxEtags) {
              break
            }
            next.delete(k)
          }
          return next
        })
        return value
      })

    const getJob = Effect.fn("Github.getJob")(function* (ref: InstallationRef, repoFullName: string, jobId: number) {
      const { owner, repo } = yield* splitRepo("getJob", repoFullName)
      return yield* conditionalGet(
        "getJob",
        ref,
        { method: "GET", url: "/repos/{owner}/{repo}/actions/jobs/{job_id}", owner, repo, job_id: jobId },
        `job ${ref.installationId} ${repoFullName.toLowerCase()} ${jobId}`,
        readable("getJob", GithubJob)
      )
    })

    const getRun = Effect.fn("Github.getRun")(function* (ref: InstallationRef, repoFullName: string, runId: number) {
      const { owner, repo } = yield* splitRepo("getRun", repoFullName)
      return yield* conditionalGet(
        "getRun",
        ref,
        { method: "GET", url: "/repos/{owner}/{repo}/actions/runs/{run_id}", owner, repo, run_id: runId },
        `run ${ref.installationId} ${repoFullName.toLowerCase()} ${runId}`,
        readable("getRun", GithubRun)
      )
    })

    const getInstallation = Effect.fn("Github.getInstallation")(
      function* (installationId: number, entityType: EntityType) {
        const auth = yield* appJwt("getInstallation", entityType)
        const answer = yield* send("getInstallation", auth, {
          method: "GET",
          url: "/app/installations/{installation_id}",
          installation_id: installationId
        }).pipe(
          Effect.catchTag("NotModified", (e) =>
            Effect.fail(notModifiedUnexpected(e.operation))),
          Effect.flatMap(expect("getInstallation", [200]))
        )
        return yield* readable("getInstallation", GithubInstallation)(answer.data)
      }
    )

    return Github.of({
      installationToken,
      getInstallation,
      ensureRunnerGroup,
      createJitConfigOrg,
      createJitConfigRepo,
      listRunnersOrgGroup,
      listRunnersRepo,
      deleteRunnerOrg,
      deleteRunnerRepo,
      getJob,
      getRun,
      rateLimit: (installationId) =>
        Ref.get(rateLimits).pipe(Effect.map((m) => Option.fromNullable(m.get(installationId)))),
      callCounts: counter.snapshot
    })
  })

const notModifiedUnexpected = (operation: GithubOperation) =>
  new GithubHttpError({
    operation,
    status: 304,
    message: `${operation}: GitHub answered 304 to a request that was not conditional`
  })

/**
 * Stands in for the throttling plugin's write limiter when writes need no spacing (tests). The plugin only ever
 * calls `key(id).schedule(options, fn)` on it.
 */
const immediateLimiter = {
  key: () => ({ schedule: (_options: unknown, fn: () => Promise<unknown>) => fn() })
} as never

/** The Github service on GitHub's REST API (github.com or GitHub Enterprise Server). */
export const GithubLive = (options: GithubLiveOptions): Layer.Layer<Github, GithubConfigError> =>
  Layer.effect(Github, make(options))
