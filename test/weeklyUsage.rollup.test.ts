/**
 * The weekly usage roll-up against the rows alone: the same three weeks of jobs and workers (random but fixed:
 * failures while queued, cancellations, runners that start late, pods whose start is read late or before their row
 * was made, jobs still pending) are written to the in-memory store, which computes every report from its rows, and
 * to PostgreSQL, whose scheduler-like passes fold the days that can no longer change while later rows keep
 * changing. At every checkpoint both reports must be the same, at several caps, and PostgreSQL's the same as its
 * own with the roll-up left out.
 */
import { expect, layer } from "@effect/vitest"
import { Context, Effect, Layer, Logger, TestClock, TestContext } from "effect"
import { DbMemory } from "../layers/db/memory.ts"
import { failureV1 } from "../src/domain/FailureInfo.ts"
import { weeklyWindow, type WeeklyUsageRow } from "../src/domain/WeeklyUsage.ts"
import { Db, type DbShape } from "../src/services/Db.ts"
import { newJob, newWorker } from "./support/dbFixtures.ts"
import { query, SuiteDatabase, suiteDbPostgres } from "./support/postgres.ts"

const S = 1000
const HOUR = 3600 * S
const DAY = 24 * HOUR
const START = Date.UTC(2026, 10, 2) // a Monday
const END = START + 20 * DAY + 7 * HOUR

/** A small deterministic generator (mulberry32), so a failure can be replayed. */
const random = (seed: number) => () => {
  seed = (seed + 0x6d2b79f5) | 0
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296
}

type Op = { readonly at: number; readonly run: (db: DbShape) => Effect.Effect<unknown, unknown> }

const entities = [
  { entity_id: 1001, entity_name: "acme" },
  { entity_id: 2002, entity_name: "beta" },
  { entity_id: 3003, entity_name: "gamma" }
]

/** Each entity's jobs over the three weeks, in bursts, so that its cap is reached and jobs wait behind it. */
const scenario = (rand: () => number): ReadonlyArray<Op> => {
  const ops: Array<Op> = []
  let id = 1
  const whole = (ms: number) => Math.round(ms / S) * S
  for (const entity of entities) {
    for (let burst = 0; burst < 14; burst++) {
      const burstAt = START + whole(rand() * (END - START))
      const size = 1 + Math.floor(rand() * 5)
      for (let i = 0; i < size; i++) {
        const jobId = id++
        const pod = `p-${jobId}`
        // the last burst's entity is renamed from then on
        const named = burst === 13 && entity.entity_id === 2002 ? { ...entity, entity_name: "beta-renamed" } : entity
        const q = burstAt + whole(rand() * 20 * 60 * S)
        ops.push({ at: q, run: (db) => db.addJob(newJob(jobId, named)) })
        const kind = rand()
        if (kind < 0.1) {
          ops.push({ at: q + whole(rand() * 3 * HOUR), run: (db) => db.markJobFailed(jobId, failureV1(`job not found for job_id=${jobId}`)) })
          continue
        }
        if (kind < 0.18) {
          ops.push({ at: q + whole(rand() * 2 * HOUR), run: (db) => db.markJobCompleted(jobId, "") })
          continue
        }
        const created = q + whole(rand() * 40 * 60 * S)
        const running = created + whole((rand() < 0.08 ? -30 : 5 + rand() * 120) * S)
        const done = Math.max(created, running) + whole((60 + rand() * 3 * 3600) * S)
        ops.push({ at: created, run: (db) => db.addWorker(newWorker(pod, named)) })
        if (rand() < 0.1) {
          // GitHub reports the job done before the pod's start is read; the start is read later, with its time
          ops.push({ at: Math.max(created, running) + 10 * S, run: (db) => db.markJobCompleted(jobId, pod) })
          ops.push({ at: done, run: (db) => db.markWorkerRunning(pod, "node-a", new Date(running)) })
          ops.push({ at: done + 5 * S, run: (db) => db.markWorkerCompleted(pod, null, null) })
          continue
        }
        ops.push({ at: Math.max(created, running), run: (db) => db.markWorkerRunning(pod, "node-a", new Date(running)) })
        ops.push({ at: Math.max(created, running) + 2 * S, run: (db) => db.markJobRunning(jobId, pod) })
        ops.push({ at: done, run: (db) => db.markJobCompleted(jobId, pod) })
        ops.push({ at: done, run: (db) => db.markWorkerCompleted(pod, null, null) })
      }
    }
  }
  // the order of writes at one instant is the order they were made
  return ops.filter((o) => o.at < END).map((o, i) => ({ ...o, i })).sort((a, b) => a.at - b.at || a.i - b.i)
}

/** The figures to the microsecond (sums of seconds may differ in their last bits with the order), sorted. */
const canonical = (rows: ReadonlyArray<WeeklyUsageRow>) =>
  rows
    .map((r) => JSON.stringify(r, (_, v) => (typeof v === "number" ? Math.round(v * 1e6) / 1e6 : v)))
    .sort()

const capsOf = (cap: number | null) => ({
  entities: [{ entityId: 1001, cap: 1 }, { entityId: 2002, cap: 2 }],
  defaultCap: cap
})

layer(suiteDbPostgres("weekly_rollup"), { excludeTestServices: true })("weekly usage roll-up", (it) => {
  it.effect("folded days and the rows after the mark give the report the rows alone give, as rows keep changing", () =>
    Effect.gen(function*() {
      const { url } = yield* SuiteDatabase
      const pg = yield* Db
      const memory = Context.get(yield* Layer.build(DbMemory), Db)
      const ops = scenario(random(15))
      let folded = 0
      let next = 0
      let checked = 0
      for (let at = START + 2 * HOUR; at <= END; at += 17 * HOUR) {
        for (; next < ops.length && ops[next]!.at <= at; next++) {
          yield* TestClock.setTime(ops[next]!.at)
          for (const db of [memory, pg]) yield* ops[next]!.run(db)
        }
        yield* TestClock.setTime(at)
        const now = new Date(at)
        const pass = yield* pg.foldWeeklyUsage(now)
        expect(yield* memory.foldWeeklyUsage(now)).toEqual(pass)
        folded += pass.days
        for (const cap of [0, 1, null]) {
          const req = { ...weeklyWindow(now, 4), caps: capsOf(cap) }
          const fromRows = canonical(yield* memory.getWeeklyUsage(req))
          expect(canonical(yield* pg.getWeeklyUsage(req)), `at ${now.toISOString()}, default cap ${cap}`).toEqual(fromRows)
          checked += fromRows.length
        }
      }
      // PostgreSQL with its roll-up left out (the mark cleared in a transaction that is rolled back) agrees too
      const req = { ...weeklyWindow(new Date(END), 4), caps: capsOf(1) }
      const withRollup = canonical(yield* pg.getWeeklyUsage(req))
      expect(folded).toBeGreaterThan(10)
      expect(checked).toBeGreaterThan(50)
      const rows = yield* Effect.promise(() =>
        query<{ folded_until: Date }>(url, "SELECT folded_until FROM staging.weekly_usage_fold")
      )
      expect(rows[0]?.folded_until.getTime()).toBeGreaterThan(START + 10 * DAY)
      yield* Effect.promise(() => query(url, "UPDATE staging.weekly_usage_fold SET folded_until = NULL"))
      expect(canonical(yield* pg.getWeeklyUsage(req))).toEqual(withRollup)
    }).pipe(Effect.scoped, Effect.provide(TestContext.TestContext.pipe(Layer.provide(Logger.remove(Logger.defaultLogger))))))
})
