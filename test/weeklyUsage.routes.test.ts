import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, TestClock } from "effect"
import { DbMemory } from "../layers/db/memory.ts"
import { KubeMemory } from "../layers/kube/memory.ts"
import { failureV1 } from "../src/domain/FailureInfo.ts"
import {
  isoWeekLabel,
  isoWeekStart,
  percentileDisc,
  weeklyUsageCsv,
  weeklyUsageLines,
  type WeeklyUsageRow,
  weeklyWindow
} from "../src/domain/WeeklyUsage.ts"
import { schedulerApp } from "../src/operator/server.ts"
import { capTable } from "../src/operator/weeklyUsageRoute.ts"
import { SchedulerSettingsLive } from "../src/scheduler/settings.ts"
import { Db } from "../src/services/Db.ts"
import { newJob, newWorker } from "./support/dbFixtures.ts"
import { getFrom } from "./support/http.ts"
import { testRunnerConfig } from "./support/schedulerWorld.ts"

const DAY = 86_400_000
const world = Layer.mergeAll(
  DbMemory,
  KubeMemory({ tick: null }),
  SchedulerSettingsLive({ runnerConfig: testRunnerConfig({ entities: { "1001": { maxWorkers: 1 } } }), prod: false })
)
const get = (path: string) => getFrom(schedulerApp, path)

describe("weekly usage: the pure parts", () => {
  it("ISO weeks start on Monday 00:00 UTC and are labelled by their Thursday's year", () => {
    expect(isoWeekStart(new Date("2026-12-02T05:00:00Z")).toISOString()).toBe("2026-11-30T00:00:00.000Z")
    expect(isoWeekStart(new Date("2026-11-30T00:00:00Z")).toISOString()).toBe("2026-11-30T00:00:00.000Z")
    expect(isoWeekStart(new Date("2026-12-06T23:59:59Z")).toISOString()).toBe("2026-11-30T00:00:00.000Z")
    expect(isoWeekLabel(new Date("2026-11-30T00:00:00Z"))).toBe("2026-W49")
    // 2026-12-28 is in 2026-W53; 2027-01-04 starts 2027-W01; 2024-12-30 is already 2025-W01
    expect(isoWeekLabel(new Date("2026-12-28T00:00:00Z"))).toBe("2026-W53")
    expect(isoWeekLabel(new Date("2027-01-04T00:00:00Z"))).toBe("2027-W01")
    expect(isoWeekLabel(new Date("2024-12-30T00:00:00Z"))).toBe("2025-W01")
    expect(weeklyWindow(new Date("2026-12-02T05:00:00Z"), 8).from.toISOString()).toBe("2026-10-12T00:00:00.000Z")
  })

  it("nearest-rank percentiles, as PostgreSQL's percentile_disc", () => {
    expect(percentileDisc([], 0.5)).toBeNull()
    expect(percentileDisc([7], 0.95)).toBe(7)
    expect(percentileDisc([1, 2, 3, 4], 0.5)).toBe(2)
    expect(percentileDisc(Array.from({ length: 20 }, (_, i) => i + 1), 0.95)).toBe(19)
    expect(percentileDisc(Array.from({ length: 100 }, (_, i) => i + 1), 0.95)).toBe(95)
  })

  it("shares are of the week's board time; the CSV quotes, defuses formulas and adds a column per failure class", () => {
    const monday = new Date("2026-11-30T00:00:00Z")
    const row = (over: Partial<WeeklyUsageRow>): WeeklyUsageRow => ({
      weekStart: monday, entityId: 1, entityName: "a", entityType: "Organization", jobs: 1, jobsRun: 1, jobsFailed: {},
      boardSeconds: 0, waitP50Seconds: null, waitP95Seconds: null, waitMaxSeconds: null, atCapSeconds: 0, ...over
    })
    const lines = weeklyUsageLines([
      row({ entityId: 1, entityName: "=cmd,\"x\"", boardSeconds: 900, jobsFailed: { job_not_found: 2 } }),
      row({ entityId: 2, entityName: "b", boardSeconds: 2700, waitP50Seconds: 12.4, waitP95Seconds: 30, waitMaxSeconds: 61 }),
      row({ weekStart: new Date(monday.getTime() - 7 * DAY), entityId: 1, boardSeconds: 0 })
    ])
    expect(lines.map((l) => [l.week, l.entityId, l.share])).toEqual([["2026-W49", 2, 0.75], ["2026-W49", 1, 0.25], ["2026-W48", 1, 0]])
    const csv = weeklyUsageCsv(lines).split("\r\n")
    expect(csv[0]).toBe(
      "week,week_start,entity_id,entity_name,entity_type,jobs,jobs_run,jobs_failed,board_minutes,share,wait_p50_seconds,wait_p95_seconds,wait_max_seconds,at_cap_minutes,failed_job_not_found"
    )
    expect(csv[1]).toBe("2026-W49,2026-11-30,2,b,Organization,1,1,0,45.0,0.7500,12,30,61,0.0,0")
    expect(csv[2]).toBe(`2026-W49,2026-11-30,1,"'=cmd,""x""",Organization,1,1,2,15.0,0.2500,,,,0.0,2`)
    expect(csv).toHaveLength(5)
    expect(csv[4]).toBe("")
  })

  it("the caps come from the runner config: listed entities (null = none) and the default", () => {
    expect(capTable(testRunnerConfig({ entities: { "7": { maxWorkers: null }, "8": { maxWorkers: 3 }, "9": { name: "x" } }, defaultMaxWorkers: 20 })))
      .toEqual({ entities: [{ entityId: 7, cap: null }, { entityId: 8, cap: 3 }], defaultCap: 20 })
  })
})

describe("weekly usage routes on the scheduler port", () => {
  it.effect("HTML, JSON and CSV show the same figures; bad weeks are a 400 naming the parameter", () =>
    Effect.gen(function*() {
      const db = yield* Db
      const monday = Date.UTC(2026, 10, 30)
      const at = (s: number) => TestClock.setTime(monday + s * 1000)
      yield* at(60)
      yield* db.addJob(newJob(1))
      yield* db.addJob(newJob(2, { entity_id: 7, entity_name: "<b>evil</b>" }))
      yield* db.addWorker(newWorker("w1"))
      yield* at(90)
      yield* db.markWorkerRunning("w1", "node-1", null)
      yield* db.markJobRunning(1, "w1")
      yield* at(120)
      yield* db.markJobFailed(2, failureV1("job not found for job_id=2"))
      yield* at(690)
      yield* db.markWorkerCompleted("w1", null, null)
      yield* db.markJobCompleted(1, "w1")
      yield* at(3600)

      const json = yield* get("/stats/weekly-usage.json?weeks=2")
      expect(json.status).toBe(200)
      const body = JSON.parse(json.body)
      expect(body).toMatchObject({ weeks: 2, from: "2026-11-23T00:00:00.000Z", generated_at: "2026-11-30T01:00:00.000Z" })
      expect(body.rows).toEqual([
        {
          week: "2026-W49", week_start: "2026-11-30", entity_id: 1001, entity_name: "acme", entity_type: "Organization",
          jobs: 1, jobs_run: 1, jobs_failed: {}, board_minutes: 10, share: 1,
          wait_p50_seconds: 30, wait_p95_seconds: 30, wait_max_seconds: 30, at_cap_minutes: 0
        },
        {
          week: "2026-W49", week_start: "2026-11-30", entity_id: 7, entity_name: "<b>evil</b>", entity_type: "Organization",
          jobs: 1, jobs_run: 0, jobs_failed: { job_not_found: 1 }, board_minutes: 0, share: 0,
          wait_p50_seconds: null, wait_p95_seconds: null, wait_max_seconds: null, at_cap_minutes: 0
        }
      ])

      const csv = yield* get("/stats/weekly-usage.csv")
      expect(csv.status).toBe(200)
      expect(csv.type).toContain("text/csv")
      expect(csv.body.split("\r\n").slice(1, 3)).toEqual([
        "2026-W49,2026-11-30,1001,acme,Organization,1,1,0,10.0,1.0000,30,30,30,0.0,0",
        "2026-W49,2026-11-30,7,<b>evil</b>,Organization,1,0,1,0.0,0.0000,,,,0.0,1"
      ])

      const page = yield* get("/stats/weekly-usage")
      expect(page.status).toBe(200)
      expect(page.type).toContain("text/html")
      expect(page.body).toContain("<title>Weekly usage - Staging</title>")
      expect(page.body).toContain("=== 2026-W49 (from 2026-11-30) ===")
      expect(page.body).toMatch(/acme\s+1\s+1\s+0\s+10\.0\s+100\.0 %\s+30 s\s+30 s\s+30 s\s+0\.0/)
      expect(page.body).toContain("&lt;b&gt;evil&lt;/b&gt;: 1 × job_not_found")
      expect(page.body).not.toContain("<b>evil")
      expect(page.body).toContain(`<a href="/stats/weekly-usage">Weekly usage</a>`)

      for (const bad of ["0", "107", "x", "1.5", "-1"]) {
        for (const path of ["/stats/weekly-usage", "/stats/weekly-usage.csv", "/stats/weekly-usage.json"]) {
          const answer = yield* get(`${path}?weeks=${bad}`)
          expect(answer.status, `${path}?weeks=${bad}`).toBe(400)
          expect(answer.body).toContain("invalid parameter weeks, must be an integer from 1 to 106")
        }
      }
      // the dashboard links to it
      expect((yield* get("/")).body).toContain(`href="/stats/weekly-usage"`)
    }).pipe(Effect.provide(world)))

  it.effect("an empty history is an empty report, not an error", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(Date.UTC(2026, 10, 30, 12))
      expect(JSON.parse((yield* get("/stats/weekly-usage.json")).body)).toMatchObject({ weeks: 8, rows: [] })
      expect((yield* get("/stats/weekly-usage.csv")).body.split("\r\n")).toHaveLength(2)
      expect((yield* get("/stats/weekly-usage")).body).toContain("No usage in the last 8 week(s).")
    }).pipe(Effect.provide(world)))
})
