/**
 * `getWeeklyUsage` for the in-memory store: the same rules as the PostgreSQL statement
 * (`postgresReportStatements.ts`), over the store's maps. The contract suite holds both to the same answers.
 */
import type { Job } from "../../src/domain/Job.ts"
import {
  jobFailureClass,
  MAX_QUEUED_MS,
  percentileDisc,
  WEEK_MS,
  type WeeklyUsageRequest,
  type WeeklyUsageRow
} from "../../src/domain/WeeklyUsage.ts"
import type { Worker } from "../../src/domain/Worker.ts"

interface Cell {
  jobs: number
  jobsRun: number
  jobsFailed: Record<string, number>
  waits: Array<number>
  boardSeconds: number
  atCapSeconds: number
}

export const weeklyUsageInMemory = (
  allJobs: Iterable<Job>,
  allWorkers: Iterable<Worker>,
  workerByPod: (pod: string) => Worker | undefined,
  req: WeeklyUsageRequest
): ReadonlyArray<WeeklyUsageRow> => {
  const from = req.from.getTime()
  const now = req.now.getTime()
  const span = (now - from) / 1000
  const weeks = Array.from({ length: req.weeks }, (_, k) => ({ k, ws: (k * WEEK_MS) / 1000, we: Math.min(((k + 1) * WEEK_MS) / 1000, span) }))
    .filter((w) => w.ws < span)
  const secs = (d: Date) => (d.getTime() - from) / 1000
  const jobs = [...allJobs].filter((j) =>
    (j.created_at.getTime() >= from - MAX_QUEUED_MS || j.status === "pending") && j.created_at.getTime() < now
  )
  const workers = [...allWorkers].filter((w) =>
    // from a day earlier, as jobs are: a job's runner completed after the job was queued
    (w.completed_at === null || w.completed_at.getTime() >= from - MAX_QUEUED_MS) &&
    w.created_at.getTime() < now
  )
  const cells = new Map<string, Cell & { entityId: number; k: number }>()
  const cell = (entityId: number, k: number) => {
    const key = `${entityId}|${k}`
    const c = cells.get(key) ?? { entityId, k, jobs: 0, jobsRun: 0, jobsFailed: {}, waits: [], boardSeconds: 0, atCapSeconds: 0 }
    cells.set(key, c)
    return c
  }
  const names = new Map<number, { name: string; type: string; at: number }>()
  const seen = (x: { entity_id: number; entity_name: string; entity_type: string; created_at: Date }) => {
    const n = names.get(x.entity_id)
    const at = x.created_at.getTime()
    // the newest row's name; of rows made at the same instant, the greatest name (as the statement's ORDER BY)
    if (n === undefined || at > n.at || (at === n.at && x.entity_name > n.name)) names.set(x.entity_id, { name: x.entity_name, type: x.entity_type, at: x.created_at.getTime() })
  }

  // events of the sweep: [time, entity, Δworkers, Δstarting workers, Δwaiting jobs]
  const events: Array<readonly [number, number, number, number, number]> = []
  for (const j of jobs) {
    seen(j)
    const runner = j.k8s_pod === null ? undefined : workerByPod(j.k8s_pod)
    const ranAt = runner?.running_at ?? null
    const queued = secs(j.created_at)
    const waitedUntil = Math.min(
      span,
      ranAt !== null ? secs(new Date(Math.max(j.created_at.getTime(), ranAt.getTime()))) : j.status === "pending" ? span : secs(j.updated_at)
    )
    if (waitedUntil > 0 && waitedUntil > queued) {
      events.push([Math.max(queued, 0), j.entity_id, 0, 0, 1], [waitedUntil, j.entity_id, 0, 0, -1])
    }
    if (queued < 0) continue
    const c = cell(j.entity_id, Math.floor(queued / (WEEK_MS / 1000)))
    c.jobs += 1
    if (j.k8s_pod !== null) c.jobsRun += 1
    if (j.status === "failed") {
      const cls = jobFailureClass(j.failure_info)
      c.jobsFailed[cls] = (c.jobsFailed[cls] ?? 0) + 1
    }
    if (ranAt !== null) c.waits.push(Math.max(0, (ranAt.getTime() - j.created_at.getTime()) / 1000))
  }
  for (const w of workers) {
    seen(w)
    const ended = Math.min(span, w.completed_at === null ? span : secs(w.completed_at))
    const running = w.running_at === null ? null : secs(w.running_at)
    events.push(
      [Math.max(secs(w.created_at), 0), w.entity_id, 1, 1, 0],
      [Math.max(ended, 0), w.entity_id, -1, 0, 0],
      [Math.max(Math.min(running ?? ended, ended), 0), w.entity_id, 0, -1, 0]
    )
    if (running === null) continue
    for (const week of weeks) {
      if (running < week.we && ended > week.ws) cell(w.entity_id, week.k).boardSeconds += Math.min(ended, week.we) - Math.max(running, week.ws)
    }
  }

  // the sweep, per entity: the state after every event at an instant holds until the next instant
  const capOf = new Map(req.caps.entities.map((c) => [c.entityId, c.cap] as const))
  const byEntity = new Map<number, Array<readonly [number, number, number, number]>>()
  for (const [t, e, dw, db, dq] of events) {
    const list = byEntity.get(e) ?? []
    byEntity.set(e, list)
    list.push([t, dw, db, dq])
  }
  for (const [entityId, list] of byEntity) {
    const cap = capOf.has(entityId) ? capOf.get(entityId)! : req.caps.defaultCap
    if (cap === null) continue
    list.sort((a, b) => a[0] - b[0])
    let active = 0
    let starting = 0
    let waiting = 0
    for (let i = 0; i < list.length; i++) {
      const [t, dw, db, dq] = list[i]!
      active += dw
      starting += db
      waiting += dq
      const next = list[i + 1]?.[0]
      // jobs beyond the runners still starting for them are held back by the cap
      if (next === undefined || next <= t || waiting <= starting || active < cap) continue
      for (const week of weeks) {
        if (t < week.we && next > week.ws) cell(entityId, week.k).atCapSeconds += Math.min(next, week.we) - Math.max(t, week.ws)
      }
    }
  }

  return [...cells.values()]
    .filter((c) => c.k >= 0 && c.k < req.weeks)
    .map((c): WeeklyUsageRow => {
      const waits = [...c.waits].sort((a, b) => a - b)
      const name = names.get(c.entityId)!
      return {
        weekStart: new Date(from + c.k * WEEK_MS),
        entityId: c.entityId,
        entityName: name.name,
        entityType: name.type,
        jobs: c.jobs,
        jobsRun: c.jobsRun,
        jobsFailed: c.jobsFailed,
        boardSeconds: c.boardSeconds,
        waitP50Seconds: percentileDisc(waits, 0.5),
        waitP95Seconds: percentileDisc(waits, 0.95),
        waitMaxSeconds: waits.length === 0 ? null : waits[waits.length - 1]!,
        atCapSeconds: c.atCapSeconds
      }
    })
}
