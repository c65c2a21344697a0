/**
 * `npm run bench:weekly-usage`: what the weekly usage report's one statement (`Db.getWeeklyUsage`) costs at a
 * year of history, on a real PostgreSQL through `DbPostgres`.
 *
 * One database holds 1,000,000 jobs (`BENCH_JOBS`) of 50 organisations spread evenly over the last 365 days, each
 * run by a worker of its own (so as many workers), 2 % failed, the newest 200 still pending. The roll-up then
 * catches up (`Db.foldWeeklyUsage` until it folds nothing more: what the scheduler's pass does after an upgrade,
 * timed), so the report reads the folded days and the rows of today. Measured: the default
 * report (8 weeks), 5 runs after a warm-up, and a whole year (53 weeks), one run after a warm-up; the median and the worst beside the
 * target (the default report under 1 s), with the load average. On a shared machine the wall time says more about
 * the neighbours than the statement, so the same statement is also run on a connection of its own, serially (no
 * parallel workers), and the CPU time its server process spent is read from /proc (when the server is local).
 * The anchor is the former statement (bench/weeklyUsageAnchor.ts: every figure from the window's rows), run
 * alternately with the current one on that connection; the two answers are compared. It prints; it never fails on
 * a number.
 * `POSTGRES_URL` uses an existing server instead of an embedded one.
 */
import { PgClient } from "@effect/sql-pg"
import { Console, Context, Effect, Layer, Logger, LogLevel, Redacted } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import Pg from "pg"
import { migrate } from "../layers/db/migrate.ts"
import { pgClientLayer } from "../layers/db/pgClient.ts"
import { DbPostgres } from "../layers/db/postgres.ts"
import { REPORT_WORK_MEM, weeklyUsageStatement } from "../layers/db/postgresReportStatements.ts"
import { weeklyUsageAnchorStatement } from "./weeklyUsageAnchor.ts"
import { defaultDbTimeouts } from "../layers/db/timeouts.ts"
import { defaultRunnerConfig, maxWorkersFor } from "../src/domain/RunnerConfig.ts"
import { DEFAULT_WEEKS, FOLD_MAX_DAYS, weeklyWindow } from "../src/domain/WeeklyUsage.ts"
import { startEmbeddedPostgres, tempDataDir } from "../src/embedded/embeddedPostgres.ts"
import { Db } from "../src/services/Db.ts"

const JOBS = Number(process.env.BENCH_JOBS ?? 1_000_000)
const ENTITIES = 50
const PENDING = 200
const REPEAT = 5
/** the year's report: one run after the warm-up */
const REPEAT_YEAR = 1
const repeatsFor = (weeks: number) => (weeks === DEFAULT_WEEKS ? REPEAT : REPEAT_YEAR)
const TARGET_MS = 1000

const load = () => os.loadavg().map((l) => l.toFixed(2)).join(" ")
const median = (xs: ReadonlyArray<number>) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!

const withClient = async <A>(url: string, f: (c: Pg.Client) => Promise<A>) => {
  const client = new Pg.Client({ connectionString: url })
  await client.connect()
  try {
    return await f(client)
  } finally {
    await client.end()
  }
}

/**
 * A year of history in two set-based INSERTs: job i is queued at a point of the year proportional to i; its
 * worker is created 0–6 × 30 s later, runs 1–6 min after that for 5–35 min; one job in 50 fails without a runner.
 */
const seed = (url: string, n: number) =>
  withClient(url, async (c) => {
    await c.query("SET search_path TO staging")
    await c.query(`
      INSERT INTO workers (pod_name, provider, entity_id, entity_name, entity_type, installation_id, job_labels, k8s_pool,
                           k8s_image, k8s_node, status, created_at, running_at, completed_at, updated_at)
      SELECT 'w-' || i, 'github', 1000 + i % ${ENTITIES}, 'org-' || (i % ${ENTITIES}), 'Organization', 5000 + i % ${ENTITIES},
             '["ubuntu-24.04-riscv"]', 'scw-em-rv1', 'riscv-runner:bench', 'node-' || (i % 40), 'completed',
             q + (i % 7) * interval '30 seconds', q + (60 + i % 300) * interval '1 second',
             q + (60 + i % 300 + 300 + i % 1800) * interval '1 second', q + (60 + i % 300 + 300 + i % 1800) * interval '1 second'
      FROM generate_series(1, $1::int - ${PENDING}) AS i,
           LATERAL (SELECT now() - interval '365 days' * (1 - i::float8 / $1::int) AS q) AS t
      WHERE i % 50 <> 0`, [n])
    await c.query(`
      INSERT INTO jobs (job_id, status, failure_info, provider, entity_id, entity_name, entity_type, repo_full_name,
                        installation_id, job_labels, k8s_pool, k8s_image, k8s_pod, created_at, updated_at)
      SELECT i,
             (CASE WHEN i > $1::int - ${PENDING} THEN 'pending' WHEN i % 50 = 0 THEN 'failed' ELSE 'completed' END)::status_enum,
             CASE WHEN i % 50 = 0 AND i <= $1::int - ${PENDING}
                  THEN jsonb_build_object('version', 1, 'message', 'job not found for job_id=' || i) END,
             'github', 1000 + i % ${ENTITIES}, 'org-' || (i % ${ENTITIES}), 'Organization', 'org-' || (i % ${ENTITIES}) || '/app',
             5000 + i % ${ENTITIES}, '["ubuntu-24.04-riscv"]', 'scw-em-rv1', 'riscv-runner:bench',
             CASE WHEN i % 50 = 0 OR i > $1::int - ${PENDING} THEN NULL ELSE 'w-' || i END,
             q, q + (60 + i % 300 + 300 + i % 1800) * interval '1 second'
      FROM generate_series(1, $1::int) AS i,
           LATERAL (SELECT now() - interval '365 days' * (1 - i::float8 / $1::int) AS q) AS t`, [n])
    await c.query("ANALYZE staging.jobs; ANALYZE staging.workers")
  })

const program = Effect.gen(function*() {
  const given = process.env.POSTGRES_URL
  const serverUrl = given !== undefined && given !== ""
    ? given
    : (yield* startEmbeddedPostgres({ dataDir: yield* Effect.promise(() => tempDataDir("riscv-runner-bench-weekly-")), persistent: false })).url
  const dbName = `bench_weekly_${Date.now()}`
  yield* Effect.promise(() => withClient(serverUrl, (c) => c.query(`CREATE DATABASE ${dbName}`)))
  const url = new URL(serverUrl)
  url.pathname = `/${dbName}`
  const dbUrl = url.toString()
  yield* migrate("staging").pipe(Effect.provide(pgClientLayer({ url: Redacted.make(dbUrl), schema: "staging" })))

  yield* Console.log(`weekly usage benchmark: ${JOBS.toLocaleString("en")} jobs and their workers over 365 days, ${ENTITIES} organisations, real PostgreSQL`)
  yield* Console.log(`load average before: ${load()} (${os.cpus().length} CPUs)`)
  const seeded = performance.now()
  yield* Effect.promise(() => seed(dbUrl, JOBS))
  yield* Console.log(`seeded in ${((performance.now() - seeded) / 1000).toFixed(1)} s\n`)

  const ctx = yield* Layer.build(DbPostgres({ url: Redacted.make(dbUrl), schema: "staging", timeouts: { ...defaultDbTimeouts, statementMs: 120_000 } }))
  const db = Context.get(ctx, Db)
  const folding = performance.now()
  let passes = 0
  for (let folded = -1; folded !== 0; passes++) folded = (yield* db.foldWeeklyUsage(new Date())).days
  const mark = (yield* db.foldWeeklyUsage(new Date())).foldedUntil
  yield* Console.log(
    `roll-up caught up in ${passes} passes, ${((performance.now() - folding) / 1000).toFixed(1)} s (up to ${FOLD_MAX_DAYS} days a pass); folded until ${mark?.toISOString() ?? "-"}`
  )
  yield* Console.log(`load average after the roll-up: ${load()}\n`)
  const caps = {
    entities: Array.from({ length: ENTITIES }, (_, e) => ({ entityId: 1000 + e, cap: e % 10 === 0 ? 2 : maxWorkersFor(defaultRunnerConfig, 1000 + e) })),
    defaultCap: defaultRunnerConfig.defaultMaxWorkers
  }
  const measure = (weeks: number) =>
    Effect.gen(function*() {
      const window = weeklyWindow(new Date(), weeks)
      const once = Effect.gen(function*() {
        const t0 = performance.now()
        const rows = yield* db.getWeeklyUsage({ ...window, caps })
        return { ms: performance.now() - t0, rows: rows.length }
      })
      yield* once // warm-up
      const runs: Array<{ ms: number; rows: number }> = []
      for (let i = 0; i < repeatsFor(weeks); i++) runs.push(yield* once)
      return { weeks, median: median(runs.map((r) => r.ms)), max: Math.max(...runs.map((r) => r.ms)), rows: runs[0]!.rows }
    })
  // The statement alone on a connection of its own, serially (no parallel workers): wall time and the CPU time its
  // server process spent (utime + stime from /proc, when the server is local), for the current statement and the
  // anchor, alternating run by run so both see the same neighbours. Both must give the same answer.
  const serial = (weeks: number) =>
    Effect.gen(function*() {
      const sql = yield* PgClient.PgClient
      const req = { ...weeklyWindow(new Date(), weeks), caps }
      const [text, params] = weeklyUsageStatement(sql, req).compile()
      const [anchorText, anchorParams] = weeklyUsageAnchorStatement(sql, req).compile()
      return yield* Effect.promise(() =>
        withClient(dbUrl, async (c) => {
          await c.query(`SET search_path TO staging; SET max_parallel_workers_per_gather = 0; SET work_mem = '${REPORT_WORK_MEM}'`)
          const pid = (await c.query("SELECT pg_backend_pid() AS pid")).rows[0].pid as number
          const local = fs.existsSync(`/proc/${pid}/stat`)
          const ticks = () => {
            if (!local) return 0
            const fields = fs.readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ")
            return Number(fields[11]) + Number(fields[12])
          }
          const once = async (q: string, ps: ReadonlyArray<unknown>) => {
            const before = ticks()
            const t0 = performance.now()
            const r = await c.query(q, ps as Array<unknown>)
            return { ms: performance.now() - t0, cpu: (ticks() - before) * 10, rows: r.rows as Array<Record<string, unknown>> } // ticks of 10 ms
          }
          // the same answer to the microsecond: sums of float8 seconds may differ in their last bits with the order
          const key = (rows: Array<Record<string, unknown>>) =>
            JSON.stringify(rows.map((r) => JSON.stringify(r, (_, v) => (typeof v === "number" ? Math.round(v * 1e6) / 1e6 : v))).sort())
          const first = await once(text, params)
          const firstAnchor = await once(anchorText, anchorParams)
          const current: Array<{ ms: number; cpu: number }> = []
          const anchor: Array<{ ms: number; cpu: number }> = []
          for (let i = 0; i < repeatsFor(weeks); i++) {
            current.push(await once(text, params))
            anchor.push(await once(anchorText, anchorParams))
          }
          const sum = (xs: Array<{ ms: number; cpu: number }>) => ({
            ms: median(xs.map((x) => x.ms)),
            cpu: local ? median(xs.map((x) => x.cpu)) : undefined
          })
          return { weeks, current: sum(current), anchor: sum(anchor), same: key(first.rows) === key(firstAnchor.rows) }
        })
      )
    }).pipe(Effect.provide(pgClientLayer({ url: Redacted.make(dbUrl), schema: "staging" })))
  const results = [yield* measure(DEFAULT_WEEKS), yield* measure(53)]
  yield* Console.log(`load average after the page's runs: ${load()}`)
  const serialRuns = [yield* serial(DEFAULT_WEEKS), yield* serial(53)]
  const cpuCell = (cpu: number | undefined) => (cpu === undefined ? "(server not local)" : `${cpu} ms`)
  const lines = [
    ["report", "page (DbPostgres) median", "max", "target", "serial wall", "serial server CPU", "anchor wall", "anchor CPU", "same answer", "rows"],
    ...results.map((r, i) => [
      `${r.weeks} weeks${r.weeks === DEFAULT_WEEKS ? " (default)" : ""}`,
      `${r.median.toFixed(0)} ms`,
      `${r.max.toFixed(0)} ms`,
      r.weeks === DEFAULT_WEEKS ? `< ${TARGET_MS} ms` : "(none)",
      `${serialRuns[i]!.current.ms.toFixed(0)} ms`,
      cpuCell(serialRuns[i]!.current.cpu),
      `${serialRuns[i]!.anchor.ms.toFixed(0)} ms`,
      cpuCell(serialRuns[i]!.anchor.cpu),
      serialRuns[i]!.same ? "yes" : "NO",
      String(r.rows)
    ])
  ]
  const widths = lines[0]!.map((_, i) => Math.max(...lines.map((l) => l[i]!.length)))
  for (const l of lines) yield* Console.log(l.map((cell, i) => cell.padEnd(widths[i]!)).join("  "))
  yield* Console.log(`\nload average after: ${load()}`)
  yield* Effect.promise(() => withClient(serverUrl, (c) => c.query(`DROP DATABASE ${dbName} WITH (FORCE)`))).pipe(Effect.ignore)
})

Effect.runPromise(Effect.scoped(program).pipe(Logger.withMinimumLogLevel(LogLevel.Warning))).then(
  () => process.exit(0),
  (e) => {
    console.error(e)
    process.exit(1)
  }
)
