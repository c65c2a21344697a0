import { HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { Clock, Effect, Either, Schema } from "effect"
import { escapeHtml } from "../domain/html.ts"
import {
  DEFAULT_WEEKS,
  failureClasses,
  formatMinutes,
  MAX_WEEKS,
  type CapTable,
  weeklyUsageCsv,
  type WeeklyUsageLine,
  weeklyUsageLines,
  weeklyWindow
} from "../domain/WeeklyUsage.ts"
import type { RunnerConfig } from "../domain/RunnerConfig.ts"
import { SchedulerSettings } from "../scheduler/settings.ts"
import { Db } from "../services/Db.ts"
import { firstIssue, firstValues, integer } from "./paging.ts"
import { htmlPage } from "./render.ts"

/**
 * `/stats/weekly-usage` (HTML), `.json` (the HttpApi's, `Http.ts`) and `.csv`: the weekly usage report of
 * `src/domain/WeeklyUsage.ts` over the current ISO week and the `weeks - 1` before it, with the runner config's
 * caps. One statement per page (`Db.getWeeklyUsage`).
 */

export const WeeklyUsageParams = Schema.Struct({
  weeks: Schema.optional(
    integer("weeks", NaN, (n) => n >= 1 && n <= MAX_WEEKS, `invalid parameter weeks, must be an integer from 1 to ${MAX_WEEKS}`)
      .annotations({ description: `ISO weeks (UTC) back from the current one, 1 to ${MAX_WEEKS} (default ${DEFAULT_WEEKS})` })
  )
})
export type WeeklyUsageParams = typeof WeeklyUsageParams.Type

/** The caps the scheduler applies now: the config's listed entities and its default. */
export const capTable = (config: RunnerConfig): CapTable => ({
  entities: Object.entries(config.entities).flatMap(([id, e]) => (e.maxWorkers === undefined ? [] : [{ entityId: Number(id), cap: e.maxWorkers }])),
  defaultCap: config.defaultMaxWorkers
})

export interface WeeklyUsageReport {
  readonly generatedAt: Date
  readonly from: Date
  readonly weeks: number
  readonly lines: ReadonlyArray<WeeklyUsageLine>
}

export const readWeeklyUsage = (weeks: number) =>
  Effect.gen(function*() {
    const now = new Date(yield* Clock.currentTimeMillis)
    const settings = yield* SchedulerSettings
    const window = weeklyWindow(now, weeks)
    const rows = yield* (yield* Db).getWeeklyUsage({ ...window, caps: capTable(settings.runnerConfig) })
    return { generatedAt: now, from: window.from, weeks, lines: weeklyUsageLines(rows) } satisfies WeeklyUsageReport
  }).pipe(Effect.withSpan("Operator.weeklyUsage"))

/** The JSON rows: minutes with one decimal, waits in whole seconds, as the CSV. */
export const weeklyUsageJson = (report: WeeklyUsageReport) => ({
  generated_at: report.generatedAt.toISOString(),
  from: report.from.toISOString(),
  weeks: report.weeks,
  rows: report.lines.map((l) => ({
    week: l.week,
    week_start: l.weekStart.toISOString().slice(0, 10),
    entity_id: l.entityId,
    entity_name: l.entityName,
    entity_type: l.entityType,
    jobs: l.jobs,
    jobs_run: l.jobsRun,
    jobs_failed: l.jobsFailed,
    board_minutes: Number(formatMinutes(l.boardSeconds)),
    share: Number(l.share.toFixed(4)),
    wait_p50_seconds: l.waitP50Seconds === null ? null : Math.round(l.waitP50Seconds),
    wait_p95_seconds: l.waitP95Seconds === null ? null : Math.round(l.waitP95Seconds),
    wait_max_seconds: l.waitMaxSeconds === null ? null : Math.round(l.waitMaxSeconds),
    at_cap_minutes: Number(formatMinutes(l.atCapSeconds))
  }))
})

const seconds = (s: number | null) => (s === null ? "-" : s < 120 ? `${Math.round(s)} s` : `${formatMinutes(s)} min`)

/** The page's text: one table per week, newest first. */
export const weeklyUsageText = (report: WeeklyUsageReport): string => {
  if (report.lines.length === 0) return `No usage in the last ${report.weeks} week(s).`
  const classes = failureClasses(report.lines)
  const header = ["entity", "jobs", "run", "failed", "board min", "share", "wait p50", "wait p95", "wait max", "at cap min"]
  const blocks: Array<string> = []
  for (const week of [...new Set(report.lines.map((l) => l.week))]) {
    const lines = report.lines.filter((l) => l.week === week)
    const rows = lines.map((l) => {
      const failed = Object.values(l.jobsFailed).reduce((a, b) => a + b, 0)
      return [
        l.entityName,
        String(l.jobs),
        String(l.jobsRun),
        String(failed),
        formatMinutes(l.boardSeconds),
        `${(l.share * 100).toFixed(1)} %`,
        seconds(l.waitP50Seconds),
        seconds(l.waitP95Seconds),
        seconds(l.waitMaxSeconds),
        formatMinutes(l.atCapSeconds)
      ]
    })
    const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)))
    const fmt = (r: ReadonlyArray<string>) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ")
    const failures = lines.flatMap((l) =>
      classes.filter((c) => (l.jobsFailed[c] ?? 0) > 0).map((c) => `  ${l.entityName}: ${l.jobsFailed[c]} × ${c}`)
    )
    blocks.push([
      `=== ${week} (from ${lines[0]!.weekStart.toISOString().slice(0, 10)}) ===`,
      escapeHtml(fmt(header)),
      ...rows.map((r) => escapeHtml(fmt(r))),
      ...(failures.length > 0 ? ["failed by reason:", ...failures.map(escapeHtml)] : [])
    ].join("\n"))
  }
  return blocks.join("\n\n")
}

const parseWeeks = Effect.map(HttpServerRequest.HttpServerRequest, (req) =>
  Either.match(Schema.decodeUnknownEither(WeeklyUsageParams)(firstValues(new URL(req.url, "http://localhost").searchParams)), {
    onLeft: (e) => Either.left(firstIssue(e)),
    onRight: (p) => Either.right(p.weeks ?? DEFAULT_WEEKS)
  }))

const badRequest = (message: string) => HttpServerResponse.text(message, { status: 400 })

export const weeklyUsagePage = Effect.gen(function*() {
  const weeks = yield* parseWeeks
  if (Either.isLeft(weeks)) return badRequest(weeks.left)
  const report = yield* readWeeklyUsage(weeks.right)
  const deployment = (yield* SchedulerSettings).prod ? "Prod" as const : "Staging" as const
  const note = `ISO weeks (UTC) from ${report.from.toISOString().slice(0, 10)}; also as <a href="/stats/weekly-usage.json?weeks=${report.weeks}">JSON</a> and ` +
    `<a href="/stats/weekly-usage.csv?weeks=${report.weeks}">CSV</a>. Board minutes: runner pods running; wait: queued until its runner pod ran; ` +
    "at cap: minutes at the entity's cap while one of its jobs waited."
  return HttpServerResponse.text(htmlPage("Weekly usage", deployment, weeklyUsageText(report), undefined, note), {
    contentType: "text/html; charset=utf-8"
  })
})

export const weeklyUsageCsvRoute = Effect.gen(function*() {
  const weeks = yield* parseWeeks
  if (Either.isLeft(weeks)) return badRequest(weeks.left)
  const report = yield* readWeeklyUsage(weeks.right)
  return HttpServerResponse.text(weeklyUsageCsv(report.lines), {
    contentType: "text/csv; charset=utf-8",
    headers: { "content-disposition": `attachment; filename="weekly-usage-${report.from.toISOString().slice(0, 10)}.csv"` }
  })
})
