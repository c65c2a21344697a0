/**
 * `npm run bench:webhook`: how many signed `workflow_job` deliveries per second the webhook takes on a real
 * PostgreSQL, and what each costs the server, beside two anchors measured in the same run.
 *
 * - The server is the bundled entrypoint (`node dist/src/main.mjs webhook`, built with the Dockerfile's esbuild
 *   command) in a child process, under `LOG_FORMAT=json` as the image runs it; this process is only the load
 *   generator (keep-alive HTTP, `concurrency` requests in flight). Its stdout (the log) is read and dropped, so
 *   writing the log is counted, and its bytes per delivery are reported. Bodies and signatures are made before
 *   the clock starts.
 * - Every delivery is a `queued` job with our runner label, the heaviest path: the job row and its audit row with
 *   the trimmed payload in one statement, group-committed with the deliveries in flight beside it, and one NOTIFY
 *   per batch after it commits.
 * - Anchor 1, the database's limit: pgbench running the audit row's INSERT with a `pg_notify` in one statement,
 *   on the same PostgreSQL, with as many clients as deliveries in flight (1, 16, 64); the ratio is ours to it.
 * - Anchor 2, the code before: the server of git revision `BENCH_ANCHOR` (default: the merge base with `main`,
 *   when that is not HEAD; `none` skips it), bundled from `git archive` the same way, on a database of its own,
 *   measured in turns with this tree's server.
 * - The server's CPU per delivery comes from /proc/<pid>/stat (user + system) around each run, its kernel share
 *   (system) printed beside it.
 * - Then, for this tree only: job lifecycles (queued, in_progress, completed) and a fixed offer of 500/s.
 *
 * It prints figures and never fails on them. `BENCH_SECONDS` sets the length of each run (default 3: the whole
 * run takes about a minute). `BENCH_PROFILE=<dir>` starts this tree's server with `--cpu-prof` into `<dir>`
 * (written when the server exits at the end).
 */
import examples from "@octokit/webhooks-examples"
import { Effect, Exit, Scope } from "effect"
import { type ChildProcess, execFileSync, spawn, spawnSync } from "node:child_process"
import { createHmac } from "node:crypto"
import * as fs from "node:fs/promises"
import { Agent, request } from "node:http"
import * as os from "node:os"
import * as path from "node:path"
import Pg from "pg"
import { trimWorkflowJobPayload } from "../src/domain/workflowJobPayload.ts"
import { freePort, startEmbeddedPostgres, tempDataDir } from "../src/embedded/embeddedPostgres.ts"
import { type AppBundle, bundleRevision, bundleThisTree, repoRoot } from "./support/bundle.ts"
import { percentile } from "./support/percentile.ts"

const SECRET = "bench-webhook-secret"
const SECONDS = Number(process.env.BENCH_SECONDS ?? "3")
const CONCURRENCY = [1, 16, 64]
/** the server's PostgreSQL pool (the default) and the raw clients' */
const POOL = 10

// --- deliveries ----------------------------------------------------------------------------------------------------

type Json = Record<string, any>
const queuedExample = (examples as unknown as Array<{ name: string; examples: Array<Json> }>)
  .find((e) => e.name === "workflow_job")!.examples.find((x) => x.action === "queued")!

let nextJobId = 1_000_000_000

interface Delivery {
  readonly body: Buffer
  readonly headers: Record<string, string>
}

const signed = (body: Buffer, deliveryId: string): Delivery => ({
  body,
  headers: {
    "content-type": "application/json",
    "content-length": String(body.length),
    "x-github-event": "workflow_job",
    "x-github-delivery": deliveryId,
    "x-github-hook-installation-target-id": "2167633",
    "x-hub-signature-256": `sha256=${createHmac("sha256", SECRET).update(body).digest("hex")}`
  }
})

/** A signed `queued` delivery for a new job, as GitHub would send it. */
const makeDelivery = (): Delivery => {
  const p: Json = structuredClone(queuedExample)
  const jobId = ++nextJobId
  p.installation = { id: 777, node_id: "I_bench" }
  p.repository.owner = { ...p.repository.owner, login: "acme", id: 424242, type: "Organization" }
  p.repository.full_name = "acme/ci"
  p.workflow_job = { ...p.workflow_job, id: jobId, labels: ["ubuntu-24.04-riscv"], html_url: `https://github.com/acme/ci/actions/runs/1/job/${jobId}` }
  return signed(Buffer.from(JSON.stringify(p)), `bench-${jobId}`)
}

/** The three deliveries of one job's life: queued, in_progress, completed. */
const makeLifecycle = (): Array<Delivery> => {
  const queued = makeDelivery()
  const p: Json = JSON.parse(queued.body.toString("utf8"))
  const next = (action: string) =>
    signed(
      Buffer.from(JSON.stringify({ ...p, action, workflow_job: { ...p.workflow_job, status: action, runner_name: "rise-riscv-runner-bench" } })),
      `${queued.headers["x-github-delivery"]}-${action}`
    )
  return [queued, next("in_progress"), next("completed")]
}

const post = (agent: Agent, port: number, d: Delivery) =>
  new Promise<number>((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, method: "POST", path: "/", agent, headers: d.headers }, (res) => {
      res.resume()
      res.on("end", () => resolve(res.statusCode ?? 0))
    })
    req.on("error", reject)
    req.end(d.body)
  })

// --- load ----------------------------------------------------------------------------------------------------------

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
      const ok = await send(item).catch(() => false)
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

// --- the pgbench anchor --------------------------------------------------------------------------------------------

const INSERT = `INSERT INTO staging.installation_events
  (source, event, outcome, installation_id, app_id, entity_type, entity_id, entity_name, payload, delivery_id)
  VALUES ('webhook', 'workflow_job.queued', 'job_stored', 777, 2167633, 'Organization', 424242, 'acme', $1::jsonb, $2)`

/**
 * pgbench running the audit-row INSERT with its `pg_notify` in one statement, with `concurrency` clients, on the
 * same PostgreSQL; undefined when pgbench is not installed (Debian's postgresql-client has it).
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

// --- the servers ---------------------------------------------------------------------------------------------------

/** CPU seconds the process has used so far (user + system), from /proc; NaN where there is no /proc. */
const cpuSeconds = async (pid: number): Promise<number> => {
  const { user, system } = await cpuSplit(pid)
  return user + system
}

/**
 * The same, split into user and system (kernel) time: sockets on loopback cost the kernel's work for both ends
 * inside our system calls, which no change of our code in user space removes.
 */
const cpuSplit = async (pid: number): Promise<{ readonly user: number; readonly system: number }> => {
  try {
    const fields = (await fs.readFile(`/proc/${pid}/stat`, "utf8")).split(") ")[1]!.split(" ")
    // utime and stime, in clock ticks (100 a second on Linux)
    return { user: Number(fields[11]) / 100, system: Number(fields[12]) / 100 }
  } catch {
    return { user: Number.NaN, system: Number.NaN }
  }
}


interface Server {
  readonly label: string
  readonly dbUrl: string
  readonly port: number
  readonly pid: number
  /** bytes the server has written to stdout so far: its log */
  readonly logBytes: () => number
  readonly stop: () => Promise<void>
}

/** The environment the image gives the process, and what the webhook role needs. */
const serverEnv = (dbUrl: string, port: number): Record<string, string> => ({
  PATH: process.env.PATH ?? "",
  HOME: process.env.HOME ?? "",
  NODE_ENV: "production",
  LOG_FORMAT: "json",
  POSTGRES_URL: dbUrl,
  GHAPP_WEBHOOK_SECRET: SECRET,
  PORT: String(port)
})

/** A fresh database on the server `adminUrl` points at; its URL. */
const freshDatabase = async (adminUrl: string, name: string): Promise<string> => {
  const admin = new Pg.Client({ connectionString: adminUrl })
  await admin.connect()
  await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
  await admin.query(`CREATE DATABASE ${name}`)
  await admin.end()
  const url = new URL(adminUrl)
  url.pathname = `/${name}`
  return url.toString()
}

/** Migrates a database of its own with the bundle's `migrate`, then starts its `webhook` role. */
const startServer = async (bundle: AppBundle, adminUrl: string, database: string, nodeArgs: ReadonlyArray<string> = []): Promise<Server> => {
  const dbUrl = await freshDatabase(adminUrl, database)
  const port = await freePort()
  const env = serverEnv(dbUrl, port)
  execFileSync(process.execPath, [bundle.entry, "migrate"], { cwd: bundle.appDir, env, stdio: "pipe" })
  const child: ChildProcess = spawn(process.execPath, [...nodeArgs, bundle.entry, "webhook"], { cwd: bundle.appDir, env, stdio: ["ignore", "pipe", "inherit"] })
  let bytes = 0
  child.stdout!.on("data", (chunk: Buffer) => void (bytes += chunk.length))
  const exited = new Promise<void>((resolve) => child.on("exit", () => resolve()))
  const deadline = Date.now() + 30_000
  for (;;) {
    const up = await fetch(`http://127.0.0.1:${port}/health`).then((r) => r.ok, () => false)
    if (up) break
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`the ${bundle.label} webhook did not start`)
    await new Promise((r) => setTimeout(r, 100))
  }
  return {
    label: bundle.label,
    dbUrl,
    port,
    pid: child.pid!,
    logBytes: () => bytes,
    stop: async () => {
      if (child.exitCode === null) child.kill("SIGTERM")
      await exited
    }
  }
}

const reset = async (dbUrl: string) => {
  const sql = new Pg.Client({ connectionString: dbUrl })
  await sql.connect()
  await sql.query("TRUNCATE staging.jobs, staging.installation_events RESTART IDENTITY")
  await sql.end()
}

interface Measured {
  readonly rate: number
  readonly p50: number
  readonly p99: number
  readonly failures: number
  readonly cpuMs: number
  /** of `cpuMs`, the kernel's (system time) */
  readonly systemMs: number
  readonly logBytes: number
}

/** `concurrency` closed loops of `queued` deliveries against `server`, with its CPU and log bytes per delivery. */
const measure = async (server: Server, concurrency: number, seconds: number): Promise<Measured> => {
  await reset(server.dbUrl)
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency })
  const cpu0 = await cpuSplit(server.pid)
  const log0 = server.logBytes()
  const run = await closedLoop(concurrency, seconds, makeDelivery, (d) => post(agent, server.port, d).then((s) => s === 200))
  const cpu1 = await cpuSplit(server.pid)
  const system = cpu1.system - cpu0.system
  const cpu = cpu1.user - cpu0.user + system
  agent.destroy()
  return {
    rate: run.count / run.seconds,
    p50: percentile(run.latencies, 0.5),
    p99: percentile(run.latencies, 0.99),
    failures: run.failures,
    cpuMs: (cpu * 1000) / run.count,
    systemMs: (system * 1000) / run.count,
    logBytes: (server.logBytes() - log0) / run.count
  }
}

// --- the run -------------------------------------------------------------------------------------------------------

const fmt = (n: number, digits = 0) => (Number.isFinite(n) ? n.toFixed(digits) : "-")
const loadAverage = () => os.loadavg().map((l) => l.toFixed(2)).join(" ")

const table = (header: ReadonlyArray<string>, rows: ReadonlyArray<ReadonlyArray<string>>) => {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)))
  const line = (cells: ReadonlyArray<string>) => cells.map((c, i) => c.padStart(widths[i]!)).join("  ")
  return [line(header), ...rows.map(line)].join("\n")
}

/** `BENCH_ANCHOR`, else the merge base with `main` when it is not HEAD; undefined for none. */
const anchorRevision = (): string | undefined => {
  const asked = process.env.BENCH_ANCHOR
  if (asked === "none") return undefined
  if (asked !== undefined && asked !== "") return asked
  const git = (...args: Array<string>) => spawnSync("git", args, { cwd: repoRoot, encoding: "utf8" }).stdout?.trim() ?? ""
  const base = git("merge-base", "HEAD", "main")
  return base !== "" && base !== git("rev-parse", "HEAD") ? base : undefined
}

const bench = async (adminUrl: string) => {
  const revision = anchorRevision()
  const bundles = [...(revision === undefined ? [] : [bundleRevision(revision)]), bundleThisTree()]
  const profileDir = process.env.BENCH_PROFILE
  const servers: Array<Server> = []
  try {
    for (const [i, bundle] of bundles.entries()) {
      const ours = i === bundles.length - 1
      servers.push(await startServer(bundle, adminUrl, ours ? "bench_webhook" : "bench_webhook_anchor", ours && profileDir ? ["--cpu-prof", `--cpu-prof-dir=${path.resolve(profileDir)}`] : []))
    }
    const ours = servers[servers.length - 1]!
    const anchor = servers.length > 1 ? servers[0] : undefined
    console.log(`webhook benchmark: ${os.cpus().length} CPUs, ${SECONDS} s per run, the bundled entrypoint under LOG_FORMAT=json, PostgreSQL pool of ${POOL}`)
    console.log(`servers: ${servers.map((s) => s.label).join(", ")}; load average at start ${loadAverage()} (1, 5, 15 min)`)
    // warm up every server (JIT, connections, caches) and the database
    for (const server of servers) await measure(server, 16, Math.min(2, SECONDS))
    await pgbench(ours.dbUrl, 16, 1)

    const rows: Array<Array<string>> = []
    const at16 = new Map<string, Measured & { ratio: number }>()
    for (const concurrency of CONCURRENCY) {
      await reset(ours.dbUrl)
      const limit = await pgbench(ours.dbUrl, concurrency, SECONDS)
      for (const server of servers) {
        const m = await measure(server, concurrency, SECONDS)
        const ratio = limit === undefined ? Number.NaN : m.rate / limit
        if (concurrency === 16) at16.set(server.label, { ...m, ratio })
        rows.push([
          server.label,
          String(concurrency),
          fmt(m.rate),
          fmt(m.p50, 1),
          fmt(m.p99, 1),
          String(m.failures),
          limit === undefined ? "not installed" : fmt(limit),
          fmt(ratio, 2),
          fmt(m.cpuMs, 2),
          fmt(m.systemMs, 2),
          fmt(m.logBytes)
        ])
      }
    }
    console.log("")
    console.log(table(
      ["server", "in flight", "deliveries/s", "p50 ms", "p99 ms", "non-200", "pgbench INSERT+pg_notify/s", "ratio", "server CPU ms/delivery", "of it kernel ms", "log bytes/delivery"],
      rows
    ))
    const mine = at16.get(ours.label)!
    console.log("")
    console.log(`ratio to pgbench at 16 in flight: ${fmt(mine.ratio, 2)}   (target >= 0.7)`)
    console.log(`server CPU per queued delivery at 16 in flight: ${fmt(mine.cpuMs, 2)} ms   (target <= 0.3 ms)`)
    if (anchor !== undefined) {
      const before = at16.get(anchor.label)!
      console.log(
        `against ${anchor.label} at 16 in flight: ${fmt(mine.rate / before.rate, 2)}x the deliveries/s, ` +
          `${fmt(mine.cpuMs / before.cpuMs, 2)}x the CPU per delivery, ${fmt(mine.logBytes)} log bytes per delivery (was ${fmt(before.logBytes)})`
      )
    }

    // A job's whole life: its queued delivery inserts (and NOTIFYs), the next two only update the row.
    await reset(ours.dbUrl)
    const lifeAgent = new Agent({ keepAlive: true, maxSockets: 16 })
    const cpu0 = await cpuSeconds(ours.pid)
    const life = await closedLoop(16, SECONDS, makeLifecycle, async (ds) => {
      let ok = true
      for (const d of ds) ok = (await post(lifeAgent, ours.port, d)) === 200 && ok
      return ok
    })
    const lifeCpu = (await cpuSeconds(ours.pid)) - cpu0
    lifeAgent.destroy()
    console.log("")
    console.log(
      `job lifecycles (queued, in_progress, completed) at 16 in flight: ${fmt((life.count * 3) / life.seconds)} deliveries/s, ` +
        `p50 ${fmt(percentile(life.latencies, 0.5) / 3, 1)} ms and ${fmt((lifeCpu * 1000) / (life.count * 3), 2)} ms of server CPU per delivery`
    )

    await reset(ours.dbUrl)
    const fixed = await openLoop(500, SECONDS, ours.port)
    console.log(
      `fixed offer of 500 deliveries/s: ${fmt(fixed.count / fixed.seconds)}/s answered, p50 ${fmt(percentile(fixed.latencies, 0.5), 1)} ms, ` +
        `p99 ${fmt(percentile(fixed.latencies, 0.99), 1)} ms, ${fixed.failures} non-200`
    )
    console.log(`load average at end ${loadAverage()} (1, 5, 15 min)`)
  } finally {
    await Promise.all(servers.map((s) => s.stop()))
    for (const b of bundles) b.remove()
    if (profileDir) console.log(`CPU profile of this tree's server written to ${profileDir}`)
  }
}

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
