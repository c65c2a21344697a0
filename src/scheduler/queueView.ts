import type { Job } from "../domain/Job.ts"
import type { DemandRow } from "../services/Db.ts"
import { groupKey, planProvisioning, type Policy } from "./demandPlan.ts"

/**
 * Queue visibility: why each pending job waits, where it stands in its pool, and when it may start. Pure: the
 * route reads the same inputs the demand matcher reads (pending jobs, the set-based demand, capacity, back-off)
 * and this decides, by running the planner itself, so the reasons are the matcher's own.
 *
 * Linear in the pending jobs (plus the planner's sort of the demand, which arrives sorted): jobs are grouped by
 * pushing, and each pool's free-slot times are a binary heap. A page (`QueuePageRequest`) builds entries for its
 * own window only; the jobs before it are still walked, as their reasons and slots decide the page's estimates,
 * and every job is counted in its pool's totals. `queueSteps` yields every `chunk` jobs, so a caller can give the
 * event loop back between chunks (the route does); `queuePage` and `queueView` run it to the end at once.
 */

export type WaitReason = "provisioning" | "no_free_board" | "cap_reached" | "backoff_after_failure"

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

/** One slot of a pool that is taken now, with when its worker started running (null: not yet running). */
export interface BusySlot {
  readonly pool: string
  readonly runningSince: Date | null
}

export interface QueueInput {
  readonly now: Date
  /** every pending job */
  readonly pending: ReadonlyArray<Job>
  /** `Db.getDemand`: the pending jobs that lack a runner; the others have one being provisioned */
  readonly demand: ReadonlyArray<DemandRow>
  /** free slots per pool, as for the planner; absent when capacity could not be read */
  readonly available: ReadonlyMap<string, number>
  /** total slots per pool */
  readonly total: ReadonlyMap<string, number>
  /** the active workers' slots */
  readonly busy: ReadonlyArray<BusySlot>
  readonly capFor: (entityId: number) => number | null
  readonly weightFor: (entityId: number) => number
  readonly policy: Policy
  /** blocked (entity, label set) groups and until when */
  readonly blocked: ReadonlyMap<string, Date>
  /** typical run time of a job per pool in ms (see `typicalDurations`); a pool that is absent uses `fallback` */
  readonly durations: ReadonlyMap<string, number>
  readonly fallbackDurationMs: number | null
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

/** A binary min-heap of slot times: the earliest free slot in O(log n), where sorting the array cost O(n log n). */
class SlotHeap {
  private readonly items: Array<number> = []
  get size(): number {
    return this.items.length
  }
  push(value: number): void {
    const a = this.items
    a.push(value)
    let i = a.length - 1
    while (i > 0) {
      const parent = (i - 1) >> 1
      if (a[parent]! <= a[i]!) break
      ;[a[parent], a[i]] = [a[i]!, a[parent]!]
      i = parent
    }
  }
  pop(): number {
    const a = this.items
    const top = a[0]!
    const last = a.pop()!
    if (a.length > 0) {
      a[0] = last
      let i = 0
      for (;;) {
        const l = 2 * i + 1
        const r = l + 1
        let m = i
        if (l < a.length && a[l]! < a[m]!) m = l
        if (r < a.length && a[r]! < a[m]!) m = r
        if (m === i) break
        ;[a[m], a[i]] = [a[i]!, a[m]!]
        i = m
      }
    }
    return top
  }
}

/**
 * The queue, one page of it, computed in steps: the generator yields after every `chunk` jobs it walks and returns
 * the page. Decisions are those of `queueView` (which runs this to the end), whatever the page.
 */
export function* queueSteps(input: QueueInput, request: QueuePageRequest, chunk = 2_000): Generator<void, QueuePage> {
  const now = input.now.getTime()
  const lacking = new Set<number>()
  for (const r of input.demand) lacking.add(r.job.job_id)
  const reasons = new Map<number, WaitReason>()
  // The planner needs only the rows it could take. A row of entity E in pool P that comes after E's first
  // min(free slots of P, cap - E's active workers) eligible rows of P can never be taken: each earlier take of E
  // in P spent a slot and counted toward E's cap. Those rows are decided here as the planner decides its
  // left-overs: blocked groups back off; the others wait on their entity's cap, counted over the pools planned
  // up to theirs (the planner plans pools in name order), or on a board.
  const heads: Array<DemandRow> = []
  const rest: Array<DemandRow> = []
  const seen = new Map<string, number>()
  for (const row of [...input.demand].sort((a, b) => byAge(a.job, b.job))) {
    const job = row.job
    if (input.blocked.size > 0 && input.blocked.has(groupKey(job.entity_id, job.job_labels))) {
      reasons.set(job.job_id, "backoff_after_failure")
      continue
    }
    const key = `${job.entity_id}|${job.k8s_pool}`
    const k = (seen.get(key) ?? 0) + 1
    seen.set(key, k)
    const cap = input.capFor(job.entity_id)
    const bound = Math.min(Math.max(0, input.available.get(job.k8s_pool) ?? 0), cap === null ? Infinity : cap - row.entityActiveWorkers)
    if (k <= bound) heads.push(row)
    else rest.push(row)
  }
  yield
  const plan = planProvisioning({
    demand: heads,
    available: input.available,
    capFor: input.capFor,
    weightFor: input.weightFor,
    policy: input.policy
  })
  yield
  for (const p of plan.provisions) reasons.set(p.job.job_id, "provisioning")
  for (const s of plan.skipped) {
    reasons.set(s.job.job_id, s.why === "backoff" ? "backoff_after_failure" : s.why === "entity_cap" ? "cap_reached" : "no_free_board")
  }
  const plannedPools = new Map<number, Array<string>>()
  for (const p of plan.provisions) {
    const pools = plannedPools.get(p.job.entity_id)
    if (pools === undefined) plannedPools.set(p.job.entity_id, [p.pool])
    else pools.push(p.pool)
  }
  for (const row of rest) {
    const cap = input.capFor(row.job.entity_id)
    const planned = (plannedPools.get(row.job.entity_id) ?? []).filter((pool) => pool <= row.job.k8s_pool).length
    const underCap = cap === null || row.entityActiveWorkers + planned < cap
    reasons.set(row.job.job_id, underCap ? "no_free_board" : "cap_reached")
  }
  const reasonOf = (job: Job): WaitReason => (lacking.has(job.job_id) ? reasons.get(job.job_id) ?? "no_free_board" : "provisioning")

  // Sorting is linear on the database's order (oldest first), which is how the route reads them.
  const byPool = new Map<string, Array<Job>>()
  for (const job of [...input.pending].sort(byAge)) {
    const jobs = byPool.get(job.k8s_pool)
    if (jobs === undefined) byPool.set(job.k8s_pool, [job])
    else jobs.push(job)
  }
  yield

  const end = request.offset + request.limit
  const pools: Array<PoolTotals> = []
  const entries: Array<QueueEntry> = []
  // entries of the shown pools walked so far, counted up to the page's end
  let index = 0
  let walked = 0
  for (const pool of [...byPool.keys()].sort((a, b) => a.localeCompare(b))) {
    const jobs = byPool.get(pool)!
    const totals = { pool, pending: jobs.length, provisioning: 0, no_free_board: 0, cap_reached: 0, backoff_after_failure: 0 }
    pools.push(totals)
    const shown = request.pool === null || request.pool === pool
    const duration = input.durations.get(pool) ?? input.fallbackDurationMs
    // When each slot of the pool frees up: a free slot now, a running worker's after a typical run, a worker
    // still starting after a typical run from now; only the pool's `total` earliest count. Each waiting job, in
    // order, takes the earliest.
    const slots = new SlotHeap()
    if (shown && duration !== null && index < end) {
      const times: Array<number> = []
      for (let i = 0; i < Math.max(0, input.available.get(pool) ?? 0); i++) times.push(now)
      for (const b of input.busy) {
        if (b.pool === pool) times.push(Math.max(now, (b.runningSince?.getTime() ?? now) + duration))
      }
      const total = input.total.get(pool) ?? 0
      times.sort((a, b) => a - b)
      for (const t of total > 0 ? times.slice(0, total) : times) slots.push(t)
    }
    for (let i = 0; i < jobs.length; i++) {
      if (++walked % chunk === 0) yield
      const job = jobs[i]!
      const reason = reasonOf(job)
      totals[reason]++
      if (!shown || index >= end) continue
      let start: number | null = null
      if (reason === "provisioning") start = now
      else if (duration !== null && slots.size > 0) {
        const slot = slots.pop()
        const until = input.blocked.get(groupKey(job.entity_id, job.job_labels))?.getTime() ?? now
        start = Math.max(slot, until)
        slots.push(start + duration)
      }
      if (index >= request.offset) {
        entries.push({
          job_id: job.job_id,
          entity_id: job.entity_id,
          entity_name: job.entity_name,
          k8s_pool: job.k8s_pool,
          job_labels: job.job_labels,
          created_at: job.created_at.toISOString(),
          html_url: job.html_url,
          position: i + 1,
          reason,
          estimated_start: start === null ? null : new Date(start).toISOString()
        })
      }
      index++
    }
  }
  const total = request.pool === null ? walked : byPool.get(request.pool)?.length ?? 0
  return {
    total,
    offset: request.offset,
    limit: request.limit,
    next_offset: end < total ? end : null,
    pools,
    jobs: entries
  }
}

/** `queueSteps` run to the end in one go. */
export const queuePage = (input: QueueInput, request: QueuePageRequest): QueuePage => {
  const steps = queueSteps(input, request)
  for (;;) {
    const step = steps.next()
    if (step.done === true) return step.value
  }
}

/** Every pending job, ordered by pool then position. */
export const queueView = (input: QueueInput): ReadonlyArray<QueueEntry> =>
  queuePage(input, { pool: null, offset: 0, limit: Infinity }).jobs
