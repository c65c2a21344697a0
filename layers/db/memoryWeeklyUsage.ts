/**
 * `getWeeklyUsage` for the in-memory store: the same rules as the PostgreSQL statement
 * (`postgresReportStatements.ts`), computed from the store's maps every time (PostgreSQL reads its roll-up for the
 * folded days); and the roll-up's mark, moved by the same rules. The contract suite holds both to the same answers.
 */
import type { Job } from "../../src/domain/Job.ts"
import {
  foldSpan,
  foldTarget,
  jobFailureClass,
  MAX_QUEUED_MS,
  DAY_MS,
  type WeeklyUsageFold,
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
  const everyJob = [...allJobs]
  const jobs = everyJob.filter((j) =>
    (j.created_at.getTime() >= from - MAX_QUEUED_MS || j.status === "pending") && j.created_at.getTime() < now
  )
  const everyWorker = [...allWorkers]
  const workers = everyWorker.filter((w) =>
    // from a day earlier, as jobs are: a job's runner completed after the job was queued
    (w.completed_at === null || w.completed_at.getTime() >= from - MAX_QUEUED_MS) &&
    (w.created_at.getTime() < now || (w.running_at !== null && w.running_at.getTime() < now))
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

  // the names: each entity's newest job or worker made before now, whenever that was
  for (const x of [...everyJob, ...everyWorker]) if (x.created_at.getTime() < now) seen(x)

  // events of the sweep: [time, entity, Δworkers, Δstarting workers, Δwaiting jobs]
  const events: Array<readonly [number, number, number, number, number]> = []
  for (const j of jobs) {
    const runner = j.k8s_pod === null ? undefined : workerByPod(j.k8s_pod)
    const ranAt = runner?.running_at ?? null
    const queued = secs(j.created_at)
    const waitedUntil = Math.min(
      span,
      // a job no longer pending waits for at most MAX_QUEUED_MS here (GitHub fails it then)
      j.status === "pending" ? span : queued + MAX_QUEUED_MS / 1000,
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
    const ended = Math.min(span, w.completed_at === null ? span : secs(w.completed_at))
    const running = w.running_at === null ? null : secs(w.running_at)
    events.push(
      [Math.max(Math.min(secs(w.created_at), span), 0), w.entity_id, 1, 1, 0],
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

/**
 * A pass of the roll-up for the in-memory store: where PostgreSQL's pass would move the mark to, by the same rules
 * (`foldTarget`, `foldSpan`); the report does not need folded parts here, so nothing else is kept.
 */
export const weeklyUsageFoldInMemory = (
  mark: Date | null,
  allJobs: Iterable<Job>,
  allWorkers: Iterable<Worker>,
  workerByPod: (pod: string) => Worker | undefined,
  now: Date
): WeeklyUsageFold => {
  let oldestOpen: number | null = null
  let firstRow: number | null = null
  const open = (at: number) => {
    oldestOpen = oldestOpen === null ? at : Math.min(oldestOpen, at)
  }
  const first = (at: number) => {
    firstRow = firstRow === null ? at : Math.min(firstRow, at)
  }
  for (const w of allWorkers) {
    first(w.created_at.getTime())
    if (w.status === "pending" || w.status === "running") {
      open(Math.min(w.created_at.getTime(), w.running_at?.getTime() ?? w.created_at.getTime()))
    }
  }
  for (const j of allJobs) {
    first(j.created_at.getTime())
    if (j.status === "pending" || j.status === "running") open(j.created_at.getTime())
    else if (j.k8s_pod !== null && (mark === null || j.created_at.getTime() >= mark.getTime())) {
      // a finished job whose runner has not started yet: its wait is not known
      const runner = workerByPod(j.k8s_pod)
      if (runner !== undefined && runner.running_at === null && (runner.status === "pending" || runner.status === "running")) {
        open(j.created_at.getTime())
      }
    }
  }
  const span = foldSpan(mark?.getTime() ?? null, firstRow, foldTarget(now.getTime(), oldestOpen))
  return { foldedUntil: new Date(span.to), days: Math.round((span.to - span.from) / DAY_MS) }
}
