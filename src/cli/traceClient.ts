import { FetchHttpClient, HttpApiClient, HttpClient, HttpClientRequest } from "@effect/platform"
import { Data, Effect, Schema } from "effect"
import { needsPayload } from "../domain/installationHistory.ts"
import { TraceApi, TraceEventJson } from "../webhook/traceApi.ts"
import type { TraceTarget } from "./traceArgs.ts"

/**
 * The trace CLI's reads: the webhook's trace API (bearer `TRACE_API_SECRET`) for an entity's timeline and the
 * payloads the fold needs, through `HttpApiClient` on the API the server serves (`traceApi.ts`), and GitHub's
 * REST API to turn a login into an entity id. The secret and the token go
 * only into request headers, never into an error message.
 */

export class TraceCliError extends Data.TaggedError("TraceCliError")<{
  readonly message: string
  /** the trace API answered 404 */
  readonly notFound?: boolean
}> {}

export interface TraceClientConfig {
  /** the webhook's base URL, e.g. http://localhost:8080 */
  readonly traceUrl: string
  readonly traceSecret: string
  readonly githubApiUrl: string
  readonly githubToken: string | undefined
}

/** One row of `GET /trace/...` as the server sends it (absent values are left out). */
export type TimelineEvent = typeof TraceEventJson.Encoded

const join = (base: string, path: string) => base.replace(/\/+$/, "") + path

const getJson = (url: string, headers: Record<string, string>, what: string) =>
  Effect.tryPromise({
    try: async () => {
      const res = await fetch(url, { headers: { accept: "application/json", ...headers } })
      const text = await res.text()
      return { status: res.status, text }
    },
    catch: (e) => new TraceCliError({ message: `${what}: cannot reach ${new URL(url).origin} (${e instanceof Error ? e.message : String(e)})` })
  }).pipe(
    Effect.flatMap(({ status, text }) => {
      if (status === 401) return Effect.fail(new TraceCliError({ message: `${what}: 401, check TRACE_API_SECRET` }))
      if (status === 503 && text.includes("disabled")) return Effect.fail(new TraceCliError({ message: `${what}: the trace API is disabled on the server (TRACE_API_SECRET unset there)` }))
      if (status < 200 || status > 299) return Effect.fail(new TraceCliError({ message: `${what}: HTTP ${status} ${text.trim().slice(0, 200)}` }))
      return Effect.try({ try: () => JSON.parse(text) as unknown, catch: () => new TraceCliError({ message: `${what}: the answer is not JSON` }) })
    })
  )

/** What a failed trace call says, by what the server answered. */
const traceFailure = (what: string, origin: string) => (error: unknown): TraceCliError => {
  const e = error as { readonly _tag?: string; readonly message?: string; readonly reason?: string; readonly response?: { readonly status: number } }
  switch (e._tag) {
    case "Unauthorized":
      return new TraceCliError({ message: `${what}: 401, check TRACE_API_SECRET` })
    case "Unavailable":
      return new TraceCliError({
        message: e.message?.includes("disabled") === true
          ? `${what}: the trace API is disabled on the server (TRACE_API_SECRET unset there)`
          : `${what}: HTTP 503 ${e.message ?? ""}`.trim()
      })
    case "NotFound":
      return new TraceCliError({ message: `${what}: HTTP 404 ${e.message ?? ""}`.trim(), notFound: true })
    case "BadRequest":
      return new TraceCliError({ message: `${what}: HTTP 400 ${e.message ?? ""}`.trim() })
    case "InternalError":
      return new TraceCliError({ message: `${what}: HTTP 500 ${e.message ?? ""}`.trim() })
    case "RequestError":
      return new TraceCliError({ message: `${what}: cannot reach ${origin} (${e.message ?? e.reason ?? "no answer"})` })
    case "ResponseError":
      return new TraceCliError({ message: `${what}: HTTP ${e.response?.status ?? "?"}` })
    case "ParseError":
      return new TraceCliError({ message: `${what}: the answer is not what the trace API serves` })
    default:
      return new TraceCliError({ message: `${what}: ${e.message ?? String(error)}` })
  }
}

/** A call of the trace API through its client: the bearer token on every request, failures as CLI errors. */
const makeClient = (config: TraceClientConfig) =>
  HttpApiClient.make(TraceApi, {
    baseUrl: config.traceUrl.replace(/\/+$/, ""),
    transformClient: HttpClient.mapRequest(HttpClientRequest.bearerToken(config.traceSecret))
  })
type TraceGroupClient = Effect.Effect.Success<ReturnType<typeof makeClient>>["trace"]

const traceCall = <A, E>(config: TraceClientConfig, what: string, call: (client: TraceGroupClient) => Effect.Effect<A, E>) =>
  Effect.flatMap(makeClient(config), (client) => call(client.trace)).pipe(
    Effect.mapError(traceFailure(what, safeOrigin(config.traceUrl))),
    Effect.provide(FetchHttpClient.layer)
  )

const safeOrigin = (url: string) => {
  try {
    return new URL(url).origin
  } catch {
    return url
  }
}

/** Rows as the server sent them: the client decodes them with the API's schema, the report reads the wire shape. */
const asSent = Schema.encodeSync(Schema.Array(TraceEventJson))

/** `--entity-name`: the account's numeric id, which is the entity id, from `GET /users/{login}`. */
export const resolveLogin = (config: TraceClientConfig, login: string) =>
  Effect.flatMap(
    getJson(
      join(config.githubApiUrl, `/users/${encodeURIComponent(login)}`),
      {
        "x-github-api-version": "2022-11-28",
        "user-agent": "riscv-runner-trace",
        ...(config.githubToken === undefined ? {} : { authorization: `Bearer ${config.githubToken}` })
      },
      `GitHub user ${login}`
    ),
    (body) => {
      const id = (body as { id?: unknown }).id
      return typeof id === "number" ? Effect.succeed(id) : Effect.fail(new TraceCliError({ message: `GitHub user ${login}: no id in the answer` }))
    }
  )

/** What a job the trace API does not know means, and where to look next. */
export const unknownJobText = (jobId: number) =>
  [
    `no delivery for job ${jobId} was recorded (the trace API has no job ${jobId}). That means one of:`,
    `  - its queued delivery never arrived or failed: see the app's Advanced -> Recent deliveries on GitHub (the`,
    `    scheduler's redelivery pass, SCHEDULER_REDELIVERY_INTERVAL, sends a failed one again; so does Redeliver);`,
    `  - no rule of the runner config matches its labels (they must equal a rule's labels, e.g. only`,
    `    ubuntu-24.04-riscv): such deliveries are in the entity's trace as ignored_no_label rows;`,
    `  - its entity or sender is banned in the runner config (answered "Ignored: ... is banned.", nothing stored).`,
    `  Look at the entity's trace: trace --job-id ${jobId} --repo OWNER/NAME, or trace --entity-name OWNER.`
  ].join("\n")

/** `--repo owner/name`: the entity is the repository's owner, whose account id `GET /users/{owner}` gives. */
const resolveRepo = (config: TraceClientConfig, repo: string) => resolveLogin(config, repo.slice(0, repo.indexOf("/")))

const entityTimeline = (config: TraceClientConfig, entityId: number) =>
  traceCall(config, `/trace/entity/${entityId}`, (trace) => trace.entity({ path: { entity_id: entityId } })).pipe(
    Effect.map((answer) => ({ entityId, events: asSent(answer.events), note: undefined as string | undefined }))
  )

/**
 * The timeline for the target, oldest first, and the entity id it belongs to (null when no row names it). For a
 * job that was never stored, the entity of `repo` when given (with a note saying so), else a failure that says
 * what an unknown job means.
 */
export const loadTimeline = (config: TraceClientConfig, target: TraceTarget, repo?: string) =>
  Effect.gen(function*() {
    if (target.kind === "name") return yield* entityTimeline(config, yield* resolveLogin(config, target.login))
    if (target.kind === "repo") return yield* entityTimeline(config, yield* resolveRepo(config, target.repo))
    if (target.kind === "entity") return yield* entityTimeline(config, target.id)
    const id = target.id
    const path = target.kind === "installation" ? `/trace/installation/${id}` : `/trace/job/${id}`
    const answer = yield* traceCall(config, path, (trace) =>
      target.kind === "installation" ? trace.installation({ path: { installation_id: id } }) : trace.job({ path: { job_id: id } })).pipe(
        Effect.catchIf((e) => target.kind === "job" && e.notFound === true, () => Effect.succeed(undefined))
      )
    if (answer === undefined) {
      if (repo === undefined) return yield* new TraceCliError({ message: unknownJobText(id), notFound: true })
      const found = yield* entityTimeline(config, yield* resolveRepo(config, repo))
      return { ...found, note: `no delivery for job ${id} was recorded; showing the trace of ${repo}'s owner (entity ${found.entityId})` }
    }
    const events = asSent(answer.events)
    return { entityId: events.find((e) => e.entity_id !== undefined)?.entity_id ?? null, events, note: undefined as string | undefined }
  })

/** A broken installation writes an auth failure every cycle: only the newest ones' payloads are read. */
const AUTH_PAYLOADS = 100

/** The payloads the fold needs (installation rows and the newest auth failures), by event id. */
export const loadPayloads = (config: TraceClientConfig, events: ReadonlyArray<TimelineEvent>) =>
  Effect.gen(function*() {
    const auth = events.filter((e) => e.event.startsWith("auth_attempt."))
    const skip = new Set(auth.slice(0, Math.max(0, auth.length - AUTH_PAYLOADS)).map((e) => e.id))
    const wanted = events.filter((e) => needsPayload(e.event) && !skip.has(e.id))
    const pairs = yield* Effect.forEach(wanted, (e) =>
      Effect.map(traceCall(config, `payload ${e.id}`, (trace) => trace.payload({ path: { event_id: e.id } })), (body) => [e.id, body.payload] as const), { concurrency: 8 })
    return new Map(pairs)
  })
