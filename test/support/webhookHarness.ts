import { HttpServer } from "@effect/platform"
import { NodeHttpClient } from "@effect/platform-node"
import { Context, Effect, Exit, Layer, Logger, Option, Redacted, Ref, Scope } from "effect"
import { createHmac } from "node:crypto"
import { afterAll, beforeAll } from "vitest"
import { DbMemory } from "../../layers/db/memory.ts"
import { NodeHttpServerWithFrontDoor } from "../../layers/http/nodeFrontDoor.ts"
import { DbPostgres } from "../../layers/db/postgres.ts"
import type { NewInstallationEvent } from "../../src/domain/InstallationEvent.ts"
import { defaultRunnerConfig } from "../../src/domain/RunnerConfig.ts"
import { Db, DbError, type DbShape } from "../../src/services/Db.ts"
import { WebhookServer } from "../../src/webhook/server.ts"
import { type WebhookSettingsInput, webhookSettingsLayer } from "../../src/webhook/WebhookSettings.ts"
import { freshDatabase, query } from "./postgres.ts"

/** The secrets of every webhook test. Tests scan rows, bodies and logs for them. */
export const TEST_WEBHOOK_SECRET = "whsec-test-7f3a9c"
export const TEST_TRACE_SECRET = "trace-test-secret-51be"

/** A Db implementation for one case: a fresh, empty store each time the layer is built. */
export interface Backend {
  readonly name: string
  readonly db: Layer.Layer<Db>
  /** PostgreSQL only: plain SQL on the case's database, for assertions and fault injection under the service */
  readonly sql?: <R extends Record<string, unknown>>(text: string, params?: Array<unknown>) => Promise<Array<R>>
}

export const memoryBackend: Backend = { name: "memory", db: DbMemory }

/**
 * PostgreSQL: one migrated database per test file (created in `beforeAll`), emptied before every case. Call at
 * the top level of a test file or describe block.
 */
export const postgresBackend = (label: string): Backend => {
  const scope = Effect.runSync(Scope.make())
  let url = ""
  let context: Context.Context<Db> | undefined
  beforeAll(async () => {
    url = (await Effect.runPromise(freshDatabase(label).pipe(Scope.extend(scope)))).url
    context = await Effect.runPromise(Layer.buildWithScope(DbPostgres({ url: Redacted.make(url), schema: "staging", migrate: true }), scope))
  })
  afterAll(() => Effect.runPromise(Scope.close(scope, Exit.void)))
  const sql = <R extends Record<string, unknown>>(text: string, params: Array<unknown> = []) => query<R>(url, text, params)
  return {
    name: "postgres",
    sql,
    db: Layer.effectContext(
      Effect.promise(async () => {
        await sql("TRUNCATE staging.jobs, staging.workers, staging.installation_events RESTART IDENTITY")
        return context!
      })
    )
  }
}

/** A row the webhook wrote, as it handed it to `Db.addInstallationEvent`, with the id it got. */
export interface WrittenRow extends NewInstallationEvent {
  readonly id: number
}

export interface Faults {
  /** `addInstallationEvent` fails (the audit-log write) */
  readonly failEventWrites: Ref.Ref<boolean>
  /** `addJob` and the job transitions fail */
  readonly failJobWrites: Ref.Ref<boolean>
  /** `storeDelivery` stores, then answers with no value at all: a broken layer, to show how the caller copes */
  readonly garbleStoreAnswer: Ref.Ref<boolean>
}

/**
 * Wraps a Db so that the test sees every audit row the webhook wrote (whatever the implementation), and can make
 * writes fail on demand.
 */
const observedDb = (inner: DbShape, written: Ref.Ref<ReadonlyArray<WrittenRow>>, faults: Faults): DbShape => {
  const failing = <A>(flag: Ref.Ref<boolean>, what: string, effect: Effect.Effect<A, DbError>) =>
    Effect.flatMap(Ref.get(flag), (fail) => (fail ? Effect.fail(new DbError({ message: `${what}: injected failure` })) : effect))
  return {
    ...inner,
    addInstallationEvent: (event) =>
      failing(faults.failEventWrites, "addInstallationEvent", inner.addInstallationEvent(event)).pipe(
        Effect.tap((id) => Ref.update(written, (rows) => [...rows, { ...event, id }]))
      ),
    // One statement for both rows: either fault fails the whole delivery, and nothing is stored.
    storeDelivery: (w) =>
      Effect.gen(function*() {
        const eventFault = yield* Ref.get(faults.failEventWrites)
        const jobFault = w.job !== undefined && (yield* Ref.get(faults.failJobWrites))
        if (eventFault || jobFault) return yield* new DbError({ message: "storeDelivery: injected failure" })
        const stored = yield* inner.storeDelivery(w)
        const outcome = w.job !== undefined && !stored.jobCreated ? w.job.outcomeIfExists : w.event.outcome
        yield* Ref.update(written, (rows) => [...rows, { ...w.event, outcome, id: stored.eventId }])
        return (yield* Ref.get(faults.garbleStoreAnswer)) ? (undefined as unknown as typeof stored) : stored
      }),
    storeTransition: (w) =>
      Effect.gen(function*() {
        if ((yield* Ref.get(faults.failEventWrites)) || (yield* Ref.get(faults.failJobWrites))) {
          return yield* new DbError({ message: "storeTransition: injected failure" })
        }
        const moved = yield* inner.storeTransition(w)
        // the store does not say the row's id; the tests read outcomes, not these ids
        if (moved.found) yield* Ref.update(written, (rows) => [...rows, { ...w.event, id: -1 }])
        return moved
      }),
    addJob: (job) => failing(faults.failJobWrites, "addJob", inner.addJob(job)),
    markJobRunning: (id, runner) => failing(faults.failJobWrites, "markJobRunning", inner.markJobRunning(id, runner)),
    markJobCompleted: (id, runner) => failing(faults.failJobWrites, "markJobCompleted", inner.markJobCompleted(id, runner))
  }
}

export interface Response {
  readonly status: number
  readonly text: string
  readonly headers: Headers
}

export interface DeliverOptions {
  readonly appId?: string | null
  readonly deliveryId?: string | null
  /** a signature to send instead of the right one; null sends none */
  readonly signature?: string | null
  readonly contentType?: string
  /** send the body as GitHub's form encoding, `payload=<json>` */
  readonly form?: boolean
  readonly headers?: Record<string, string>
  readonly secret?: string
}

export interface WebhookHarness {
  readonly baseUrl: string
  readonly db: DbShape
  readonly faults: Faults
  /** every audit row written so far, oldest first */
  readonly rows: Effect.Effect<ReadonlyArray<WrittenRow>>
  /** every log line the server wrote so far (logfmt), oldest first */
  readonly logs: Effect.Effect<ReadonlyArray<string>>
  /** signs and POSTs a delivery, as GitHub would */
  readonly deliver: (event: string | null, payload: unknown, options?: DeliverOptions) => Effect.Effect<Response>
  readonly request: (path: string, init?: RequestInit) => Effect.Effect<Response>
}

export const APP_ID = 2167633

/** What GitHub puts in `X-Hub-Signature-256`, computed here independently of the code under test. */
export const githubSignature = (secret: string, body: string | Uint8Array): string =>
  `sha256=${createHmac("sha256", secret).update(body).digest("hex")}`
let deliveries = 0

/** `X-GitHub-Delivery`-like ids, unique per process. */
export const nextDeliveryId = (): string => `00000000-0000-4000-8000-${String(++deliveries).padStart(12, "0")}`

export interface HarnessOptions {
  readonly backend: Backend
  readonly settings?: Partial<WebhookSettingsInput>
  /** extra services for the server, e.g. a Github for the setup pages */
  readonly services?: Layer.Layer<any>
}

const fetchResponse = (url: string, init?: RequestInit) =>
  Effect.promise(async (): Promise<Response> => {
    const res = await fetch(url, { ...init, redirect: "manual" })
    return { status: res.status, text: await res.text(), headers: res.headers }
  })

/** The webhook program on a real HTTP server on a free port, over the backend's Db. Stops with the scope. */
export const startWebhook = (options: HarnessOptions) =>
  Effect.gen(function*() {
    const written = yield* Ref.make<ReadonlyArray<WrittenRow>>([])
    const faults: Faults = { failEventWrites: yield* Ref.make(false), failJobWrites: yield* Ref.make(false), garbleStoreAnswer: yield* Ref.make(false) }
    const dbContext = yield* Layer.build(options.backend.db)
    const db = observedDb(Context.get(dbContext, Db), written, faults)
    const settings = webhookSettingsLayer({
      webhookSecret: Redacted.make(TEST_WEBHOOK_SECRET),
      traceSecret: Option.some(Redacted.make(TEST_TRACE_SECRET)),
      runnerConfig: defaultRunnerConfig,
      ...options.settings
    })
    // The server's log lines are kept for the case to inspect (and out of the test output).
    const logs: Array<string> = []
    const captureLogs = Logger.replace(Logger.defaultLogger, Logger.map(Logger.logfmtLogger, (line) => void logs.push(line)))
    const server = yield* Layer.build(
      WebhookServer.pipe(
        Layer.provide(Layer.mergeAll(settings, NodeHttpClient.layer, Layer.succeed(Db, db), options.services ?? Layer.empty)),
        Layer.provide(captureLogs),
        Layer.provideMerge(NodeHttpServerWithFrontDoor({ port: 0 }))
      )
    )
    const address = Context.get(server, HttpServer.HttpServer).address
    if (address._tag !== "TcpAddress") throw new Error("expected a TCP address")
    const baseUrl = `http://127.0.0.1:${address.port}`

    const deliver = (event: string | null, payload: unknown, o: DeliverOptions = {}) =>
      Effect.gen(function*() {
        const json = typeof payload === "string" ? payload : JSON.stringify(payload)
        const body = o.form === true ? `payload=${encodeURIComponent(json)}` : json
        const signature = o.signature === undefined ? githubSignature(o.secret ?? TEST_WEBHOOK_SECRET, body) : o.signature
        const headers: Record<string, string> = {
          "content-type": o.contentType ?? (o.form === true ? "application/x-www-form-urlencoded" : "application/json"),
          "user-agent": "GitHub-Hookshot/test",
          ...(event === null ? {} : { "x-github-event": event }),
          ...(signature === null ? {} : { "x-hub-signature-256": signature }),
          ...(o.appId === null ? {} : { "x-github-hook-installation-target-id": o.appId ?? String(APP_ID) }),
          ...(o.deliveryId === null ? {} : { "x-github-delivery": o.deliveryId ?? nextDeliveryId() }),
          ...o.headers
        }
        return yield* fetchResponse(`${baseUrl}/`, { method: "POST", headers, body })
      })

    return {
      baseUrl,
      db,
      faults,
      rows: Ref.get(written),
      logs: Effect.sync(() => [...logs]),
      deliver,
      request: (path: string, init?: RequestInit) => fetchResponse(`${baseUrl}${path}`, init)
    } satisfies WebhookHarness
  })

/** Runs `body` against a fresh webhook server on the backend; the server stops when the case ends. */
export const withWebhook = <A, E>(
  backend: Backend,
  body: (h: WebhookHarness) => Effect.Effect<A, E>,
  options: Omit<HarnessOptions, "backend"> = {}
) => Effect.scoped(Effect.flatMap(startWebhook({ backend, ...options }), body))
