import { expect, layer } from "@effect/vitest"
import { Context, Deferred, Effect, Either, Fiber, Layer, Logger, Redacted, TestContext } from "effect"
import { loadMigrations, migrate } from "../layers/db/migrate.ts"
import { pgClientLayer } from "../layers/db/pgClient.ts"
import { DbPostgres } from "../layers/db/postgres.ts"
import { schedulerLockKey } from "../layers/db/schedulerLock.ts"
import { DEFAULT_CLUSTER } from "../src/domain/RunnerConfig.ts"
import { Db, DbError, isDbUnavailable } from "../src/services/Db.ts"
import { dbContract } from "./contracts/db.ts"
import { newWorker } from "./support/dbFixtures.ts"
import { emptyStore, freshDatabase, query, SuiteDatabase, suiteDbPostgres } from "./support/postgres.ts"
import { migrationNames } from "./support/migrationNames.ts"

/** What `it.effect` gives a case outside a layer: a fresh TestClock, and no default logger. */
const testServices = TestContext.TestContext.pipe(Layer.provide(Logger.remove(Logger.defaultLogger)))

const truncate = Effect.flatMap(SuiteDatabase, ({ url }) =>
  Effect.promise(() => emptyStore(url)))

/** A second scheduler process: its own pool on the same database. */
const otherProcess = (url: string) => DbPostgres({ url: Redacted.make(url), schema: "staging" })

// One migrated database for the contract; every case starts from empty tables. The layer leaves Effect's test
// services out, so a case runs on the real clock unless the contract asks for a fresh TestClock.
layer(suiteDbPostgres("contract"), { excludeTestServices: true })((it) =>
  dbContract("postgres", (title, body, clock) =>
    it.effect(title, () => Effect.zipRight(truncate, clock === "test" ? Effect.provide(body, testServices) : body))))

// A database of their own for the cases only PostgreSQL has; `it.effect` runs them on the real clock.
layer(suiteDbPostgres("postgres_only"), { excludeTestServices: true })("Db on PostgreSQL only", (it) => {
  it.effect("the scheduler lock blocks a second process's cycle, as pg_locks shows; the first cycle's steps are committed meanwhile", () =>
    Effect.gen(function*() {
      yield* truncate
      const { url } = yield* SuiteDatabase
      const a = yield* Db
      const b = Context.get(yield* Layer.build(otherProcess(url)), Db)
      const holding = yield* Deferred.make<void>()
      const release = yield* Deferred.make<void>()
      const first = yield* Effect.fork(a.withWorkerLock(Effect.gen(function*() {
        yield* a.step(a.addWorker(newWorker("from-a")))
        yield* Deferred.succeed(holding, undefined)
        yield* Deferred.await(release)
      })))
      yield* Deferred.await(holding)
      const second = yield* Effect.fork(b.withWorkerLock(b.step(b.addWorker(newWorker("from-b")))))
      // The second process's pg_advisory_lock is queued behind the first: PostgreSQL shows one waiting request.
      let waiting: Array<{ n: number }> = []
      for (let i = 0; i < 50; i++) {
        waiting = yield* Effect.promise(() => query<{ n: number }>(url,
          `SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND NOT granted`))
        if (waiting[0]?.n === 1) break
        yield* Effect.sleep("20 millis")
      }
      expect(waiting[0]?.n).toBe(1)
      // the first cycle's step is committed: another connection sees it while the cycle still holds the lock
      expect(yield* Effect.promise(() => query(url, "SELECT pod_name FROM staging.workers"))).toEqual([{ pod_name: "from-a" }])
      // and no table lock: a write outside any cycle goes through at once
      yield* b.addWorker(newWorker("outside-a-cycle"))
      yield* Deferred.succeed(release, undefined)
      yield* Fiber.join(first)
      yield* Fiber.join(second)
      expect((yield* Effect.promise(() => query(url, "SELECT pod_name FROM staging.workers"))).length).toBe(3)
    }).pipe(Effect.scoped))

  it.effect("a cycle whose lock connection is terminated stops: no further step commits, and the standby takes over at once", () =>
    Effect.gen(function*() {
      yield* truncate
      const { url } = yield* SuiteDatabase
      const a = yield* Db
      const b = Context.get(yield* Layer.build(otherProcess(url)), Db)
      const holding = yield* Deferred.make<void>()
      const first = yield* Effect.fork(a.withWorkerLock(Effect.gen(function*() {
        yield* a.step(a.addWorker(newWorker("before-loss")))
        yield* Deferred.succeed(holding, undefined)
        // a cycle that goes on writing; after the loss none of these may commit
        for (let i = 0; ; i++) {
          yield* Effect.sleep("50 millis")
          yield* a.step(a.addWorker(newWorker(`after-${i}`))).pipe(Effect.ignore)
        }
      })))
      yield* Deferred.await(holding)
      const standby = yield* Effect.fork(b.withWorkerLock(b.step(b.addWorker(newWorker("standby")))))
      yield* Effect.sleep("300 millis")
      const killedAt = Date.now()
      const [terminated] = yield* Effect.promise(() =>
        query<{ n: number }>(url, `SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity
                                   WHERE application_name = 'riscv-runner-scheduler-lock' AND pid IN
                                     (SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted)`))
      expect(terminated?.n).toBe(1)
      const stopped = yield* Effect.either(Fiber.join(first)).pipe(Effect.timeout("5 seconds"))
      expect(Either.isLeft(stopped) && stopped.left).toBeInstanceOf(DbError)
      expect(Either.isLeft(stopped) && isDbUnavailable(stopped.left)).toBe(true)
      expect(Either.isLeft(stopped) ? (stopped.left as DbError).message : "").toContain("scheduler lock")
      yield* Fiber.join(standby).pipe(Effect.timeout("5 seconds"))
      const tookOver = Date.now() - killedAt
      const rows = (yield* Effect.promise(() => query<{ pod_name: string }>(url, "SELECT pod_name FROM staging.workers ORDER BY created_at"))).map((r) => r.pod_name)
      expect(rows).toContain("before-loss")
      expect(rows).toContain("standby")
      // every step written after the standby's took the lock would be a double booking
      const afterStandby = rows.slice(rows.indexOf("standby") + 1)
      expect(afterStandby).toEqual([])
      console.log(`lock connection terminated: standby's cycle done ${tookOver} ms later; ${rows.length - 2} step(s) of the old cycle committed before the loss was noticed`)
      // the process that lost its lock runs its next cycle on a new lock session
      yield* a.withWorkerLock(a.step(a.addWorker(newWorker("next-cycle")))).pipe(Effect.timeout("5 seconds"))
    }).pipe(Effect.scoped))

  it.effect("prod and staging have different scheduler locks: they do not wait for each other", () =>
    Effect.gen(function*() {
      expect(schedulerLockKey("prod")).not.toEqual(schedulerLockKey("staging"))
      const { url } = yield* SuiteDatabase
      const staging = yield* Db
      const prod = Context.get(yield* Layer.build(DbPostgres({ url: Redacted.make(url), schema: "prod" })), Db)
      const holding = yield* Deferred.make<void>()
      const release = yield* Deferred.make<void>()
      const held = yield* Effect.fork(staging.withWorkerLock(Effect.zipRight(Deferred.succeed(holding, undefined), Deferred.await(release))))
      yield* Deferred.await(holding)
      expect(yield* prod.withWorkerLock(Effect.succeed("prod ran")).pipe(Effect.timeout("3 seconds"))).toBe("prod ran")
      yield* Deferred.succeed(release, undefined)
      yield* Fiber.join(held)
    }).pipe(Effect.scoped))

  it.effect("0007 gives the workers written before it the default cluster", () =>
    Effect.gen(function*() {
      const db = yield* freshDatabase("cluster-migration")
      const earlier = (yield* loadMigrations).filter((m) => m.id < 7)
      // a database of a release before several clusters: its migrations applied and recorded, one worker written
      yield* Effect.promise(() =>
        query(db.url, `CREATE SCHEMA staging; SET search_path TO staging;
          CREATE TABLE schema_migrations (id INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now());
          ${earlier.map((m) => `${m.sql};\nINSERT INTO schema_migrations (id, name) VALUES (${m.id}, '${m.name}');`).join("\n")}
          INSERT INTO workers (pod_name, provider, entity_id, entity_name, entity_type, installation_id, k8s_pool, k8s_image)
          VALUES ('old-worker', 'github', 1001, 'acme', 'Organization', 5001, 'scw-em-rv1', 'img')`))
      const applied = yield* Effect.provide(migrate("staging"), pgClientLayer({ url: Redacted.make(db.url), schema: "staging" }))
      expect(applied).toEqual(migrationNames.filter((n) => n >= "0007"))
      const store = Context.get(yield* Layer.build(DbPostgres({ url: Redacted.make(db.url), schema: "staging" })), Db)
      const old = yield* store.getWorker("old-worker")
      expect(old._tag === "Some" && old.value.cluster).toBe(DEFAULT_CLUSTER)
    }).pipe(Effect.scoped))

  it.effect("migrate creates the seed's tables and enums in its schema, and a second run changes nothing", () =>
    Effect.gen(function*() {
      const db = yield* freshDatabase("migrate")
      const layer = pgClientLayer({ url: Redacted.make(db.url), schema: "staging" })
      const [first, second] = yield* Effect.all([migrate("staging"), migrate("staging")], { concurrency: 2 }).pipe(Effect.provide(layer))
      expect([...first!, ...second!].sort()).toEqual(migrationNames)
      expect(yield* Effect.provide(migrate("staging"), layer)).toEqual([])
      const tables = yield* Effect.promise(() =>
        query<{ t: string }>(db.url, "SELECT table_name AS t FROM information_schema.tables WHERE table_schema = 'staging' ORDER BY 1"))
      expect(tables.map((r) => r.t)).toEqual(["board_events", "board_states", "installation_events", "jobs", "scheduler_passes", "schema_migrations", "weekly_usage_days", "weekly_usage_fold", "weekly_usage_held", "weekly_usage_names", "workers"])
      const enums = yield* Effect.promise(() =>
        query<{ t: string }>(db.url, `SELECT t.typname AS t FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
                                      WHERE n.nspname = 'staging' AND t.typtype = 'e' ORDER BY 1`))
      expect(enums.map((r) => r.t)).toEqual(["entity_type_enum", "provider_enum", "status_enum"])
      const prod = yield* Effect.promise(() => query(db.url, "SELECT 1 FROM information_schema.schemata WHERE schema_name = 'prod'"))
      expect(prod).toEqual([])
    }).pipe(Effect.scoped))
})
