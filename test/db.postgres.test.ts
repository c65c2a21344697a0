import { expect, layer } from "@effect/vitest"
import { Context, Deferred, Effect, Fiber, Layer, Logger, Redacted, TestContext } from "effect"
import { migrate } from "../layers/db/migrate.ts"
import { pgClientLayer } from "../layers/db/pgClient.ts"
import { DbPostgres } from "../layers/db/postgres.ts"
import { Db } from "../src/services/Db.ts"
import { dbContract } from "./contracts/db.ts"
import { newWorker } from "./support/dbFixtures.ts"
import { freshDatabase, query, SuiteDatabase, suiteDbPostgres } from "./support/postgres.ts"

/** What `it.effect` gives a case outside a layer: a fresh TestClock, and no default logger. */
const testServices = TestContext.TestContext.pipe(Layer.provide(Logger.remove(Logger.defaultLogger)))

const truncate = Effect.flatMap(SuiteDatabase, ({ url }) =>
  Effect.promise(() => query(url, "TRUNCATE staging.jobs, staging.workers, staging.installation_events RESTART IDENTITY")))

/** A second scheduler process: its own pool on the same database. */
const otherProcess = (url: string) => DbPostgres({ url: Redacted.make(url), schema: "staging" })

// One migrated database for the contract; every case starts from empty tables. The layer leaves Effect's test
// services out, so a case runs on the real clock unless the contract asks for a fresh TestClock.
layer(suiteDbPostgres("contract"), { excludeTestServices: true })((it) =>
  dbContract("postgres", (title, body, clock) =>
    it.effect(title, () => Effect.zipRight(truncate, clock === "test" ? Effect.provide(body, testServices) : body))))

// A database of their own for the cases only PostgreSQL has; `it.effect` runs them on the real clock.
layer(suiteDbPostgres("postgres_only"), { excludeTestServices: true })("Db on PostgreSQL only", (it) => {
  it.effect("the workers lock blocks a second process's cycle, as pg_locks shows", () =>
    Effect.gen(function*() {
      yield* truncate
      const { url } = yield* SuiteDatabase
      const a = yield* Db
      const b = Context.get(yield* Layer.build(otherProcess(url)), Db)
      const holding = yield* Deferred.make<void>()
      const release = yield* Deferred.make<void>()
      const first = yield* Effect.fork(a.withWorkerLock(Effect.gen(function*() {
        yield* Deferred.succeed(holding, undefined)
        yield* Deferred.await(release)
      })))
      yield* Deferred.await(holding)
      const second = yield* Effect.fork(b.withWorkerLock(b.addWorker(newWorker("from-b"))))
      // The second process's LOCK TABLE is queued behind the first: PostgreSQL shows one waiting request.
      let waiting: Array<{ n: number }> = []
      for (let i = 0; i < 50; i++) {
        waiting = yield* Effect.promise(() => query<{ n: number }>(url,
          `SELECT count(*)::int AS n FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
           WHERE c.relname = 'workers' AND l.mode = 'ExclusiveLock' AND NOT l.granted`))
        if (waiting[0]?.n === 1) break
        yield* Effect.sleep("20 millis")
      }
      expect(waiting[0]?.n).toBe(1)
      expect(yield* Effect.promise(() => query(url, "SELECT * FROM staging.workers"))).toEqual([])
      yield* Deferred.succeed(release, undefined)
      yield* Fiber.join(first)
      yield* Fiber.join(second)
      expect((yield* Effect.promise(() => query(url, "SELECT pod_name FROM staging.workers"))).length).toBe(1)
    }).pipe(Effect.scoped))

  it.effect("migrate creates the seed's tables and enums in its schema, and a second run changes nothing", () =>
    Effect.gen(function*() {
      const db = yield* freshDatabase("migrate")
      const layer = pgClientLayer({ url: Redacted.make(db.url), schema: "staging" })
      const [first, second] = yield* Effect.all([migrate("staging"), migrate("staging")], { concurrency: 2 }).pipe(Effect.provide(layer))
      expect([...first!, ...second!].sort()).toEqual(["0001_seed_schema", "0002_event_delivery_id"])
      expect(yield* Effect.provide(migrate("staging"), layer)).toEqual([])
      const tables = yield* Effect.promise(() =>
        query<{ t: string }>(db.url, "SELECT table_name AS t FROM information_schema.tables WHERE table_schema = 'staging' ORDER BY 1"))
      expect(tables.map((r) => r.t)).toEqual(["installation_events", "jobs", "schema_migrations", "workers"])
      const enums = yield* Effect.promise(() =>
        query<{ t: string }>(db.url, `SELECT t.typname AS t FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
                                      WHERE n.nspname = 'staging' AND t.typtype = 'e' ORDER BY 1`))
      expect(enums.map((r) => r.t)).toEqual(["entity_type_enum", "provider_enum", "status_enum"])
      const prod = yield* Effect.promise(() => query(db.url, "SELECT 1 FROM information_schema.schemata WHERE schema_name = 'prod'"))
      expect(prod).toEqual([])
    }).pipe(Effect.scoped))
})
