/**
 * `npm run bench:latency`: the two figures of a freed board and a new job, on a real PostgreSQL with the NOTIFY
 * wake-up and the pod watch, once per set of layers (`BENCH_LAYERS=memory|live|both|process|all`, default both:
 * memory and live; all adds process).
 *
 * In the memory and live modes the whole service runs in this process on the real clock: the webhook program on an HTTP port and the scheduler
 * loop (LISTEN on `staging_queue_event`, the runner pod watch). GitHub and the cluster are either the in-memory
 * twins with the simulated world closing the loop (`layers/sim`), or the live layers (Octokit with its write
 * spacing, client-node with its watch) against the contract suites' local stubs, which answer at once, with
 * `support/stubWorld.ts` closing the loop (runners register, take their job, report it, exit). In the process mode
 * the bundled entrypoint runs as a child process (`NODE_ENV=production`, JSON logs) with its live layers against
 * the same stubs, which stay in this process, so the figures include nothing of the bench's own CPU and the
 * service's CPU per job is read from /proc. Two runs each:
 *
 * - `queued` → pod: jobs arrive at a steady rate (default 20/s, 400 jobs, `BENCH_ORGS` organisations (10), 2 s
 *   each) as signed deliveries over HTTP, with boards to spare. Per organisation, the k-th `queued` delivery
 *   answered 200 (t0, as the sender sees it) is paired with the k-th pod created for that organisation (t1: the
 *   `createRunnerPod` call on the in-memory cluster, the pod stored by the API stub on the live one): demand is
 *   matched per (entity, label set), first come first served, whichever job the runner then takes. A pod created
 *   before the sender saw the 200 counts as 0 ms.
 * - board idle: a backlog far larger than the boards (default 60 jobs of 1 s on 4 boards), all queued at once. Each
 *   time a runner pod ends (or is deleted) on a pool (t0, when the cluster reports it), the next pod created on
 *   that pool (t1) is paired with it, first ended first filled, while jobs still wait; the last wave's ends, with
 *   nothing left to wait, pair with nothing.
 *
 * Each figure is printed with p50, p99 and max beside its target, with the load average. It never fails on a
 * number. `POSTGRES_URL` uses an existing server; `BENCH_JOBS`, `BENCH_RATE`, `BENCH_ORGS` change the first run's
 * load, `BENCH_IDLE_JOBS`, `BENCH_BOARDS` the second's; `BENCH_SPANS=1` adds where the time goes;
 * `BENCH_WRITE_SPACING=0` runs the live GitHub layer without its per-installation write spacing;
 * `BENCH_SERVICE_PROFILE=<dir>` has the process mode's service write a V8 CPU profile there as it exits.
 */
import { FetchHttpClient, HttpServer } from "@effect/platform"
import { Config, Context, Duration, Effect, HashMap, Layer, Logger, LogLevel, Option, Queue, Redacted, Schema, type Scope, Stream, Tracer } from "effect"
import { loadavg } from "node:os"
import { PerformanceObserver } from "node:perf_hooks"
import { NodeHttpServerWithFrontDoor } from "../layers/http/nodeFrontDoor.ts"
import Pg from "pg"
import { DbPostgres } from "../layers/db/postgres.ts"
import { GithubMemory } from "../layers/github/memory.ts"
import { GithubLive } from "../layers/github/octokit.ts"
import { KubeLive } from "../layers/kube/client.ts"
import { KubeMemory, KubeMemoryControl } from "../layers/kube/memory.ts"
import { BOARD_LABEL, ENTITY_ID_LABEL } from "../layers/kube/podSpec.ts"
import { HttpWebhookTransport, WebhookTransport, type WebhookTransportShape } from "../layers/sim/webhookTransport.ts"
import { SimWorldLive } from "../layers/sim/world.ts"
import { SimWorld } from "../layers/sim/worldApi.ts"
import { defaultRunnerConfigInput, RunnerConfig } from "../src/domain/RunnerConfig.ts"
import { startEmbeddedPostgres, tempDataDir } from "../src/embedded/embeddedPostgres.ts"
import { SchedulerLoop } from "../src/scheduler/loop.ts"
import { type SchedulerSettings, SchedulerSettingsLive, schedulerTuningConfig } from "../src/scheduler/settings.ts"
import { Db as DbTag } from "../src/services/Db.ts"
import type { Github } from "../src/services/Github.ts"
import { Kube } from "../src/services/Kube.ts"
import { WebhookServer } from "../src/webhook/server.ts"
import { webhookSettingsLayer } from "../src/webhook/WebhookSettings.ts"
import { githubTestKeys } from "./support/githubKeys.ts"
import { startGithubStub } from "./support/githubStub.ts"
import { addStubNode, KubeStub, KubeStubLive } from "./support/kubeStub.ts"
import { percentile } from "./support/percentile.ts"
import { makeStubWorld } from "./support/stubWorld.ts"
import { type AppBundle, bundleThisTree } from "./support/bundle.ts"
import { type ServiceProcess, startServiceProcess } from "./support/serviceProcess.ts"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"

const JOBS = Number(process.env.BENCH_JOBS ?? 400)
const RATE = Number(process.env.BENCH_RATE ?? 20)
const IDLE_JOBS = Number(process.env.BENCH_IDLE_JOBS ?? 60)
const LAYERS = process.env.BENCH_LAYERS ?? "both"
/** `BENCH_WRITE_SPACING=0`: the live GitHub layer without its per-installation write spacing, to show its share */
const SPACING = process.env.BENCH_WRITE_SPACING !== "0"
const POOL = "scw-em-rv1"
const BOARDS = Number(process.env.BENCH_BOARDS ?? 4)
const ORGS = Number(process.env.BENCH_ORGS ?? 10)
const SECRET = Redacted.make("bench-latency-secret")
// No cap gets in the way: the benchmark measures the wake-up path, not the entity caps.
const config = Schema.decodeUnknownSync(RunnerConfig)({ ...defaultRunnerConfigInput, defaultMaxWorkers: null })

/** One run's load: how many jobs, how fast (Infinity: all at once), how long each runs, on how many boards. */
interface Load {
  readonly jobs: number
  readonly rate: number
  readonly jobSeconds: number
  readonly boards: number
}

interface Run {
  readonly label: string
  readonly latencies: ReadonlyArray<number>
  /** pod end -> the next pod create on its pool, while jobs waited */
  readonly idleGaps: ReadonlyArray<number>
  /** ends no pod create followed (the last wave, when nothing waits any more) */
  readonly unpairedEnds: number
  readonly missing: number
  /** jobs whose queued delivery never got a 200 (in the time allowed), and jobs no runner was provisioned for */
  readonly noAnswer: number
  readonly noPod: number
  readonly cycles: number
  /** median wall time of one scheduler cycle (the mean, when the service runs as its own process) */
  readonly cycleP50: number
  readonly seconds: number
  /** the service's own CPU from the first measured job to the last pod, when it runs as its own process */
  readonly serviceCpuMs?: number | undefined
}

/**
 * With `BENCH_SPANS=1`: a tracer that adds up the wall time of every named span (`Effect.fn` names such as
 * `Scheduler.syncJobs`), to show where a scheduler cycle spends it.
 */
const spanTotals = new Map<string, { count: number; ns: bigint }>()
const timingTracer = Tracer.make({
  span: (name, parent, context, links, startTime, kind) => {
    const attributes = new Map<string, unknown>()
    const span: Tracer.Span = {
      _tag: "Span",
      name,
      spanId: Math.random().toString(36).slice(2),
      traceId: "bench",
      parent,
      context,
      status: { _tag: "Started", startTime },
      attributes,
      links,
      sampled: true,
      kind,
      end: (endTime) => {
        if (TIMELINE) timeline.push({ at: Number(startTime) / 1e6 - originNs, what: `span ${name}`, ms: Number(endTime - startTime) / 1e6 })
        const total = spanTotals.get(name) ?? { count: 0, ns: 0n }
        spanTotals.set(name, { count: total.count + 1, ns: total.ns + (endTime - startTime) })
      },
      attribute: (key, value) => void attributes.set(key, value),
      event: () => undefined,
      addLinks: () => undefined
    }
    return span
  },
  context: (f) => f()
})
/**
 * With `BENCH_TIMELINE=1`: a per-job timeline of what happened between each slow job's 200 and its pod (NOTIFY
 * received, cycles and spans of the scheduler, GC pauses, event-loop stalls), to explain the tail.
 */
const TIMELINE = process.env.BENCH_TIMELINE === "1"
interface Mark {
  readonly at: number
  readonly what: string
  readonly ms?: number
}
const timeline: Array<Mark> = []
// span times are on the tracer's clock (nanoseconds since the epoch); performance.now() on its own
const originNs = (Date.now() - performance.now())
const mark = (what: string, ms?: number) => {
  if (TIMELINE) timeline.push(ms === undefined ? { at: performance.now(), what } : { at: performance.now(), what, ms })
}
if (TIMELINE) {
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) timeline.push({ at: e.startTime, what: "gc", ms: e.duration })
  }).observe({ entryTypes: ["gc"] })
  let last = performance.now()
  setInterval(() => {
    const now = performance.now()
    if (now - last > 30) timeline.push({ at: last, what: "event loop stalled", ms: now - last - 10 })
    last = now
  }, 10).unref()
}
const tracing = process.env.BENCH_SPANS === "1" || TIMELINE ? Layer.setTracer(timingTracer) : Layer.empty

/** Each run starts from empty tables (the schema is migrated by the first). */
const emptyTables = (url: string) =>
  Effect.promise(async () => {
    const client = new Pg.Client({ connectionString: url })
    await client.connect()
    try {
      await client.query("TRUNCATE staging.jobs, staging.workers, staging.installation_events RESTART IDENTITY").catch(() => undefined)
    } finally {
      await client.end()
    }
  })

/**
 * Which layers serve GitHub and Kubernetes: the in-memory twins, or the live ones against the local stubs; with
 * `process`, the live ones inside the bundled service running as a process of its own, as the image runs it.
 */
type Layers = "memory" | "live" | "process"

const runOnce = (url: string, label: string, load: Load, layers: Layers, bundle?: AppBundle) =>
  Effect.scoped(Effect.gen(function*() {
    yield* emptyTables(url)
    // per pool: when its runner pods ended, oldest first, not yet paired with a pod create
    const ended = new Map<string, Array<number>>()
    const idleGaps: Array<number> = []
    let counting = false
    // per organisation (account id), in order: when its queued deliveries got their 200, when its pods were created
    const answered = new Map<number, Array<number>>()
    const created = new Map<number, Array<number>>()
    const note = (m: Map<number, Array<number>>, key: number, t: number) => m.set(key, [...(m.get(key) ?? []), t])
    const podCreated = (entityId: number, pool: string) => {
      const now = performance.now()
      note(created, entityId, now)
      const waiting = ended.get(pool)
      if (counting && waiting !== undefined && waiting.length > 0) idleGaps.push(now - waiting.shift()!)
    }
    // A pod that held a slot and no longer does freed its board, at the moment the cluster says so.
    const podEnded = (pool: string) => {
      if (counting) ended.set(pool, [...(ended.get(pool) ?? []), performance.now()])
    }
    const holds = (phase: string | undefined) => phase === "Pending" || phase === "Running"
    let cycles = 0
    const cycleMs: Array<number> = []

    // The log is read for the scheduler's cycle times only; everything else is dropped.
    const logger = Logger.make(({ annotations, message }) => {
      const text = Array.isArray(message) ? message.join(" ") : String(message)
      if (text === "scheduler cycle done") {
        const kind = Option.getOrUndefined(HashMap.get(annotations, "cycle"))
        const woken = Option.getOrUndefined(HashMap.get(annotations, "woken_by"))
        const tookMs = Option.getOrUndefined(HashMap.get(annotations, "took_ms"))
        mark(`cycle ${String(kind)} done (woken by ${String(woken)})`, typeof tookMs === "number" ? tookMs : undefined)
        cycles += 1
        const took = Option.getOrUndefined(HashMap.get(annotations, "took_ms"))
        if (typeof took === "number") cycleMs.push(took)
      }
    })
    const quiet = Layer.mergeAll(Logger.replace(Logger.defaultLogger, logger), Logger.minimumLogLevel(LogLevel.Debug), tracing)

    const tuning = yield* schedulerTuningConfig
    const common = Layer.mergeAll(
      DbPostgres({ url: Redacted.make(url), schema: "staging", migrate: true }),
      SchedulerSettingsLive({ runnerConfig: config, prod: false, ...tuning })
    )
    let base: Context.Context<DbTag | Github | Kube | SchedulerSettings> | undefined
    let service: ServiceProcess | undefined
    let startWorld: (transport: WebhookTransportShape) => Effect.Effect<Submit, never, Scope.Scope>
    if (layers === "memory") {
      const built = yield* Layer.build(Layer.mergeAll(
        common,
        GithubMemory,
        KubeMemory({ tick: "100 millis", nodes: [{ name: "board", pool: POOL, slots: load.boards }] })
      ).pipe(Layer.provide(quiet)))
      const kube = Context.get(built, Kube)
      // the pod create as the scheduler asks for it (the in-memory cluster answers in the same step)
      const dbService = Context.get(built, DbTag)
      base = Context.add(Context.add(built, DbTag, {
        ...dbService,
        wakeups: dbService.wakeups.pipe(Stream.tap(() => Effect.sync(() => mark("notify"))))
      }), Kube, {
        ...kube,
        createRunnerPod: (request) =>
          Effect.suspend(() => {
            podCreated(request.entity.id, request.pool)
            mark(`pod create org ${request.entity.id}`)
            return kube.createRunnerPod(request)
          })
      })
      const changes = yield* Context.get(built, KubeMemoryControl).subscribe
      yield* Effect.forkScoped(Effect.forever(Effect.flatMap(Queue.take(changes), (change) =>
        Effect.sync(() => {
          if (holds(change.from ?? undefined) && !holds(change.to ?? undefined)) podEnded(change.pod.request.pool)
        }))))
      startWorld = (transport) =>
        Effect.gen(function*() {
          const world = yield* Layer.build(
            SimWorldLive({ speed: 1, runnerConfig: config, apps: config.apps, bootDelay: Duration.millis(200) }).pipe(
              Layer.provide(Layer.succeedContext(built)),
              Layer.provide(Layer.succeed(WebhookTransport, transport)),
              Layer.provide(quiet)
            )
          )
          const sim = Context.get(world, SimWorld)
          return (owner: string, seconds: number) =>
            Effect.asVoid(sim.submitJobs({ owner, repo: "app", durationSeconds: seconds }).pipe(Effect.orDie))
        })
    } else {
      const keys = githubTestKeys()
      const github = yield* startGithubStub([
        { appId: config.apps.orgAppId, serves: "Organization", publicKey: keys.org.publicKey },
        { appId: config.apps.personalAppId, serves: "User", publicKey: keys.personal.publicKey }
      ])
      const stub = Context.get(yield* Layer.build(KubeStubLive), KubeStub)
      addStubNode(stub, "board", POOL, load.boards)
      // the pod create and the pod's end as the API server stores them
      const phases = new Map<string, string | undefined>()
      stub.listeners.add((type, pod) => {
        const name = String(pod.metadata.name)
        const before = phases.get(name)
        const phase: string | undefined = type === "DELETED" ? undefined : pod.status?.phase
        phases.set(name, phase)
        const labels = pod.metadata.labels ?? {}
        if (type === "ADDED") podCreated(Number(labels[ENTITY_ID_LABEL]), labels[BOARD_LABEL])
        else if (holds(before) && !holds(phase)) podEnded(labels[BOARD_LABEL])
      })
      if (layers === "process") {
        service = yield* startServiceProcess(bundle!, {
          POSTGRES_URL: url,
          GHAPP_WEBHOOK_SECRET: Redacted.value(SECRET),
          GHAPP_ORG_PRIVATE_KEY: keys.org.privateKeyPem,
          GHAPP_PERSONAL_PRIVATE_KEY: keys.personal.privateKeyPem,
          GITHUB_API_URL: github.url,
          K8S_KUBECONFIG: stub.kubeconfig,
          RUNNER_CONFIG: runnerConfigFile()
        }).pipe(Effect.orDie)
      } else base = yield* Layer.build(Layer.mergeAll(
        common,
        GithubLive({
          orgApp: { appId: config.apps.orgAppId, privateKey: Redacted.make(keys.org.privateKeyPem) },
          personalApp: { appId: config.apps.personalAppId, privateKey: Redacted.make(keys.personal.privateKeyPem) },
          apiUrl: github.url,
          ...(SPACING ? {} : { limits: { spaceWrites: false } })
        }),
        KubeLive({ kubeconfigYaml: Redacted.make(stub.kubeconfig) })
      ).pipe(Layer.orDie, Layer.provide(quiet)))
      startWorld = (transport) =>
        Effect.map(
          makeStubWorld({ github: github.state, kube: stub, transport, orgAppId: config.apps.orgAppId, bootDelay: Duration.millis(200) }),
          (world) => (owner: string, seconds: number) => Effect.asVoid(world.submitJob(owner, seconds))
        )
    }
    const provideBase = Layer.provide(Layer.succeedContext(base ?? Context.empty() as NonNullable<typeof base>))

    let webhookPort: number
    if (service !== undefined) webhookPort = service.webhookPort
    else {
      const webhook = yield* Layer.build(
        WebhookServer.pipe(
          Layer.provide(Layer.mergeAll(webhookSettingsLayer({ webhookSecret: SECRET, runnerConfig: config }), FetchHttpClient.layer)),
          provideBase,
          Layer.provideMerge(NodeHttpServerWithFrontDoor({ port: 0 })),
          Layer.provide(quiet)
        )
      )
      const address = Context.get(webhook, HttpServer.HttpServer).address
      if (address._tag !== "TcpAddress") throw new Error("expected a TCP address")
      webhookPort = address.port
    }
    const http = yield* Layer.build(
      HttpWebhookTransport({ url: `http://127.0.0.1:${webhookPort}/`, secret: SECRET }).pipe(Layer.provide(FetchHttpClient.layer))
    )
    const transport = Context.get(http, WebhookTransport)
    const decoder = new TextDecoder()
    const timedTransport = WebhookTransport.of({
      send: (delivery) =>
        Effect.tap(transport.send(delivery), (result) =>
          Effect.sync(() => {
            if (delivery.event !== "workflow_job" || result.status !== 200) return
            const body = JSON.parse(decoder.decode(delivery.body)) as { action: string; repository: { owner: { id: number } } }
            if (body.action === "queued") {
              note(answered, body.repository.owner.id, performance.now())
              mark(`200 org ${body.repository.owner.id}`)
            }
          }))
    })
    const submit = yield* startWorld(timedTransport)
    if (service === undefined) yield* Layer.build(SchedulerLoop.pipe(provideBase, Layer.provide(quiet)))

    // Every organisation installs the app first, so the measured jobs do not pay for first contact.
    for (let o = 0; o < ORGS; o++) yield* submit(`org-${o}`, 0)
    yield* Effect.sleep(Duration.seconds(3))
    answered.clear()
    created.clear()
    counting = true
    timeline.length = 0
    cycles = 0
    cycleMs.length = 0
    spanTotals.clear()
    const serviceBefore = service === undefined ? undefined : { cpu: yield* Effect.promise(service.cpuSeconds), cycles: yield* Effect.promise(service.cycles) }

    const started = performance.now()
    const gap = 1000 / load.rate
    for (let i = 0; i < load.jobs; i++) {
      const due = started + i * gap
      const wait = due - performance.now()
      if (wait > 0) yield* Effect.sleep(Duration.millis(wait))
      yield* submit(`org-${i % ORGS}`, load.jobSeconds)
    }
    const sent = performance.now()
    // let the last ones through (a backlog on few boards takes its waves' time)
    const count = (m: Map<number, Array<number>>) => [...m.values()].reduce((n, ts) => n + ts.length, 0)
    const allowMs = 60_000 + (load.jobs / Math.max(1, load.boards)) * (load.jobSeconds + 1) * 1000
    for (let waited = 0; waited < allowMs && count(created) < load.jobs; waited += 100) yield* Effect.sleep(Duration.millis(100))
    const serviceAfter = service === undefined ? undefined : { cpu: yield* Effect.promise(service.cpuSeconds), cycles: yield* Effect.promise(service.cycles) }
    // the last pods' ends (nothing waits for them) arrive after their jobs' time
    yield* Effect.sleep(Duration.seconds(load.jobSeconds + 1))

    const latencies: Array<number> = []
    let noPod = 0
    const slow: Array<{ org: number; t0: number; t1: number }> = []
    for (const [org, t0s] of answered) {
      const t1s = created.get(org) ?? []
      t0s.forEach((t0, k) => {
        if (k < t1s.length) {
          latencies.push(Math.max(0, t1s[k]! - t0))
          if (t1s[k]! - t0 > 100) slow.push({ org, t0, t1: t1s[k]! })
        } else noPod += 1
      })
    }
    if (TIMELINE) attribute(answered, created, started)
    if (TIMELINE && slow.length > 0) {
      const sortedMarks = [...timeline].sort((a, b) => a.at - b.at)
      slow.sort((a, b) => a.t0 - b.t0)
      console.log(`  ${slow.length} jobs over 100 ms; timelines (ms from the 200, the scheduler's and the services' spans of 5 ms or more):`)
      for (const job of slow.slice(0, Number(process.env.BENCH_TIMELINE_JOBS ?? 0))) {
        console.log(`  - org ${job.org}: 200 at ${(job.t0 - started).toFixed(0)} ms into the run, pod ${(job.t1 - job.t0).toFixed(0)} ms later`)
        for (const m of sortedMarks) {
          const end = m.at + (m.ms ?? 0)
          if (end < job.t0 - 50 || m.at > job.t1 + 1) continue
          if (m.what.startsWith("span") && ((m.ms ?? 0) < 5 || !/^span (Scheduler|Db|Kube|Github)\./.test(m.what))) continue
          if (m.what.startsWith("200") || m.what.startsWith("pod create")) if (!m.what.endsWith(` ${job.org}`)) continue
          console.log(`      ${(m.at - job.t0).toFixed(0).padStart(6)}  ${m.what}${m.ms === undefined ? "" : ` (${m.ms.toFixed(1)} ms)`}`)
        }
      }
    }
    timeline.length = 0
    const noAnswer = load.jobs - count(answered)
    const missing = noAnswer + noPod
    const sortedCycles = [...cycleMs].sort((a, b) => a - b)
    const unpairedEnds = [...ended.values()].reduce((n, ts) => n + ts.length, 0)
    return {
      label,
      latencies,
      idleGaps,
      unpairedEnds,
      missing,
      noAnswer,
      noPod,
      ...(serviceBefore === undefined || serviceAfter === undefined
        ? { cycles, cycleP50: percentile(sortedCycles, 0.5) }
        : {
          cycles: serviceAfter.cycles.count - serviceBefore.cycles.count,
          cycleP50: (1000 * (serviceAfter.cycles.seconds - serviceBefore.cycles.seconds)) / Math.max(1, serviceAfter.cycles.count - serviceBefore.cycles.count),
          serviceCpuMs: 1000 * (serviceAfter.cpu - serviceBefore.cpu)
        }),
      seconds: (sent - started) / 1000
    } satisfies Run
  }))

/**
 * With `BENCH_TIMELINE=1`: where each job's wait went. The cycle that served it is the scheduler cycle whose span
 * holds its pod create, and the demand matching in it (the fast path's, or one inside a full cycle); before that
 * matching started, the job waited in full cycles, in demand cycles, or for nothing (the wake-up itself). Printed for all jobs and for the slowest 5 %.
 */
const attribute = (answered: Map<number, Array<number>>, created: Map<number, Array<number>>, started: number) => {
  const cycles = timeline
    .filter((m) => m.what === "span Scheduler.cycle" || m.what === "span Scheduler.demandCycle")
    .map((m) => ({ full: m.what === "span Scheduler.cycle", from: m.at, to: m.at + (m.ms ?? 0) }))
    .sort((a, b) => a.from - b.from)
  const matches = timeline
    .filter((m) => m.what === "span Scheduler.matchDemand")
    .map((m) => ({ from: m.at, to: m.at + (m.ms ?? 0) }))
  const rows: Array<{ total: number; behindFull: number; behindDemand: number; idle: number; serving: number; servedBy: string; at: number }> = []
  for (const [org, t0s] of answered) {
    const t1s = created.get(org) ?? []
    t0s.forEach((t0, k) => {
      const t1 = t1s[k]
      if (t1 === undefined || t1 < t0) return
      // the demand matching (a fast path's, or one inside a full cycle) whose span holds the pod create
      const match = matches.find((m) => m.from <= t1 && t1 <= m.to + 1)
      const servingFrom = match === undefined ? t1 : Math.max(t0, match.from)
      const serving = cycles.find((c) => c.from <= t1 && t1 <= c.to + 1)
      let behindFull = 0
      let behindDemand = 0
      for (const c of cycles) {
        const overlap = Math.min(c.to, servingFrom) - Math.max(c.from, t0)
        if (overlap > 0) c.full ? (behindFull += overlap) : (behindDemand += overlap)
      }
      rows.push({
        total: t1 - t0,
        behindFull,
        behindDemand,
        idle: Math.max(0, servingFrom - t0 - behindFull - behindDemand),
        serving: t1 - servingFrom,
        servedBy: serving === undefined ? "none" : serving.full ? "full" : "demand",
        at: t0 - started
      })
    })
  }
  rows.sort((a, b) => a.total - b.total)
  const sum = (xs: ReadonlyArray<typeof rows[number]>, f: (r: typeof rows[number]) => number) =>
    xs.length === 0 ? 0 : xs.reduce((n, r) => n + f(r), 0) / xs.length
  const show = (what: string, xs: ReadonlyArray<typeof rows[number]>) =>
    console.log(
      `  ${what}: mean ${sum(xs, (r) => r.total).toFixed(1)} ms = in full cycles ${sum(xs, (r) => r.behindFull).toFixed(1)}, in demand cycles ${
        sum(xs, (r) => r.behindDemand).toFixed(1)
      }, no cycle running ${sum(xs, (r) => r.idle).toFixed(1)}, in its own demand matching ${sum(xs, (r) => r.serving).toFixed(1)}; served by a full cycle ${
        xs.filter((r) => r.servedBy === "full").length
      } of ${xs.length}`
    )
  show("all jobs", rows)
  show("slowest 5 %", rows.slice(Math.floor(rows.length * 0.95)))
  const full = cycles.filter((c) => c.full).map((c) => c.to - c.from).sort((a, b) => a - b)
  const demand = cycles.filter((c) => !c.full).map((c) => c.to - c.from).sort((a, b) => a - b)
  console.log(`  full cycles ${full.length}: p50 ${percentile(full, 0.5).toFixed(0)} ms, max ${(full.at(-1) ?? 0).toFixed(0)} ms; demand cycles ${demand.length}: p50 ${percentile(demand, 0.5).toFixed(0)} ms, max ${(demand.at(-1) ?? 0).toFixed(0)} ms`)
  const folds = timeline.filter((m) => m.what === "span Scheduler.foldWeeklyUsage").map((m) => m.ms ?? 0)
  console.log(`  weekly usage fold passes after full cycles ${folds.length}, longest ${Math.max(0, ...folds).toFixed(1)} ms`)
  const gcs = timeline.filter((m) => m.what === "gc").map((m) => m.ms ?? 0)
  const stalls = timeline.filter((m) => m.what === "event loop stalled").map((m) => m.ms ?? 0)
  console.log(`  GC pauses ${gcs.length}, ${gcs.reduce((a, b) => a + b, 0).toFixed(0)} ms in all, longest ${Math.max(0, ...gcs).toFixed(0)} ms; event-loop stalls over 20 ms ${stalls.length}, longest ${Math.max(0, ...stalls).toFixed(0)} ms`)
  const woken = new Map<string, number>()
  for (const m of timeline) {
    const reason = /^cycle full done \(woken by (.*)\)$/.exec(m.what)?.[1]?.replace(/×\d+/g, "")
    if (reason !== undefined) woken.set(reason, (woken.get(reason) ?? 0) + 1)
  }
  console.log(`  full cycles woken by: ${[...woken].map(([r, n]) => `${r} ${n}`).join(", ")}`)
  for (const r of rows.slice(-5)) {
    console.log(`    ${r.at.toFixed(0).padStart(6)} ms in: ${r.total.toFixed(0)} ms = full ${r.behindFull.toFixed(0)} + demand ${r.behindDemand.toFixed(0)} + none ${r.idle.toFixed(0)} + serving (${r.servedBy}) ${r.serving.toFixed(0)}`)
  }
}

/** Sends one job for an organisation (the world creates it on GitHub's side and sends its `queued` delivery). */
type Submit = (owner: string, seconds: number) => Effect.Effect<void>

const reportSpans = (cycles: number) => {
  if (spanTotals.size === 0) return
  const rows = [...spanTotals].sort((a, b) => Number(b[1].ns - a[1].ns)).slice(0, 15)
  for (const [name, t] of rows) {
    console.log(`    ${name.padEnd(36)} ${(Number(t.ns) / 1e6 / Math.max(1, cycles)).toFixed(1).padStart(8)} ms per cycle  (${t.count} spans)`)
  }
}

const ms = (x: number) => (x >= 1000 ? `${(x / 1000).toFixed(2)} s` : `${x.toFixed(1)} ms`)
const load = () => loadavg().map((l) => l.toFixed(2)).join(" ")

/** One figure: p50, p99 and max beside its targets. */
const figure = (name: string, values: ReadonlyArray<number>, target: { readonly p50?: number; readonly p99: number }) => {
  const sorted = [...values].sort((a, b) => a - b)
  const p50 = percentile(sorted, 0.5)
  const p99 = percentile(sorted, 0.99)
  const verdict = (value: number, limit: number | undefined) =>
    limit === undefined ? "" : value <= limit ? " (met)" : ` (${(value / limit).toFixed(1)}× the target)`
  console.log(
    `  ${name.padEnd(30)} n ${String(sorted.length).padStart(5)}  p50 ${ms(p50).padStart(9)}${
      target.p50 === undefined ? "" : ` [target ≤ ${ms(target.p50)}${verdict(p50, target.p50)}]`
    }  p99 ${ms(p99).padStart(9)} [target ≤ ${ms(target.p99)}${verdict(p99, target.p99)}]  max ${ms(sorted.at(-1) ?? Number.NaN).padStart(9)}`
  )
}

const report = (run: Run, which: "latency" | "idle") => {
  console.log(
    `${run.label}: ${run.cycles} cycles of ${run.cycleP50.toFixed(0)} ms ${run.serviceCpuMs === undefined ? "median" : "mean"}, ${
      (run.latencies.length / run.seconds).toFixed(1)
    } jobs/s sent; load average ${load()}${run.missing > 0 ? `; unmatched: ${run.noAnswer} without a 200, ${run.noPod} without a pod` : ""}`
  )
  if (run.serviceCpuMs !== undefined) {
    console.log(`  the service's own CPU: ${run.serviceCpuMs.toFixed(0)} ms, ${(run.serviceCpuMs / Math.max(1, run.latencies.length + run.idleGaps.length)).toFixed(2)} ms per job`)
  }
  if (which === "latency") figure("queued 200 -> pod create", run.latencies, { p50: 10, p99: 50 })
  else {
    figure("board idle (end -> next pod)", run.idleGaps, { p99: 1000 })
    console.log(`  ${run.unpairedEnds} ends with no job left waiting (the last wave)`)
  }
}

const MODES: ReadonlyArray<Layers> = LAYERS === "all"
  ? ["memory", "live", "process"]
  : LAYERS === "both"
  ? ["memory", "live"]
  : LAYERS === "live" || LAYERS === "process" ? [LAYERS] : ["memory"]
const describe = (layers: Layers) =>
  layers === "memory"
    ? "in-memory GitHub and cluster"
    : layers === "live"
    ? "live Octokit and client-node layers against the local GitHub and Kubernetes API stubs"
    : "the bundled service as a process of its own (its live layers against the same stubs, which stay in this process)"

/** The benchmark's runner config (no cap per entity) as a file, for the service process's `RUNNER_CONFIG`. */
let configFile: string | undefined
const runnerConfigFile = () => {
  if (configFile === undefined) {
    configFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "bench-latency-")), "runner-config.json")
    fs.writeFileSync(configFile, JSON.stringify({ ...defaultRunnerConfigInput, defaultMaxWorkers: null }))
  }
  return configFile
}

const program = Effect.gen(function*() {
  const given = yield* Config.option(Config.redacted("POSTGRES_URL"))
  const url = Option.isSome(given)
    ? Redacted.value(given.value)
    : (yield* startEmbeddedPostgres({ dataDir: yield* Effect.promise(() => tempDataDir("riscv-runner-bench-latency-")), persistent: false })).url
  const tuning = yield* schedulerTuningConfig
  console.log(
    `PostgreSQL with LISTEN/NOTIFY and the pod watch; wake debounce ${
      Duration.format(tuning.timeouts.wakeDebounce)
    }, poll interval ${Duration.format(tuning.timeouts.pollInterval)}; load average at start ${load()}`
  )
  const bundle = MODES.includes("process") ? bundleThisTree() : undefined
  yield* Effect.addFinalizer(() =>
    Effect.sync(() => {
      bundle?.remove()
      if (configFile !== undefined) fs.rmSync(path.dirname(configFile), { recursive: true, force: true })
    })
  )
  for (const layers of MODES) {
    console.log(`\n== ${describe(layers)} ==`)
    const fast = yield* runOnce(url, `${JOBS} jobs at ${RATE}/s over ${ORGS} organisations, 2 s each, boards to spare`, {
      jobs: JOBS,
      rate: RATE,
      jobSeconds: 2,
      boards: Math.max(1000, JOBS)
    }, layers, bundle)
    report(fast, "latency")
    reportSpans(fast.cycles)
    const idle = yield* runOnce(url, `${IDLE_JOBS} jobs queued at once, 1 s each, on ${BOARDS} boards`, {
      jobs: IDLE_JOBS,
      rate: Infinity,
      jobSeconds: 1,
      boards: BOARDS
    }, layers, bundle)
    report(idle, "idle")
    reportSpans(idle.cycles)
  }
})

Effect.runPromise(Effect.scoped(program)).catch((e: unknown) => {
  console.error(e)
  process.exitCode = 1
})
