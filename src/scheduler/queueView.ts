import type { Job } from "../domain/Job.ts"
import type { DemandRow, QueueGroup } from "../services/Db.ts"
import { groupKey, planProvisioning, type Policy } from "./demandPlan.ts"

/**
 * Queue visibility: why each pending job waits, where it stands in its pool, and when it may start. Pure: the
 * route reads the same inputs the demand matcher reads (pending jobs, the set-based demand, capacity, back-off)
 * and this decides, by running the planner itself, so the reasons are the matcher's own.
 *
 * Linear in the pending jobs, and cheap where the backlog is long: `planQueuePage` decides from the queue's index
 * (`Db.getQueueIndex`: ids, groups and pool positions, no job rows) and asks for full rows of only the page's jobs
 * and of the few the planner could take; the jobs before the page are still walked, as numbers, since their
 * reasons and slots decide the page's estimates, and every job is counted in its pool's totals. `queuePage` and
 * `queueView` run the same path on a whole `QueueInput` (the tests compare them with the quadratic original).
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

/** Which of the queue's jobs a page needs read in full, and how to decide the page once they are read. */
export interface QueuePlan {
  /** the jobs the planner may take, and the page's jobs */
  readonly jobIds: ReadonlyArray<number>
  /** the page, from those jobs (keyed by id); a job missing from them (gone meanwhile) is left out */
  readonly decide: (jobs: ReadonlyMap<number, Job>) => QueuePage
}

/** The queue's decisions minus the jobs themselves: what `QueueInput` holds besides `pending` and `demand`. */
export type QueueContext = Omit<QueueInput, "pending" | "demand">

const NOT_SHOWN = -1

/**
 * One page of the queue, decided from the queue's index (`Db.getQueueIndex`: every pending job as its group, id,
 * pool position and whether it lacks a runner) plus full rows of only the jobs the planner could take and the
 * page's: the decisions are those of `queueView` over the whole queue, whatever the page. Linear in the pending
 * jobs, over numbers only: jobs are laid out by pool position, and each pool's free-slot times are a heap.
 */
export const planQueuePage = (groups: ReadonlyArray<QueueGroup>, ctx: QueueContext, request: QueuePageRequest): QueuePlan => {
  const now = ctx.now.getTime()
  // Every pool's jobs by position: their group and id (the group index is negative for a job with a runner).
  const layout = new Map<string, { readonly group: Int32Array; readonly id: Float64Array }>()
  const sizes = new Map<string, number>()
  for (const g of groups) sizes.set(g.pool, (sizes.get(g.pool) ?? 0) + g.jobIds.length)
  for (const [pool, n] of sizes) layout.set(pool, { group: new Int32Array(n), id: new Float64Array(n) })
  groups.forEach((g, gi) => {
    const at = layout.get(g.pool)!
    for (let k = 0; k < g.jobIds.length; k++) {
      const i = g.positions[k]! - 1
      at.group[i] = g.lacking[k] ? gi + 1 : -(gi + 1)
      at.id[i] = g.jobIds[k]!
    }
  })
  const until = groups.map((g) => (ctx.blocked.size > 0 ? ctx.blocked.get(groupKey(g.entityId, g.labels))?.getTime() : undefined))
  const poolNames = [...layout.keys()].sort((a, b) => a.localeCompare(b))

  // The planner needs only the rows it could take. A row of entity E in pool P that comes after E's first
  // min(free slots of P, cap - E's active workers) eligible rows of P can never be taken: each earlier take of E
  // in P spent a slot and counted toward E's cap. Those rows are decided as the planner decides its left-overs:
  // blocked groups back off; the others wait on their entity's cap, counted over the pools planned up to theirs
  // (the planner plans pools in name order), or on a board.
  const heads = new Set<number>()
  for (const pool of poolNames) {
    const at = layout.get(pool)!
    const seen = new Map<number, number>()
    const free = Math.max(0, ctx.available.get(pool) ?? 0)
    for (let i = 0; i < at.group.length; i++) {
      const gi = at.group[i]! - 1
      if (gi < 0 || until[gi] !== undefined) continue
      const g = groups[gi]!
      const k = (seen.get(g.entityId) ?? 0) + 1
      seen.set(g.entityId, k)
      const cap = ctx.capFor(g.entityId)
      if (k <= Math.min(free, cap === null ? Infinity : cap - g.entityActiveWorkers)) heads.add(at.id[i]!)
    }
  }

  // The page's window: entries in (pool name, position) order after the pool filter.
  const end = request.offset + request.limit
  const window = new Map<string, { readonly from: number; readonly to: number }>()
  const jobIds = [...heads]
  let index = 0
  for (const pool of poolNames) {
    if (request.pool !== null && request.pool !== pool) continue
    const n = layout.get(pool)!.id.length
    const from = Math.max(0, request.offset - index)
    const to = Math.min(n, end - index)
    if (from < to) {
      window.set(pool, { from, to })
      for (let i = from; i < to; i++) if (!heads.has(layout.get(pool)!.id[i]!)) jobIds.push(layout.get(pool)!.id[i]!)
    }
    index += n
  }
  const total = index

  const decide = (jobs: ReadonlyMap<number, Job>): QueuePage => {
    const activeOf = new Map(groups.map((g) => [g.entityId, g.entityActiveWorkers]))
    const headRows: Array<DemandRow> = []
    for (const id of heads) {
      const job = jobs.get(id)
      // the planner reads a row's job and its entity's active workers only
      if (job !== undefined) headRows.push({ job, rank: 0, groupDemand: 0, groupSupply: 0, entityActiveWorkers: activeOf.get(job.entity_id) ?? 0 })
    }
    const plan = planProvisioning({ demand: headRows, available: ctx.available, capFor: ctx.capFor, weightFor: ctx.weightFor, policy: ctx.policy })
    const reasons = new Map<number, WaitReason>()
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
    // the reason of a left-over row, by group (it depends on the entity and the pool only)
    const restReason = groups.map((g, gi): WaitReason => {
      if (until[gi] !== undefined) return "backoff_after_failure"
      const cap = ctx.capFor(g.entityId)
      const planned = (plannedPools.get(g.entityId) ?? []).filter((pool) => pool <= g.pool).length
      return cap === null || g.entityActiveWorkers + planned < cap ? "no_free_board" : "cap_reached"
    })

    const pools: Array<PoolTotals> = []
    const entries: Array<QueueEntry> = []
    for (const pool of poolNames) {
      const at = layout.get(pool)!
      const totals = { pool, pending: at.id.length, provisioning: 0, no_free_board: 0, cap_reached: 0, backoff_after_failure: 0 }
      pools.push(totals)
      const shown = window.get(pool)
      const to = shown?.to ?? NOT_SHOWN
      const duration = ctx.durations.get(pool) ?? ctx.fallbackDurationMs
      // When each slot of the pool frees up: a free slot now, a running worker's after a typical run, a worker
      // still starting after a typical run from now; only the pool's `total` earliest count. Each waiting job, in
      // order, takes the earliest.
      const slots = new SlotHeap()
      if (shown !== undefined && duration !== null) {
        const times: Array<number> = []
        for (let i = 0; i < Math.max(0, ctx.available.get(pool) ?? 0); i++) times.push(now)
        for (const b of ctx.busy) {
          if (b.pool === pool) times.push(Math.max(now, (b.runningSince?.getTime() ?? now) + duration))
        }
        const total = ctx.total.get(pool) ?? 0
        times.sort((a, b) => a - b)
        for (const t of total > 0 ? times.slice(0, total) : times) slots.push(t)
      }
      for (let i = 0; i < at.id.length; i++) {
        const signed = at.group[i]!
        const id = at.id[i]!
        const reason: WaitReason = signed < 0 ? "provisioning" : heads.has(id) ? reasons.get(id) ?? "no_free_board" : restReason[signed - 1]!
        totals[reason]++
        if (i >= to) continue
        let start: number | null = null
        if (reason === "provisioning") start = now
        else if (duration !== null && slots.size > 0) {
          const slot = slots.pop()
          start = Math.max(slot, until[Math.abs(signed) - 1] ?? now)
          slots.push(start + duration)
        }
        if (i < shown!.from) continue
        const job = jobs.get(id)
        if (job === undefined) continue
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
    }
    return { total, offset: request.offset, limit: request.limit, next_offset: end < total ? end : null, pools, jobs: entries }
  }
  return { jobIds, decide }
}

/**
 * The index `Db.getQueueIndex` gives for these pending jobs and demand (the pure path's stand-in for the database,
 * which the tests compare with the original). A job's group is (entity, label set, pool), in first-seen order.
 */
export const queueIndexOf = (input: Pick<QueueInput, "pending" | "demand">): ReadonlyArray<QueueGroup> => {
  const lacking = new Map<number, DemandRow>()
  for (const r of input.demand) lacking.set(r.job.job_id, r)
  const active = new Map<number, number>()
  for (const r of input.demand) if (!active.has(r.job.entity_id)) active.set(r.job.entity_id, r.entityActiveWorkers)
  const groups = new Map<string, { entityId: number; labels: ReadonlyArray<string>; pool: string; entityActiveWorkers: number; jobIds: Array<number>; positions: Array<number>; lacking: Array<boolean> }>()
  const positionIn = new Map<string, number>()
  for (const job of [...input.pending].sort(byAge)) {
    const position = (positionIn.get(job.k8s_pool) ?? 0) + 1
    positionIn.set(job.k8s_pool, position)
    const key = `${groupKey(job.entity_id, job.job_labels)}|${job.k8s_pool}`
    const g = groups.get(key) ?? { entityId: job.entity_id, labels: job.job_labels, pool: job.k8s_pool, entityActiveWorkers: active.get(job.entity_id) ?? 0, jobIds: [], positions: [], lacking: [] }
    groups.set(key, g)
    g.jobIds.push(job.job_id)
    g.positions.push(position)
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
