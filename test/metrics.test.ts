import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Layer, Metric, MetricBoundaries, TestClock } from "effect"
// a real parser of the text exposition format, independent of our renderer
// @ts-expect-error the package ships no types
import parsePrometheusTextFormat from "parse-prometheus-text-format"
import { DbMemory } from "../layers/db/memory.ts"
import { GithubMemory, GithubMemoryControl } from "../layers/github/memory.ts"
import { KubeMemory } from "../layers/kube/memory.ts"
import { recordCapacity, recordCycle } from "../src/observability/collect.ts"
import { renderExposition, renderRegistry } from "../src/observability/exposition.ts"
import { MeteredDb } from "../src/observability/meteredDb.ts"
import { schedulerApp } from "../src/operator/server.ts"
import { SchedulerSettingsLive } from "../src/scheduler/settings.ts"
import { Db } from "../src/services/Db.ts"
import { Kube } from "../src/services/Kube.ts"
import { Github } from "../src/services/Github.ts"
import { userInstallation, userRef } from "./contracts/github.ts"
import { failureV2 } from "../src/domain/FailureInfo.ts"
import { newJob, newWorker } from "./support/dbFixtures.ts"
import { getFrom } from "./support/http.ts"
import { testRunnerConfig } from "./support/schedulerWorld.ts"
import { memoryBackend, withWebhook } from "./support/webhookHarness.ts"

interface Sample {
  readonly value?: string
  readonly labels?: Record<string, string>
  readonly buckets?: Record<string, string>
  readonly count?: string
  readonly sum?: string
}
interface ParsedFamily {
  readonly name: string
  readonly help: string
  readonly type: string
  readonly metrics: ReadonlyArray<Sample>
}
const parse = (text: string): ReadonlyArray<ParsedFamily> => parsePrometheusTextFormat(text)
const familyOf = (text: string, name: string) => parse(text).find((f) => f.name === name)
const sample = (text: string, name: string, labels: Record<string, string> = {}) =>
  familyOf(text, name)?.metrics.find((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v))

describe("exposition renderer", () => {
  it.effect("escapes label values and help text so that a real parser reads them back exactly", () =>
    Effect.gen(function*() {
      const nasty = `C:\\dir\\"quoted"\nnext line`
      const counter = Metric.counter("test_escape_total", { description: "help with \\ backslash\nand a newline" }).pipe(
        Metric.tagged("entity", nasty),
        Metric.tagged("pool", "scw-em-rv1")
      )
      yield* Metric.incrementBy(counter, 3)
      const text = renderExposition((yield* Metric.snapshot).filter((p) => p.metricKey.name === "test_escape_total"))
      expect(text).toContain(`entity="C:\\\\dir\\\\\\"quoted\\"\\nnext line"`)
      const family = familyOf(text, "test_escape_total")!
      expect(family.type).toBe("COUNTER")
      expect(family.metrics[0]).toEqual({ value: "3", labels: { entity: nasty, pool: "scw-em-rv1" } })
    }))

  it.effect("renders a histogram as cumulative buckets ending in +Inf, with sum and count", () =>
    Effect.gen(function*() {
      const h = Metric.histogram("test_histogram_seconds", MetricBoundaries.fromIterable([1, 5, 10]), "a histogram")
      for (const v of [0.5, 2, 3, 7, 100]) yield* Metric.update(h, v)
      const text = renderExposition((yield* Metric.snapshot).filter((p) => p.metricKey.name === "test_histogram_seconds"))
      const family = familyOf(text, "test_histogram_seconds")!
      expect(family.type).toBe("HISTOGRAM")
      expect(family.metrics[0]).toMatchObject({ buckets: { "1": "1", "5": "3", "10": "4", "+Inf": "5" }, count: "5", sum: "112.5" })
    }))

  it.effect("counters end in _total (added to Effect's runtime counters); effect_fiber_active is a gauge", () =>
    Effect.gen(function*() {
      yield* Metric.increment(Metric.counter("test_runtime_like_counter"))
      yield* Metric.incrementBy(Metric.counter("effect_fiber_active"), 2)
      const text = renderExposition(
        (yield* Metric.snapshot).filter((p) => ["test_runtime_like_counter", "effect_fiber_active"].includes(p.metricKey.name))
      )
      expect(familyOf(text, "test_runtime_like_counter_total")?.type).toBe("COUNTER")
      expect(familyOf(text, "test_runtime_like_counter")).toBeUndefined()
      expect(familyOf(text, "effect_fiber_active")?.type).toBe("GAUGE")
      // a name that already ends in _total is not doubled
      yield* recordCycle(1)
      const all = yield* renderRegistry
      expect(all).not.toMatch(/_total_total/)
      for (const f of parse(all)) {
        if (f.type === "COUNTER") expect(f.name, f.name).toMatch(/_total$/)
        else expect(f.name, f.name).not.toMatch(/_total$/)
      }
    }))

  it.effect("an empty registry slice renders as nothing; every family has HELP and TYPE once", () =>
    Effect.gen(function*() {
      expect(renderExposition([])).toBe("")
      yield* recordCycle(20)
      const text = yield* renderRegistry
      const types = text.split("\n").filter((l) => l.startsWith("# TYPE "))
      expect(new Set(types).size).toBe(types.length)
      expect(familyOf(text, "riscv_runner_scheduler_cycle_duration_seconds")?.type).toBe("HISTOGRAM")
    }))
})

const world = Layer.mergeAll(
  MeteredDb.pipe(Layer.provideMerge(DbMemory)),
  KubeMemory({ tick: null }),
  SchedulerSettingsLive({ runnerConfig: testRunnerConfig(), prod: false })
)

const get = (path: string) => getFrom(schedulerApp, path)

describe("scheduler /metrics", () => {
  it.effect("jobs and workers by status, failures by reason, slots per pool, Kube calls; the format parses", () =>
    Effect.gen(function*() {
      const db = yield* Db
      const kube = yield* Kube
      yield* db.addJob(newJob(101))
      yield* db.addJob(newJob(102))
      yield* db.addJob(newJob(103))
      yield* db.markJobRunning(103, "rise-riscv-runner-staging-x")
      yield* db.addWorker(newWorker("rise-riscv-runner-staging-m1"))
      yield* db.addWorker(newWorker("rise-riscv-runner-staging-m2"))
      const before = Number(sample(yield* renderRegistry, "riscv_runner_worker_failures_total", { reason: "pod_stuck_pending" })?.value ?? 0)
      yield* db.markWorkerFailed("rise-riscv-runner-staging-m2", null, failureV2("pod_stuck_pending"), null)
      // a second write that changes nothing is not counted again
      yield* db.markWorkerFailed("rise-riscv-runner-staging-m2", null, failureV2("pod_stuck_pending"), null)
      yield* kube.capacity
      yield* recordCapacity(new Map([["scw-em-rv1", { pool: "scw-em-rv1", total: 4, usable: 4, active: 1, available: 3, boards: [] }]]))
      const res = yield* get("/metrics")
      expect(res.status).toBe(200)
      expect(res.type).toContain("text/plain; version=0.0.4")
      const text = res.body
      expect(sample(text, "riscv_runner_jobs", { status: "pending" })?.value).toBe("2")
      expect(sample(text, "riscv_runner_jobs", { status: "running" })?.value).toBe("1")
      expect(sample(text, "riscv_runner_workers", { status: "pending" })?.value).toBe("1")
      expect(sample(text, "riscv_runner_workers", { status: "running" })?.value).toBe("0")
      expect(Number(sample(text, "riscv_runner_worker_failures_total", { reason: "pod_stuck_pending" })?.value)).toBe(before + 1)
      expect(familyOf(text, "riscv_runner_pool_slots")?.type).toBe("GAUGE")
      expect(sample(text, "riscv_runner_pool_slots", { pool: "scw-em-rv1" })?.value).toBe("4")
      expect(sample(text, "riscv_runner_pool_slots_free", { pool: "scw-em-rv1" })?.value).toBe("3")
      expect(familyOf(text, "riscv_runner_kube_api_calls_total")?.type).toBe("COUNTER")
      expect(Number(sample(text, "riscv_runner_kube_api_calls_total", { operation: "listNodes" })?.value)).toBeGreaterThanOrEqual(1)
      // a queue that empties reads 0 on the next scrape, not its last value
      yield* db.markJobCompleted(101, null)
      yield* db.markJobCompleted(102, null)
      expect(sample((yield* get("/metrics")).body, "riscv_runner_jobs", { status: "pending" })?.value).toBe("0")
    }).pipe(Effect.provide(world)))
})

describe("scheduler /metrics: the queue's oldest waits", () => {
  it.effect("the oldest wait per pool, and the oldest of the jobs no entity cap holds back", () =>
    Effect.gen(function*() {
      const db = yield* Db
      const wait = (text: string, name: string) => sample(text, name, { pool: "scw-em-rv1" })?.value
      // acme (cap 1) has a runner already and a job waiting since minute 0; beta's job waits since minute 10
      yield* db.addWorker(newWorker("rise-riscv-runner-staging-c1", { entity_id: 1001 }))
      yield* db.addJob(newJob(301, { entity_id: 1001 }))
      yield* TestClock.adjust(Duration.minutes(10))
      yield* db.addJob(newJob(302, { entity_id: 2002, entity_name: "beta" }))
      yield* TestClock.adjust(Duration.minutes(20))
      const capped = (yield* get("/metrics")).body
      expect(wait(capped, "riscv_runner_queue_oldest_wait_seconds")).toBe("1800")
      expect(wait(capped, "riscv_runner_queue_oldest_uncapped_wait_seconds")).toBe("1200")
      // acme's runner ends: its job is held back no more, and is the pool's oldest of both
      yield* db.markWorkerCompleted("rise-riscv-runner-staging-c1", null, null)
      const free = (yield* get("/metrics")).body
      expect(wait(free, "riscv_runner_queue_oldest_uncapped_wait_seconds")).toBe("1800")
    }).pipe(Effect.provide(Layer.mergeAll(
      MeteredDb.pipe(Layer.provideMerge(DbMemory)),
      KubeMemory({ tick: null }),
      SchedulerSettingsLive({ runnerConfig: testRunnerConfig({ entities: { "1001": { maxWorkers: 1 } } }), prod: false })
    ))))
})

describe("scheduler /metrics: the GitHub budget", () => {
  it.effect("an installation's budget stays exported after its work ends, and reads full once its window has reset", () =>
    Effect.gen(function*() {
      const db = yield* Db
      const gh = yield* Github
      const control = yield* GithubMemoryControl
      const remaining = (text: string) => sample(text, "riscv_runner_github_rate_limit_remaining", { installation_id: "22" })?.value
      yield* control.addInstallation(userInstallation)
      yield* control.setRateLimit(22, { limit: 100, remaining: 6, resetAt: new Date(3_600_000) })
      yield* gh.listRunnersRepo(userRef, "alice/p")
      // a job of the installation is active: its budget is exported as GitHub reported it (5 of 100: under 10 %)
      yield* db.addJob(newJob(201, { installation_id: 22 }))
      const busy = (yield* get("/metrics")).body
      expect(remaining(busy)).toBe("5")
      expect(sample(busy, "riscv_runner_github_rate_limit", { installation_id: "22" })?.value).toBe("100")
      // its work ends, the budget has not reset yet: still what GitHub said
      yield* db.markJobCompleted(201, null)
      yield* TestClock.adjust(Duration.minutes(30))
      expect(remaining((yield* get("/metrics")).body)).toBe("5")
      // past the reset, with no call since: GitHub has refilled it, and so does the gauge (no stale budget alert)
      yield* TestClock.adjust(Duration.minutes(31))
      expect(remaining((yield* get("/metrics")).body)).toBe("100")
    }).pipe(Effect.provide(Layer.merge(world, GithubMemory))))
})

describe("webhook /metrics", () => {
  it.live("counts deliveries by event and outcome, and signature failures", () =>
    withWebhook(memoryBackend, (h) =>
      Effect.gen(function*() {
        const read = (text: string, name: string, labels: Record<string, string> = {}) => Number(sample(text, name, labels)?.value ?? 0)
        const first = (yield* h.request("/metrics")).text
        yield* h.deliver("ping", { zen: "hi", hook_id: 1 })
        yield* h.deliver("ping", { zen: "hi", hook_id: 1 }, { signature: "sha256=00" })
        yield* h.deliver("ping", { zen: "hi", hook_id: 1 }, { signature: null })
        const res = yield* h.request("/metrics")
        expect(res.status).toBe(200)
        expect(read(res.text, "riscv_runner_webhook_deliveries_total", { event: "ping", outcome: "ok" }))
          .toBe(read(first, "riscv_runner_webhook_deliveries_total", { event: "ping", outcome: "ok" }) + 1)
        expect(read(res.text, "riscv_runner_webhook_signature_failures_total"))
          .toBe(read(first, "riscv_runner_webhook_signature_failures_total") + 2)
      })))
})
