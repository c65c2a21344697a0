/**
 * `npm run bench:webhook`: how many signed `workflow_job` deliveries per second the webhook program takes on a
 * real PostgreSQL, beside what the same database does for raw single-row INSERTs in the same run.
 *
 * - An embedded PostgreSQL is started in a temporary directory (or `POSTGRES_URL` is used) with a fresh database.
 * - The webhook server runs in a child process, as it does in production; this process is only the load generator
 *   (keep-alive HTTP, `concurrency` requests in flight). Bodies and signatures are made before the clock starts.
 * - Every delivery is a `queued` job with our runner label, the heaviest path: the job row and its audit row
 *   with the trimmed payload in one statement, group-committed with the deliveries in flight beside it, and one
 *   NOTIFY per batch after it commits.
 * - The anchor is pgbench running the audit row's INSERT with a `pg_notify` in one statement, on the same
 *   PostgreSQL in the same run, with as many clients as deliveries in flight (1, 16, 64); the ratio is ours to it.
 *   The server's CPU per delivery comes from /proc.
 * - A last run offers a fixed 500 deliveries/s (open loop) and reports the latency at that rate.
 *
 * It prints figures and never fails on them. `BENCH_SECONDS` sets the length of each run (default 5).
 */
import { HttpServer } from "@effect/platform"
import { NodeHttpClient, NodeHttpServer, NodeRuntime } from "@effect/platform-node"
import examples from "@octokit/webhooks-examples"
import { Console, Context, Effect, Exit, Layer, Logger, Redacted, Scope } from "effect"
import { spawn, spawnSync } from "node:child_process"
import { createHmac } from "node:crypto"
import * as fs from "node:fs/promises"
import { Agent, createServer, request } from "node:http"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import Pg from "pg"
import { DbPostgres } from "../layers/db/postgres.ts"
import { defaultRunnerConfig } from "../src/domain/RunnerConfig.ts"
import { trimWorkflowJobPayload } from "../src/domain/workflowJobPayload.ts"
import { startEmbeddedPostgres, tempDataDir } from "../src/embedded/embeddedPostgres.ts"
import { WebhookServer } from "../src/webhook/server.ts"
import { webhookSettingsLayer } from "../src/webhook/WebhookSettings.ts"
import { percentile } from "./support/percentile.ts"

const SECRET = "bench-webhook-secret"
const POOL = 10
const SECONDS = Number(process.env.BENCH_SECONDS ?? "5")
const CONCURRENCY = [1, 16, 64]

// --- the server (child process) ---------------------------------------------------------------------------------

/**
 * Runs the webhook program on `url` and prints its port. It logs JSON lines to stdout as the container does
 * (`LOG_FORMAT=json`); the parent reads and drops them, so their cost is counted as in production.
 */
const serve = (url: string) =>
  Effect.gen(function*() {
    const context = yield* Layer.build(
      WebhookServer.pipe(
        Layer.provide(webhookSettingsLayer({ webhookSecret: Redacted.make(SECRET), runnerConfig: defaultRunnerConfig })),
        Layer.provide(NodeHttpClient.layer),
        Layer.provide(DbPostgres({ url: Redacted.make(url), schema: "staging", migrate: true, maxConnections: POOL })),
        Layer.provideMerge(NodeHttpServer.layer(createServer, { port: 0, host: "127.0.0.1" })),
        Layer.provide(Logger.replace(Logger.defaultLogger, Logger.jsonLogger))
      )
    )
    const address = Context.get(context, HttpServer.HttpServer).address
    yield* Console.log(JSON.stringify({ port: address._tag === "TcpAddress" ? address.port : 0 }))
    return yield* Effect.never
  }).pipe(Effect.scoped)

// --- the load generator ------------------------------------------------------------------------------------------

type Json = Record<string, any>
const queuedExample = (examples as unknown as Array<{ name: string; examples: Array<Json> }>)
  .find((e) => e.name === "workflow_job")!.examples.find((x) => x.action === "queued")!

let nextJobId = 1_000_000_000

/** A signed `queued` delivery for a new job, as GitHub would send it. */
const makeDelivery = () => {
  const p: Json = structuredClone(queuedExample)
  const jobId = ++nextJobId
  p.installation = { id: 777, node_id: "I_bench" }
  p.repository.owner = { ...p.repository.owner, login: "acme", id: 424242, type: "Organization" }
  p.repository.full_name = "acme/ci"
  p.workflow_job = { ...p.workflow_job, id: jobId, labels: ["ubuntu-24.04-riscv"], html_url: `https://github.com/acme/ci/actions/runs/1/job/${jobId}` }
  const body = Buffer.from(JSON.stringify(p))
  return {
    body,
    headers: {
      "content-type": "application/json",
      "content-length": String(body.length),
      "x-github-event": "workflow_job",
      "x-github-delivery": `bench-${jobId}`,
      "x-github-hook-installation-target-id": "2167633",
      "x-hub-signature-256": `sha256=${createHmac("sha256", SECRET).update(body).digest("hex")}`
    }
  }
}

/** The three deliveries of one job's life: queued, in_progress, completed. */
const makeLifecycle = () => {
  const queued = makeDelivery()
  const p: Json = JSON.parse(queued.body.toString("utf8"))
  const next = (action: string) => {
    const body = Buffer.from(JSON.stringify({ ...p, action, workflow_job: { ...p.workflow_job, status: action, runner_name: "rise-riscv-runner-bench" } }))
    return {
      body,
      headers: {
        ...queued.headers,
        "content-length": String(body.length),
        "x-github-delivery": `${queued.headers["x-github-delivery"]}-${action}`,
        "x-hub-signature-256": `sha256=${createHmac("sha256", SECRET).update(body).digest("hex")}`
      }
    }
  }
  return [queued, next("in_progress"), next("completed")]
}

const post = (agent: Agent, port: number, d: ReturnType<typeof makeDelivery>) =>
  new Promise<number>((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, method: "POST", path: "/", agent, headers: d.headers }, (res) => {
      res.resume()
      res.on("end", () => resolve(res.statusCode ?? 0))
    })
    req.on("error", reject)
    req.end(d.body)
  })

interface RunResult {
  readonly count: number
  readonly seconds: number
  readonly latencies: Array<number>
  readonly failures: number
}

/** `concurrency` closed loops, each sending its next item as soon as the previous one is answered. */
const closedLoop = async <A>(concurrency: number, seconds: number, prepare: () => A, send: (a: A) => Promise<boolean>): Promise<RunResult> => {
  // prepared ahead, so making a body is never timed
  const pool: Array<A> = []
  const refill = () => {
    while (pool.length < concurrency * 4) pool.push(prepare())
  }
  refill()
  const latencies: Array<number> = []
  let failures = 0
  const start = performance.now()
  const end = start + seconds * 1000
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (performance.now() < end) {
      if (pool.length === 0) refill()
      const item = pool.pop()!
      const t0 = performance.now()
      const ok = await send(item)
      latencies.push(performance.now() - t0)
      if (!ok) failures++
    }
  }))
  return { count: latencies.length, seconds: (performance.now() - start) / 1000, latencies: latencies.sort((a, b) => a - b), failures }
}

/** Offers `rate` deliveries per second whatever the answers do (GitHub does not wait for us). */
const openLoop = async (rate: number, seconds: number, port: number): Promise<RunResult> => {
  const agent = new Agent({ keepAlive: true, maxSockets: 256 })
  const total = Math.round(rate * seconds)
  const deliveries = Array.from({ length: total }, makeDelivery)
  const latencies: Array<number> = []
  let failures = 0
  const start = performance.now()
  const inFlight: Array<Promise<void>> = []
  for (let i = 0; i < total; i++) {
    const due = start + (i * 1000) / rate
    const wait = due - performance.now()
    if (wait > 1) await new Promise((r) => setTimeout(r, wait))
    const t0 = performance.now()
    inFlight.push(post(agent, port, deliveries[i]!).then((status) => {
      latencies.push(performance.now() - t0)
      if (status !== 200) failures++
    }, () => void failures++))
  }
  await Promise.all(inFlight)
  agent.destroy()
  return { count: latencies.length, seconds: (performance.now() - start) / 1000, latencies: latencies.sort((a, b) => a - b), failures }
}

const INSERT = `INSERT INTO staging.installation_events
  (source, event, outcome, installation_id, app_id, entity_type, entity_id, entity_name, payload, delivery_id)
  VALUES ('webhook', 'workflow_job.queued', 'job_stored', 777, 2167633, 'Organization', 424242, 'acme', $1::jsonb, $2)`

/** The same audit row, inserted straight through node-postgres: the ceiling for one row per request. */
const rawInserts = async (url: string, concurrency: number, seconds: number): Promise<RunResult> => {
  const pool = new Pg.Pool({ connectionString: url, max: Math.min(concurrency, POOL) })
  const payload = JSON.stringify(trimWorkflowJobPayload(JSON.parse(makeDelivery().body.toString("utf8"))))
  let n = 0
  const result = await closedLoop(concurrency, seconds, () => `raw-${++n}`, (id) => pool.query(INSERT, [payload, id]).then(() => true))
  await pool.end()
  return result
}

/**
 * The anchor: pgbench running the same audit-row INSERT with its `pg_notify` in one statement, with `concurrency`
 * clients, on the same PostgreSQL; undefined when pgbench is not installed (Debian's postgresql-client has it).
 */
const pgbench = async (url: string, concurrency: number, seconds: number): Promise<number | undefined> => {
  if (spawnSync("pgbench", ["--version"]).status !== 0) return undefined
  const payload = JSON.stringify(trimWorkflowJobPayload(JSON.parse(makeDelivery().body.toString("utf8")))).replaceAll("'", "''")
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), "bench-pgbench-"))
  const script = path.join(dir, "insert.sql")
  const insert = INSERT.replace("$1::jsonb", `'${payload}'::jsonb`).replace("$2", "'pgbench'")
  await fs.writeFile(script, `WITH ins AS (${insert} RETURNING id) SELECT pg_notify('bench_queue_event', id::text) FROM ins;`.replace(/\s+/g, " ") + "\n")
  const out = spawnSync("pgbench", ["-n", "-c", String(concurrency), "-j", String(Math.min(concurrency, 2)), "-T", String(seconds), "-f", script, url], {
    encoding: "utf8"
  })
  await fs.rm(dir, { recursive: true, force: true })
  const tps = /tps = ([\d.]+)/.exec(out.stdout ?? "")
  return tps === null ? undefined : Number(tps[1])
}

/** CPU seconds the process has used so far (user + system), from /proc; NaN where there is no /proc. */
const cpuSeconds = async (pid: number): Promise<number> => {
  try {
    const fields = (await fs.readFile(`/proc/${pid}/stat`, "utf8")).split(") ")[1]!.split(" ")
    return (Number(fields[11]) + Number(fields[12])) / 100
  } catch {
    return Number.NaN
  }
}

const startServer = (url: string) =>
  new Promise<{ port: number; pid: number; stop: () => void }>((resolve, reject) => {
    const self = fileURLToPath(import.meta.url)
    const child = spawn(process.execPath, [...process.execArgv, self, "--serve", url], { stdio: ["ignore", "pipe", "inherit"] })
    let out = ""
    child.stdout.setEncoding("utf8")
    let port: number | undefined
    child.stdout.on("data", (chunk: string) => {
      if (port !== undefined) return // the server's log lines, read and dropped
      out += chunk
      const line = out.split("\n").find((l) => l.startsWith("{\"port\""))
      if (line === undefined) return
      port = JSON.parse(line).port as number
      resolve({ port, pid: child.pid!, stop: () => child.kill("SIGTERM") })
    })
    child.on("exit", (code) => reject(new Error(`webhook server exited with ${code}`)))
  })

const fmt = (n: number, digits = 0) => (Number.isFinite(n) ? n.toFixed(digits) : "-")

const bench = async (adminUrl: string) => {
  const admin = new Pg.Client({ connectionString: adminUrl })
  await admin.connect()
  await admin.query("DROP DATABASE IF EXISTS bench_webhook WITH (FORCE)")
  await admin.query("CREATE DATABASE bench_webhook")
  await admin.end()
  const url = new URL(adminUrl)
  url.pathname = "/bench_webhook"
  const dbUrl = url.toString()

  const server = await startServer(dbUrl)
  const sql = new Pg.Client({ connectionString: dbUrl })
  await sql.connect()
  const reset = () => sql.query("TRUNCATE staging.jobs, staging.installation_events RESTART IDENTITY")
  try {
    console.log(`webhook benchmark: ${os.cpus().length} CPUs, ${SECONDS} s per run, server and PostgreSQL pools of ${POOL}`)
    // warm up both paths (JIT, connections, caches)
    const warm = new Agent({ keepAlive: true, maxSockets: 16 })
    await closedLoop(16, 1, makeDelivery, (d) => post(warm, server.port, d).then((s) => s === 200))
    warm.destroy()
    await rawInserts(dbUrl, 16, 1)

    const rows: Array<Array<string>> = []
    const figures: Array<{ concurrency: number; ratio: number; cpuMs: number }> = []
    for (const concurrency of CONCURRENCY) {
      await reset()
      const anchor = await pgbench(dbUrl, concurrency, SECONDS)
      await reset()
      const agent = new Agent({ keepAlive: true, maxSockets: concurrency })
      const cpu0 = await cpuSeconds(server.pid)
      const hook = await closedLoop(concurrency, SECONDS, makeDelivery, (d) => post(agent, server.port, d).then((s) => s === 200))
      const serverCpu = (await cpuSeconds(server.pid)) - cpu0
      agent.destroy()
      const hookRate = hook.count / hook.seconds
      const ratio = anchor === undefined ? Number.NaN : hookRate / anchor
      const cpuMs = (serverCpu * 1000) / hook.count
      figures.push({ concurrency, ratio, cpuMs })
      rows.push([
        String(concurrency),
        fmt(hookRate),
        fmt(percentile(hook.latencies, 0.5), 1),
        fmt(percentile(hook.latencies, 0.99), 1),
        String(hook.failures),
        anchor === undefined ? "not installed" : fmt(anchor),
        fmt(ratio, 2),
        fmt(cpuMs, 2)
      ])
    }
    const header = ["in flight", "deliveries/s", "p50 ms", "p99 ms", "non-200", "pgbench INSERT+pg_notify/s", "ratio", "server CPU ms/delivery"]
    const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)))
    const line = (cells: ReadonlyArray<string>) => cells.map((c, i) => c.padStart(widths[i]!)).join("  ")
    console.log("")
    console.log(line(header))
    for (const r of rows) console.log(line(r))
    const at16 = figures.find((f) => f.concurrency === 16)!
    console.log("")
    console.log(`ratio to pgbench at 16 in flight: ${fmt(at16.ratio, 2)}   (target >= 0.7)`)
    console.log(`server CPU per queued delivery at 16 in flight: ${fmt(at16.cpuMs, 2)} ms   (target <= 0.3 ms)`)

    // A job's whole life: its queued delivery inserts (and NOTIFYs), the next two only update the row.
    await reset()
    const lifeAgent = new Agent({ keepAlive: true, maxSockets: 16 })
    const life = await closedLoop(16, SECONDS, makeLifecycle, async (ds) => {
      let ok = true
      for (const d of ds) ok = (await post(lifeAgent, server.port, d)) === 200 && ok
      return ok
    })
    lifeAgent.destroy()
    console.log("")
    console.log(
      `job lifecycles (queued, in_progress, completed) at concurrency 16: ${fmt((life.count * 3) / life.seconds)} deliveries/s, ` +
        `p50 ${fmt(percentile(life.latencies, 0.5) / 3, 1)} ms per delivery`
    )

    await reset()
    const fixed = await openLoop(500, SECONDS, server.port)
    console.log("")
    console.log(
      `fixed offer of 500 deliveries/s: ${fmt(fixed.count / fixed.seconds)}/s answered, p50 ${fmt(percentile(fixed.latencies, 0.5), 1)} ms, ` +
        `p99 ${fmt(percentile(fixed.latencies, 0.99), 1)} ms, ${fixed.failures} non-200`
    )
    console.log(`load average ${os.loadavg().map((l) => l.toFixed(2)).join(" ")} (1, 5, 15 min)`)
  } finally {
    await sql.end()
    server.stop()
  }
}

if (process.argv[2] === "--serve") {
  NodeRuntime.runMain(serve(process.argv[3]!), { disablePrettyLogger: true })
} else {
  const main = Effect.gen(function*() {
    const given = process.env.POSTGRES_URL
    const adminUrl = given !== undefined && given !== ""
      ? given
      : (yield* startEmbeddedPostgres({ dataDir: yield* Effect.promise(() => tempDataDir("bench-webhook-pg-")), persistent: false })).url
    yield* Effect.promise(() => bench(adminUrl))
  })
  const scope = Effect.runSync(Scope.make())
  Effect.runPromise(Scope.extend(main, scope))
    .finally(() => Effect.runPromise(Scope.close(scope, Exit.void)))
    .then(() => process.exit(0), (e) => {
      console.error(e)
      process.exit(1)
    })
}
