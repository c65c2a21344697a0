import { Effect, Either, LogLevel, type Option, Redacted, Schema } from "effect"
import type { EntityType } from "../../src/domain/Entity.ts"
import {
  type GithubError,
  GithubHttpError,
  GithubNotFound,
  type GithubOperation,
  type GithubTransportError,
  type InstallationRef,
  type RateLimit
} from "../../src/services/Github.ts"
import { leanSpan } from "../../src/services/leanSpan.ts"
import { endpoint } from "./endpoints.ts"
import { makeEtagCache } from "./etagCache.ts"
import { makeRateLimits } from "./rateLimits.ts"
import { errorFromStatus, type HeaderMap, transportError } from "./statusErrors.ts"
import { makeTokenCache } from "./tokenCache.ts"
import type { GithubAnswer, GithubRequest, GithubTransport, TransportAuth } from "./transport.ts"

/*
 * How one call of the client goes, whatever carries it: the installation token (cached 59 minutes, dropped on a
 * 401), the spent-budget guard, the budget an answer reports, the status that is the result and the error for
 * any other, every page of a listing, and conditional polls. `client.ts` builds the service's methods on these.
 */

/** What to send, without whom it is sent for: the client adds the operation, the signature and any ETag. */
export type Endpoint = Pick<GithubRequest, "method" | "path" | "query" | "body">

// built once: a schema made per call is compiled into a parser per call
const TokenAnswer = Schema.Struct({ token: Schema.String })

/**
 * The body's shape, or "no answer we can read" (a transport error: GitHub would not send that). The decoder is
 * made once per `readable` and runs synchronously: the answer is one step, not a parser's chain of effects (a
 * burst decodes hundreds of JIT answers), so build it once where a call is made often.
 */
export const readable = <A, I>(operation: GithubOperation, schema: Schema.Schema<A, I>) => {
  const decode = Schema.decodeUnknownEither(schema)
  return (data: unknown): Effect.Effect<A, GithubTransportError> => {
    const decoded = decode(data)
    return Either.isRight(decoded)
      ? Effect.succeed(decoded.right)
      : Effect.fail(transportError(operation, "the answer did not have the expected shape"))
  }
}

const tokenAnswer = readable("installationToken", TokenAnswer)

/** `owner/name` split for the path; anything else cannot name a repository GitHub knows. */
export const splitRepo = (operation: GithubOperation, fullName: string) => {
  const parts = fullName.split("/")
  const [owner, repo] = parts
  return parts.length === 2 && owner && repo ? Effect.succeed({ owner, repo }) : Effect.fail(
    new GithubNotFound({ operation, message: `${operation}: "${fullName}" is not an owner/name repository` })
  )
}

/** The `rel="next"` address of a Link header, if there is one. */
export const nextLink = (headers: HeaderMap): string | undefined => {
  for (const part of (headers["link"] ?? "").split(",")) {
    const m = /<([^>]+)>\s*;\s*rel="next"/.exec(part)
    if (m?.[1] !== undefined) return m[1]
  }
  return undefined
}

const messageOf = (data: unknown): string => {
  if (typeof data === "string") return data
  const message = (data as { message?: unknown } | undefined)?.message
  return typeof message === "string" ? message : ""
}

/** The answer when its status is one of `statuses`; otherwise the error GitHub's answer means. */
const expectStatus = (operation: GithubOperation, statuses: ReadonlyArray<number>) => (answer: GithubAnswer) => {
  if (statuses.includes(answer.status)) return Effect.succeed(answer)
  if (answer.status === 304) {
    return Effect.fail(
      new GithubHttpError({
        operation,
        status: 304,
        message: `${operation}: GitHub answered 304 to a request that was not conditional`
      })
    )
  }
  if (answer.status >= 400) {
    return Effect.fail(errorFromStatus(operation, answer.status, messageOf(answer.data), answer.headers))
  }
  return Effect.fail(
    new GithubHttpError({
      operation,
      status: answer.status,
      message: `${operation}: GitHub answered ${answer.status}, expected ${statuses.join(" or ")}`
    })
  )
}

export interface ClientCalls {
  readonly installationToken: (ref: InstallationRef) => Effect.Effect<Redacted.Redacted<string>, GithubError>
  /** A call signed with the JWT of the app serving `app`. */
  readonly asApp: (
    operation: GithubOperation,
    app: EntityType,
    endpoint: Endpoint,
    statuses: ReadonlyArray<number>
  ) => Effect.Effect<GithubAnswer, GithubError>
  /** A call with the installation's token: a spent budget fails fast, a 401 drops the token. */
  readonly asInstallation: (
    operation: GithubOperation,
    ref: InstallationRef,
    endpoint: Endpoint,
    statuses: ReadonlyArray<number>
  ) => Effect.Effect<GithubAnswer, GithubError>
  /** Every page of a GET listing: `per_page=100`, then the Link header's `rel="next"` until there is none. */
  readonly listAll: <A>(
    operation: GithubOperation,
    ref: InstallationRef,
    endpoint: Endpoint,
    itemsOf: (data: unknown) => Effect.Effect<ReadonlyArray<A>, GithubError>,
    stopWhen?: (items: ReadonlyArray<A>) => boolean
  ) => Effect.Effect<ReadonlyArray<A>, GithubError>
  /** A GET that sends the ETag of the copy kept under `cacheKey`; a 304 (free) serves that copy. */
  readonly conditionalGet: <A>(
    operation: GithubOperation,
    ref: InstallationRef,
    endpoint: Endpoint,
    cacheKey: string,
    decode: (data: unknown) => Effect.Effect<A, GithubError>
  ) => Effect.Effect<A, GithubError>
  readonly rateLimit: (installationId: number) => Effect.Effect<Option.Option<RateLimit>>
}

export const makeClientCalls = (
  transport: GithubTransport,
  appIds: Readonly<Record<EntityType, number>>
): Effect.Effect<ClientCalls> =>
  Effect.gen(function*() {
    const tokens = yield* makeTokenCache<GithubError>()
    const rateLimits = yield* makeRateLimits
    const etags = yield* makeEtagCache()

    const send = (
      operation: GithubOperation,
      auth: TransportAuth,
      endpoint: Endpoint,
      statuses: ReadonlyArray<number>,
      etag?: string
    ) =>
      // on every call: the budget noted and the status checked in the step that receives the answer
      Effect.matchEffect(transport.request({ ...endpoint, operation, auth, etag }), {
        onFailure: (e) => Effect.fail(transportError(operation, e.message)),
        onSuccess: (answer) => {
          if (auth._tag === "installation") rateLimits.record(auth.installationId, answer.headers)
          return expectStatus(operation, statuses)(answer)
        }
      })

    const appKey = (ref: InstallationRef) => `${ref.installationId}/${appIds[ref.entityType]}`

    const fetchToken = (ref: InstallationRef) =>
      Effect.gen(function*() {
        const answer = yield* send(
          "installationToken",
          { _tag: "app", app: ref.entityType },
          endpoint("installationToken", { installation_id: ref.installationId }),
          [201]
        )
        const body = yield* tokenAnswer(answer.data)
        // one per installation, hundreds in a burst on a fresh start: the annotations only when the line is kept
        yield* Effect.whenLogLevel(
          Effect.logDebug("fetched an installation token").pipe(
            Effect.annotateLogs({ installationId: ref.installationId, appId: appIds[ref.entityType] })
          ),
          LogLevel.Debug
        )
        return Redacted.make(body.token)
      }).pipe(leanSpan("Github.installationToken"))

    // Every authenticated request asks for the token, and nearly always the cache has it: the span is the fetch's
    // alone, so a hit costs no span (a span is about a tenth of a millisecond here, a burst makes a thousand hits).
    const installationToken = (ref: InstallationRef) => tokens.get(appKey(ref), fetchToken(ref))

    const authed = (
      operation: GithubOperation,
      ref: InstallationRef,
      endpoint: Endpoint,
      statuses: ReadonlyArray<number>,
      etag?: string
    ) =>
      // on every call, so one step decides what `guard` and the token cache would: a spent budget fails, a cached
      // token is sent with at once, and only a missing one goes through the cache's load
      Effect.clockWith((clock) => {
        const now = clock.unsafeCurrentTimeMillis()
        const refused = rateLimits.refusal(ref.installationId, operation, now)
        if (refused !== undefined) return Effect.fail(refused)
        const withToken = (token: Redacted.Redacted<string>) =>
          send(operation, { _tag: "installation", installationId: ref.installationId, token }, endpoint, statuses, etag)
        const cached = tokens.peek(appKey(ref), now)
        return cached !== undefined ? withToken(cached) : Effect.flatMap(installationToken(ref), withToken)
      }).pipe(
        Effect.tapError((e) =>
          e._tag === "GithubHttpError" && e.status === 401 ? tokens.invalidate(appKey(ref)) : Effect.void
        )
      )

    const listAll = <A>(
      operation: GithubOperation,
      ref: InstallationRef,
      endpoint: Endpoint,
      itemsOf: (data: unknown) => Effect.Effect<ReadonlyArray<A>, GithubError>,
      stopWhen: (items: ReadonlyArray<A>) => boolean = () => false
    ) =>
      Effect.gen(function*() {
        const all: Array<A> = []
        let answer = yield* authed(operation, ref, { ...endpoint, query: { ...endpoint.query, per_page: 100 } }, [200])
        for (let page = 1;; page++) {
          const items = yield* itemsOf(answer.data)
          all.push(...items)
          const next = nextLink(answer.headers)
          // A listing longer than 1000 pages is a loop in someone's Link header, not a real org.
          if (next === undefined || stopWhen(items) || page >= 1000) return all as ReadonlyArray<A>
          answer = yield* authed(operation, ref, { method: "GET", path: next }, [200])
        }
      })

    const conditionalGet = <A>(
      operation: GithubOperation,
      ref: InstallationRef,
      endpoint: Endpoint,
      cacheKey: string,
      decode: (data: unknown) => Effect.Effect<A, GithubError>
    ) =>
      // every cycle polls up to a hundred of these: plain steps rather than a generator
      Effect.flatMap(etags.get(cacheKey), (kept) =>
        Effect.flatMap(authed(operation, ref, endpoint, kept === undefined ? [200] : [200, 304], kept?.etag), (answer) =>
          answer.status === 304
            ? decode(kept!.data)
            : Effect.tap(decode(answer.data), () => etags.set(cacheKey, answer.headers["etag"], answer.data))))

    return {
      installationToken,
      asApp: (operation, app, endpoint, statuses) => send(operation, { _tag: "app", app }, endpoint, statuses),
      asInstallation: (operation, ref, endpoint, statuses) => authed(operation, ref, endpoint, statuses),
      listAll,
      conditionalGet,
      rateLimit: rateLimits.get
    }
  })
