import { PgClient } from "@effect/sql-pg"
import { describe, expect, it } from "@effect/vitest"
import { ConfigProvider, Context, Deferred, Effect, Either, Fiber, Layer, Redacted } from "effect"
import { pgClientLayer } from "../layers/db/pgClient.ts"
import { DbPostgres, DbPostgresFromClient } from "../layers/db/postgres.ts"
import type { DbTimeouts } from "../layers/db/timeouts.ts"
import { KubeMemory } from "../layers/kube/memory.ts"
import { loadAppEnv } from "../src/config/env.ts"
import { schedulerApp } from "../src/operator/server.ts"
import { SchedulerSettingsLive } from "../src/scheduler/settings.ts"
import { Db, DbError, isDbUnavailable } from "../src/services/Db.ts"
import { newWorker } from "./support/dbFixtures.ts"
import { frozenDatabase } from "./support/freezableProxy.ts"
import { getFrom } from "./support/http.ts"
import { freshDatabase, query } from "./support/postgres.ts"
import { testRunnerConfig } from "./support/schedulerWorld.ts"
import { type Backend, withWebhook } from "./support/webhookHarness.ts"
import { workflowJob } from "./support/webhookPayloads.ts"

/*
 * The database stops answering (a TCP proxy between the service and PostgreSQL that stops forwarding: what a
 * SIGSTOPped server or a silent network looks like from the client). Deliveries must get a 503 well within
 * GitHub's 10 s, `/ready` must say so while `/health` stays 200, and everything recovers once it answers again.
 */

const elapsed = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.gen(function*() {
    const started = Date.now()
    const value = yield* effect
    return { value, ms: Date.now() - started }
  })

/** Retries `read` every 200 ms until `check` holds, for at most `ms`. */
const eventually = <A>(read: Effect.Effect<A>, check: (a: A) => boolean, ms: number) =>
  Effect.gen(function*() {
    const deadline = Date.now() + ms
    let value = yield* read
    while (!check(value) && Date.now() < deadline) {
      yield* Effect.sleep("200 millis")
      value = yield* read
    }
    return value
  })

describe("database timeouts, on a PostgreSQL that stops answering", () => {
  it.live("a delivery answers 503 with Retry-After well within 10 s, /ready 503 while /health stays 200; then 200 again", () =>
    Effect.gen(function*() {
      const database = yield* frozenDatabase("frozen_webhook")
      // the default timeouts: what a deployment gets without setting DB_*_TIMEOUT_MS
      const db = yield* Layer.build(DbPostgres({ url: Redacted.make(database.proxyUrl), schema: "staging" }))
      const backend: Backend = { name: "postgres behind a proxy", db: Layer.succeedContext(db) }
      yield* withWebhook(backend, (h) =>
        Effect.gen(function*() {
          expect((yield* h.deliver("workflow_job", workflowJob({ jobId: 1 }))).status).toBe(200)
          expect(yield* h.request("/ready")).toMatchObject({ status: 200, text: "ready" })

          database.proxy.freeze()
          const [delivery, ready, health] = yield* Effect.all([
            elapsed(h.deliver("workflow_job", workflowJob({ jobId: 2 }))),
            elapsed(h.request("/ready")),
            elapsed(h.request("/health"))
          ], { concurrency: "unbounded" })
          expect(delivery.value.status).toBe(503)
          expect(delivery.value.headers.get("retry-after")).toBe("10")
          expect(delivery.value.text).toContain("database unavailable")
          expect(delivery.ms).toBeLessThan(8000)
          expect(ready.value.status).toBe(503)
          expect(ready.value.text).toMatch(/^not ready: /)
          expect(ready.ms).toBeLessThan(3000)
          expect(health.value).toMatchObject({ status: 200, text: "ok" })
          // a second delivery while frozen: the pool's connections are stuck or gone, and it still answers in time
          const second = yield* elapsed(h.deliver("workflow_job", workflowJob({ jobId: 3 })))
          expect(second.value.status).toBe(503)
          expect(second.ms).toBeLessThan(8000)
          console.log(`frozen database: delivery 503 after ${delivery.ms} ms (then ${second.ms} ms), /ready 503 after ${ready.ms} ms, /health 200 after ${health.ms} ms`)

          database.proxy.thaw()
          const back = yield* elapsed(eventually(h.request("/ready"), (r) => r.status === 200, 15_000))
          expect(back.value).toMatchObject({ status: 200, text: "ready" })
          expect((yield* h.deliver("workflow_job", workflowJob({ jobId: 2 }))).status).toBe(200)
          const stored = yield* Effect.promise(() => query<{ job_id: string }>(database.url, "SELECT job_id::text FROM staging.jobs ORDER BY job_id"))
          expect(stored.map((r) => r.job_id)).toEqual(["1", "2"])
          console.log(`thawed: /ready 200 again after ${back.ms} ms`)
          const warnings = (yield* h.logs).filter((l) => l.includes("database unavailable"))
          expect(warnings.length).toBeGreaterThan(0)
          expect(warnings.every((l) => l.includes("level=WARN"))).toBe(true)
        }))
    }).pipe(Effect.scoped), 60_000)

  it.live("the scheduler's /ready and its operator routes answer 503 while the database is frozen, and 200 once it answers", () =>
    Effect.gen(function*() {
      const database = yield* frozenDatabase("frozen_scheduler")
      const timeouts: DbTimeouts = { connectMs: 1000, statementMs: 1000, lockMs: 500 }
      const world = yield* Layer.build(Layer.mergeAll(
        DbPostgres({ url: Redacted.make(database.proxyUrl), schema: "staging", timeouts }),
        KubeMemory({ tick: null }),
        SchedulerSettingsLive({ runnerConfig: testRunnerConfig(), prod: false })
      ))
      const get = (path: string) =>
        getFrom(schedulerApp, path).pipe(Effect.provide(world), Effect.map((res) => ({ status: res.status, text: res.body })))
      expect(yield* get("/ready")).toEqual({ status: 200, text: "ready" })
      database.proxy.freeze()
      const ready = yield* elapsed(get("/ready"))
      expect(ready.value.status).toBe(503)
      expect(ready.value.text).toMatch(/^not ready: /)
      expect(ready.ms).toBeLessThan(3000)
      expect(yield* get("/health")).toEqual({ status: 200, text: "ok" })
      // the operator routes that read the database, JSON and HTML: a 503 that says when to come back, not a 500
      for (const path of ["/jobs.json", "/queue.json", "/usage"]) {
        const res = yield* getFrom(schedulerApp, path).pipe(Effect.provide(world))
        expect({ path, status: res.status, body: res.body, retryAfter: res.retryAfter }).toEqual({
          path,
          status: 503,
          body: "database unavailable: it did not answer in time; try again later",
          retryAfter: "10"
        })
      }
      database.proxy.thaw()
      expect(yield* eventually(get("/ready"), (r) => r.status === 200, 10_000)).toEqual({ status: 200, text: "ready" })
      expect((yield* get("/jobs.json")).status).toBe(200)
    }).pipe(Effect.scoped), 30_000)

  it.live("a statement without an answer fails as unavailable by its deadline, and the pool serves again after the thaw", () =>
    Effect.gen(function*() {
      const database = yield* frozenDatabase("frozen_deadline")
      const timeouts: DbTimeouts = { connectMs: 1000, statementMs: 500, lockMs: 300 }
      const db = Context.get(yield* Layer.build(DbPostgres({ url: Redacted.make(database.proxyUrl), schema: "staging", timeouts })), Db)
      yield* db.ping
      database.proxy.freeze()
      const frozen = yield* elapsed(Effect.either(db.getActiveJobs))
      expect(Either.isLeft(frozen.value)).toBe(true)
      const error = Either.getLeft(frozen.value).pipe((o) => o._tag === "Some" ? o.value : undefined)
      expect(error).toBeInstanceOf(DbError)
      expect(isDbUnavailable(error)).toBe(true)
      // the answer deadline is the statement timeout plus 1 s of grace
      expect(frozen.ms).toBeGreaterThanOrEqual(1400)
      expect(frozen.ms).toBeLessThan(3000)
      database.proxy.thaw()
      expect(yield* eventually(Effect.either(db.getActiveJobs), Either.isRight, 5000)).toEqual(Either.right([]))
    }).pipe(Effect.scoped), 30_000)
})

describe("database timeouts on a live PostgreSQL", () => {
  const timeouts: DbTimeouts = { connectMs: 2000, statementMs: 600, lockMs: 200 }

  /** A Db and its raw client on one pool, with short timeouts. */
  const processOn = (url: string) =>
    Layer.build(DbPostgresFromClient("staging", timeouts).pipe(
      Layer.provideMerge(pgClientLayer({ url: Redacted.make(url), schema: "staging", timeouts }))
    ))

  it.live("every connection has the statement and lock timeouts; a slow statement fails as unavailable", () =>
    Effect.gen(function*() {
      const database = yield* freshDatabase("timeouts_set")
      yield* Layer.build(DbPostgres({ url: Redacted.make(database.url), schema: "staging", migrate: true }))
      const context = yield* processOn(database.url)
      const sql = Context.get(context, PgClient.PgClient)
      expect(yield* sql`SHOW statement_timeout`).toEqual([{ statement_timeout: "600ms" }])
      expect(yield* sql`SHOW lock_timeout`).toEqual([{ lock_timeout: "200ms" }])
      const slow = yield* Effect.either(sql`SELECT pg_sleep(2)`)
      expect(Either.isLeft(slow) && String((slow.left.cause as { code?: unknown }).code)).toBe("57014")
    }).pipe(Effect.scoped))

  it.live("a standby waits on the scheduler lock far longer than the lock and statement timeouts, and its cycle then runs with them", () =>
    Effect.gen(function*() {
      const database = yield* freshDatabase("standby_lock")
      yield* Layer.build(DbPostgres({ url: Redacted.make(database.url), schema: "staging", migrate: true }))
      const active = Context.get(yield* processOn(database.url), Db)
      const standbyContext = yield* processOn(database.url)
      const standby = Context.get(standbyContext, Db)
      const sql = Context.get(standbyContext, PgClient.PgClient)

      const holding = yield* Deferred.make<void>()
      const first = yield* Effect.fork(active.withWorkerLock(Effect.zipRight(Deferred.succeed(holding, undefined), Effect.sleep("1500 millis"))))
      yield* Deferred.await(holding)
      // the lock is an advisory lock, not a table lock: outside a cycle a write goes through at once
      const outside = yield* elapsed(Effect.either(standby.addWorker(newWorker("outside-a-cycle"))))
      expect(Either.isRight(outside.value)).toBe(true)
      expect(outside.ms).toBeLessThan(1000)
      // the standby's cycle waits for the rest of the 1.5 s, well past both timeouts, and then runs
      const cycle = yield* elapsed(standby.withWorkerLock(Effect.gen(function*() {
        const [settings] = yield* sql<{ s: string; l: string }>`SELECT current_setting('statement_timeout') AS s, current_setting('lock_timeout') AS l`
        yield* standby.addWorker(newWorker("standby-cycle"))
        return settings
      })))
      yield* Fiber.join(first)
      expect(cycle.ms).toBeGreaterThan(800)
      // inside the cycle the connection's own timeouts are back
      expect(cycle.value).toEqual({ s: "600ms", l: "200ms" })
      expect(yield* Effect.promise(() => query(database.url, "SELECT pod_name FROM staging.workers ORDER BY pod_name"))).toEqual([{ pod_name: "outside-a-cycle" }, { pod_name: "standby-cycle" }])
    }).pipe(Effect.scoped))
})

describe("DB_*_TIMEOUT_MS", () => {
  const load = (env: Record<string, string>) =>
    loadAppEnv("webhook", true).pipe(Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env)))), Effect.either)

  it.effect("default to connect 5 s, statement 5 s, lock 3 s; take whole milliseconds; refuse units and out-of-range values by name", () =>
    Effect.gen(function*() {
      const defaults = yield* load({})
      expect(Either.isRight(defaults) && defaults.right.dbTimeouts).toEqual({ connectMs: 5000, statementMs: 5000, lockMs: 3000 })
      const set = yield* load({ DB_CONNECT_TIMEOUT_MS: "2000", DB_STATEMENT_TIMEOUT_MS: "0", DB_LOCK_TIMEOUT_MS: "1500" })
      expect(Either.isRight(set) && set.right.dbTimeouts).toEqual({ connectMs: 2000, statementMs: 0, lockMs: 1500 })
      const bad = yield* load({ DB_STATEMENT_TIMEOUT_MS: "5s", DB_CONNECT_TIMEOUT_MS: "0" })
      expect(Either.isLeft(bad)).toBe(true)
      const message = Either.isLeft(bad) ? bad.left.message : ""
      expect(message).toContain("DB_STATEMENT_TIMEOUT_MS")
      expect(message).toContain("DB_CONNECT_TIMEOUT_MS: must be a whole number of milliseconds from 100 to 60000")
    }))
})
