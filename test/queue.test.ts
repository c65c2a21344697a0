import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, Layer, TestClock } from "effect"
import { DbMemory } from "../layers/db/memory.ts"
import { KubeMemory } from "../layers/kube/memory.ts"
import type { Job } from "../src/domain/Job.ts"
import { groupKey } from "../src/scheduler/demandPlan.ts"
import fc from "fast-check"
import { queueViewBefore } from "../bench/queueViewBefore.ts"
import { parseQueueQuery } from "../src/operator/queueRoute.ts"
import { planQueuePage, type QueueInput, queueIndexOf, queueView, typicalDurations } from "../src/scheduler/queueView.ts"
import { schedulerApp } from "../src/operator/server.ts"
import { SchedulerSettingsLive } from "../src/scheduler/settings.ts"
import type { DemandRow } from "../src/services/Db.ts"
import { Db } from "../src/services/Db.ts"
import { newJob } from "./support/dbFixtures.ts"
import { getFrom } from "./support/http.ts"
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

describe("queueView: linear and paged, the same decisions as before", () => {
  const POOLS = ["scw-em-rv1", "other-pool", "Zeta"]
  const arbitraryInput = fc.record({
    jobs: fc.array(fc.record({ minutesAgo: fc.integer({ min: 0, max: 60 }), entity: fc.integer({ min: 0, max: 3 }), pool: fc.integer({ min: 0, max: 2 }), lacking: fc.boolean() }), { maxLength: 60 }),
    available: fc.array(fc.integer({ min: -1, max: 4 }), { minLength: 3, maxLength: 3 }),
    total: fc.array(fc.integer({ min: 0, max: 5 }), { minLength: 3, maxLength: 3 }),
    busy: fc.array(fc.record({ pool: fc.integer({ min: 0, max: 2 }), minutesAgo: fc.option(fc.integer({ min: 0, max: 30 })) }), { maxLength: 6 }),
    cap: fc.option(fc.integer({ min: 0, max: 3 })),
    workers: fc.integer({ min: 0, max: 3 }),
    blockedEntity: fc.option(fc.integer({ min: 0, max: 3 })),
    durations: fc.boolean(),
    fallback: fc.option(fc.integer({ min: 1, max: 20 })),
    policy: fc.constantFrom("fair" as const, "fifo" as const)
  }).map((r): QueueInput => {
    const jobs = r.jobs.map((j, i) =>
      job(i + 1, j.minutesAgo, { entity_id: 1000 + j.entity, entity_name: `e${j.entity}`, k8s_pool: POOLS[j.pool]! })
    )
    return input({
      pending: jobs,
      demand: jobs.filter((_, i) => r.jobs[i]!.lacking).map((j) => row(j, r.workers)),
      available: new Map(POOLS.map((p, i) => [p, r.available[i]!])),
      total: new Map(POOLS.map((p, i) => [p, r.total[i]!])),
      busy: r.busy.map((b) => ({ pool: POOLS[b.pool]!, runningSince: b.minutesAgo === null ? null : new Date(T0 - b.minutesAgo * MIN) })),
      capFor: () => r.cap,
      blocked: r.blockedEntity === null ? new Map() : new Map([[groupKey(1000 + r.blockedEntity, ["ubuntu-24.04-riscv"]), new Date(T0 + 7 * MIN)]]),
      durations: r.durations ? new Map([["scw-em-rv1", 10 * MIN], ["Zeta", 3 * MIN]]) : new Map(),
      fallbackDurationMs: r.fallback === null ? null : r.fallback * MIN,
      policy: r.policy
    })
  })

  it("every entry equals the quadratic original's, on random queues", () => {
    fc.assert(fc.property(arbitraryInput, (q) => {
      expect(queueView(q)).toEqual(queueViewBefore(q))
    }), { numRuns: 300 })
  })

  it("a page is the original's slice (after the pool filter); totals count every job of each pool by reason", () => {
    const request = fc.record({ pool: fc.option(fc.constantFrom("scw-em-rv1", "other-pool", "Zeta", "absent")), offset: fc.integer({ min: 0, max: 70 }), limit: fc.integer({ min: 1, max: 30 }) })
    fc.assert(fc.property(arbitraryInput, request, (q, req) => {
      const all = queueViewBefore(q)
      const matching = req.pool === null ? all : all.filter((e) => e.k8s_pool === req.pool)
      // from the index, with full rows of only the jobs the plan asks for, as the route reads them
      const plan = planQueuePage(queueIndexOf(q), q, req)
      const asked = new Set(plan.jobIds)
      const page = plan.decide(new Map(q.pending.filter((j) => asked.has(j.job_id)).map((j) => [j.job_id, j])))
      expect(plan.jobIds.length).toBeLessThanOrEqual(page.jobs.length + q.demand.length)
      expect(page.jobs).toEqual(matching.slice(req.offset, req.offset + req.limit))
      expect(page.total).toBe(matching.length)
      expect(page.next_offset).toBe(req.offset + req.limit < matching.length ? req.offset + req.limit : null)
      const expected = [...new Set(all.map((e) => e.k8s_pool))].sort((a, b) => a.localeCompare(b)).map((pool) => {
        const of = all.filter((e) => e.k8s_pool === pool)
        const n = (reason: string) => of.filter((e) => e.reason === reason).length
        return { pool, pending: of.length, provisioning: n("provisioning"), no_free_board: n("no_free_board"), cap_reached: n("cap_reached"), backoff_after_failure: n("backoff_after_failure") }
      })
      expect(page.pools).toEqual(expected)
    }), { numRuns: 300 })
  })

  it("full rows are asked for only the page's jobs and the rows the planner could take", () => {
    // 3 entities of 100 jobs each, one free board, a cap of 5: each entity's first min(1, 5 - 1) rows are the planner's
    const jobs = Array.from({ length: 300 }, (_, i) => job(i + 1, 300 - i, { entity_id: 1000 + (i % 3) }))
    const q = input({ pending: jobs, demand: jobs.map((j) => row(j, 1)), available: new Map([["scw-em-rv1", 1]]), capFor: () => 5 })
    const plan = planQueuePage(queueIndexOf(q), q, { pool: null, offset: 200, limit: 10 })
    expect([...plan.jobIds].sort((a, b) => a - b)).toEqual([1, 2, 3, ...Array.from({ length: 10 }, (_, i) => 201 + i)])
    const page = plan.decide(new Map(jobs.filter((j) => plan.jobIds.includes(j.job_id)).map((j) => [j.job_id, j])))
    expect(page.jobs.map((e) => [e.job_id, e.position, e.reason])).toEqual(Array.from({ length: 10 }, (_, i) => [201 + i, 201 + i, "no_free_board"]))
    expect(page.pools).toEqual([{ pool: "scw-em-rv1", pending: 300, provisioning: 1, no_free_board: 299, cap_reached: 0, backoff_after_failure: 0 }])
  })

  it("query parameters: defaults, bounds, and a message naming the bad one", () => {
    const parse = (q: string) => parseQueueQuery(new URLSearchParams(q))
    expect(parse("")).toEqual(Either.right({ pool: null, offset: 0, limit: 100 }))
    expect(parse("pool=scw-em-rv1&offset=200&limit=1000")).toEqual(Either.right({ pool: "scw-em-rv1", offset: 200, limit: 1000 }))
    expect(parse("limit=0")).toEqual(Either.left("invalid parameter limit, must be an integer from 1 to 1000"))
    expect(parse("limit=1001")).toEqual(Either.left("invalid parameter limit, must be an integer from 1 to 1000"))
    expect(parse("limit=ten")).toEqual(Either.left("invalid parameter limit, must be an integer from 1 to 1000"))
    expect(parse("offset=-1")).toEqual(Either.left("invalid parameter offset, must be an integer from 0 to 999999999"))
    expect(parse("offset=1.5")).toEqual(Either.left("invalid parameter offset, must be an integer from 0 to 999999999"))
    expect(parse("pool=")).toEqual(Either.left("invalid parameter pool, must be a pool name"))
  })
})

describe("GET /queue.json", () => {
  const world = Layer.mergeAll(DbMemory, KubeMemory({ tick: null }), SchedulerSettingsLive({ runnerConfig: testRunnerConfig(), prod: false }))
  const get = (path: string) => getFrom(schedulerApp, path)

  it.effect("one page of the pending jobs, with its pool position and reason, and the totals of every pool", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(T0)
      expect(JSON.parse((yield* get("/queue.json")).body)).toEqual({ total: 0, offset: 0, limit: 100, next_offset: null, pools: [], jobs: [] })
      const db = yield* Db
      yield* db.addJob(newJob(11))
      yield* TestClock.adjust("1 minute")
      yield* db.addJob(newJob(12))
      const res = yield* get("/queue.json")
      expect(res.status).toBe(200)
      expect(res.type).toContain("application/json")
      // the in-memory cluster here has no nodes: no free board for anyone, and no durations to estimate from
      expect(JSON.parse(res.body)).toEqual({
        total: 2,
        offset: 0,
        limit: 100,
        next_offset: null,
        pools: [{ pool: "scw-em-rv1", pending: 2, provisioning: 0, no_free_board: 2, cap_reached: 0, backoff_after_failure: 0 }],
        jobs: [
          expect.objectContaining({ job_id: 11, entity_name: "acme", k8s_pool: "scw-em-rv1", position: 1, reason: "no_free_board", estimated_start: null }),
          expect.objectContaining({ job_id: 12, position: 2, reason: "no_free_board" })
        ]
      })
    }).pipe(Effect.provide(world)))

  it.effect("paged: limit, offset and pool pick the window; the pool totals stay whole; bad values are 400s", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(T0)
      const db = yield* Db
      for (let i = 1; i <= 250; i++) {
        yield* db.addJob({ ...newJob(1000 + i), k8s_pool: i % 5 === 0 ? "other-pool" : "scw-em-rv1" })
        yield* TestClock.adjust("1 second")
      }
      const first = JSON.parse((yield* get("/queue.json")).body)
      // the default page is 100 entries, ordered by pool name, then position
      expect(first.jobs).toHaveLength(100)
      expect(first).toMatchObject({ total: 250, offset: 0, limit: 100, next_offset: 100 })
      expect(first.jobs.slice(0, 2).map((e: { job_id: number; k8s_pool: string; position: number }) => [e.k8s_pool, e.position])).toEqual([["other-pool", 1], ["other-pool", 2]])
      expect(first.pools).toEqual([
        { pool: "other-pool", pending: 50, provisioning: 0, no_free_board: 50, cap_reached: 0, backoff_after_failure: 0 },
        { pool: "scw-em-rv1", pending: 200, provisioning: 0, no_free_board: 200, cap_reached: 0, backoff_after_failure: 0 }
      ])
      const last = JSON.parse((yield* get("/queue.json?offset=200&limit=100")).body)
      expect(last).toMatchObject({ total: 250, offset: 200, next_offset: null })
      expect(last.jobs.map((e: { position: number }) => e.position)).toEqual(Array.from({ length: 50 }, (_, i) => 151 + i))
      expect(last.pools).toEqual(first.pools)
      const pool = JSON.parse((yield* get("/queue.json?pool=scw-em-rv1&offset=10&limit=3")).body)
      expect(pool).toMatchObject({ total: 200, offset: 10, limit: 3, next_offset: 13 })
      expect(pool.jobs.map((e: { k8s_pool: string; position: number }) => [e.k8s_pool, e.position])).toEqual([["scw-em-rv1", 11], ["scw-em-rv1", 12], ["scw-em-rv1", 13]])
      expect(pool.pools).toEqual(first.pools)
      expect(JSON.parse((yield* get("/queue.json?pool=nowhere")).body)).toMatchObject({ total: 0, jobs: [], next_offset: null })
      for (const [query, message] of [
        ["limit=0", "invalid parameter limit, must be an integer from 1 to 1000"],
        ["limit=5000", "invalid parameter limit, must be an integer from 1 to 1000"],
        ["offset=x", "invalid parameter offset, must be an integer from 0 to 999999999"],
        ["pool=", "invalid parameter pool, must be a pool name"]
      ]) {
        const bad = yield* get(`/queue.json?${query}`)
        expect([bad.status, bad.body], query).toEqual([400, message])
      }
    }).pipe(Effect.provide(world)))
})
