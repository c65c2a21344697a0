import { describe, expect, it } from "@effect/vitest"
import { Context, Effect, Exit, Layer, Logger, Queue, Redacted, Ref, Scope } from "effect"
import { DbPostgres } from "../layers/db/postgres.ts"
import { freePort, startEmbeddedPostgres, tempDataDir } from "../src/embedded/embeddedPostgres.ts"
import { wakeLoop } from "../src/scheduler/loop.ts"
import { Db } from "../src/services/Db.ts"
import { frozenDatabase } from "./support/freezableProxy.ts"
import { newJob } from "./support/dbFixtures.ts"
import { freshDatabase, query } from "./support/postgres.ts"

/*
 * The scheduler's wake-ups on real PostgreSQL broken on purpose: the LISTEN backend terminated, and the whole
 * server restarted. Either way a stored job must wake the scheduler again within 2 s, and the loss is logged.
 */

const listenBackends = (url: string, database: string) =>
  Effect.promise(() =>
    query<{ pid: number }>(url, `SELECT pid FROM pg_stat_activity WHERE datname = $1 AND query LIKE 'LISTEN%'`, [database])
  ).pipe(Effect.map((rows) => rows.map((r) => r.pid)))

/** Polls until `check` holds, every 50 ms, for at most `ms`. */
const eventually = <A>(read: Effect.Effect<A>, check: (a: A) => boolean, ms = 10_000) =>
  Effect.gen(function*() {
    const deadline = Date.now() + ms
    let value = yield* read
    while (!check(value) && Date.now() < deadline) {
      yield* Effect.sleep("50 millis")
      value = yield* read
    }
    return value
  })

/**
 * The real wake loop over `db.wakeups`, with a tick too slow to matter: every cycle start is put on `starts`.
 * Log lines are kept in `logs`.
 */
const startLoop = (db: typeof Db.Service, logs: Ref.Ref<ReadonlyArray<string>>) =>
  Effect.gen(function*() {
    const starts = yield* Queue.unbounded<number>()
    const capture = Logger.replace(
      Logger.defaultLogger,
      Logger.map(Logger.logfmtLogger, (line) => Effect.runSync(Ref.update(logs, (all) => [...all, line])))
    )
    yield* wakeLoop({ wakeups: db.wakeups, pollInterval: "10 minutes", debounce: "20 millis", cycle: Effect.suspend(() => Queue.offer(starts, Date.now())) }).pipe(
      Effect.provide(capture)
    )
    yield* Queue.take(starts) // the tick's first element
    return starts
  })

/** Stores a job and answers how long until the loop's next cycle started (ms), or fails after 2 s. */
const wakeLatency = (db: typeof Db.Service, starts: Queue.Queue<number>, jobId: number) =>
  Effect.gen(function*() {
    yield* Queue.takeAll(starts)
    const stored = Date.now()
    yield* db.addJob(newJob(jobId))
    const started = yield* Queue.take(starts).pipe(
      Effect.timeoutFail({ duration: "2 seconds", onTimeout: () => new Error(`job ${jobId}: no wake-up within 2 s`) })
    )
    return started - stored
  })

describe("Db.wakeups on PostgreSQL broken on purpose", () => {
  it.live("after pg_terminate_backend on the LISTEN connection, a stored job wakes the scheduler within 2 s", () =>
    Effect.gen(function*() {
      const database = yield* freshDatabase("listen_terminate")
      const db = Context.get(
        yield* Layer.build(DbPostgres({ url: Redacted.make(database.url), schema: "staging", migrate: true })),
        Db
      )
      const logs = yield* Ref.make<ReadonlyArray<string>>([])
      const starts = yield* startLoop(db, logs)
      const [pid] = yield* eventually(listenBackends(database.url, database.name), (pids) => pids.length === 1)
      expect(pid).toBeDefined()
      // a healthy listener first: the figure to compare with
      const healthy = yield* wakeLatency(db, starts, 1)

      yield* Effect.promise(() => query(database.url, "SELECT pg_terminate_backend($1)", [pid]))
      const afterTerminate = yield* wakeLatency(db, starts, 2)
      // LISTEN is really back (a new backend), and its notifications arrive, not only a catch-up wake-up
      const again = yield* eventually(listenBackends(database.url, database.name), (pids) => pids.length === 1 && pids[0] !== pid)
      expect(again.length).toBe(1)
      expect(again[0]).not.toBe(pid)
      const relistened = yield* wakeLatency(db, starts, 3)
      expect((yield* Ref.get(logs)).some((l) => l.includes("level=WARN") && l.includes("LISTEN"))).toBe(true)
      console.log(`wake-up latency: healthy ${healthy} ms, right after terminate ${afterTerminate} ms, re-listened ${relistened} ms`)
    }).pipe(Effect.scoped), 30_000)

  it.live("a LISTEN connection that silently stops answering is noticed by its check, and listened to again", () =>
    Effect.gen(function*() {
      const database = yield* frozenDatabase("listen_frozen")
      const db = Context.get(
        yield* Layer.build(DbPostgres({
          url: Redacted.make(database.proxyUrl),
          schema: "staging",
          timeouts: { connectMs: 1000, statementMs: 500, lockMs: 300 }
        })),
        Db
      )
      const logs = yield* Ref.make<ReadonlyArray<string>>([])
      const starts = yield* startLoop(db, logs)
      const [pid] = yield* eventually(listenBackends(database.url, database.name), (pids) => pids.length === 1)
      database.proxy.freeze()
      // no socket event reports a frozen peer: only the periodic check (every 5 s, 1.5 s deadline here) does
      const noticed = yield* eventually(Ref.get(logs), (l) => l.some((line) => line.includes("LISTEN") && line.includes("check failed")), 15_000)
      expect(noticed.some((line) => line.includes("level=WARN") && line.includes("check failed"))).toBe(true)
      database.proxy.thaw()
      const again = yield* eventually(listenBackends(database.url, database.name), (pids) => pids.length === 1 && pids[0] !== pid, 15_000)
      expect(again.length).toBe(1)
      expect(again[0]).not.toBe(pid)
      yield* Effect.sleep("200 millis") // the catch-up wake-up of the new session
      const latency = yield* wakeLatency(db, starts, 1)
      console.log(`frozen LISTEN connection: noticed and listened to again; wake-up ${latency} ms`)
    }).pipe(Effect.scoped), 45_000)

  it.live("after a restart of PostgreSQL itself, the wake-ups resume", () =>
    Effect.gen(function*() {
      const port = yield* Effect.promise(freePort)
      const dataDir = yield* Effect.promise(() => tempDataDir("riscv-runner-listen-restart-"))
      const start = (scope: Scope.Scope) => startEmbeddedPostgres({ dataDir, port, persistent: true }).pipe(Scope.extend(scope))
      let serverScope = yield* Scope.make()
      const server = yield* start(serverScope)
      yield* Effect.addFinalizer(() => Scope.close(serverScope, Exit.void).pipe(Effect.ignore))
      const db = Context.get(
        yield* Layer.build(DbPostgres({ url: Redacted.make(server.url), schema: "staging", migrate: true })),
        Db
      )
      const logs = yield* Ref.make<ReadonlyArray<string>>([])
      const starts = yield* startLoop(db, logs)
      yield* eventually(listenBackends(server.url, "postgres"), (pids) => pids.length === 1)
      yield* wakeLatency(db, starts, 1)

      yield* Scope.close(serverScope, Exit.void)
      const downAt = Date.now()
      yield* Effect.sleep("1 second")
      serverScope = yield* Scope.make()
      yield* start(serverScope)
      const upAt = Date.now()
      yield* eventually(listenBackends(server.url, "postgres"), (pids) => pids.length === 1, 20_000)
      const relistenedAfter = Date.now() - upAt
      const latency = yield* wakeLatency(db, starts, 2)
      expect((yield* Ref.get(logs)).some((l) => l.includes("level=WARN") && l.includes("LISTEN"))).toBe(true)
      console.log(`restart: down ${upAt - downAt} ms, LISTEN again ${relistenedAfter} ms after the server was back, wake-up ${latency} ms`)
    }).pipe(Effect.scoped), 60_000)
})
