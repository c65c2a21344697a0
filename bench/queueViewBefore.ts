import type { Job } from "../src/domain/Job.ts"
import { groupKey, planProvisioning } from "../src/scheduler/demandPlan.ts"
import type { QueueEntry, QueueInput, WaitReason } from "../src/scheduler/queueView.ts"

/**
 * The queue view as it was before it was made linear (commit fb4d90f, `src/scheduler/queueView.ts`), kept
 * verbatim as the anchor of `bench/queue.ts` and as the reference that `test/queue.test.ts` compares the linear
 * one with on random queues. It copies its pool's array once per job (quadratic) and sorts the slots per job.
 */

const byAge = (a: Job, b: Job): number => a.created_at.getTime() - b.created_at.getTime() || a.job_id - b.job_id

export const queueViewBefore = (input: QueueInput): ReadonlyArray<QueueEntry> => {
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
