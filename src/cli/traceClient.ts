import { Data, Effect } from "effect"
import type { EntityType } from "../domain/Entity.ts"
import { needsPayload } from "../domain/installationHistory.ts"
import type { TraceTarget } from "./traceArgs.ts"

/**
 * The trace CLI's reads: the webhook's trace API (bearer `TRACE_API_SECRET`) for an entity's timeline and the
 * payloads the fold needs, and GitHub's REST API to turn a login into an entity id. The secret and the token go
 * only into request headers, never into an error message.
 */

export class TraceCliError extends Data.TaggedError("TraceCliError")<{ readonly message: string }> {}

export interface TraceClientConfig {
  /** the webhook's base URL, e.g. http://localhost:8080 */
  readonly traceUrl: string
  readonly traceSecret: string
  readonly githubApiUrl: string
  readonly githubToken: string | undefined
}

/** One row of `GET /trace/...` (absent values are left out by the server). */
export interface TimelineEvent {
  readonly id: number
  readonly source: string
  readonly event: string
  readonly outcome: string
  readonly installation_id?: number
  readonly app_id?: number
  readonly entity_type?: EntityType
  readonly entity_id?: number
  readonly entity_name?: string
  readonly received_at: string
  readonly delivery_id?: string
  readonly job_id?: number
  readonly repo_full_name?: string
}

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

const traceGet = (config: TraceClientConfig, path: string, what: string) =>
  getJson(join(config.traceUrl, path), { authorization: `Bearer ${config.traceSecret}` }, what)

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

const eventsOf = (body: unknown, what: string) => {
  const events = (body as { events?: unknown }).events
  return Array.isArray(events) ? Effect.succeed(events as ReadonlyArray<TimelineEvent>) : Effect.fail(new TraceCliError({ message: `${what}: no events list in the answer` }))
}

/** The timeline for the target, oldest first, and the entity id it belongs to (null when no row names it). */
export const loadTimeline = (config: TraceClientConfig, target: TraceTarget) =>
  Effect.gen(function*() {
    const entityId = target.kind === "name" ? yield* resolveLogin(config, target.login) : target.kind === "entity" ? target.id : null
    const path = entityId !== null
      ? `/trace/entity/${entityId}`
      : target.kind === "installation"
      ? `/trace/installation/${(target as { id: number }).id}`
      : `/trace/job/${(target as { id: number }).id}`
    const events = yield* eventsOf(yield* traceGet(config, path, path), path)
    return { entityId: entityId ?? events.find((e) => e.entity_id !== undefined)?.entity_id ?? null, events }
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
      Effect.map(traceGet(config, `/trace/payload/${e.id}`, `payload ${e.id}`), (body) => [e.id, (body as { payload?: unknown }).payload] as const), { concurrency: 8 })
    return new Map(pairs)
  })
