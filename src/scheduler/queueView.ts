import { type Job, runnerRepoOf } from "../domain/Job.ts"
import type { DemandRow, QueueGroup } from "../services/Db.ts"
import { type ForecastContext, type ForecastPosition, forecastQueue, type WaitReason } from "./queueForecast.ts"

export type { BusySlot, WaitReason } from "./queueForecast.ts"

/**
 * Queue visibility: why each pending job waits, where it stands in its pool, and when it may start. Pure: the
 * route reads the same inputs the demand matcher reads (pending jobs, the set-based demand, capacity, back-off)
 * and the forecast (`queueForecast.ts`) replays the planner forward, so the reasons are the matcher's own and
 * position 1 of a pool is the job its next free board goes to, under the `fair` policy too.
 *
 * Cheap where the backlog is long: `planQueuePage` decides from the queue's index (`Db.getQueueIndex`: ids,
 * groups and creation times, no job rows) and asks for full rows of only the page's jobs. `queuePage` and
 * `queueView` run the same path on a whole `QueueInput`.
 */

export interface QueueEntry {
  readonly job_id: number
  readonly entity_id: number
  readonly entity_name: string
  readonly k8s_pool: string
  readonly job_labels: ReadonlyArray<string>
  readonly created_at: string
  readonly html_url: string | null
  /** 1 for the oldest pending job of its pool */
  readonly position: number
  readonly reason: WaitReason
  /** RFC 3339; null when no recent job duration is known to estimate from */
  readonly estimated_start: string | null
}

/** The whole queue's input: the forecast's context (capacity, workers, caps, back-off, run times) and its jobs. */
export interface QueueInput extends ForecastContext {
  /** every pending job */
  readonly pending: ReadonlyArray<Job>
  /** `Db.getDemand`: the pending jobs that lack a runner; the others have one being provisioned */
  readonly demand: ReadonlyArray<DemandRow>
}

const byAge = (a: Job, b: Job): number => a.created_at.getTime() - b.created_at.getTime() || a.job_id - b.job_id

const median = (values: ReadonlyArray<number>): number | null => {
  if (values.length === 0) return null
  const sorted = [...values].sort((a, b) => a - b)
  const mid = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}

/** The median run time (running -> completed) of recent finished workers, per pool and over all pools. */
export const typicalDurations = (
  finished: ReadonlyArray<{ readonly k8s_pool: string; readonly running_at: Date | null; readonly completed_at: Date | null }>
): { readonly byPool: ReadonlyMap<string, number>; readonly overall: number | null } => {
  const per = new Map<string, Array<number>>()
  const all: Array<number> = []
  for (const w of finished) {
    if (w.running_at === null || w.completed_at === null) continue
    const ms = w.completed_at.getTime() - w.running_at.getTime()
    if (ms < 0) continue
    const pool = per.get(w.k8s_pool)
    if (pool === undefined) per.set(w.k8s_pool, [ms])
    else pool.push(ms)
    all.push(ms)
  }
  return { byPool: new Map([...per].map(([pool, ms]) => [pool, median(ms)!])), overall: median(all) }
}


/** Which slice of the queue to answer: the jobs of one pool (or all, ordered by pool then position). */
export interface QueuePageRequest {
  /** null: every pool */
  readonly pool: string | null
  /** entries to skip in (pool, position) order, after the pool filter */
  readonly offset: number
  /** entries to return at most */
  readonly limit: number
}

/** How many jobs of a pool wait, in all and for each reason (whatever page was asked for). */
export interface PoolTotals {
  readonly pool: string
  readonly pending: number
  readonly provisioning: number
  readonly no_free_board: number
  readonly cap_reached: number
  readonly backoff_after_failure: number
}

export interface QueuePage {
  /** entries matching the pool filter, over all pages */
  readonly total: number
  readonly offset: number
  readonly limit: number
  /** the offset of the next page; null on the last */
  readonly next_offset: number | null
  /** every pool with pending jobs, by name (not filtered) */
  readonly pools: ReadonlyArray<PoolTotals>
  readonly jobs: ReadonlyArray<QueueEntry>
}

/** The queue's decisions minus the jobs themselves: what `QueueInput` holds besides `pending` and `demand`. */
export type QueueContext = ForecastContext

/** A page of the queue: run the forecast (in slices, see `advance`), then read the page's rows and decide. */
export interface QueuePlan {
  /** runs at most `steps` more steps of the forecast; true when it is complete */
  readonly advance: (steps: number) => boolean
  /** the page's jobs, whose full rows `decide` needs; only once the forecast is complete */
  readonly jobIds: () => ReadonlyArray<number>
  /** the page, from those jobs (keyed by id); a job missing from them (gone meanwhile) is left out */
  readonly decide: (jobs: ReadonlyMap<number, Job>) => QueuePage
}

/**
 * One page of the queue, decided from the queue's index (`Db.getQueueIndex`: every pending job as its group, id,
 * creation time and whether it lacks a runner): the decisions are those of the forecast over the whole queue,
 * whatever the page.
 */
export const planQueuePage = (groups: ReadonlyArray<QueueGroup>, ctx: QueueContext, request: QueuePageRequest): QueuePlan => {
  // which positions of which pools the page shows: the window in (pool name, position) order, after the filter
  const sizes = new Map<string, number>()
  for (const g of groups) sizes.set(g.pool, (sizes.get(g.pool) ?? 0) + g.jobIds.length)
  const end = request.offset + request.limit
  const windows: Array<{ readonly pool: string; readonly from: number; readonly to: number }> = []
  let total = 0
  for (const pool of [...sizes.keys()].sort((a, b) => a.localeCompare(b))) {
    if (request.pool !== null && request.pool !== pool) continue
    const n = sizes.get(pool)!
    const from = Math.max(0, request.offset - total)
    const to = Math.min(n, end - total)
    if (from < to) windows.push({ pool, from, to })
    total += n
  }
  const forecast = forecastQueue(groups, ctx, new Map(windows.map((w) => [w.pool, w.to])))
  const page = () => {
    if (!forecast.done()) forecast.advance(Infinity)
    const shown: Array<ForecastPosition & { readonly position: number }> = []
    for (const { pool, from, to } of windows) {
      forecast.positions(pool, from, to).forEach((p, k) => shown.push({ ...p, position: from + k + 1 }))
    }
    return shown
  }
  let cached: ReturnType<typeof page> | undefined
  const window = () => (cached ??= page())
  return {
    advance: forecast.advance,
    jobIds: () => window().map((s) => s.jobId),
    decide: (jobs) => {
      const pools = forecast.pools.map((pool): PoolTotals => ({ pool, pending: forecast.sizeOf(pool), ...forecast.totalsOf(pool) }))
      const entries: Array<QueueEntry> = []
      for (const { jobId, position, reason, start } of window()) {
        const job = jobs.get(jobId)
        if (job === undefined) continue
        entries.push({
          job_id: job.job_id,
          entity_id: job.entity_id,
          entity_name: job.entity_name,
          k8s_pool: job.k8s_pool,
          job_labels: job.job_labels,
          created_at: job.created_at.toISOString(),
          html_url: job.html_url,
          position,
          reason,
          estimated_start: start === null ? null : new Date(start).toISOString()
        })
      }
      return { total, offset: request.offset, limit: request.limit, next_offset: end < total ? end : null, pools, jobs: entries }
    }
  }
}

/**
 * The index `Db.getQueueIndex` gives for these pending jobs and demand (the pure path's stand-in for the database).
 * A job's group is (entity, label set, pool, matching repository), in first-seen order, its jobs oldest first.
 */
export const queueIndexOf = (input: Pick<QueueInput, "pending" | "demand">): ReadonlyArray<QueueGroup> => {
  const lacking = new Set(input.demand.map((r) => r.job.job_id))
  const active = new Map<number, number>()
  for (const r of input.demand) if (!active.has(r.job.entity_id)) active.set(r.job.entity_id, r.entityActiveWorkers)
  const groups = new Map<string, { entityId: number; labels: ReadonlyArray<string>; pool: string; repo: string | null; entityActiveWorkers: number; jobIds: Array<number>; createdMs: Array<number>; lacking: Array<boolean> }>()
  for (const job of [...input.pending].sort(byAge)) {
    const repo = runnerRepoOf(job)
    const key = `${job.entity_id}|${JSON.stringify(job.job_labels)}|${job.k8s_pool}|${repo ?? ""}`
    const g = groups.get(key) ??
      { entityId: job.entity_id, labels: job.job_labels, pool: job.k8s_pool, repo, entityActiveWorkers: active.get(job.entity_id) ?? 0, jobIds: [], createdMs: [], lacking: [] }
    groups.set(key, g)
    g.jobIds.push(job.job_id)
    g.createdMs.push(job.created_at.getTime())
    g.lacking.push(lacking.has(job.job_id))
  }
  return [...groups.values()]
}

/** One page of the queue from its whole input: the decisions of `planQueuePage` on `queueIndexOf(input)`. */
export const queuePage = (input: QueueInput, request: QueuePageRequest): QueuePage => {
  const byId = new Map(input.pending.map((j) => [j.job_id, j]))
  return planQueuePage(queueIndexOf(input), input, request).decide(byId)
}

/** Every pending job, ordered by pool then position. */
export const queueView = (input: QueueInput): ReadonlyArray<QueueEntry> =>
  queuePage(input, { pool: null, offset: 0, limit: Infinity }).jobs
