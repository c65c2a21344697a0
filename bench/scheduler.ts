/**
 * `npm run bench:scheduler`: what one scheduler cycle costs on a real PostgreSQL with the in-memory GitHub and
 * cluster, for backlogs of 100, 1,000 and 10,000 pending jobs across 200 entities and 500 single-slot nodes.
 *
 * For each backlog, on a fresh database:
 * - burst: the first cycle, which fills the free boards (up to 500 runners);
 * - steady: cycles with every board taken and the whole backlog still waiting (median of 5);
 * - churn: 5 rounds in which every running pod runs one of its entity's jobs and exits, freeing its board, and the
 *   next cycle marks the workers completed and provisions the next runners.
 * It prints the cycle time, the SQL round trips per cycle (every query the pool's clients send, BEGIN, LOCK,
 * SAVEPOINT and COMMIT included), the Kube calls per cycle, and the GitHub calls per provisioned runner (all of
 * them: tokens, runner groups, JIT configs, job polls, runner listings), amortised over the burst and churn.
 * The jobs' news is 0 to 30 minutes old, so job sync polls the stale ones (at most 50 per cycle).
 *
 * It measures and prints; it never fails on a number. `POSTGRES_URL` uses an existing server instead of an
 * embedded one.
 */
import { PgClient } from "@effect/sql-pg"
import { Console, Context, Duration, Effect, Exit, Layer, Logger, LogLevel, Redacted, Scope } from "effect"
import { generateKeyPairSync } from "node:crypto"
import { writeFile } from "node:fs/promises"
import * as inspector from "node:inspector"
import * as os from "node:os"
import Pg from "pg"
import { GithubLive } from "../layers/github/octokit.ts"
import { startGithubFront } from "./support/githubFront.ts"
import { DbPostgresFromClient } from "../layers/db/postgres.ts"
import { migrate } from "../layers/db/migrate.ts"
import { pgClientLayer } from "../layers/db/pgClient.ts"
import { GithubMemoryControl, GithubMemoryWith } from "../layers/github/memory.ts"
import { KubeMemory, KubeMemoryControl } from "../layers/kube/memory.ts"
import { encodeLabelSet } from "../src/domain/Labels.ts"
import { defaultRunnerConfig } from "../src/domain/RunnerConfig.ts"
import { startEmbeddedPostgres, tempDataDir } from "../src/embedded/embeddedPostgres.ts"
import { runCycle, runDemandCycle } from "../src/scheduler/cycle.ts"
import { SchedulerSettingsLive } from "../src/scheduler/settings.ts"
import { makeSchedulerState } from "../src/scheduler/state.ts"
import { Db } from "../src/services/Db.ts"
import { Github, totalCalls } from "../src/services/Github.ts"
import { Kube } from "../src/services/Kube.ts"
import { makeTwinMeter, meteredService } from "./support/twinMeter.ts"

/** `BENCH_BACKLOGS=10000` runs only that size (comma-separated). */
const BACKLOGS = (process.env.BENCH_BACKLOGS ?? "100,1000,10000").split(",").map(Number)
const ENTITIES = 200
const NODES = 500
const STEADY_CYCLES = 5
const CHURN_ROUNDS = 5
const POOL = "scw-em-rv1"
const LABELS = ["ubuntu-24.04-riscv"]
const ORG_APP = 2167633
const PERSONAL_APP = 3131217

/** BIGINT ids and counts as numbers, as the service's own pool reads them (layers/db/pgClient.ts). */
const types: Pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: "text" | "binary") =>
    oid === 20 ? (value: string) => Number(value) : Pg.types.getTypeParser(oid, format as "text")) as Pg.CustomTypesConfig["getTypeParser"]
}

/** Counts every statement the pool's connections send: one call of `client.query` is one round trip. */
const countingPool = (url: string) => {
  const counter = { queries: 0 }
  const pool = new Pg.Pool({ connectionString: url, options: "-c search_path=staging", max: 10, types })
  // An idle client whose backend the server ends (the next run's database drop) must not crash the process.
  pool.on("error", () => undefined)
  pool.on("connect", (client) => {
    const original = client.query.bind(client) as (...args: Array<unknown>) => unknown
    ;(client as unknown as { query: (...args: Array<unknown>) => unknown }).query = (...args: Array<unknown>) => {
      counter.queries++
      return original(...args)
    }
  })
  return { pool, counter }
}

const admin = async <A>(url: string, f: (c: Pg.Client) => Promise<A>) => {
  const c = new Pg.Client({ connectionString: url })
  await c.connect()
  try {
    return await f(c)
  } finally {
    await c.end()
  }
}

const entityId = (e: number) => 100_000 + e
const installationId = (e: number) => 500_000 + e
const login = (e: number) => `org-${e}`

/** The backlog, inserted as the webhook would store it, in a few multi-row statements. */
const seedJobs = async (url: string, n: number, nowMs: number, entities: number) => {
  const client = new Pg.Client({ connectionString: url, options: "-c search_path=staging" })
  await client.connect()
  try {
    for (let from = 0; from < n; from += 1000) {
      const rows: Array<string> = []
      const params: Array<unknown> = []
      for (let i = from; i < Math.min(n, from + 1000); i++) {
        const e = i % entities
        // oldest first, spread over the last 30 minutes
        const created = new Date(nowMs - 30 * 60_000 + Math.floor((i / n) * 30 * 60_000))
        const p = params.length
        rows.push(`($${p + 1}, 'github', $${p + 2}, $${p + 3}, 'Organization', $${p + 4}, $${p + 5}, $${p + 6}::jsonb, $${p + 7}, $${p + 8}, $${p + 9}, $${p + 10}, $${p + 10})`)
        params.push(i + 1, entityId(e), login(e), `${login(e)}/app`, installationId(e), encodeLabelSet(LABELS), POOL, "riscv-runner:ubuntu-24.04-staging", null, created)
      }
      await client.query(
        `INSERT INTO jobs (job_id, provider, entity_id, entity_name, entity_type, repo_full_name, installation_id, job_labels,
                           k8s_pool, k8s_image, html_url, created_at, updated_at) VALUES ${rows.join(", ")}`,
        params
      )
    }
  } finally {
    await client.end()
  }
}

interface CycleFigures {
  readonly ms: number
  /** this process's CPU time during the cycle (user + system), whatever else the machine runs */
  readonly cpuMs: number
  /**
   * of which the in-memory twins' (GitHub's server answering, the cluster): what is left is our own time, the
   * scheduler's and the GitHub client's (`support/twinMeter.ts`); 0 on the live layers, where GitHub's side runs
   * in the same process behind a socket and is not counted apart
   */
  readonly twinCpuMs: number
  readonly sql: number
  readonly kube: number
  readonly github: number
  /** of which job polls (getJob, getRun) */
  readonly polls: number
  readonly provisioned: number
}

const median = (xs: ReadonlyArray<number>) => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length === 0 ? 0 : s[Math.floor(s.length / 2)]!
}

/**
 * `BENCH_PROFILE=<file>` writes a CPU profile of the first burst cycle alone (open it in Chrome's DevTools), so
 * what the burst spends its own time on can be read apart from the seeding and the later cycles.
 */
const profiled = <A, E>(effect: Effect.Effect<A, E>, file: string) =>
  Effect.acquireUseRelease(
    Effect.promise(async () => {
      const session = new inspector.Session()
      session.connect()
      const post = (method: string, params?: object) =>
        new Promise<unknown>((resolve, reject) => session.post(method, params, (e, r) => (e ? reject(e) : resolve(r))))
      await post("Profiler.enable")
      // every 100 µs rather than V8's 1 ms: a burst is a second or two, and a per-runner cost is tens of µs
      await post("Profiler.setSamplingInterval", { interval: 100 })
      await post("Profiler.start")
      return { session, post }
    }),
    () => effect,
    ({ post, session }) =>
      Effect.promise(async () => {
        const { profile } = (await post("Profiler.stop")) as { profile: unknown }
        await writeFile(file, JSON.stringify(profile))
        session.disconnect()
      })
  )

/** Which GitHub the cycle talks to: the in-memory layer, or the live Octokit layer over HTTP to the in-memory GitHub. */
type GithubKind = "memory" | "live"

/** The live layer with its default limits (the write spacing included), against `startGithubFront`. */
const liveGithub = Effect.gen(function*() {
  const keys = [0, 1].map(() => generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey.export({ type: "pkcs1", format: "pem" }).toString())
  const front = yield* startGithubFront({ [ORG_APP]: "Organization", [PERSONAL_APP]: "User" })
  const github = GithubLive({
    orgApp: { appId: ORG_APP, privateKey: Redacted.make(keys[0]!) },
    personalApp: { appId: PERSONAL_APP, privateKey: Redacted.make(keys[1]!) },
    apiUrl: front.url
  }).pipe(Layer.orDie)
  return Layer.merge(github, Layer.succeed(GithubMemoryControl, front.control))
})

const benchBacklog = (serverUrl: string, n: number, kind: GithubKind = "memory", entities = ENTITIES) =>
  Effect.gen(function*() {
    const dbName = `bench_scheduler_${n}_${Date.now()}`
    yield* Effect.promise(() => admin(serverUrl, (c) => c.query(`CREATE DATABASE ${dbName}`)))
    const url = new URL(serverUrl)
    url.pathname = `/${dbName}`
    const dbUrl = url.toString()
    yield* migrate("staging").pipe(Effect.provide(pgClientLayer({ url: Redacted.make(dbUrl), schema: "staging" })))

    const { counter, pool } = countingPool(dbUrl)
    // the twins' own CPU, counted apart from ours
    const twins = makeTwinMeter()
    const pgClient = PgClient.layerFromPool({ acquire: Effect.acquireRelease(Effect.succeed(pool), (p) => Effect.promise(() => p.end())), types })
    const world = yield* Layer.build(Layer.mergeAll(
      DbPostgresFromClient("staging").pipe(Layer.provide(pgClient)),
      kind === "memory" ? GithubMemoryWith({ meterServer: twins.meter }) : yield* liveGithub,
      KubeMemory({ tick: null, nodes: Array.from({ length: NODES }, (_, i) => ({ name: `node-${i}`, pool: POOL, slots: 1 })) }),
      SchedulerSettingsLive({ runnerConfig: defaultRunnerConfig, prod: false })
    ))
    const db = Context.get(world, Db)
    const github = Context.get(world, Github)
    const kube = meteredService(Context.get(world, Kube), twins.meter)
    const gh = Context.get(world, GithubMemoryControl)
    const cluster = Context.get(world, KubeMemoryControl)

    for (let e = 0; e < entities; e++) {
      yield* gh.addInstallation({ id: installationId(e), account: { login: login(e), type: "Organization", id: entityId(e) } })
    }
    for (let i = 0; i < n; i++) {
      yield* gh.createRun({ id: 1_000_000 + i, repo: `${login(i % entities)}/app`, status: "in_progress" })
      yield* gh.createJob({ id: i + 1, repo: `${login(i % entities)}/app`, runId: 1_000_000 + i, labels: LABELS })
    }
    yield* Effect.promise(() => seedJobs(dbUrl, n, Date.now(), entities))

    const state = yield* makeSchedulerState
    const context = Context.add(world, Kube, kube)
    // Through the live layer a cycle starts only the writes that need not wait for an installation's spacing and
    // asks for demand matching when the rest can go; as the loop would, the burst then runs the fast path at
    // those times until nothing is left waiting, so it is timed to the last runner it could provision.
    const cycle = kind === "memory" ? runCycle(state).pipe(Effect.provide(context)) : Effect.gen(function*() {
      let retryAt: number | undefined
      const ask = (at: number) => Effect.sync(() => void (retryAt = retryAt === undefined ? at : Math.min(retryAt, at)))
      yield* runCycle(state, Effect.succeed(false), ask)
      while (retryAt !== undefined) {
        const wait = retryAt - Date.now()
        retryAt = undefined
        if (wait > 0) yield* Effect.sleep(Duration.millis(wait))
        yield* runDemandCycle(ask)
      }
    }).pipe(Effect.provide(context))
    const measure = Effect.gen(function*() {
      const sql0 = counter.queries
      const kube0 = Object.values(yield* kube.callCounts).reduce((a, b) => a + b, 0)
      const gh0 = totalCalls(yield* github.callCounts)
      const polls0 = totalCalls(yield* github.callCounts, ["getJob", "getRun"])
      const pods0 = (yield* cluster.pods).length
      const t0 = performance.now()
      const cpu0 = process.cpuUsage()
      const twins0 = twins.cpuMs()
      yield* cycle
      const ms = performance.now() - t0
      const cpu = process.cpuUsage(cpu0)
      const twinCpuMs = twins.cpuMs() - twins0
      const kubeAfter = yield* kube.callCounts
      return {
        ms,
        cpuMs: (cpu.user + cpu.system) / 1000,
        twinCpuMs,
        sql: counter.queries - sql0,
        kube: Object.values(kubeAfter).reduce((a, b) => a + b, 0) - kube0 - ((yield* cluster.pods).length - pods0),
        github: totalCalls(yield* github.callCounts) - gh0,
        polls: totalCalls(yield* github.callCounts, ["getJob", "getRun"]) - polls0,
        provisioned: (yield* cluster.pods).length - pods0
      } satisfies CycleFigures
    })

    const burst = yield* (kind === "memory" && process.env.BENCH_PROFILE !== undefined ? profiled(measure, process.env.BENCH_PROFILE) : measure)
    if (kind === "live") return { burst }
    const steady: Array<CycleFigures> = []
    for (let i = 0; i < STEADY_CYCLES; i++) steady.push(yield* measure)

    // Churn: every running pod takes its entity's oldest waiting job, runs it and exits; the webhook reports both
    // ends of the job, and the ephemeral runner removes itself from GitHub.
    const churn: Array<CycleFigures> = []
    for (let round = 0; round < CHURN_ROUNDS; round++) {
      const waiting = new Map<number, Array<number>>()
      for (const job of yield* db.getPendingJobs) waiting.set(job.entity_id, [...(waiting.get(job.entity_id) ?? []), job.job_id])
      yield* cluster.reconcile
      for (const pod of yield* cluster.pods) {
        if (pod.phase !== "Running") continue
        const jobId = waiting.get(pod.request.entity.id)?.shift()
        if (jobId !== undefined) {
          yield* db.markJobRunning(jobId, pod.name)
          yield* gh.completeJob(jobId, "success")
          yield* db.markJobCompleted(jobId, pod.name)
        }
        yield* gh.removeRunner(pod.name)
        yield* cluster.finishPod(pod.name, 0)
      }
      churn.push(yield* measure)
    }

    const pending = (yield* db.getPendingJobs).length
    const provisioned = burst.provisioned + churn.reduce((a, c) => a + c.provisioned, 0)
    const githubCalls = burst.github + churn.reduce((a, c) => a + c.github, 0)
    const byOp = yield* github.callCounts
    const count = (op: keyof typeof byOp) => Object.values(byOp[op]).reduce((a, b) => a + b, 0)
    const perOp = Object.keys(byOp)
      .map((op) => [op, count(op as keyof typeof byOp)] as const)
      .filter(([, c]) => c > 0)
      .map(([op, c]) => `${op}=${c}`)
      .join(" ")
    // Job polls are spent on the backlog, not on runners, so they are also shown apart.
    const polls = burst.polls + churn.reduce((a, c) => a + c.polls, 0)
    return { burst, rest: { n, steady, churn, provisioned, githubCalls, polls, pending, perOp } }
  }).pipe(Effect.scoped)

const program = Effect.gen(function*() {
  const given = process.env.POSTGRES_URL
  const serverUrl = given !== undefined && given !== ""
    ? given
    : (yield* startEmbeddedPostgres({ dataDir: yield* Effect.promise(() => tempDataDir("riscv-runner-bench-sched-")), persistent: false })).url
  yield* Console.log(`scheduler benchmark: ${ENTITIES} entities, ${NODES} nodes of one slot, real PostgreSQL, in-memory GitHub and cluster\n`)
  const fmt = (x: number, d = 1) => x.toFixed(d)
  const table = [
    "| pending jobs | burst cycle | steady cycle (median) | churn cycle (median) | SQL per cycle: burst / steady / churn | Kube calls per cycle | GitHub calls per runner: all / without job polls |",
    "|---:|---:|---:|---:|---:|---:|---:|"
  ]
  let burst500: CycleFigures | undefined
  for (const n of BACKLOGS) {
    const result = yield* benchBacklog(serverUrl, n)
    if (result.rest === undefined) continue
    const r = { ...result.rest, burst: result.burst }
    if (r.burst.provisioned === NODES) burst500 = r.burst
    const steadyMs = median(r.steady.map((c) => c.ms))
    const churnMs = median(r.churn.map((c) => c.ms))
    const churnRunners = median(r.churn.map((c) => c.provisioned))
    const perRunner = r.githubCalls / Math.max(1, r.provisioned)
    const withoutPolls = (r.githubCalls - r.polls) / Math.max(1, r.provisioned)
    yield* Console.log(
      `backlog ${String(n).padStart(6)}: burst ${fmt(r.burst.ms, 0)} ms for ${r.burst.provisioned} runners (${r.burst.sql} SQL; ` +
        `CPU ${fmt(r.burst.cpuMs, 0)} ms, of which the twins ${fmt(r.burst.twinCpuMs, 0)} ms); ` +
        `steady ${fmt(steadyMs)} ms (${median(r.steady.map((c) => c.sql))} SQL, ${median(r.steady.map((c) => c.kube))} Kube, ${median(r.steady.map((c) => c.github))} GitHub polls); ` +
        `churn ${fmt(churnMs, 0)} ms for ${churnRunners} runners (${median(r.churn.map((c) => c.sql))} SQL); ` +
        `GitHub per runner ${fmt(perRunner, 2)} (${fmt(withoutPolls, 2)} without job polls) over ${r.provisioned} runners; ${r.pending} still pending`
    )
    yield* Console.log(`  GitHub calls by operation (whole run): ${r.perOp}`)
    table.push(
      `| ${n.toLocaleString("en")} | ${fmt(r.burst.ms, 0)} ms (${r.burst.provisioned} runners) | ${fmt(steadyMs, 0)} ms | ${fmt(churnMs, 0)} ms (${churnRunners} runners) | ${r.burst.sql} / ${median(r.steady.map((c) => c.sql))} / ${median(r.churn.map((c) => c.sql))} | ${median(r.steady.map((c) => c.kube))} + 1 per pod created | ${fmt(perRunner, 2)} / ${fmt(withoutPolls, 2)} |`
    )
  }
  yield* Console.log("\nSQL counts every statement sent (BEGIN, LOCK, SAVEPOINT, RELEASE and COMMIT included); Kube excludes pod creates.\n")
  yield* Console.log(table.join("\n"))

  yield* Console.log("\nagainst the targets:")
  if (burst500 !== undefined) {
    yield* Console.log(
      `burst of ${burst500.provisioned} runners in one cycle, in-memory GitHub: ${fmt(burst500.ms, 0)} ms wall, ` +
        `${fmt(burst500.cpuMs, 0)} ms of this process's CPU, of which the in-memory twins ${fmt(burst500.twinCpuMs, 0)} ms ` +
        `and our own ${fmt(burst500.cpuMs - burst500.twinCpuMs, 0)} ms (target <= 300 ms of our own time), ` +
        `${fmt(burst500.sql / burst500.provisioned, 2)} SQL round trips per runner (target <= 1)`
    )
  }
  const load = Console.log(`load average ${os.loadavg().map((l) => l.toFixed(2)).join(" ")} (1, 5, 15 min)`)
  if (process.env.BENCH_LIVE === "0") return yield* load
  // Through the live Octokit layer (write spacing included) over HTTP to the in-memory GitHub, which answers at once.
  const one = (yield* benchBacklog(serverUrl, 100, "live", 1)).burst
  yield* Console.log(
    `live Octokit, one organisation (its cap ${one.provisioned} runners): ${fmt(one.ms, 0)} ms, ` +
      `${fmt(one.provisioned / (one.ms / 60_000), 0)} runners a minute (target: GitHub's per-installation limit, 180 JIT configs a minute)`
  )
  const many = (yield* benchBacklog(serverUrl, 1000, "live")).burst
  yield* Console.log(
    `live Octokit, ${ENTITIES} organisations, ${NODES} free boards: ${many.provisioned} runners in ${fmt(many.ms, 0)} ms, ` +
      `${fmt(many.provisioned / (many.ms / 60_000), 0)} runners a minute (was about 60 with one write a second for the whole process)`
  )
  yield* load
}).pipe(Effect.scoped, Effect.provide(Logger.minimumLogLevel(LogLevel.Warning)))

const scope = Effect.runSync(Scope.make())
Effect.runPromise(program.pipe(Scope.extend(scope)))
  .catch((e) => {
    console.error(e)
    process.exitCode = 1
  })
  .finally(() => Effect.runPromise(Scope.close(scope, Exit.void)))
