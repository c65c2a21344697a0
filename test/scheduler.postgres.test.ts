import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Context, Duration, Effect, Exit, Fiber, Layer, Logger, LogLevel, Redacted, Scope } from "effect"
import { GithubMemory, GithubMemoryControl } from "../layers/github/memory.ts"
import { KubeMemory, KubeMemoryControl } from "../layers/kube/memory.ts"
import { DbPostgres } from "../layers/db/postgres.ts"
import { SchedulerLoop } from "../src/scheduler/loop.ts"
import { cryptoRunnerSuffix } from "../src/scheduler/runnerName.ts"
import { SchedulerSettingsLive, type SchedulerTimeouts } from "../src/scheduler/settings.ts"
import { Db } from "../src/services/Db.ts"
import type { Github } from "../src/services/Github.ts"
import type { Kube } from "../src/services/Kube.ts"
import { newJob } from "./support/dbFixtures.ts"
import { emptyStore, freshDatabase, query } from "./support/postgres.ts"
import { loopScenarios } from "./support/schedulerLoopScenarios.ts"
import { boardScenarios } from "./support/boardScenarios.ts"
import { schedulerScenarios } from "./support/schedulerScenarios.ts"
import { ORG, testRunnerConfig, worldLayer } from "./support/schedulerWorld.ts"

// One migrated database for the suite; every scenario starts from empty tables.
let url = ""
let context: Context.Context<Db>
const suiteScope = Effect.runSync(Scope.make())

beforeAll(async () => {
  const db = await Effect.runPromise(freshDatabase("scheduler").pipe(Scope.extend(suiteScope)))
  url = db.url
  context = await Effect.runPromise(
    Layer.buildWithScope(DbPostgres({ url: Redacted.make(url), schema: "staging", migrate: true }), suiteScope)
  )
})
afterAll(() => Effect.runPromise(Scope.close(suiteScope, Exit.void)))

const truncate = Effect.promise(() => emptyStore(url))

schedulerScenarios("on PostgreSQL", (body, options) =>
  Effect.zipRight(truncate, Effect.provide(body, worldLayer(Layer.succeedContext(context), options))))
boardScenarios("on PostgreSQL", (body, options) =>
  Effect.zipRight(truncate, Effect.provide(body, worldLayer(Layer.succeedContext(context), options))))

/** Another process on the same database: its own connection pool (and LISTEN connection). */
const process = () => DbPostgres({ url: Redacted.make(url), schema: "staging" })

// The loop's wake-ups (NOTIFY's fast path, the pod watch) on its own pool, from empty tables.
loopScenarios("on PostgreSQL", Effect.zipRight(truncate, Effect.sync(() => process())))

/** A scheduler process: its own pool, the shared (in-memory) GitHub and cluster, its own loop. */
const schedulerProcess = (shared: Context.Context<Github | GithubMemoryControl | Kube | KubeMemoryControl>, timeouts: Partial<SchedulerTimeouts>, suffixLetter: string) =>
  SchedulerLoop.pipe(
    Layer.provide(process()),
    Layer.provide(Layer.succeedContext(shared)),
    Layer.provide(SchedulerSettingsLive({
      runnerConfig: testRunnerConfig({ defaultMaxWorkers: null }),
      prod: false,
      timeouts,
      // the first letter tells which process reserved a name
      runnerSuffix: Effect.map(cryptoRunnerSuffix, (s) => suffixLetter + s.slice(1))
    }))
  )

const sharedWorld = (slots: number) =>
  Layer.build(Layer.mergeAll(GithubMemory, KubeMemory({ tick: null, nodes: [{ name: "n1", pool: "scw-em-rv1", slots }] })))

const installAcme = (shared: Context.Context<GithubMemoryControl>) =>
  Context.get(shared, GithubMemoryControl).addInstallation({ id: ORG.installation, account: { login: ORG.login, type: "Organization", id: ORG.id } })

/** The loops log every provisioning at INFO; the tests only want warnings. */
const quiet = Effect.provide(Logger.minimumLogLevel(LogLevel.Warning))

/** Polls `check` until it holds or `timeout` passes (real time). */
const eventually = <A>(check: Effect.Effect<A>, holds: (a: A) => boolean, timeout = Duration.seconds(10)) =>
  Effect.gen(function*() {
    const deadline = Date.now() + Duration.toMillis(timeout)
    let last = yield* check
    while (!holds(last) && Date.now() < deadline) {
      yield* Effect.sleep("50 millis")
      last = yield* check
    }
    return last
  })

const activeWorkers = Effect.promise(() =>
  query<{ pod_name: string }>(url, "SELECT pod_name FROM staging.workers WHERE status IN ('pending', 'running') ORDER BY pod_name"))

describe("the scheduler loop on PostgreSQL", () => {
  it.live("a stored job's NOTIFY wakes the loop (the poll interval is an hour)", () =>
    Effect.gen(function*() {
      yield* truncate
      const shared = yield* sharedWorld(4)
      yield* installAcme(shared)
      yield* Layer.build(schedulerProcess(shared, { pollInterval: Duration.hours(1), wakeDebounce: Duration.millis(20) }, "a"))
      // the first cycle runs at start; give LISTEN time to reach the server
      yield* Effect.sleep("500 millis")
      const webhook = Context.get(yield* Layer.build(process()), Db)
      yield* webhook.addJob(newJob(1))
      const pods = yield* eventually(Context.get(shared, KubeMemoryControl).pods, (ps) => ps.length === 1, Duration.seconds(5))
      expect(pods.map((p) => p.name)).toEqual((yield* activeWorkers).map((w) => w.pod_name))
      expect(pods).toHaveLength(1)
    }).pipe(Effect.scoped, quiet))

  it.live("two schedulers on one database never provision more runners than demand or boards", () =>
    Effect.gen(function*() {
      yield* truncate
      const shared = yield* sharedWorld(25)
      yield* installAcme(shared)
      const fast = { pollInterval: Duration.millis(40), wakeDebounce: Duration.millis(5) }
      yield* Layer.build(schedulerProcess(shared, fast, "a"))
      yield* Layer.build(schedulerProcess(shared, fast, "b"))
      const webhook = Context.get(yield* Layer.build(process()), Db)
      // jobs arrive in waves while both loops run; 20 first (fewer than the 25 boards)
      for (let wave = 0; wave < 4; wave++) {
        for (let i = 1; i <= 5; i++) yield* webhook.addJob(newJob(wave * 100 + i))
        yield* Effect.sleep("60 millis")
      }
      const kube = Context.get(shared, KubeMemoryControl)
      yield* eventually(kube.pods, (ps) => ps.length >= 20)
      yield* Effect.sleep("500 millis") // many more cycles of both
      expect(yield* kube.pods).toHaveLength(20)
      // then 20 more: only 5 boards are left
      for (let i = 1; i <= 20; i++) yield* webhook.addJob(newJob(1000 + i))
      yield* eventually(kube.pods, (ps) => ps.length >= 25)
      yield* Effect.sleep("500 millis")
      const pods = yield* kube.pods
      expect(pods).toHaveLength(25)
      const workers = yield* activeWorkers
      expect(workers.map((w) => w.pod_name)).toEqual(pods.map((p) => p.name))
      const byProcess = new Map<string, number>()
      for (const p of pods) {
        const letter = p.name.slice("rise-riscv-runner-staging-".length, "rise-riscv-runner-staging-".length + 1)
        byProcess.set(letter, (byProcess.get(letter) ?? 0) + 1)
      }
      console.log(`two schedulers: runners reserved by process a=${byProcess.get("a") ?? 0} b=${byProcess.get("b") ?? 0}`)
    }).pipe(Effect.scoped, quiet))

  it.live("a second replica waits on the lock and takes over when the first dies", () =>
    Effect.gen(function*() {
      yield* truncate
      const shared = yield* sharedWorld(4)
      yield* installAcme(shared)
      // the first replica is stuck inside its cycle, holding the workers lock
      const firstScope = yield* Scope.make()
      const first = Context.get(yield* Layer.buildWithScope(process(), firstScope), Db)
      const stuck = yield* Effect.fork(first.withWorkerLock(Effect.never))
      yield* Effect.sleep("200 millis")
      yield* Layer.build(schedulerProcess(shared, { pollInterval: Duration.millis(100), wakeDebounce: Duration.millis(5) }, "b"))
      const webhook = Context.get(yield* Layer.build(process()), Db)
      yield* webhook.addJob(newJob(1))
      yield* Effect.sleep("700 millis")
      const kube = Context.get(shared, KubeMemoryControl)
      expect(yield* kube.pods).toHaveLength(0)
      // the first replica dies: its transaction is rolled back, the lock released
      yield* Fiber.interrupt(stuck)
      yield* Scope.close(firstScope, Exit.void)
      const pods = yield* eventually(kube.pods, (ps) => ps.length === 1)
      expect(pods).toHaveLength(1)
    }).pipe(Effect.scoped, quiet))
})
