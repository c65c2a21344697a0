import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, TestClock } from "effect"
import { DbMemory } from "../layers/db/memory.ts"
import { KubeMemory } from "../layers/kube/memory.ts"
import type { Job } from "../src/domain/Job.ts"
import { groupKey } from "../src/scheduler/demandPlan.ts"
import { type QueueInput, queueView, typicalDurations } from "../src/scheduler/queueView.ts"
import { schedulerRouter } from "../src/scheduler/routes.ts"
import { SchedulerSettingsLive } from "../src/scheduler/settings.ts"
import type { DemandRow } from "../src/services/Db.ts"
import { Db } from "../src/services/Db.ts"
import { newJob } from "./support/dbFixtures.ts"
import { getFrom } from "./support/routerRequest.ts"
import { testRunnerConfig } from "./support/schedulerWorld.ts"

const T0 = Date.UTC(2026, 10, 23, 12, 0, 0)
const MIN = 60_000

const job = (id: number, minutesAgo: number, over: Partial<Job> = {}): Job => ({
  ...newJob(id),
  status: "pending",
  failure_info: null,
  k8s_pod: null,
  created_at: new Date(T0 - minutesAgo * MIN),
  updated_at: new Date(T0 - minutesAgo * MIN),
  ...over
})
const row = (j: Job, entityActiveWorkers = 0): DemandRow => ({ job: j, rank: 1, groupDemand: 1, groupSupply: 0, entityActiveWorkers })

const input = (over: Partial<QueueInput>): QueueInput => ({
  now: new Date(T0),
  pending: [],
  demand: [],
  available: new Map([["scw-em-rv1", 0]]),
  total: new Map([["scw-em-rv1", 2]]),
  busy: [],
  capFor: () => null,
  weightFor: () => 1,
  policy: "fair",
  blocked: new Map(),
  durations: new Map([["scw-em-rv1", 10 * MIN]]),
  fallbackDurationMs: null,
  ...over
})
const iso = (minutesFromNow: number) => new Date(T0 + minutesFromNow * MIN).toISOString()

describe("queueView: reasons", () => {
  const a = job(1, 30)
  const b = job(2, 20)
  const other = job(3, 10, { entity_id: 7, entity_name: "other" })
  const cases: ReadonlyArray<{ name: string; over: Partial<QueueInput>; expected: Record<number, string> }> = [
    {
      name: "a job with a runner reserved (not in the demand) is provisioning",
      over: { pending: [a], demand: [] },
      expected: { 1: "provisioning" }
    },
    {
      name: "a free slot: the planner takes the oldest, the rest wait for a board",
      over: { pending: [a, b], demand: [row(a), row(b)], available: new Map([["scw-em-rv1", 1]]) },
      expected: { 1: "provisioning", 2: "no_free_board" }
    },
    {
      name: "every board taken: no_free_board",
      over: { pending: [a, b], demand: [row(a), row(b)] },
      expected: { 1: "no_free_board", 2: "no_free_board" }
    },
    {
      name: "an entity at its cap waits for itself, while another takes the free board",
      over: {
        pending: [a, other],
        demand: [row(a, 2), row(other, 0)],
        available: new Map([["scw-em-rv1", 1]]),
        capFor: (id) => (id === 1001 ? 2 : null)
      },
      expected: { 1: "cap_reached", 3: "provisioning" }
    },
    {
      name: "a group backing off after allocation failures",
      over: {
        pending: [a, other],
        demand: [row(a), row(other)],
        available: new Map([["scw-em-rv1", 2]]),
        blocked: new Map([[groupKey(1001, ["ubuntu-24.04-riscv"]), new Date(T0 + 5 * MIN)]])
      },
      expected: { 1: "backoff_after_failure", 3: "provisioning" }
    }
  ]
  for (const c of cases) {
    it(c.name, () => {
      const view = queueView(input(c.over))
      expect(Object.fromEntries(view.map((e) => [e.job_id, e.reason]))).toEqual(c.expected)
    })
  }
})

describe("queueView: positions and estimated starts", () => {
  it("positions count per pool, oldest first, whatever the input order", () => {
    const jobs = [job(1, 5), job(2, 50), job(3, 20, { k8s_pool: "other-pool" }), job(4, 10)]
    const view = queueView(input({ pending: jobs, demand: jobs.map((j) => row(j)), total: new Map(), available: new Map() }))
    expect(view.map((e) => [e.job_id, e.k8s_pool, e.position])).toEqual([
      [3, "other-pool", 1],
      [2, "scw-em-rv1", 1],
      [4, "scw-em-rv1", 2],
      [1, "scw-em-rv1", 3]
    ])
  })

  it("each waiting job takes the earliest slot: running workers free theirs after a typical run", () => {
    const jobs = [job(1, 30), job(2, 20), job(3, 10)]
    const view = queueView(input({
      pending: jobs,
      demand: jobs.map((j) => row(j)),
      // two boards: one ran for 8 of its 10 minutes, the other for 1
      busy: [{ pool: "scw-em-rv1", runningSince: new Date(T0 - 8 * MIN) }, { pool: "scw-em-rv1", runningSince: new Date(T0 - 1 * MIN) }]
    }))
    expect(view.map((e) => e.estimated_start)).toEqual([iso(2), iso(9), iso(12)])
  })

  it("a backing-off group starts no earlier than its back-off ends; provisioning starts now", () => {
    const a = job(1, 30)
    const b = job(2, 20)
    const view = queueView(input({
      pending: [a, b],
      demand: [row(b)],
      available: new Map([["scw-em-rv1", 1]]),
      busy: [{ pool: "scw-em-rv1", runningSince: null }],
      blocked: new Map([[groupKey(1001, ["ubuntu-24.04-riscv"]), new Date(T0 + 5 * MIN)]])
    }))
    expect(view.map((e) => [e.job_id, e.reason, e.estimated_start])).toEqual([
      [1, "provisioning", iso(0)],
      [2, "backoff_after_failure", iso(5)]
    ])
  })

  it("no recent durations: no estimate (but provisioning jobs start now)", () => {
    const a = job(1, 30)
    const b = job(2, 20)
    const view = queueView(input({ pending: [a, b], demand: [row(b)], durations: new Map(), fallbackDurationMs: null }))
    expect(view.map((e) => e.estimated_start)).toEqual([iso(0), null])
  })

  it("typicalDurations: the median per pool and overall, skipping unfinished runs", () => {
    const w = (pool: string, start: number | null, minutes: number) => ({
      k8s_pool: pool,
      running_at: start === null ? null : new Date(T0 + start * MIN),
      completed_at: new Date(T0 + ((start ?? 0) + minutes) * MIN)
    })
    const d = typicalDurations([w("a", 0, 4), w("a", 1, 10), w("a", 2, 6), w("b", 0, 20), w("b", null, 99)])
    expect(d.byPool).toEqual(new Map([["a", 6 * MIN], ["b", 20 * MIN]]))
    expect(d.overall).toBe(8 * MIN)
  })
})

describe("GET /queue.json", () => {
  const world = Layer.mergeAll(DbMemory, KubeMemory({ tick: null }), SchedulerSettingsLive({ runnerConfig: testRunnerConfig(), prod: false }))
  const get = (path: string) => getFrom(schedulerRouter, path)

  it.effect("every pending job, with its pool position and reason; [] when none", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(T0)
      expect((yield* get("/queue.json")).body).toBe("[]")
      const db = yield* Db
      yield* db.addJob(newJob(11))
      yield* TestClock.adjust("1 minute")
      yield* db.addJob(newJob(12))
      const res = yield* get("/queue.json")
      expect(res.status).toBe(200)
      expect(res.type).toContain("application/json")
      // the in-memory cluster here has no nodes: no free board for anyone, and no durations to estimate from
      expect(JSON.parse(res.body)).toEqual([
        expect.objectContaining({ job_id: 11, entity_name: "acme", k8s_pool: "scw-em-rv1", position: 1, reason: "no_free_board", estimated_start: null }),
        expect.objectContaining({ job_id: 12, position: 2, reason: "no_free_board" })
      ])
    }).pipe(Effect.provide(world)))
})
