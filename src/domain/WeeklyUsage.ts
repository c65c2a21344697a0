import type { FailureInfo } from "./FailureInfo.ts"

/**
 * The weekly usage report: per entity and ISO week (UTC), how many jobs were queued and ran, the board time its
 * runners used, how long its jobs waited for a runner, and how long it sat at its cap with jobs waiting. The store
 * computes the raw figures in one set-based query (`Db.getWeeklyUsage`); the pure functions here fix the weeks,
 * the job failure classes both stores use, the share of the board time and the CSV.
 *
 * What is counted where:
 * - per-job figures (jobs, run, failed, waits) go to the week the job was queued in (`created_at`);
 * - board time is each worker's `running_at` → `completed_at` (now, while it runs), cut at week boundaries;
 * - a job waits from `created_at` until its runner pod runs (the worker named by `k8s_pod`), else until its last
 *   change (cancelled, failed) or now (still pending); its wait figure exists only when its runner's pod ran;
 * - at the cap: the time in which the entity's active workers (`created_at` → `completed_at`) were at or above
 *   its current cap while more of its jobs waited than it had runners starting (`created_at` → `running_at`): a
 *   job whose own runner is booting waits for the boot, not for the cap. A job that is no longer pending waits
 *   here for at most `MAX_QUEUED_MS` (GitHub fails it then, whenever we hear of it). Cut at week boundaries;
 * - an entity's name and type are those of its newest job or worker made before `now`.
 *
 * The PostgreSQL store folds whole days that can no longer change into a roll-up (`Db.foldWeeklyUsage`) and
 * reads those beside the rows of the days after its mark; the figures are the same as from the rows alone.
 */

export const WEEK_MS = 7 * 86_400_000
export const DEFAULT_WEEKS = 8
export const MAX_WEEKS = 106

/**
 * GitHub fails a job that waits 24 hours for a self-hosted runner, so a job that was still waiting when the report's
 * window opened was queued at most this long before it (older ones that are still pending are read as well).
 */
export const MAX_QUEUED_MS = 86_400_000

export const DAY_MS = 86_400_000

/**
 * The roll-up folds a day only once it ended this long ago, so a row stored a little late (a replica whose clock
 * is behind) still lands in a day that is not folded yet.
 */
export const FOLD_MARGIN_MS = 15 * 60_000

/** One pass folds at most this many days, so catching up on a year of history is many short transactions. */
export const FOLD_MAX_DAYS = 7

/** The UTC midnight that starts the day holding `ms`. */
export const utcDayStart = (ms: number): number => Math.floor(ms / DAY_MS) * DAY_MS

/** What a pass of the roll-up did: the mark after it (days before it are folded; null: no row yet) and the days it folded. */
export interface WeeklyUsageFold {
  readonly foldedUntil: Date | null
  readonly days: number
}

/**
 * Where the next pass may fold to: the day of the oldest row that can still change (a pending or running job or
 * worker, or a finished job whose runner has not started, its wait not known yet), and no later than the day
 * that ended `FOLD_MARGIN_MS` before `now`.
 */
export const foldTarget = (now: number, oldestOpen: number | null): number =>
  Math.min(utcDayStart(now - FOLD_MARGIN_MS), oldestOpen === null ? Infinity : utcDayStart(oldestOpen))

/**
 * The span a pass folds: from the mark (or, on the first pass, the day of the first row) to the target, at most
 * `FOLD_MAX_DAYS`; `from === to` when there is nothing to fold. `mark` is what the pass stores as the new mark.
 */
export const foldSpan = (
  mark: number | null,
  firstRow: number | null,
  target: number
): { readonly from: number; readonly to: number } => {
  const from = mark ?? (firstRow === null ? target : utcDayStart(firstRow))
  return { from, to: Math.max(from, Math.min(target, from + FOLD_MAX_DAYS * DAY_MS)) }
}

/** The Monday 00:00 UTC that starts the ISO week holding `at`. */
export const isoWeekStart = (at: Date): Date => {
  const day = Math.floor(at.getTime() / 86_400_000) * 86_400_000
  const weekday = (new Date(day).getUTCDay() + 6) % 7 // Monday 0 … Sunday 6
  return new Date(day - weekday * 86_400_000)
}

/** `2026-W49`: the ISO week-numbering year and week of a week's Monday. */
export const isoWeekLabel = (monday: Date): string => {
  // the ISO year is the year of the week's Thursday; week 1 is the week holding that year's 4 January
  const thursday = new Date(monday.getTime() + 3 * 86_400_000)
  const year = thursday.getUTCFullYear()
  const week1 = isoWeekStart(new Date(Date.UTC(year, 0, 4)))
  const week = Math.round((monday.getTime() - week1.getTime()) / WEEK_MS) + 1
  return `${year}-W${String(week).padStart(2, "0")}`
}

/** The report's window: the current ISO week and the `weeks - 1` before it, up to now. */
export const weeklyWindow = (now: Date, weeks: number): { readonly from: Date; readonly weeks: number; readonly now: Date } => ({
  from: new Date(isoWeekStart(now).getTime() - (weeks - 1) * WEEK_MS),
  weeks,
  now
})

/**
 * The class of a failed job, a short stable key for the report's columns. Scheduler failures (v2) carry their
 * reason; the v1 messages name ids, so they are classed by their start. The PostgreSQL statement applies the same
 * rules (the contract suite checks that both agree).
 */
export const jobFailureClass = (info: FailureInfo | null): string => {
  if (info === null) return "unknown"
  if (info.version === 2) return info.reason
  const text = info.message ?? info.reason ?? ""
  if (text.startsWith("installation not found")) return "installation_not_found"
  if (text.startsWith("job not found")) return "job_not_found"
  if (/^workflow run .* completed .*stayed queued$/.test(text)) return "run_completed_while_queued"
  return "other"
}

/** The entity caps the report applies: the listed entities' own (null = none) and everyone else's. */
export interface CapTable {
  readonly entities: ReadonlyArray<{ readonly entityId: number; readonly cap: number | null }>
  readonly defaultCap: number | null
}

export interface WeeklyUsageRequest {
  /** a Monday 00:00 UTC: the first week's start */
  readonly from: Date
  readonly weeks: number
  /** the end of the window (the last week is cut here) */
  readonly now: Date
  readonly caps: CapTable
}

/** One (entity, ISO week) of the store's answer; weeks without any figure are left out. */
export interface WeeklyUsageRow {
  readonly weekStart: Date
  readonly entityId: number
  readonly entityName: string
  readonly entityType: string
  /** jobs queued in the week */
  readonly jobs: number
  /** of them, jobs a runner took (`k8s_pod` recorded) */
  readonly jobsRun: number
  /** of them, failed jobs by `jobFailureClass` */
  readonly jobsFailed: Readonly<Record<string, number>>
  readonly boardSeconds: number
  /** percentile_disc over the waits known in the week; null when none is known */
  readonly waitP50Seconds: number | null
  readonly waitP95Seconds: number | null
  readonly waitMaxSeconds: number | null
  readonly atCapSeconds: number
}

/** A report line: a row with its week's label and its share of the week's board time of all entities. */
export interface WeeklyUsageLine extends WeeklyUsageRow {
  readonly week: string
  /** 0..1; 0 when nobody used a board that week */
  readonly share: number
}

/** Adds the labels and shares, newest week first, then most board time, then entity id. */
export const weeklyUsageLines = (rows: ReadonlyArray<WeeklyUsageRow>): ReadonlyArray<WeeklyUsageLine> => {
  const weekTotal = new Map<number, number>()
  for (const r of rows) weekTotal.set(r.weekStart.getTime(), (weekTotal.get(r.weekStart.getTime()) ?? 0) + r.boardSeconds)
  return rows
    .map((r): WeeklyUsageLine => {
      const total = weekTotal.get(r.weekStart.getTime()) ?? 0
      return { ...r, week: isoWeekLabel(r.weekStart), share: total > 0 ? r.boardSeconds / total : 0 }
    })
    .sort((a, b) =>
      b.weekStart.getTime() - a.weekStart.getTime() || b.boardSeconds - a.boardSeconds || a.entityId - b.entityId
    )
}

/** The nearest-rank percentile of sorted values, as PostgreSQL's `percentile_disc`. */
export const percentileDisc = (sorted: ReadonlyArray<number>, p: number): number | null => {
  if (sorted.length === 0) return null
  const rank = Math.max(1, Math.ceil(p * sorted.length - 1e-9))
  return sorted[rank - 1]!
}

const minutes = (seconds: number) => (Math.round(seconds / 6) / 10).toFixed(1)

/** Every failure class in the lines, sorted: the CSV's and the page's failure columns. */
export const failureClasses = (lines: ReadonlyArray<WeeklyUsageLine>): ReadonlyArray<string> =>
  [...new Set(lines.flatMap((l) => Object.keys(l.jobsFailed)))].sort()

/** A CSV field: quoted when it holds a comma, quote or line break; a leading formula character is defused. */
const csvField = (value: string): string => {
  const safe = /^[=+\-@\t\r]/.test(value) ? `'${value}` : value
  return /[",\r\n]/.test(safe) ? `"${safe.replaceAll("\"", "\"\"")}"` : safe
}

export const WEEKLY_USAGE_CSV_COLUMNS = [
  "week",
  "week_start",
  "entity_id",
  "entity_name",
  "entity_type",
  "jobs",
  "jobs_run",
  "jobs_failed",
  "board_minutes",
  "share",
  "wait_p50_seconds",
  "wait_p95_seconds",
  "wait_max_seconds",
  "at_cap_minutes"
] as const

/** The CSV: one line per (week, entity), then one `failed_<class>` column per failure class. */
export const weeklyUsageCsv = (lines: ReadonlyArray<WeeklyUsageLine>): string => {
  const classes = failureClasses(lines)
  const header = [...WEEKLY_USAGE_CSV_COLUMNS, ...classes.map((c) => `failed_${c}`)]
  const opt = (n: number | null) => (n === null ? "" : String(Math.round(n)))
  const body = lines.map((l) =>
    [
      l.week,
      l.weekStart.toISOString().slice(0, 10),
      String(l.entityId),
      csvField(l.entityName),
      csvField(l.entityType),
      String(l.jobs),
      String(l.jobsRun),
      String(Object.values(l.jobsFailed).reduce((a, b) => a + b, 0)),
      minutes(l.boardSeconds),
      l.share.toFixed(4),
      opt(l.waitP50Seconds),
      opt(l.waitP95Seconds),
      opt(l.waitMaxSeconds),
      minutes(l.atCapSeconds),
      ...classes.map((c) => String(l.jobsFailed[c] ?? 0))
    ].join(",")
  )
  return [header.join(","), ...body].join("\r\n") + "\r\n"
}

export { minutes as formatMinutes }
