import type { Job } from "../domain/Job.ts"
import { encodeLabelSet } from "../domain/Labels.ts"
import type { Worker } from "../domain/Worker.ts"
import type { PoolCapacity } from "../services/Kube.ts"

/**
 * What the dashboard shows, decided from rows by pure functions: per (entity, label set) the pending jobs,
 * active workers, cap and oldest wait; and the queue depth and oldest wait over the last hour, rebuilt from the
 * jobs and their runners' start times (so the chart is whole after a restart and agrees between replicas); and
 * the rows of the pools and boards tables, each with the cluster its pool lives in.
 */

export interface GroupRow {
  readonly entity_id: number
  readonly entity_name: string
  readonly job_labels: ReadonlyArray<string>
  readonly k8s_pool: string
  readonly pending_jobs: number
  readonly running_jobs: number
  readonly active_workers: number
  /** null = no cap */
  readonly cap: number | null
  /** seconds the oldest pending job has waited; null when none waits */
  readonly oldest_wait_seconds: number | null
}

/** One row of the dashboard's pools table: a pool's boards in all, usable, busy and free, and its cluster. */
export interface PoolRow {
  readonly pool: string
  readonly cluster: string
  readonly total: number
  readonly usable: number
  readonly busy: number
  readonly free: number
}

/** One row of the dashboard's boards table; `why_unusable` is null for a usable board. */
export interface BoardRow {
  readonly node: string
  readonly pool: string
  /** the cluster of the board's pool: where the scheduler reads and places it */
  readonly cluster: string
  readonly slots: number
  readonly busy: number
  readonly why_unusable: string | null
}

export const poolRows = (capacity: ReadonlyArray<PoolCapacity>, clusterOf: (pool: string) => string): ReadonlyArray<PoolRow> =>
  capacity.map((p) => ({ pool: p.pool, cluster: clusterOf(p.pool), total: p.total, usable: p.usable, busy: p.active, free: p.available }))

export const boardRows = (capacity: ReadonlyArray<PoolCapacity>, clusterOf: (pool: string) => string): ReadonlyArray<BoardRow> =>
  capacity.flatMap((p) =>
    p.boards.map((b) => ({ node: b.name, pool: b.pool, cluster: clusterOf(b.pool), slots: b.slots, busy: b.busy, why_unusable: b.unusable }))
  )

/** The pending jobs of one (entity, label set, pool), as the queue's index holds them (no job rows). */
export interface PendingGroup {
  readonly entity_id: number
  readonly entity_name: string
  readonly job_labels: ReadonlyArray<string>
  readonly k8s_pool: string
  readonly count: number
  /** created_at of the oldest, ms since the epoch */
  readonly oldestMs: number
}

/**
 * Per (entity, label set, pool): pending jobs from the queue's index, running jobs and active workers from their
 * rows (one per runner, so few), the cap and the oldest wait. Reading every pending job in full took seconds at
 * 50,000 of them.
 */
export const groupRows = (
  pending: ReadonlyArray<PendingGroup>,
  running: ReadonlyArray<Job>,
  workers: ReadonlyArray<Worker>,
  capFor: (entityId: number) => number | null,
  nowMs: number
): ReadonlyArray<GroupRow> => {
  interface Acc {
    entity_id: number
    entity_name: string
    job_labels: ReadonlyArray<string>
    k8s_pool: string
    pending_jobs: number
    running_jobs: number
    active_workers: number
    oldest: number | null
  }
  const groups = new Map<string, Acc>()
  const acc = (r: { entity_id: number; entity_name: string; job_labels: ReadonlyArray<string>; k8s_pool: string }): Acc => {
    const key = `${r.entity_id}|${encodeLabelSet(r.job_labels)}|${r.k8s_pool}`
    let g = groups.get(key)
    if (g === undefined) {
      g = { entity_id: r.entity_id, entity_name: r.entity_name, job_labels: r.job_labels, k8s_pool: r.k8s_pool, pending_jobs: 0, running_jobs: 0, active_workers: 0, oldest: null }
      groups.set(key, g)
    }
    return g
  }
  // a personal account's repositories are separate groups of the index: they add up here
  for (const p of pending) {
    const g = acc(p)
    g.pending_jobs += p.count
    g.oldest = g.oldest === null ? p.oldestMs : Math.min(g.oldest, p.oldestMs)
  }
  for (const j of running) if (j.status === "running") acc(j).running_jobs++
  for (const w of workers) if (w.status === "pending" || w.status === "running") acc(w).active_workers++
  return [...groups.values()]
    .map((g) => ({
      entity_id: g.entity_id,
      entity_name: g.entity_name,
      job_labels: g.job_labels,
      k8s_pool: g.k8s_pool,
      pending_jobs: g.pending_jobs,
      running_jobs: g.running_jobs,
      active_workers: g.active_workers,
      cap: capFor(g.entity_id),
      oldest_wait_seconds: g.oldest === null ? null : Math.max(0, Math.round((nowMs - g.oldest) / 1000))
    }))
    .sort((a, b) => a.entity_name.localeCompare(b.entity_name) || encodeLabelSet(a.job_labels).localeCompare(encodeLabelSet(b.job_labels)))
}

export interface QueuePoint {
  /** RFC 3339 */
  readonly at: string
  /** jobs waiting for a runner at that moment */
  readonly depth: number
  /** seconds the oldest of them had waited */
  readonly oldest_wait_seconds: number
}

/**
 * The queue's depth and its oldest wait, sampled every `stepMs` over the window ending now, oldest first. A job
 * waits from its creation until its runner starts, or until it ended without one (`Db.getWaitSpans` decides the
 * end of the waits that ended). The jobs still pending are given by their creation times alone, sorted: each
 * point counts them with a binary search, so 50,000 of them cost no more than a few.
 */
export const queueHistory = (
  pendingCreatedMs: ArrayLike<number>,
  ended: ReadonlyArray<{ readonly createdMs: number; readonly endMs: number }>,
  nowMs: number,
  windowMs: number,
  stepMs: number
): ReadonlyArray<QueuePoint> => {
  /** how many pending jobs were created at or before t */
  const pendingBy = (t: number) => {
    let lo = 0
    let hi = pendingCreatedMs.length
    while (lo < hi) {
      const mid = (lo + hi) >> 1
      if (pendingCreatedMs[mid]! <= t) lo = mid + 1
      else hi = mid
    }
    return lo
  }
  const points: Array<QueuePoint> = []
  for (let t = nowMs - windowMs; t <= nowMs; t += stepMs) {
    let depth = pendingBy(t)
    let oldest = depth > 0 ? pendingCreatedMs[0]! : Infinity
    for (const s of ended) {
      if (s.createdMs <= t && t < s.endMs) {
        depth++
        oldest = Math.min(oldest, s.createdMs)
      }
    }
    points.push({ at: new Date(t).toISOString(), depth, oldest_wait_seconds: depth === 0 ? 0 : Math.round((t - oldest) / 1000) })
  }
  return points
}
