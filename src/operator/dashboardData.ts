import type { Job } from "../domain/Job.ts"
import { encodeLabelSet } from "../domain/Labels.ts"
import type { Worker } from "../domain/Worker.ts"

/**
 * What the dashboard shows, decided from rows by pure functions: per (entity, label set) the pending jobs,
 * active workers, cap and oldest wait; and the queue depth and oldest wait over the last hour, rebuilt from the
 * jobs and their runners' start times (so the chart is whole after a restart and agrees between replicas).
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

export const groupRows = (
  jobs: ReadonlyArray<Job>,
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
  for (const j of jobs) {
    const g = acc(j)
    if (j.status === "pending") {
      g.pending_jobs++
      g.oldest = g.oldest === null ? j.created_at.getTime() : Math.min(g.oldest, j.created_at.getTime())
    } else if (j.status === "running") g.running_jobs++
  }
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
 * A job waits from its creation until its runner starts (the worker named in `k8s_pod` got `running_at`), or,
 * without one, until its row last changed when it is no longer pending. Sampled every `stepMs` over the window
 * ending now, oldest first.
 */
export const queueHistory = (
  jobs: ReadonlyArray<Job>,
  runningAt: ReadonlyMap<string, Date>,
  nowMs: number,
  windowMs: number,
  stepMs: number
): ReadonlyArray<QueuePoint> => {
  const spans = jobs.map((j) => {
    const started = j.k8s_pod === null ? undefined : runningAt.get(j.k8s_pod)
    const end = started !== undefined ? started.getTime() : j.status === "pending" ? Infinity : j.updated_at.getTime()
    return { start: j.created_at.getTime(), end }
  })
  const points: Array<QueuePoint> = []
  for (let t = nowMs - windowMs; t <= nowMs; t += stepMs) {
    let depth = 0
    let oldest = Infinity
    for (const s of spans) {
      if (s.start <= t && t < s.end) {
        depth++
        oldest = Math.min(oldest, s.start)
      }
    }
    points.push({ at: new Date(t).toISOString(), depth, oldest_wait_seconds: depth === 0 ? 0 : Math.round((t - oldest) / 1000) })
  }
  return points
}
