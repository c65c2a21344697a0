import type { Job } from "../domain/Job.ts"
import type { DemandRow } from "../services/Db.ts"
import { groupKey, planProvisioning, type Policy } from "./demandPlan.ts"

/**
 * Queue visibility: why each pending job waits, where it stands in its pool, and when it may start. Pure: the
 * route reads the same inputs the demand matcher reads (pending jobs, the set-based demand, capacity, back-off)
 * and this decides, by running the planner itself, so the reasons are the matcher's own.
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
    per.set(w.k8s_pool, [...(per.get(w.k8s_pool) ?? []), ms])
    all.push(ms)
  }
  return { byPool: new Map([...per].map(([pool, ms]) => [pool, median(ms)!])), overall: median(all) }
}

export const queueView = (input: QueueInput): ReadonlyArray<QueueEntry> => {
  const now = input.now.getTime()
  const lacking = new Set(input.demand.map((r) => r.job.job_id))
  const plan = planProvisioning({
    demand: input.demand,
    available: input.available,
    capFor: input.capFor,
    weightFor: input.weightFor,
    policy: input.policy,
    blocked: new Set(input.blocked.keys())
  })
  const reasons = new Map<number, WaitReason>()
  for (const p of plan.provisions) reasons.set(p.job.job_id, "provisioning")
  for (const s of plan.skipped) {
    reasons.set(s.job.job_id, s.why === "backoff" ? "backoff_after_failure" : s.why === "entity_cap" ? "cap_reached" : "no_free_board")
  }
  const reasonOf = (job: Job): WaitReason => (lacking.has(job.job_id) ? reasons.get(job.job_id) ?? "no_free_board" : "provisioning")

  const byPool = new Map<string, Array<Job>>()
  for (const job of [...input.pending].sort(byAge)) byPool.set(job.k8s_pool, [...(byPool.get(job.k8s_pool) ?? []), job])

  const entries: Array<QueueEntry> = []
  for (const [pool, jobs] of byPool) {
    const duration = input.durations.get(pool) ?? input.fallbackDurationMs
    // When each slot of the pool frees up: a free slot now, a running worker's after a typical run, a worker
    // still starting after a typical run from now. Each waiting job, in order, takes the earliest.
    const slots: Array<number> = []
    if (duration !== null) {
      for (let i = 0; i < Math.max(0, input.available.get(pool) ?? 0); i++) slots.push(now)
      for (const b of input.busy) {
        if (b.pool !== pool) continue
        slots.push(Math.max(now, (b.runningSince?.getTime() ?? now) + duration))
      }
      const total = input.total.get(pool) ?? 0
      while (slots.length > 0 && slots.length > total && total > 0) {
        slots.sort((a, b) => b - a)
        slots.shift()
      }
    }
    jobs.forEach((job, i) => {
      const reason = reasonOf(job)
      let start: number | null = null
      if (reason === "provisioning") start = now
      else if (duration !== null && slots.length > 0) {
        slots.sort((a, b) => a - b)
        const slot = slots.shift()!
        const until = input.blocked.get(groupKey(job.entity_id, job.job_labels))?.getTime() ?? now
        start = Math.max(slot, until)
        slots.push(start + duration)
      }
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
    })
  }
  return entries.sort((a, b) => a.k8s_pool.localeCompare(b.k8s_pool) || a.position - b.position)
}
