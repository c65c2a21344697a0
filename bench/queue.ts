/**
 * `npm run bench:queue`: what `GET /queue.json` costs with a long queue, and whether the process stays
 * responsive meanwhile, on a real PostgreSQL through the real HTTP route.
 *
 * One database holds 50,000 pending jobs (`BENCH_JOBS`) of 200 organisations in two pools, 450 running workers
 * and 200 finished ones of the last hours (so estimates are computed). The scheduler's operator routes are
 * served on a real socket in this process, with the in-memory cluster (400 + 100 one-slot nodes). While each
 * `/queue.json` request runs, `/health` is asked every 5 ms on another connection, and its worst answer time is
 * the figure of the event loop's freedom.
 *
 * Measured: the default page (limit 100), a deep page (the last 100), one pool's page; and, in the same run, two
 * anchors: the paged route as it was before it read the queue's index (every pending job read in full through
 * `Db.getQueueRows`, then one page decided), and the route as it was (every pending job in one response, decided by the quadratic original kept in
 * `bench/queueViewBefore.ts`) at `BENCH_ANCHOR_JOBS` jobs (default: the same backlog; it takes about half a
 * minute and 1 GB there). Besides the worst `/health`, the event loop's longest block while each request runs
 * (`perf_hooks.monitorEventLoopDelay`) and, in-process without HTTP, the wall and CPU time of a page against
 * reading every row: figures less sensitive to a loaded machine.
 * Targets: `/queue.json` < 500 ms, worst `/health` < 50 ms. It prints; it never fails on a number.
 * `POSTGRES_URL` uses an existing server instead of an embedded one.
 */
import { HttpRouter, HttpServer, HttpServerResponse } from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { Console, Context, Effect, Exit, Layer, Logger, LogLevel, Redacted, Scope } from "effect"
import { createServer } from "node:http"
import * as os from "node:os"
import { monitorEventLoopDelay } from "node:perf_hooks"
import Pg from "pg"
import { DbPostgres } from "../layers/db/postgres.ts"
import { migrate } from "../layers/db/migrate.ts"
import { pgClientLayer } from "../layers/db/pgClient.ts"
import { defaultDbTimeouts } from "../layers/db/timeouts.ts"
import { KubeMemory } from "../layers/kube/memory.ts"
import { encodeLabelSet } from "../src/domain/Labels.ts"
import { defaultRunnerConfig } from "../src/domain/RunnerConfig.ts"
import { startEmbeddedPostgres, tempDataDir } from "../src/embedded/embeddedPostgres.ts"
import { readQueue, readQueueInput } from "../src/operator/queueRoute.ts"
import { queuePage } from "../src/scheduler/queueView.ts"
import { operatorPages } from "../src/operator/routes.ts"
import { SchedulerApiLive } from "../src/operator/server.ts"
import { portLayer, servePort } from "../src/observability/apiServer.ts"
import { SchedulerSettingsLive } from "../src/scheduler/settings.ts"
import { queueViewBefore } from "./queueViewBefore.ts"

const JOBS = Number(process.env.BENCH_JOBS ?? 50_000)
const ANCHOR_JOBS = Number(process.env.BENCH_ANCHOR_JOBS ?? JOBS)
const ENTITIES = 200
const POOLS = [{ pool: "scw-em-rv1", nodes: 400 }, { pool: "scw-em-rv2", nodes: 100 }] as const
const RUNNING_WORKERS = 450
const FINISHED_WORKERS = 200
const REPEAT = 5
const LABELS = ["ubuntu-24.04-riscv"]
const QUEUE_TARGET_MS = 500
const HEALTH_TARGET_MS = 50

const entityId = (e: number) => 100_000 + e
const login = (e: number) => `org-${e}`
/** one job in five goes to the second pool */
const poolOf = (i: number) => (i % 5 === 4 ? POOLS[1].pool : POOLS[0].pool)

const admin = async <A>(url: string, f: (c: Pg.Client) => Promise<A>) => {
  const c = new Pg.Client({ connectionString: url })
  await c.connect()
  try {
    return await f(c)
  } finally {
    await c.end()
  }
}

/** Multi-row INSERTs of `n` rows built by `row(i)` (its values) into `table (columns)`. */
const insertRows = async (client: Pg.Client, table: string, columns: ReadonlyArray<string>, n: number, row: (i: number) => ReadonlyArray<unknown>) => {
  for (let from = 0; from < n; from += 1000) {
    const tuples: Array<string> = []
    const params: Array<unknown> = []
    for (let i = from; i < Math.min(n, from + 1000); i++) {
      const values = row(i)
      tuples.push(`(${values.map((_, k) => `$${params.length + k + 1}`).join(", ")})`)
      params.push(...values)
    }
    await client.query(`INSERT INTO ${table} (${columns.join(", ")}) VALUES ${tuples.join(", ")}`, params)
  }
}

const seed = async (url: string, jobs: number, nowMs: number) => {
  const client = new Pg.Client({ connectionString: url, options: "-c search_path=staging" })
  await client.connect()
  try {
    await client.query("TRUNCATE jobs, workers")
    await insertRows(
      client,
      "jobs",
      ["job_id", "provider", "entity_id", "entity_name", "entity_type", "repo_full_name", "installation_id", "job_labels", "k8s_pool", "k8s_image", "html_url", "created_at", "updated_at"],
      jobs,
      (i) => {
        const e = i % ENTITIES
        // oldest first, spread over the last 6 hours
        const created = new Date(nowMs - 6 * 3_600_000 + Math.floor((i / jobs) * 6 * 3_600_000))
        return [i + 1, "github", entityId(e), login(e), "Organization", `${login(e)}/app`, 500_000 + e, encodeLabelSet(LABELS), poolOf(i), "riscv-runner:ubuntu-24.04-staging", `https://github.com/${login(e)}/app/actions/runs/${i}/job/${i + 1}`, created, created]
      }
    )
    const worker = (i: number, status: "running" | "completed") => {
      const e = i % ENTITIES
      const started = new Date(nowMs - (status === "running" ? (i % 20) * 60_000 : 3_600_000 + (i % 120) * 60_000))
      const done = status === "completed" ? new Date(started.getTime() + (5 + (i % 20)) * 60_000) : null
      return [`rise-riscv-runner-staging-b${status[0]}${i}`, "github", entityId(e), login(e), "Organization", 500_000 + e, null, encodeLabelSet(LABELS), poolOf(i), "riscv-runner:ubuntu-24.04-staging", `node-${i}`, status, started, started, done, done ?? started]
    }
    const columns = ["pod_name", "provider", "entity_id", "entity_name", "entity_type", "installation_id", "repo_full_name", "job_labels", "k8s_pool", "k8s_image", "k8s_node", "status", "created_at", "running_at", "completed_at", "updated_at"]
    await insertRows(client, "workers", columns, RUNNING_WORKERS, (i) => worker(i, "running"))
    await insertRows(client, "workers", columns, FINISHED_WORKERS, (i) => worker(i, "completed"))
    await client.query("ANALYZE")
  } finally {
    await client.end()
  }
}

/** The route as it was: every pending job in one bare array, decided by the quadratic original. */
const queueBefore = Effect.map(readQueueInput, (input) =>
  HttpServerResponse.text(JSON.stringify(queueViewBefore(input)), { contentType: "application/json" }))

/** The paged route before it read the index: every pending job read in full (`Db.getQueueRows`), one page decided. */
const queueRows = Effect.map(readQueueInput, (input) =>
  HttpServerResponse.text(JSON.stringify(queuePage(input, { pool: null, offset: 0, limit: 100 })), { contentType: "application/json" }))

interface Timed {
  readonly ms: number
  readonly bytes: number
  readonly status: number
  /** the worst /health answer time while the request ran */
  readonly healthMs: number
  readonly healthChecks: number
  /** /health requests that failed (a connection reset during a long block) */
  readonly healthErrors: number
  /** the event loop's longest delay while the request ran (perf_hooks.monitorEventLoopDelay, 1 ms resolution) */
  readonly loopMs: number
}

/** One request, with `/health` asked every 5 ms on its own connection until it is answered. */
const timed = async (base: string, path: string): Promise<Timed> => {
  let running = true
  let worst = 0
  let checks = 0
  let errors = 0
  const loop = monitorEventLoopDelay({ resolution: 1 })
  loop.enable()
  const prober = (async () => {
    while (running) {
      const t0 = performance.now()
      try {
        await (await fetch(`${base}/health`)).text()
        checks++
      } catch {
        errors++
      }
      worst = Math.max(worst, performance.now() - t0)
      await new Promise((r) => setTimeout(r, 5))
    }
  })()
  const t0 = performance.now()
  const res = await fetch(`${base}${path}`)
  const body = await res.text()
  const ms = performance.now() - t0
  running = false
  await prober
  loop.disable()
  return { ms, bytes: body.length, status: res.status, healthMs: worst, healthChecks: checks, healthErrors: errors, loopMs: loop.max / 1e6 }
}

const median = (xs: ReadonlyArray<number>) => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length === 0 ? 0 : s[Math.floor(s.length / 2)]!
}
const fmt = (x: number, d = 0) => x.toFixed(d)
const load = () => os.loadavg().map((l) => l.toFixed(2)).join(" ")

const program = Effect.gen(function*() {
  const given = process.env.POSTGRES_URL
  const serverUrl = given !== undefined && given !== ""
    ? given
    : (yield* startEmbeddedPostgres({ dataDir: yield* Effect.promise(() => tempDataDir("riscv-runner-bench-queue-")), persistent: false })).url
  const dbName = `bench_queue_${Date.now()}`
  yield* Effect.promise(() => admin(serverUrl, (c) => c.query(`CREATE DATABASE ${dbName}`)))
  const url = new URL(serverUrl)
  url.pathname = `/${dbName}`
  const dbUrl = url.toString()
  yield* migrate("staging").pipe(Effect.provide(pgClientLayer({ url: Redacted.make(dbUrl), schema: "staging" })))

  const world = yield* Layer.build(Layer.mergeAll(
    // the anchors read the whole backlog, which on a loaded machine outlasts the default 5 s statement timeout
    DbPostgres({ url: Redacted.make(dbUrl), schema: "staging", timeouts: { ...defaultDbTimeouts, statementMs: 120_000 } }),
    KubeMemory({ tick: null, nodes: POOLS.flatMap((p) => Array.from({ length: p.nodes }, (_, i) => ({ name: `${p.pool}-node-${i}`, pool: p.pool, slots: 1 }))) }),
    SchedulerSettingsLive({ runnerConfig: defaultRunnerConfig, prod: false })
  ))
  const port = portLayer(SchedulerApiLive, operatorPages.pipe(HttpRouter.get("/queue-before.json", queueBefore), HttpRouter.get("/queue-rows.json", queueRows)))
  const server = yield* Layer.build(
    servePort(port).pipe(Layer.provide(Layer.succeedContext(world)), Layer.provideMerge(NodeHttpServer.layer(createServer, { port: 0 })))
  )
  const address = Context.get(server, HttpServer.HttpServer).address
  if (address._tag !== "TcpAddress") throw new Error("expected a TCP address")
  const base = `http://127.0.0.1:${address.port}`

  yield* Console.log(`queue benchmark: ${JOBS.toLocaleString("en")} pending jobs of ${ENTITIES} organisations in 2 pools, ${RUNNING_WORKERS} running workers, real PostgreSQL, HTTP on a real socket`)
  yield* Console.log(`load average before: ${load()} (${os.cpus().length} CPUs)\n`)
  yield* Effect.promise(() => seed(dbUrl, JOBS, Date.now()))

  const timedEffect = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
    Effect.gen(function*() {
      const t0 = performance.now()
      const cpu0 = process.cpuUsage()
      yield* effect
      const cpu = process.cpuUsage(cpu0)
      return { ms: performance.now() - t0, cpuMs: (cpu.user + cpu.system) / 1000 }
    })
  const readMs: Array<{ ms: number; cpuMs: number }> = []
  const pageMs: Array<{ ms: number; cpuMs: number }> = []
  for (let i = 0; i < REPEAT; i++) {
    readMs.push(yield* timedEffect(readQueueInput).pipe(Effect.provide(world)))
    pageMs.push(yield* timedEffect(readQueue({ pool: null, offset: 0, limit: 100 })).pipe(Effect.provide(world)))
  }

  const run = (path: string) =>
    Effect.promise(async () => {
      await timed(base, path) // warm-up
      const runs: Array<Timed> = []
      for (let i = 0; i < REPEAT; i++) runs.push(await timed(base, path))
      return runs
    })
  const first = yield* run("/queue.json")
  const deep = yield* run(`/queue.json?offset=${Math.max(0, JOBS - 100)}&limit=100`)
  const pool = yield* run(`/queue.json?pool=${POOLS[1].pool}&limit=1000`)
  // the dashboard's other request, re-fetched every 5 s beside /queue.json
  const dashboard = yield* run("/dashboard.json")
  const loadAfterNew = load()
  const rowsRoute = yield* run("/queue-rows.json")

  // the anchor, in the same run: the route as it was, at ANCHOR_JOBS jobs
  if (ANCHOR_JOBS !== JOBS) yield* Effect.promise(() => seed(dbUrl, ANCHOR_JOBS, Date.now()))
  const anchorFirst = ANCHOR_JOBS !== JOBS ? yield* run("/queue.json") : first
  const before = yield* Effect.promise(() => timed(base, "/queue-before.json"))

  const rows: Array<ReadonlyArray<string>> = []
  const worstOf = (runs: ReadonlyArray<Timed>, f: (r: Timed) => number) => Math.max(...runs.map(f))
  const row = (name: string, runs: ReadonlyArray<Timed>, note?: string) => {
    const ms = median(runs.map((r) => r.ms))
    const errors = runs.reduce((n, r) => n + r.healthErrors, 0)
    rows.push([
      name,
      `${fmt(ms)} ms`,
      note ?? `${fmt(worstOf(runs, (r) => r.ms))} ms`,
      note === undefined ? `< ${QUEUE_TARGET_MS} ms` : "",
      `${fmt(worstOf(runs, (r) => r.healthMs), 1)} ms${errors > 0 ? ` (${errors} failed)` : ""}`,
      note === undefined ? `< ${HEALTH_TARGET_MS} ms` : "",
      `${fmt(worstOf(runs, (r) => r.loopMs), 1)} ms`,
      `${fmt(median(runs.map((r) => r.bytes)) / 1024)} KiB`,
      String(runs[0]!.status)
    ])
  }
  row("/queue.json (first 100)", first)
  row(`/queue.json?offset=${Math.max(0, JOBS - 100)} (last 100)`, deep)
  row(`/queue.json?pool=${POOLS[1].pool}&limit=1000`, pool)
  row("/dashboard.json", dashboard)
  row("anchor: the paged route reading every row (first 100)", rowsRoute, `${fmt(worstOf(rowsRoute, (r) => r.ms))} ms`)
  row(`anchor: the route before, all ${ANCHOR_JOBS.toLocaleString("en")} jobs`, [before], "(1 run)")
  const header = ["request", "median", "max", "target", "worst /health", "target", "longest loop block", "body", "status"]
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)))
  const line = (cells: ReadonlyArray<string>) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ")
  yield* Console.log(line(header))
  for (const r of rows) yield* Console.log(line(r))
  const anchorMs = median(anchorFirst.map((r) => r.ms))
  const rowsMs = median(rowsRoute.map((r) => r.ms))
  const medianOf = (xs: ReadonlyArray<{ ms: number; cpuMs: number }>, f: (x: { ms: number; cpuMs: number }) => number) => fmt(median(xs.map(f)))
  yield* Console.log("")
  yield* Console.log(
    `reading and deciding the first page in-process (no HTTP), median of ${REPEAT}: now ${medianOf(pageMs, (x) => x.ms)} ms wall, ` +
      `${medianOf(pageMs, (x) => x.cpuMs)} ms CPU; reading every row in full (Db.getQueueRows + the rest, as both anchors do): ` +
      `${medianOf(readMs, (x) => x.ms)} ms wall, ${medianOf(readMs, (x) => x.cpuMs)} ms CPU (the process's CPU, PostgreSQL's not counted)`
  )
  yield* Console.log(
    `ratio, the paged route reading every row / now, first page at ${JOBS.toLocaleString("en")} jobs: ${fmt(rowsMs / median(first.map((r) => r.ms)), 1)}x the time, ` +
      `${fmt(worstOf(rowsRoute, (r) => r.loopMs) / worstOf(first, (r) => r.loopMs), 1)}x the longest loop block`
  )
  yield* Console.log(
    `ratio, the route before / now, both at ${ANCHOR_JOBS.toLocaleString("en")} jobs: ${fmt(before.ms / anchorMs, 1)}x the time, ` +
      `${fmt(before.healthMs / worstOf(anchorFirst, (r) => r.healthMs), 1)}x the worst /health`
  )
  yield* Console.log(`load average: ${loadAfterNew} after the new route's runs, ${load()} at the end (1, 5, 15 min)`)
}).pipe(Effect.scoped, Effect.provide(Logger.minimumLogLevel(LogLevel.Warning)))

const scope = Effect.runSync(Scope.make())
Effect.runPromise(program.pipe(Scope.extend(scope)))
  .catch((e) => {
    console.error(e)
    process.exitCode = 1
  })
  .finally(() => Effect.runPromise(Scope.close(scope, Exit.void)))
