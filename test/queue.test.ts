import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, Layer, TestClock } from "effect"
import { DbMemory } from "../layers/db/memory.ts"
import { KubeMemory } from "../layers/kube/memory.ts"
import type { Job } from "../src/domain/Job.ts"
import { groupKey, planProvisioning } from "../src/scheduler/demandPlan.ts"
import fc from "fast-check"
import { parseQueueQuery } from "../src/operator/queueRoute.ts"
import { parseIdList } from "../layers/db/queueLacking.ts"
import { yieldToEventLoop } from "../src/services/eventLoop.ts"
import { type BusySlot, planQueuePage, type QueueInput, queueIndexOf, queueView, typicalDurations } from "../src/scheduler/queueView.ts"
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
  const busyOf = (entityId: number, minutesAgo: number | null, pool = "scw-em-rv1"): BusySlot => ({
    pool,
    entityId,
    runningSince: minutesAgo === null ? null : new Date(T0 - minutesAgo * MIN)
  })

  it("fifo: positions count per pool, oldest first, whatever the input order", () => {
    const jobs = [job(1, 5), job(2, 50), job(3, 20, { k8s_pool: "other-pool" }), job(4, 10)]
    const view = queueView(input({ pending: jobs, demand: jobs.map((j) => row(j)), total: new Map(), available: new Map(), policy: "fifo" }))
    expect(view.map((e) => [e.job_id, e.k8s_pool, e.position])).toEqual([
      [3, "other-pool", 1],
      [2, "scw-em-rv1", 1],
      [4, "scw-em-rv1", 2],
      [1, "scw-em-rv1", 3]
    ])
  })

  it("fair: the next board goes to the smaller entity's younger job, so it is position 1", () => {
    // bigco holds both boards and waits with two older jobs; smallco has none and one younger job
    const big1 = job(1, 50, { entity_id: 10, entity_name: "bigco" })
    const big2 = job(2, 40, { entity_id: 10, entity_name: "bigco" })
    const small = job(3, 5, { entity_id: 20, entity_name: "smallco" })
    const view = queueView(input({
      pending: [big1, big2, small],
      demand: [row(big1, 2), row(big2, 2), row(small, 0)],
      busy: [busyOf(10, 8), busyOf(10, 1)]
    }))
    expect(view.map((e) => [e.job_id, e.position, e.estimated_start])).toEqual([
      [3, 1, iso(2)],
      [1, 2, iso(9)],
      [2, 3, iso(12)]
    ])
    // fifo serves by age instead
    const fifo = queueView(input({ pending: [big1, big2, small], demand: [row(big1, 2), row(big2, 2), row(small, 0)], busy: [busyOf(10, 8), busyOf(10, 1)], policy: "fifo" }))
    expect(fifo.map((e) => [e.job_id, e.position])).toEqual([[1, 1], [2, 2], [3, 3]])
  })

  it("each waiting job takes the earliest slot: running workers free theirs after a typical run", () => {
    const jobs = [job(1, 30), job(2, 20), job(3, 10)]
    const view = queueView(input({ pending: jobs, demand: jobs.map((j) => row(j, 2)), busy: [busyOf(1001, 8), busyOf(1001, 1)] }))
    expect(view.map((e) => e.estimated_start)).toEqual([iso(2), iso(9), iso(12)])
  })

  it("an entity at its cap gets no estimate from a free board: it waits for one of its own workers to end", () => {
    const capped = job(1, 30)
    const view = queueView(input({
      pending: [capped],
      demand: [row(capped, 1)],
      available: new Map([["scw-em-rv1", 1]]),
      busy: [busyOf(1001, 2)],
      capFor: () => 1
    }))
    expect(view.map((e) => [e.job_id, e.reason, e.estimated_start])).toEqual([[1, "cap_reached", iso(8)]])
    // a cap that no worker of the entity will free: no estimate at all
    const never = queueView(input({ pending: [capped], demand: [row(capped, 0)], available: new Map([["scw-em-rv1", 1]]), capFor: () => 0 }))
    expect(never.map((e) => [e.reason, e.estimated_start])).toEqual([["cap_reached", null]])
  })

  it("a drained board: while more workers run than the pool has slots, the first to end frees nothing", () => {
    const waiting = job(1, 30)
    const view = queueView(input({
      pending: [waiting],
      demand: [row(waiting, 2)],
      available: new Map([["scw-em-rv1", -1]]),
      total: new Map([["scw-em-rv1", 1]]),
      busy: [busyOf(1001, 8), busyOf(1001, 1)]
    }))
    expect(view.map((e) => e.estimated_start)).toEqual([iso(9)])
  })

  it("a backing-off group starts no earlier than its back-off ends; provisioning starts now", () => {
    const a = job(1, 30)
    const b = job(2, 20)
    const view = queueView(input({
      pending: [a, b],
      demand: [row(b, 1)],
      available: new Map([["scw-em-rv1", 1]]),
      busy: [busyOf(1001, null)],
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

describe("queueView: the planner's own decisions, now and forward in time", () => {
  const POOLS = ["scw-em-rv1", "other-pool", "Zeta"]
  const DURATIONS = new Map([["scw-em-rv1", 10 * MIN], ["other-pool", 7 * MIN], ["Zeta", 3 * MIN]])
  const ENTITIES = 4
  const LABEL_SETS = [["ubuntu-24.04-riscv"], ["ubuntu-24.04-riscv", "big"]]
  /**
   * A consistent world: per pool a number of boards, some taken by running workers of known entities, the others
   * free; entities' worker counts and caps; every pending job lacks a runner; a typical run time per pool.
   */
  const arbitraryWorld = fc.record({
    jobs: fc.array(fc.record({ minutesAgo: fc.integer({ min: 0, max: 60 }), entity: fc.integer({ min: 0, max: ENTITIES - 1 }), pool: fc.integer({ min: 0, max: 2 }), labels: fc.integer({ min: 0, max: 1 }) }), { maxLength: 40 }),
    boards: fc.array(fc.integer({ min: 0, max: 4 }), { minLength: 3, maxLength: 3 }),
    busy: fc.array(fc.record({ pool: fc.integer({ min: 0, max: 2 }), entity: fc.integer({ min: 0, max: ENTITIES - 1 }), minutesAgo: fc.integer({ min: 0, max: 2 }) }), { maxLength: 8 }),
    caps: fc.array(fc.option(fc.integer({ min: 0, max: 3 })), { minLength: ENTITIES, maxLength: ENTITIES }),
    weights: fc.array(fc.integer({ min: 1, max: 3 }), { minLength: ENTITIES, maxLength: ENTITIES }),
    blocked: fc.option(fc.record({ entity: fc.integer({ min: 0, max: ENTITIES - 1 }), minutes: fc.integer({ min: 1, max: 15 }) })),
    policy: fc.constantFrom("fair" as const, "fifo" as const)
  }).map((r) => {
    const eid = (e: number) => 1000 + e
    const jobs = r.jobs.map((j, i) =>
      job(i + 1, j.minutesAgo, { entity_id: eid(j.entity), entity_name: `e${j.entity}`, k8s_pool: POOLS[j.pool]!, job_labels: LABEL_SETS[j.labels]! })
    )
    const busy = r.busy.map((b): BusySlot => ({ pool: POOLS[b.pool]!, entityId: eid(b.entity), runningSince: new Date(T0 - b.minutesAgo * MIN) }))
    const active = (e: number) => busy.filter((b) => b.entityId === e).length
    const q = input({
      pending: jobs,
      demand: jobs.map((j) => row(j, active(j.entity_id))),
      // more workers than boards is a drained pool: available goes below 0
      available: new Map(POOLS.map((p, i) => [p, r.boards[i]! - busy.filter((b) => b.pool === p).length])),
      total: new Map(POOLS.map((p, i) => [p, r.boards[i]!])),
      busy,
      capFor: (e) => r.caps[e - 1000] ?? null,
      weightFor: (e) => r.weights[e - 1000]!,
      blocked: r.blocked === null ? new Map() : new Map([[groupKey(eid(r.blocked.entity), LABEL_SETS[0]!), new Date(T0 + r.blocked.minutes * MIN)]]),
      durations: DURATIONS,
      policy: r.policy
    })
    return q
  })

  /**
   * The real planner, replayed: at each moment a board frees or a back-off ends, `planProvisioning` decides over
   * the jobs still waiting, with the boards free then and the entities' workers then. Returns each served job's
   * pool, order of service in its pool and start.
   */
  const replay = (q: QueueInput) => {
    const now = q.now.getTime()
    const workers = q.busy.map((b) => ({ entityId: b.entityId, pool: b.pool, end: b.runningSince!.getTime() + DURATIONS.get(b.pool)! }))
    let waiting = [...q.pending]
    const served = new Map<number, { readonly start: number; readonly rank: number }>()
    const rankIn = new Map<string, number>()
    let first: ReturnType<typeof planProvisioning> = { provisions: [], skipped: [] }
    let planned = false
    for (let t = now; waiting.length > 0;) {
      const alive = workers.filter((w) => w.end > t)
      const blocked = new Set([...q.blocked].filter(([, until]) => until.getTime() > t).map(([key]) => key))
      const plan = planProvisioning({
        demand: waiting.map((j) => row(j, alive.filter((w) => w.entityId === j.entity_id).length)),
        available: new Map(POOLS.map((p) => [p, t === now ? q.available.get(p)! : q.total.get(p)! - alive.filter((w) => w.pool === p).length])),
        capFor: q.capFor,
        weightFor: q.weightFor,
        policy: q.policy,
        blocked
      })
      if (!planned) first = plan
      planned = true
      for (const p of plan.provisions) {
        const rank = (rankIn.get(p.pool) ?? 0) + 1
        rankIn.set(p.pool, rank)
        served.set(p.job.job_id, { start: t, rank })
        workers.push({ entityId: p.job.entity_id, pool: p.pool, end: t + DURATIONS.get(p.pool)! })
      }
      const taken = new Set(plan.provisions.map((p) => p.job.job_id))
      waiting = waiting.filter((j) => !taken.has(j.job_id))
      const next = Math.min(...workers.map((w) => w.end).filter((e) => e > t), ...[...q.blocked.values()].map((d) => d.getTime()).filter((u) => u > t))
      if (!Number.isFinite(next)) break
      t = next
    }
    return { served, first }
  }

  it("this cycle: the reasons and the first positions are planProvisioning's decisions", () => {
    fc.assert(fc.property(arbitraryWorld, (q) => {
      const view = queueView(q)
      const { first } = replay(q)
      const reasonOf = new Map(view.map((e) => [e.job_id, e.reason]))
      for (const p of first.provisions) expect(reasonOf.get(p.job.job_id)).toBe("provisioning")
      const why = { no_capacity: "no_free_board", entity_cap: "cap_reached", backoff: "backoff_after_failure" } as const
      for (const s of first.skipped) expect(reasonOf.get(s.job.job_id), `job ${s.job.job_id}`).toBe(why[s.why])
      for (const pool of POOLS) {
        const planned = first.provisions.filter((p) => p.pool === pool).map((p) => p.job.job_id)
        expect(view.filter((e) => e.k8s_pool === pool).slice(0, planned.length).map((e) => e.job_id)).toEqual(planned)
      }
    }), { numRuns: 400 })
  })

  it("forward in time: position k of a pool is the k-th job the planner serves there, and its estimate is when", () => {
    fc.assert(fc.property(arbitraryWorld, (q) => {
      const view = queueView(q)
      const { served } = replay(q)
      for (const e of view) {
        const s = served.get(e.job_id)
        if (s === undefined) {
          // never served: after every served job of its pool, without an estimate
          expect(e.estimated_start, `job ${e.job_id}`).toBeNull()
          expect(e.position).toBeGreaterThan(view.filter((o) => o.k8s_pool === e.k8s_pool && served.has(o.job_id)).length)
        } else {
          expect([e.job_id, e.position, e.estimated_start]).toEqual([e.job_id, s.rank, new Date(s.start).toISOString()])
        }
      }
    }), { numRuns: 400 })
  })

  it("a page is the whole view's slice (after the pool filter); totals count every job of each pool by reason", () => {
    const request = fc.record({ pool: fc.option(fc.constantFrom("scw-em-rv1", "other-pool", "Zeta", "absent")), offset: fc.integer({ min: 0, max: 50 }), limit: fc.integer({ min: 1, max: 30 }) })
    fc.assert(fc.property(arbitraryWorld, request, fc.integer({ min: 1, max: 7 }), (q, req, slice) => {
      const all = queueView(q)
      const matching = req.pool === null ? all : all.filter((e) => e.k8s_pool === req.pool)
      // from the index, with full rows of only the page's jobs, as the route reads them, in slices
      const plan = planQueuePage(queueIndexOf(q), q, req)
      while (!plan.advance(slice));
      const asked = new Set(plan.jobIds())
      expect(asked.size).toBeLessThanOrEqual(req.limit)
      const page = plan.decide(new Map(q.pending.filter((j) => asked.has(j.job_id)).map((j) => [j.job_id, j])))
      expect(page.jobs).toEqual(matching.slice(req.offset, req.offset + req.limit))
      expect(page.total).toBe(matching.length)
      expect(page.next_offset).toBe(req.offset + req.limit < matching.length ? req.offset + req.limit : null)
      const expected = [...new Set(all.map((e) => e.k8s_pool))].sort((a, b) => a.localeCompare(b)).map((pool) => {
        const of = all.filter((e) => e.k8s_pool === pool)
        const n = (reason: string) => of.filter((e) => e.reason === reason).length
        return { pool, pending: of.length, provisioning: n("provisioning"), no_free_board: n("no_free_board"), cap_reached: n("cap_reached"), backoff_after_failure: n("backoff_after_failure") }
      })
      expect(page.pools).toEqual(expected)
      // positions of a pool are 1..n
      for (const pool of new Set(all.map((e) => e.k8s_pool))) {
        expect(all.filter((e) => e.k8s_pool === pool).map((e) => e.position)).toEqual(all.filter((e) => e.k8s_pool === pool).map((_, i) => i + 1))
      }
    }), { numRuns: 300 })
  })

  it("the index's id lists parse exactly, up to the largest safe integer", () => {
    fc.assert(fc.property(fc.array(fc.maxSafeNat(), { minLength: 1, maxLength: 50 }), (ids) => {
      expect(parseIdList(ids.join(","))).toEqual(ids)
    }))
    expect(parseIdList("")).toEqual([])
  })

  it("yieldToEventLoop lets waiting callbacks run between slices; Effect.yieldNow does not", async () => {
    const slices = (pause: Effect.Effect<void>) =>
      Effect.gen(function*() {
        let ranAt = -1
        setImmediate(() => (ranAt = done))
        let done = 0
        for (; done < 5; done++) yield* pause
        return ranAt
      })
    // the callback runs in the first pause, not once all five are done
    expect(await Effect.runPromise(slices(yieldToEventLoop))).toBe(0)
    expect(await Effect.runPromise(slices(Effect.yieldNow()))).toBe(-1)
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
