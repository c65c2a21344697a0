import { Clock, Effect, Exit, FiberRef, Layer, Option, PubSub, Stream } from "effect"
import type { BoardEvent, BoardState, NodeOutcome } from "../../src/domain/BoardQuarantine.ts"
import type { EventSummary, InstallationEvent } from "../../src/domain/InstallationEvent.ts"
import { BACKOFF_REASONS } from "../../src/domain/FailureInfo.ts"
import { type Job, runnerRepoOf } from "../../src/domain/Job.ts"
import { encodeLabelSet, toLabelSet } from "../../src/domain/Labels.ts"
import { DEFAULT_CLUSTER } from "../../src/domain/RunnerConfig.ts"
import { allowedSources, isActive, type Status } from "../../src/domain/Status.ts"
import { UNCLAIMED_RUNNER_GRACE_MS, type Worker } from "../../src/domain/Worker.ts"
import {
  type AllocationFailureStreak,
  Db,
  DbError,
  type DbShape,
  type DemandRow,
  type QueueGroup,
  type QueueRow,
  DuplicatePodName,
  type PageRequest,
  type PassClaim,
  type Transition
} from "../../src/services/Db.ts"
import { weeklyUsageFoldInMemory, weeklyUsageInMemory } from "./memoryWeeklyUsage.ts"

/**
 * Undo entries of the writes made by the current step, if any. A step that fails (or is interrupted) replays its
 * entries backwards, so only its own writes are undone, like a rolled-back transaction; a step that succeeds has
 * committed (a nested step hands its entries to the outer one, like a SAVEPOINT). Writes outside any step apply at
 * once, like PostgreSQL's autocommit. Fibers forked inside a step share its log, as they would share the
 * transaction.
 */
const undoLog = FiberRef.unsafeMake<Array<() => void> | undefined>(undefined)

const byCreated = <A extends { readonly created_at: Date }>(key: (a: A) => string | number) => (a: A, b: A): number =>
  a.created_at.getTime() - b.created_at.getTime() || (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0)

const inRange = (created: Date, req: PageRequest): boolean =>
  (req.start === undefined || created.getTime() >= req.start.getTime()) &&
  (req.end === undefined || created.getTime() < req.end.getTime())

/** Builds a fresh in-memory store. Every call gives an independent database. */
export const makeDbMemory = Effect.gen(function*() {
  const jobs = new Map<number, Job>()
  const workers = new Map<string, Worker>()
  // the weekly usage roll-up's mark: kept by the same rules as in PostgreSQL, though the report reads the rows
  const foldMark: { current: Date | null } = { current: null }
  const events: Array<InstallationEvent> = []
  let nextEventId = 1
  const passes = new Map<string, { cursor: string | null; holder: string | null; leaseUntil: number }>()
  const boardStates = new Map<string, BoardState>()
  const boardEvents: Array<BoardEvent> = []
  let nextBoardEventId = 1
  const wake = yield* PubSub.unbounded<string>()
  const lock = yield* Effect.makeSemaphore(1)
  const now = Effect.map(Clock.currentTimeMillis, (ms) => new Date(ms))

  /** Applies a write and, inside a transaction, remembers how to take it back. */
  const write = (apply: () => () => void) =>
    Effect.flatMap(FiberRef.get(undoLog), (log) =>
      Effect.sync(() => {
        const undo = apply()
        log?.push(undo)
      }))

  const putJob = (job: Job) =>
    write(() => {
      const before = jobs.get(job.job_id)
      jobs.set(job.job_id, job)
      return () => (before === undefined ? jobs.delete(job.job_id) : jobs.set(job.job_id, before))
    })

  const putWorker = (worker: Worker) =>
    write(() => {
      const before = workers.get(worker.pod_name)
      workers.set(worker.pod_name, worker)
      return () => (before === undefined ? workers.delete(worker.pod_name) : workers.set(worker.pod_name, before))
    })

  const transitionJob = (jobId: number, to: Status, change: (job: Job, at: Date) => Job) =>
    Effect.gen(function*() {
      const job = jobs.get(jobId)
      if (job === undefined) return { found: false } satisfies Transition as Transition
      if (!allowedSources(to).includes(job.status)) return { found: true, previous: job.status, changed: false } as Transition
      const at = yield* now
      yield* putJob({ ...change(job, at), status: to, updated_at: at })
      return { found: true, previous: job.status, changed: true } as Transition
    })

  const transitionWorker = (podName: string, to: Status, from: ReadonlyArray<Status>, change: (w: Worker, at: Date) => Worker) =>
    Effect.gen(function*() {
      const worker = workers.get(podName)
      if (worker === undefined || !from.includes(worker.status)) return false
      const at = yield* now
      yield* putWorker({ ...change(worker, at), status: to, updated_at: at })
      return true
    })

  const recordRunner = (job: Job, runnerName: string | null): Job => ({
    ...job,
    k8s_pod: job.k8s_pod ?? (runnerName === null || runnerName === "" ? null : runnerName)
  })

  const activeJobs = () => [...jobs.values()].filter((j) => isActive(j.status)).sort(byCreated((j) => j.job_id))
  const activeWorkers = () => [...workers.values()].filter((w) => isActive(w.status)).sort(byCreated((w) => w.pod_name))

  const page = <A extends { readonly created_at: Date }>(all: Iterable<A>, key: (a: A) => string | number, req: PageRequest) => {
    const rows = [...all].filter((r) => inRange(r.created_at, req)).sort(byCreated(key)).reverse()
    return { rows: rows.slice(req.page * req.perPage, (req.page + 1) * req.perPage), total: rows.length }
  }

  // `onExit` rather than `exit`: an interrupted step (a crash mid-step) is undone as well.
  const step = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
    Effect.flatMap(FiberRef.get(undoLog), (parent) => {
      const mine: Array<() => void> = []
      return Effect.locally(effect, undoLog, mine).pipe(
        Effect.onExit((exit) =>
          Effect.sync(() => {
            if (Exit.isFailure(exit)) for (const undo of mine.reverse()) undo()
            else parent?.push(...mine)
          })
        )
      )
    })

  /** Every pending job, oldest first, with its demand figures: `getQueueRows`, and `getDemand` the ones lacking a runner. */
  const queueRows = (at: Date): Array<QueueRow> => {
    const count = new Map<string, number>()
    const bump = (key: string) => count.set(key, (count.get(key) ?? 0) + 1)
    // The matching group: a personal account's runner is registered on one repository (the worker's
    // repo_full_name), so for `User` entities the repository is part of the key; organisations have none.
    const groupKey = (entityId: number, repo: string | null, labels: ReadonlyArray<string>) =>
      `${entityId}|${repo ?? ""}|${encodeLabelSet(labels)}`
    for (const j of activeJobs()) {
      bump(`demand|${groupKey(j.entity_id, runnerRepoOf(j), j.job_labels)}`)
      // a running job whose runner's worker ended holds no runner (see `runnerEnded` in the PostgreSQL statements)
      const runnerEnded = j.k8s_pod !== null && (workers.get(j.k8s_pod)?.status === "completed" || workers.get(j.k8s_pod)?.status === "failed")
      if (j.status === "running" && !runnerEnded) bump(`running|${groupKey(j.entity_id, runnerRepoOf(j), j.job_labels)}`)
    }
    for (const w of activeWorkers()) {
      bump(`supply|${groupKey(w.entity_id, w.repo_full_name, w.job_labels)}`)
      bump(`entity|${w.entity_id}`)
    }
    // a runner that ended cleanly a moment ago, whose job's news has not named it yet, still serves its group
    // (`UNCLAIMED_RUNNER_GRACE_MS`; `servingWorkers` in the PostgreSQL statements)
    const graceFrom = at.getTime() - UNCLAIMED_RUNNER_GRACE_MS
    const ended = [...workers.values()].filter((w) => w.status === "completed" && w.completed_at !== null && w.completed_at.getTime() >= graceFrom)
    if (ended.length > 0) {
      const claimed = new Set<string>()
      for (const j of jobs.values()) if (j.k8s_pod !== null) claimed.add(j.k8s_pod)
      for (const w of ended) if (!claimed.has(w.pod_name)) bump(`supply|${groupKey(w.entity_id, w.repo_full_name, w.job_labels)}`)
    }
    const rank = new Map<string, number>()
    const rows: Array<QueueRow> = []
    for (const job of activeJobs()) {
      if (job.status !== "pending") continue
      const key = groupKey(job.entity_id, runnerRepoOf(job), job.job_labels)
      const r = (rank.get(key) ?? 0) + 1
      rank.set(key, r)
      const groupDemand = count.get(`demand|${key}`) ?? 0
      const groupSupply = count.get(`supply|${key}`) ?? 0
      // workers beyond the running jobs serve the oldest pending jobs; the later ones lack a runner
      const lacksRunner = r > Math.max(0, groupSupply - (count.get(`running|${key}`) ?? 0))
      rows.push({ job, rank: r, groupDemand, groupSupply, entityActiveWorkers: count.get(`entity|${job.entity_id}`) ?? 0, lacksRunner })
    }
    return rows
  }

  const db: DbShape = {
    addJob: (job) =>
      Effect.gen(function*() {
        if (jobs.has(job.job_id)) return false
        const at = yield* now
        yield* putJob({
          ...job,
          job_labels: toLabelSet(job.job_labels),
          status: "pending",
          failure_info: null,
          k8s_pod: null,
          created_at: at,
          updated_at: at
        })
        yield* PubSub.publish(wake, String(job.job_id))
        return true
      }),
    markJobRunning: (jobId, runnerName) => transitionJob(jobId, "running", (j) => recordRunner(j, runnerName)),
    markJobCompleted: (jobId, runnerName) => transitionJob(jobId, "completed", (j) => recordRunner(j, runnerName)),
    markJobFailed: (jobId, info) => transitionJob(jobId, "failed", (j) => ({ ...j, failure_info: info })),
    getJob: (jobId) => Effect.sync(() => Option.fromNullable(jobs.get(jobId))),
    jobExistsForPod: (podName) => Effect.sync(() => [...jobs.values()].some((j) => j.k8s_pod === podName)),
    getActiveJobs: Effect.sync(activeJobs),
    getPendingJobs: Effect.sync(() => activeJobs().filter((j) => j.status === "pending")),
    getRunningJobs: Effect.sync(() => activeJobs().filter((j) => j.status === "running")),
    listJobs: (req) => Effect.sync(() => page(jobs.values(), (j) => j.job_id, req)),
    getJobsToPoll: (staleBefore, limit) =>
      Effect.sync(() =>
        activeJobs()
          .filter((j) => j.repo_full_name !== "" && j.updated_at.getTime() < staleBefore.getTime())
          .sort((a, b) => a.updated_at.getTime() - b.updated_at.getTime() || a.job_id - b.job_id)
          .slice(0, limit)
      ),
    getRunningJobPods: Effect.sync(() =>
      [...new Set(activeJobs().flatMap((j) => (j.status === "running" && j.k8s_pod !== null && j.k8s_pod !== "" ? [j.k8s_pod] : [])))]
        .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
    ),

    getDemand: Effect.map(now, (at) =>
      queueRows(at).flatMap(({ lacksRunner, ...row }): Array<DemandRow> => (lacksRunner ? [row] : []))
    ),

    getQueueRows: Effect.map(now, queueRows),

    getQueueIndex: Effect.gen(function*() {
      // getQueueRows (oldest first) grouped by (entity, label set, pool, matching repository)
      const rows = yield* db.getQueueRows
      const groups = new Map<string, QueueGroup & { jobIds: Array<number>; createdMs: Array<number>; lacking: Array<boolean> }>()
      for (const r of rows) {
        const repo = runnerRepoOf(r.job)
        const key = `${r.job.entity_id}|${encodeLabelSet(r.job.job_labels)}|${r.job.k8s_pool}|${repo ?? ""}`
        const g = groups.get(key) ??
          { entityId: r.job.entity_id, labels: toLabelSet(r.job.job_labels), pool: r.job.k8s_pool, repo, entityActiveWorkers: r.entityActiveWorkers, jobIds: [], createdMs: [], lacking: [] }
        groups.set(key, g)
        g.jobIds.push(r.job.job_id)
        g.createdMs.push(r.job.created_at.getTime())
        g.lacking.push(r.lacksRunner)
      }
      return [...groups.values()]
    }),
    getJobsByIds: (jobIds) => Effect.sync(() => jobIds.flatMap((id) => jobs.get(id) ?? [])),
    getWaitSpans: (since) =>
      Effect.sync(() =>
        [...jobs.values()].flatMap((j) => {
          if (j.status === "pending" || j.created_at.getTime() < since.getTime()) return []
          const started = j.k8s_pod === null ? null : workers.get(j.k8s_pod)?.running_at ?? null
          return [{ createdMs: j.created_at.getTime(), endMs: (started ?? j.updated_at).getTime() }]
        })
      ),

    addWorker: (w) =>
      Effect.gen(function*() {
        if (workers.has(w.pod_name)) return yield* Effect.fail(new DuplicatePodName({ podName: w.pod_name }))
        const at = yield* now
        yield* putWorker({
          ...w,
          job_labels: toLabelSet(w.job_labels),
          cluster: w.cluster ?? DEFAULT_CLUSTER,
          k8s_node: null,
          status: "pending",
          failure_info: null,
          created_at: at,
          running_at: null,
          completed_at: null,
          updated_at: at
        })
      }),
    addWorkers: (ws) =>
      Effect.gen(function*() {
        const taken: Array<string> = []
        for (const w of ws) {
          const added = yield* Effect.either(db.addWorker(w))
          if (added._tag === "Left") taken.push(w.pod_name)
        }
        return taken
      }),
    releaseWorkers: (podNames) =>
      Effect.gen(function*() {
        let released = 0
        for (const name of new Set(podNames)) {
          const before = workers.get(name)
          if (before === undefined || before.status !== "pending") continue
          released++
          yield* write(() => {
            workers.delete(name)
            return () => workers.set(name, before)
          })
        }
        return released
      }),
    markWorkerRunning: (podName, node, runningAt) =>
      transitionWorker(podName, "running", ["pending"], (w, at) => ({ ...w, k8s_node: node, running_at: w.running_at ?? runningAt ?? at })),
    markWorkerCompleted: (podName, node, completedAt, runningAt = null) =>
      transitionWorker(podName, "completed", ["pending", "running"], (w, at) => ({
        ...w,
        k8s_node: w.k8s_node ?? node,
        running_at: w.running_at ?? runningAt,
        completed_at: w.completed_at ?? completedAt ?? at
      })),
    markWorkersMoved: (moves) =>
      Effect.gen(function*() {
        const seen = new Set<string>()
        const moved: Array<string> = []
        for (const m of moves) {
          if (seen.has(m.podName)) continue
          seen.add(m.podName)
          const changed = m.to === "running"
            ? yield* db.markWorkerRunning(m.podName, m.node, m.runningAt)
            : yield* db.markWorkerCompleted(m.podName, m.node, m.completedAt, m.runningAt)
          if (changed) moved.push(m.podName)
        }
        return moved
      }),
    markWorkerFailed: (podName, node, info, completedAt) =>
      transitionWorker(podName, "failed", ["pending", "running"], (w, at) => ({
        ...w,
        k8s_node: node ?? w.k8s_node,
        failure_info: info,
        completed_at: completedAt ?? at
      })),
    markWorkerOrphaned: (podName) =>
      transitionWorker(podName, "completed", ["pending", "running"], (w, at) => ({ ...w, completed_at: w.completed_at ?? at })),
    getWorker: (podName) => Effect.sync(() => Option.fromNullable(workers.get(podName))),
    getActiveWorkers: Effect.sync(activeWorkers),
    getWorkersForReconcile: (lookbackSeconds) =>
      Effect.map(now, (at) =>
        [...workers.values()]
          .filter((w) =>
            isActive(w.status) ||
            (w.completed_at !== null && w.completed_at.getTime() >= at.getTime() - lookbackSeconds * 1000)
          )
          .sort(byCreated((w) => w.pod_name))),
    knownPodNames: (podNames) => Effect.sync(() => new Set(podNames.filter((n) => workers.has(n)))),
    listWorkers: (req) => Effect.sync(() => page(workers.values(), (w) => w.pod_name, req)),
    getRecentFailures: (limit) =>
      Effect.sync(() =>
        [...workers.values()]
          .filter((w) => w.status === "failed")
          .sort((a, b) =>
            (b.completed_at?.getTime() ?? 0) - (a.completed_at?.getTime() ?? 0) || (a.pod_name < b.pod_name ? 1 : a.pod_name > b.pod_name ? -1 : 0))
          .slice(0, Math.max(0, limit))),
    getAllocationFailures: (lookbackSeconds) =>
      Effect.map(now, (at) => {
        const since = at.getTime() - lookbackSeconds * 1000
        const allocFailed = (w: Worker) =>
          w.status === "failed" && w.failure_info?.version === 2 && BACKOFF_REASONS.includes(w.failure_info.reason)
        const recent = [...workers.values()].filter((w) => w.created_at.getTime() >= since)
        // one streak per matching group: the repository is part of it (null for an organisation's workers)
        const keyOf = (w: Worker) => `${w.entity_id}|${w.repo_full_name ?? ""}|${encodeLabelSet(w.job_labels)}`
        const lastOk = new Map<string, number>()
        for (const w of recent) {
          if (allocFailed(w)) continue
          const key = keyOf(w)
          lastOk.set(key, Math.max(lastOk.get(key) ?? Number.NEGATIVE_INFINITY, w.created_at.getTime()))
        }
        const streaks = new Map<string, { entityId: number; repo: string | null; labels: ReadonlyArray<string>; failures: number; last: number }>()
        for (const w of recent) {
          const key = keyOf(w)
          if (!allocFailed(w) || w.created_at.getTime() <= (lastOk.get(key) ?? Number.NEGATIVE_INFINITY)) continue
          const s = streaks.get(key) ??
            { entityId: w.entity_id, repo: w.repo_full_name, labels: toLabelSet(w.job_labels), failures: 0, last: Number.NEGATIVE_INFINITY }
          s.failures += 1
          s.last = Math.max(s.last, (w.completed_at ?? w.created_at).getTime())
          streaks.set(key, s)
        }
        const text = (labels: ReadonlyArray<string>) => encodeLabelSet(labels)
        return [...streaks.values()]
          .sort((a, b) =>
            a.entityId - b.entityId || (text(a.labels) < text(b.labels) ? -1 : text(a.labels) > text(b.labels) ? 1 : 0) ||
            ((a.repo ?? "") < (b.repo ?? "") ? -1 : 1)
          )
          .map((s): AllocationFailureStreak => ({
            entityId: s.entityId,
            repoFullName: s.repo,
            labels: s.labels,
            failures: s.failures,
            lastFailureAt: new Date(s.last)
          }))
      }),

    getWeeklyUsage: (req) => Effect.sync(() => weeklyUsageInMemory(jobs.values(), workers.values(), (pod) => workers.get(pod), req)),

    foldWeeklyUsage: (now) =>
      Effect.sync(() => {
        const next = weeklyUsageFoldInMemory(foldMark.current, jobs.values(), workers.values(), (pod) => workers.get(pod), now)
        foldMark.current = next.foldedUntil
        return next
      }),

    addInstallationEvent: (e) =>
      Effect.gen(function*() {
        // The column is PostgreSQL's entity_type_enum, which refuses any other value.
        if (e.entity_type !== null && e.entity_type !== "Organization" && e.entity_type !== "User") {
          return yield* new DbError({ message: `addInstallationEvent: invalid entity_type ${JSON.stringify(e.entity_type)}` })
        }
        const at = yield* now
        const id = nextEventId++
        // A round trip through JSON, as JSONB does: the stored payload is a copy, not the caller's object.
        const payload: unknown = JSON.parse(JSON.stringify(e.payload ?? null))
        yield* write(() => {
          events.push({ ...e, payload, id, received_at: at })
          return () => {
            const i = events.findIndex((x) => x.id === id)
            if (i >= 0) events.splice(i, 1)
          }
        })
        return id
      }),
    // Both rows in one step: both or neither, as PostgreSQL's one statement.
    storeDelivery: (w) =>
      step(Effect.gen(function*() {
        const jobCreated = w.job === undefined ? false : yield* db.addJob(w.job.row)
        const outcome = w.job !== undefined && !jobCreated ? w.job.outcomeIfExists : w.event.outcome
        const eventId = yield* db.addInstallationEvent({ ...w.event, outcome })
        return { eventId, jobCreated }
      })),
    storeTransition: (w) =>
      step(Effect.gen(function*() {
        const moved = w.to === "running" ? yield* db.markJobRunning(w.jobId, w.runnerName) : yield* db.markJobCompleted(w.jobId, w.runnerName)
        if (moved.found) yield* db.addInstallationEvent(w.event)
        return moved
      })),
    getEventsByEntity: (entityId) =>
      Effect.sync(() =>
        events
          .filter((e) => e.entity_id === entityId)
          .sort((a, b) => a.received_at.getTime() - b.received_at.getTime() || a.id - b.id)
          .map(({ payload, ...row }): EventSummary => {
            const isJob = row.event.startsWith("workflow_job.")
            const p = payload as { workflow_job?: { id?: unknown }; repository?: { full_name?: unknown } } | null
            const jobId = isJob ? p?.workflow_job?.id : undefined
            const repo = isJob ? p?.repository?.full_name : undefined
            return {
              ...row,
              job_id: jobId === undefined || jobId === null ? null : typeof jobId === "string" ? jobId : JSON.stringify(jobId),
              repo_full_name: typeof repo === "string" ? repo : repo === undefined || repo === null ? null : JSON.stringify(repo)
            }
          })
      ),
    getEventPayload: (eventId) => Effect.sync(() => Option.map(Option.fromNullable(events.find((e) => e.id === eventId)), (e) => e.payload)),
    getEntityIdForInstallation: (installationId) =>
      Effect.sync(() => {
        const event = events
          .filter((e) => e.installation_id === installationId && e.entity_id !== null)
          .sort((a, b) => b.received_at.getTime() - a.received_at.getTime() || b.id - a.id)[0]
        if (event !== undefined) return Option.some(event.entity_id!)
        const job = [...jobs.values()].filter((j) => j.installation_id === installationId).sort(byCreated((j) => j.job_id)).at(-1)
        return Option.fromNullable(job?.entity_id)
      }),
    deleteCompletedJobsBefore: (cutoff) =>
      Effect.gen(function*() {
        const old = [...jobs.values()].filter((j) => j.status === "completed" && j.updated_at.getTime() < cutoff.getTime())
        for (const job of old) {
          yield* write(() => {
            jobs.delete(job.job_id)
            return () => jobs.set(job.job_id, job)
          })
        }
        return old.length
      }),
    getEntityIdForJob: (jobId) => Effect.sync(() => Option.fromNullable(jobs.get(jobId)?.entity_id)),

    knownDeliveryIds: (ids) =>
      Effect.sync(() => {
        const wanted = new Set(ids)
        return new Set(events.flatMap((e) => (e.delivery_id !== null && wanted.has(e.delivery_id) ? [e.delivery_id] : [])))
      }),
    claimPass: (pass, holder, leaseMillis) =>
      Effect.map(Clock.currentTimeMillis, (at): PassClaim => {
        const row = passes.get(pass)
        if (row !== undefined && row.leaseUntil > at && row.holder !== holder) return { claimed: false }
        passes.set(pass, { cursor: row?.cursor ?? null, holder, leaseUntil: at + leaseMillis })
        return { claimed: true, cursor: row?.cursor ?? null }
      }),
    finishPass: (pass, holder, cursor) =>
      Effect.map(Clock.currentTimeMillis, (at) => {
        const row = passes.get(pass)
        if (row !== undefined && row.holder === holder) passes.set(pass, { cursor, holder, leaseUntil: at })
      }),
    getRecentRepositories: (since) =>
      Effect.sync(() => {
        const newest = new Map<string, Job>()
        for (const j of jobs.values()) {
          if (j.created_at.getTime() < since.getTime()) continue
          const key = j.repo_full_name.toLowerCase()
          const kept = newest.get(key)
          if (kept === undefined || byCreated<Job>((x) => x.job_id)(kept, j) < 0) newest.set(key, j)
        }
        return [...newest.values()].sort((a, b) => (a.repo_full_name.toLowerCase() < b.repo_full_name.toLowerCase() ? -1 : 1)).map((j) => ({
          repo_full_name: j.repo_full_name,
          installation_id: j.installation_id,
          entity_type: j.entity_type,
          entity_id: j.entity_id,
          entity_name: j.entity_name
        }))
      }),
    getBoardStates: Effect.sync(() => [...boardStates.values()].sort((a, b) => (a.node < b.node ? -1 : 1))),
    getNodeOutcomes: (since) =>
      Effect.sync(() =>
        [...workers.values()]
          .filter((w) =>
            w.k8s_node !== null && (w.status === "completed" || w.status === "failed") && w.completed_at !== null &&
            w.completed_at.getTime() >= since.getTime()
          )
          .sort((a, b) => a.completed_at!.getTime() - b.completed_at!.getTime() || (a.pod_name < b.pod_name ? -1 : 1))
          .map((w): NodeOutcome => ({
            pod_name: w.pod_name,
            node: w.k8s_node!,
            pool: w.k8s_pool,
            image: w.k8s_image,
            status: w.status as "completed" | "failed",
            reason: w.failure_info?.version === 2 ? w.failure_info.reason : null,
            at: w.completed_at!
          }))
      ),
    recordBoardTransition: (state, event) =>
      step(Effect.gen(function*() {
        const id = nextBoardEventId++
        yield* write(() => {
          const before = boardStates.get(state.node)
          boardStates.set(state.node, { ...state })
          return () => (before === undefined ? boardStates.delete(state.node) : boardStates.set(state.node, before))
        })
        // A round trip through JSON, as JSONB does.
        const evidence = JSON.parse(JSON.stringify(event.evidence)) as BoardEvent["evidence"]
        yield* write(() => {
          boardEvents.push({ ...event, evidence, id })
          return () => {
            const i = boardEvents.findIndex((e) => e.id === id)
            if (i >= 0) boardEvents.splice(i, 1)
          }
        })
        return id
      })),
    listBoardEvents: (limit, node) =>
      Effect.sync(() =>
        boardEvents
          .filter((e) => node === undefined || e.node === node)
          .sort((a, b) => b.at.getTime() - a.at.getTime() || b.id - a.id)
          .slice(0, limit)
      ),

    ping: Effect.void,
    wakeups: Stream.fromPubSub(wake),
    // One cycle at a time; no transaction spans it, so its committed steps stand whatever becomes of the cycle
    // (as on PostgreSQL, where the lock is an advisory lock held on the side).
    withWorkerLock: (cycle) => lock.withPermits(1)(cycle),
    step
  }
  return db
})

/** `Db` in memory: same contract as PostgreSQL (the contract suite runs on both), for tests and simulations. */
export const DbMemory = Layer.effect(Db, makeDbMemory)
