/**
 * `npm run bench:latency`: how long a job waits between the `queued` webhook's 200 and the scheduler's pod-create
 * call, on a real PostgreSQL with the NOTIFY wake-up.
 *
 * The whole service runs in this process on the real clock: the webhook program on an HTTP port, the scheduler
 * loop (LISTEN on `staging_queue_event`), the in-memory GitHub and cluster, and the simulated world closing the
 * loop (runners register, take their job, report it, exit), so the database holds a steady working set rather
 * than a growing backlog. Jobs arrive at a steady rate (default 20/s, 1,000 jobs, 10 organisations, 2 s each) as
 * signed deliveries over HTTP. Per organisation, the k-th `queued` delivery answered 200 (t0, as the sender sees
 * it) is paired with the k-th `createRunnerPod` call for that organisation (t1): demand is matched per (entity,
 * label set), first come first served, whichever job the runner then takes. A pod created before the sender saw
 * the 200 counts as 0 ms.
 *
 * It runs twice: with the scheduler's settings as configured (`SCHEDULER_WAKE_DEBOUNCE`, default 100 ms, which
 * gathers a burst of notifications into one cycle) and with no debounce. It prints p50, p99 and max for each;
 * it never fails on a number. `POSTGRES_URL` uses an existing server; `BENCH_JOBS`, `BENCH_RATE` change the load.
 */
import { FetchHttpClient, HttpServer } from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { Config, Context, Duration, Effect, HashMap, Layer, Logger, LogLevel, Option, Redacted, Schema, Tracer } from "effect"
import { createServer } from "node:http"
import Pg from "pg"
import { DbPostgres } from "../layers/db/postgres.ts"
import { GithubMemory } from "../layers/github/memory.ts"
import { KubeMemory } from "../layers/kube/memory.ts"
import { HttpWebhookTransport, WebhookTransport } from "../layers/sim/webhookTransport.ts"
import { SimWorldLive } from "../layers/sim/world.ts"
import { SimWorld } from "../layers/sim/worldApi.ts"
import { defaultRunnerConfigInput, RunnerConfig } from "../src/domain/RunnerConfig.ts"
import { startEmbeddedPostgres, tempDataDir } from "../src/embedded/embeddedPostgres.ts"
import { SchedulerLoop } from "../src/scheduler/loop.ts"
import { SchedulerSettingsLive, schedulerTuningConfig } from "../src/scheduler/settings.ts"
import { Kube } from "../src/services/Kube.ts"
import { WebhookServer } from "../src/webhook/server.ts"
import { webhookSettingsLayer } from "../src/webhook/WebhookSettings.ts"
import { percentile } from "./support/percentile.ts"

const JOBS = Number(process.env.BENCH_JOBS ?? 1000)
const RATE = Number(process.env.BENCH_RATE ?? 20)
const ORGS = 10
const JOB_SECONDS = 2
const SECRET = Redacted.make("bench-latency-secret")
// No cap gets in the way: the benchmark measures the wake-up path, not the entity caps.
const config = Schema.decodeUnknownSync(RunnerConfig)({ ...defaultRunnerConfigInput, defaultMaxWorkers: null })

interface Run {
  readonly label: string
  readonly latencies: ReadonlyArray<number>
  readonly missing: number
  /** jobs whose queued delivery never got a 200 (in the time allowed), and jobs no runner was provisioned for */
  readonly noAnswer: number
  readonly noPod: number
  readonly cycles: number
  /** median wall time of one scheduler cycle */
  readonly cycleP50: number
  readonly seconds: number
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
const tracing = process.env.BENCH_SPANS === "1" ? Layer.setTracer(timingTracer) : Layer.empty

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

const runOnce = (url: string, label: string, wakeDebounce: Duration.Duration) =>
  Effect.scoped(Effect.gen(function*() {
    yield* emptyTables(url)
    // per organisation (account id), in order: when its queued deliveries got their 200, when its pods were created
    const answered = new Map<number, Array<number>>()
    const created = new Map<number, Array<number>>()
    const note = (m: Map<number, Array<number>>, key: number, t: number) => m.set(key, [...(m.get(key) ?? []), t])
    let cycles = 0
    const cycleMs: Array<number> = []

    // The log is read for the scheduler's cycle times only; everything else is dropped.
    const logger = Logger.make(({ annotations, message }) => {
      const text = Array.isArray(message) ? message.join(" ") : String(message)
      if (text === "scheduler cycle done") {
        cycles += 1
        const took = Option.getOrUndefined(HashMap.get(annotations, "took_ms"))
        if (typeof took === "number") cycleMs.push(took)
      }
    })
    const quiet = Layer.mergeAll(Logger.replace(Logger.defaultLogger, logger), Logger.minimumLogLevel(LogLevel.Debug), tracing)

    const tuning = yield* schedulerTuningConfig
    const base = yield* Layer.build(Layer.mergeAll(
      DbPostgres({ url: Redacted.make(url), schema: "staging", migrate: true }),
      GithubMemory,
      KubeMemory({ tick: "100 millis", nodes: [{ name: "big-board", pool: "scw-em-rv1", slots: 1000 }] }),
      SchedulerSettingsLive({ runnerConfig: config, prod: false, ...tuning, timeouts: { ...tuning.timeouts, wakeDebounce } })
    ).pipe(Layer.provide(quiet)))
    const kube = Context.get(base, Kube)
    const timedKube = Context.add(base, Kube, {
      ...kube,
      createRunnerPod: (request) =>
        Effect.suspend(() => {
          note(created, request.entity.id, performance.now())
          return kube.createRunnerPod(request)
        })
    })
    const provideBase = Layer.provide(Layer.succeedContext(timedKube))

    const webhook = yield* Layer.build(
      WebhookServer.pipe(
        Layer.provide(Layer.mergeAll(webhookSettingsLayer({ webhookSecret: SECRET, runnerConfig: config }), FetchHttpClient.layer)),
        provideBase,
        Layer.provideMerge(NodeHttpServer.layer(createServer, { port: 0 })),
        Layer.provide(quiet)
      )
    )
    const address = Context.get(webhook, HttpServer.HttpServer).address
    if (address._tag !== "TcpAddress") throw new Error("expected a TCP address")
    const http = yield* Layer.build(
      HttpWebhookTransport({ url: `http://127.0.0.1:${address.port}/`, secret: SECRET }).pipe(Layer.provide(FetchHttpClient.layer))
    )
    const transport = Context.get(http, WebhookTransport)
    const decoder = new TextDecoder()
    const timedTransport = WebhookTransport.of({
      send: (delivery) =>
        Effect.tap(transport.send(delivery), (result) =>
          Effect.sync(() => {
            if (delivery.event !== "workflow_job" || result.status !== 200) return
            const body = JSON.parse(decoder.decode(delivery.body)) as { action: string; repository: { owner: { id: number } } }
            if (body.action === "queued") note(answered, body.repository.owner.id, performance.now())
          }))
    })
    const world = yield* Layer.build(
      SimWorldLive({ speed: 1, runnerConfig: config, apps: config.apps, bootDelay: Duration.millis(200) }).pipe(
        provideBase,
        Layer.provide(Layer.succeed(WebhookTransport, timedTransport)),
        Layer.provide(quiet)
      )
    )
    yield* Layer.build(SchedulerLoop.pipe(provideBase, Layer.provide(quiet)))
    const sim = Context.get(world, SimWorld)

    // Every organisation installs the app first, so the measured jobs do not pay for first contact.
    for (let o = 0; o < ORGS; o++) yield* sim.submitJobs({ owner: `org-${o}`, durationSeconds: 0 }).pipe(Effect.orDie)
    yield* Effect.sleep(Duration.seconds(3))
    answered.clear()
    created.clear()
    cycles = 0
    cycleMs.length = 0
    spanTotals.clear()

    const started = performance.now()
    const ids: Array<number> = []
    const gap = 1000 / RATE
    for (let i = 0; i < JOBS; i++) {
      const due = started + i * gap
      const wait = due - performance.now()
      if (wait > 0) yield* Effect.sleep(Duration.millis(wait))
      ids.push(...(yield* sim.submitJobs({ owner: `org-${i % ORGS}`, repo: "app", durationSeconds: JOB_SECONDS }).pipe(Effect.orDie)))
    }
    const sent = performance.now()
    // let the last ones through
    const count = (m: Map<number, Array<number>>) => [...m.values()].reduce((n, ts) => n + ts.length, 0)
    for (let i = 0; i < 600 && count(created) < ids.length; i++) yield* Effect.sleep(Duration.millis(100))

    const latencies: Array<number> = []
    let noAnswer = 0
    let noPod = 0
    for (const [org, t0s] of answered) {
      const t1s = created.get(org) ?? []
      t0s.forEach((t0, k) => (k < t1s.length ? latencies.push(Math.max(0, t1s[k]! - t0)) : (noPod += 1)))
    }
    noAnswer = ids.length - count(answered)
    const missing = noAnswer + noPod
    const sortedCycles = [...cycleMs].sort((a, b) => a - b)
    return { label, latencies, missing, noAnswer, noPod, cycles, cycleP50: percentile(sortedCycles, 0.5), seconds: (sent - started) / 1000 } satisfies Run
  }))

const reportSpans = (cycles: number) => {
  if (spanTotals.size === 0) return
  const rows = [...spanTotals].sort((a, b) => Number(b[1].ns - a[1].ns)).slice(0, 15)
  for (const [name, t] of rows) {
    console.log(`    ${name.padEnd(36)} ${(Number(t.ns) / 1e6 / Math.max(1, cycles)).toFixed(1).padStart(8)} ms per cycle  (${t.count} spans)`)
  }
}

const report = (run: Run) => {
  const sorted = [...run.latencies].sort((a, b) => a - b)
  const ms = (x: number) => `${x.toFixed(1)} ms`
  console.log(
    `${run.label.padEnd(34)} jobs ${String(sorted.length).padStart(5)}  p50 ${ms(percentile(sorted, 0.5)).padStart(9)}  p99 ${
      ms(percentile(sorted, 0.99)).padStart(9)
    }  max ${ms(sorted.at(-1) ?? Number.NaN).padStart(9)}  (${(sorted.length / run.seconds).toFixed(1)} jobs/s, ${run.cycles} cycles of ${run.cycleP50.toFixed(0)} ms median${
      run.missing > 0 ? `; unmatched: ${run.noAnswer} without a 200, ${run.noPod} without a pod` : ""
    })`
  )
}

const program = Effect.gen(function*() {
  const given = yield* Config.option(Config.redacted("POSTGRES_URL"))
  const url = Option.isSome(given)
    ? Redacted.value(given.value)
    : (yield* startEmbeddedPostgres({ dataDir: yield* Effect.promise(() => tempDataDir("riscv-runner-bench-latency-")), persistent: false })).url
  const tuning = yield* schedulerTuningConfig
  console.log(`${JOBS} jobs at ${RATE} jobs/s over ${ORGS} organisations, each running ${JOB_SECONDS} s; PostgreSQL with LISTEN/NOTIFY`)
  const configured = yield* runOnce(url, `debounce ${Duration.format(tuning.timeouts.wakeDebounce)} (as configured)`, tuning.timeouts.wakeDebounce)
  report(configured)
  reportSpans(configured.cycles)
  const none = yield* runOnce(url, "debounce 0 (SCHEDULER_WAKE_DEBOUNCE=0)", Duration.zero)
  report(none)
  reportSpans(none.cycles)
})

Effect.runPromise(Effect.scoped(program)).catch((e: unknown) => {
  console.error(e)
  process.exitCode = 1
})
