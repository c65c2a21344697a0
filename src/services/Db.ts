import { Context, Data, type Effect, type Option, type Stream } from "effect"
import type { BoardEvent, BoardState, NewBoardEvent, NodeOutcome } from "../domain/BoardQuarantine.ts"
import type { FailureInfo } from "../domain/FailureInfo.ts"
import type { EventSummary, NewInstallationEvent } from "../domain/InstallationEvent.ts"
import type { Job, NewJob } from "../domain/Job.ts"
import type { Status } from "../domain/Status.ts"
import type { WebhookOutcome } from "../domain/WebhookOutcome.ts"
import type { WeeklyUsageFold, WeeklyUsageRequest, WeeklyUsageRow } from "../domain/WeeklyUsage.ts"
import type { NewWorker, Worker } from "../domain/Worker.ts"

/**
 * An infrastructure failure of the store (connection lost, statement failed). `unavailable` marks a database that
 * did not answer in time or is not reachable (a timeout, a refused or lost connection), as opposed to a statement
 * that failed: the HTTP edge answers the former with 503 and `Retry-After`.
 */
export class DbError extends Data.TaggedError("DbError")<{
  readonly message: string
  readonly cause?: unknown
  readonly unavailable?: boolean
}> {}

/** Is this a DbError for a database that did not answer in time or is not reachable? */
export const isDbUnavailable = (e: unknown): boolean => e instanceof DbError && e.unavailable === true

/** `addWorker` with a pod name that is already taken. The caller picks another name. */
export class DuplicatePodName extends Data.TaggedError("DuplicatePodName")<{ readonly podName: string }> {}

/**
 * The result of asking for a forward status move. `previous` is the status before the call; when `changed` is
 * false the move was not allowed (for example a late `in_progress` for a completed job) and nothing was written.
 */
export type Transition =
  | { readonly found: false }
  | { readonly found: true; readonly previous: Status; readonly changed: boolean }

export interface PageRequest {
  /** inclusive lower bound on `created_at` */
  readonly start?: Date | undefined
  /** exclusive upper bound on `created_at` */
  readonly end?: Date | undefined
  readonly page: number
  readonly perPage: number
}

export interface Page<A> {
  readonly rows: ReadonlyArray<A>
  readonly total: number
}

/**
 * One pending job that lacks a runner, from the set-based demand query. For every matching group (entity, exact
 * label set, and for a personal account the repository, since its runners are repo-scoped: `runnerRepoOf`) the
 * deficit is active jobs minus active workers. Workers beyond the group's running jobs are taken to serve its
 * oldest pending jobs, so the newest `deficit` pending jobs are returned, oldest first, each with the figures the
 * matcher needs to apply caps without another query.
 */
export interface DemandRow {
  readonly job: Job
  /** position among the pending jobs of its matching group, 1 for the oldest */
  readonly rank: number
  /** pending + running jobs of the matching group */
  readonly groupDemand: number
  /** pending + running workers of the matching group */
  readonly groupSupply: number
  /** pending + running workers of the entity over all pools and label sets */
  readonly entityActiveWorkers: number
}

/**
 * Every pending job, oldest first, with the figures of `DemandRow` and whether it is one of the demand (lacks a
 * runner) or has one reserved: what the queue view reads, in one query instead of `getPendingJobs` and
 * `getDemand`. The rows lacking a runner are exactly `getDemand`'s.
 */
export interface QueueRow extends DemandRow {
  readonly lacksRunner: boolean
}

/**
 * The pending jobs of one (entity, exact label set, pool), from `getQueueIndex`: the queue view's whole-queue
 * decisions need only these figures per job, so the backlog crosses as ids and times, and full rows are read
 * (`getJobsByIds`) only for the jobs a page shows or the planner may take.
 */
export interface QueueGroup {
  readonly entityId: number
  /** the canonical label set */
  readonly labels: ReadonlyArray<string>
  readonly pool: string
  /** the matching repository: a personal account's (its runners are repo-scoped, `runnerRepoOf`), else null */
  readonly repo: string | null
  /** pending + running workers of the entity over all pools and label sets */
  readonly entityActiveWorkers: number
  /** the group's pending jobs, oldest first (by created_at, then job_id) */
  readonly jobIds: ReadonlyArray<number>
  /** each one's created_at in ms since the epoch (truncated, as a JS Date holds it) */
  readonly createdMs: ReadonlyArray<number>
  /** each one lacks a runner (is one of `getDemand`'s rows), as `QueueRow.lacksRunner` */
  readonly lacking: ReadonlyArray<boolean>
}

/** One ended wait of `getWaitSpans`, in ms since the epoch. */
export interface WaitSpan {
  readonly createdMs: number
  readonly endMs: number
}

/**
 * The current run of provisioning failures of one matching group (entity, exact label set, and for a personal
 * account the repository: the worker's `repo_full_name`): workers failed with
 * `pod_allocation_failure` since the group's last worker that was allocated (any other outcome), within a
 * lookback. The scheduler backs off from a group with a streak, so a permanent error does not write a failed
 * worker every cycle; reading it from the table keeps the back-off across restarts and scheduler replicas.
 */
export interface AllocationFailureStreak {
  readonly entityId: number
  /** the workers' `repo_full_name`: the repository of a personal account's group, null for an organisation */
  readonly repoFullName: string | null
  /** the canonical label set */
  readonly labels: ReadonlyArray<string>
  readonly failures: number
  /** when the latest of them failed */
  readonly lastFailureAt: Date
}

/**
 * What one webhook delivery stores: its `installation_events` row and, for a `queued` delivery, the job it
 * describes. Both are written by one statement, so both are stored or neither is.
 */
export interface DeliveryWrite {
  /** the audit row; its `outcome` is the one stored when there is no job, or when the job row was created */
  readonly event: NewInstallationEvent
  readonly job?: {
    readonly row: NewJob
    /** the audit row's outcome instead when the job already existed (a re-delivery), and nothing else is written */
    readonly outcomeIfExists: WebhookOutcome
  } | undefined
}

export interface DeliveryStored {
  readonly eventId: number
  /** a job row was created (false without a job, or when it already existed) */
  readonly jobCreated: boolean
}

/**
 * What an `in_progress` or `completed` delivery stores: the job's forward move and the delivery's audit row, in
 * one statement. When the job is not stored, nothing is written (the caller decides what to do with the news).
 */
export interface TransitionWrite {
  readonly jobId: number
  readonly to: "running" | "completed"
  /** recorded in `k8s_pod` when none is recorded yet, as `markJobRunning` */
  readonly runnerName: string | null
  /** the audit row, written whenever the job exists, whether or not the move was allowed */
  readonly event: NewInstallationEvent
}

/** `claimPass`: the lease is ours (with where the pass got to last time), or another replica holds it. */
export type PassClaim =
  | { readonly claimed: false }
  | { readonly claimed: true; readonly cursor: string | null }

/** A repository that had a job lately, with whom to ask GitHub about it (from its newest job). */
export interface RecentRepository {
  readonly repo_full_name: string
  readonly installation_id: number
  readonly entity_type: Job["entity_type"]
  readonly entity_id: number
  readonly entity_name: string
}

export interface DbShape {
  // --- jobs -------------------------------------------------------------------------------------------------
  /** Inserts a pending job unless its id exists, and wakes the schedulers. True when a row was created. */
  readonly addJob: (job: NewJob) => Effect.Effect<boolean, DbError>
  /** pending -> running; records `runnerName` in `k8s_pod` when none is recorded yet. */
  readonly markJobRunning: (jobId: number, runnerName: string | null) => Effect.Effect<Transition, DbError>
  /** pending | running -> completed; records the runner name like `markJobRunning`. */
  readonly markJobCompleted: (jobId: number, runnerName: string | null) => Effect.Effect<Transition, DbError>
  /** pending | running -> failed, with the reason. */
  readonly markJobFailed: (jobId: number, info: FailureInfo) => Effect.Effect<Transition, DbError>
  readonly getJob: (jobId: number) => Effect.Effect<Option.Option<Job>, DbError>
  /** Did any job run on this runner? (A runner that ran its job unregisters itself; that is healthy.) */
  readonly jobExistsForPod: (podName: string) => Effect.Effect<boolean, DbError>
  /** pending and running jobs, oldest first */
  readonly getActiveJobs: Effect.Effect<ReadonlyArray<Job>, DbError>
  /** pending jobs, oldest first */
  readonly getPendingJobs: Effect.Effect<ReadonlyArray<Job>, DbError>
  /** running jobs, oldest first: at most one per runner, so a few hundred where the pending ones may be 50,000 */
  readonly getRunningJobs: Effect.Effect<ReadonlyArray<Job>, DbError>
  /**
   * Pending and running jobs with a repository whose last news (`updated_at`) is older than `staleBefore`, stalest
   * first, at most `limit`: the candidates for a poll, without reading the whole backlog.
   */
  readonly getJobsToPoll: (staleBefore: Date, limit: number) => Effect.Effect<ReadonlyArray<Job>, DbError>
  /** The runner names recorded on running jobs: those runners are busy with a job. */
  readonly getRunningJobPods: Effect.Effect<ReadonlyArray<string>, DbError>
  /** newest first */
  readonly listJobs: (page: PageRequest) => Effect.Effect<Page<Job>, DbError>
  /** The pending jobs that need a runner now, from one set-based query. See `DemandRow`. */
  readonly getDemand: Effect.Effect<ReadonlyArray<DemandRow>, DbError>
  /** Every pending job with its demand figures, oldest first (for the queue view). See `QueueRow`. */
  readonly getQueueRows: Effect.Effect<ReadonlyArray<QueueRow>, DbError>
  /** `getQueueRows` in brief: every pending job as its group, id, creation time and whether it lacks a runner. */
  readonly getQueueIndex: Effect.Effect<ReadonlyArray<QueueGroup>, DbError>
  /**
   * How long each job created since `since` that no longer waits did wait: from its creation to its runner's start
   * (the `running_at` of the worker named in `k8s_pod`), or, without one, to its row's last change. The dashboard's
   * queue history, without reading the rows themselves. Pending jobs are left out (the queue's index has them).
   */
  readonly getWaitSpans: (since: Date) => Effect.Effect<ReadonlyArray<WaitSpan>, DbError>
  /** The jobs with these ids (any status), in no particular order; unknown ids are left out. */
  readonly getJobsByIds: (jobIds: ReadonlyArray<number>) => Effect.Effect<ReadonlyArray<Job>, DbError>
  /**
   * Deletes the jobs with status `completed` whose last change (`updated_at`) is before `cutoff`; pending,
   * running and failed jobs stay, and workers are never touched. Returns how many rows went (the scheduler's
   * `JOB_RETENTION_DAYS` clean-up).
   */
  readonly deleteCompletedJobsBefore: (cutoff: Date) => Effect.Effect<number, DbError>

  /**
   * Stores one delivery (see `DeliveryWrite`): both rows in one statement, both or neither. Concurrent calls are
   * written together (group commit), so one commit serves many deliveries; a created job wakes the schedulers
   * like `addJob`, with one notification per commit, sent after it. Duplicate job ids among concurrent calls are
   * stored once: the first call creates the job, the others get `outcomeIfExists`.
   */
  readonly storeDelivery: (write: DeliveryWrite) => Effect.Effect<DeliveryStored, DbError>

  /**
   * Moves a job forward and appends the delivery's audit row in one statement (see `TransitionWrite`): both or
   * neither. `found: false` means no job has this id, and then nothing was written.
   */
  readonly storeTransition: (write: TransitionWrite) => Effect.Effect<Transition, DbError>

  // --- workers ----------------------------------------------------------------------------------------------
  /** Reserves a pod name as a pending worker. */
  readonly addWorker: (worker: NewWorker) => Effect.Effect<void, DbError | DuplicatePodName>
  /**
   * Reserves many pod names as pending workers in one statement (a burst's reservations). Names already taken
   * are left out and returned, so the caller picks others for those; the rest are reserved.
   */
  readonly addWorkers: (workers: ReadonlyArray<NewWorker>) => Effect.Effect<ReadonlyArray<string>, DbError>
  /**
   * Gives back reservations that were never used: deletes the pending workers with these names (a pod was never
   * asked for). A worker that moved on from pending is kept. Returns how many went.
   */
  readonly releaseWorkers: (podNames: ReadonlyArray<string>) => Effect.Effect<number, DbError>
  /** pending -> running. Overwrites the node; keeps the first `running_at` (else `runningAt`, else now). */
  readonly markWorkerRunning: (podName: string, node: string | null, runningAt: Date | null) => Effect.Effect<boolean, DbError>
  /**
   * pending | running -> completed. Keeps a known node; keeps the first `completed_at` (else the given time, else
   * now) and the first `running_at` (else `runningAt`: a pod first seen finished still says when its runner
   * started, and without it run times and waits would count the run as waiting).
   */
  readonly markWorkerCompleted: (
    podName: string,
    node: string | null,
    completedAt: Date | null,
    runningAt?: Date | null
  ) => Effect.Effect<boolean, DbError>
  /**
   * Many plain moves in one statement: each as `markWorkerRunning` or `markWorkerCompleted` would make it (a
   * pod listed twice moves once, as its first listing says). Returns the pods whose workers moved. The scheduler's
   * phase 2 records a cycle's pod phases with it, so tens of moves hold the lock for one round trip.
   */
  readonly markWorkersMoved: (moves: ReadonlyArray<WorkerMove>) => Effect.Effect<ReadonlyArray<string>, DbError>
  /** pending | running -> failed with diagnostics. */
  readonly markWorkerFailed: (
    podName: string,
    node: string | null,
    info: FailureInfo,
    completedAt: Date | null
  ) => Effect.Effect<boolean, DbError>
  /** pending | running -> completed, for a worker whose pod no longer exists. No failure_info. */
  readonly markWorkerOrphaned: (podName: string) => Effect.Effect<boolean, DbError>
  readonly getWorker: (podName: string) => Effect.Effect<Option.Option<Worker>, DbError>
  /** pending and running workers, oldest first */
  readonly getActiveWorkers: Effect.Effect<ReadonlyArray<Worker>, DbError>
  /** active workers, plus terminal workers that completed within the lookback */
  readonly getWorkersForReconcile: (lookbackSeconds: number) => Effect.Effect<ReadonlyArray<Worker>, DbError>
  /** Which of these pod names have a worker row, in any status and of any age (the sweep of pods no row knows). */
  readonly knownPodNames: (podNames: ReadonlyArray<string>) => Effect.Effect<ReadonlySet<string>, DbError>
  /** newest first */
  readonly listWorkers: (page: PageRequest) => Effect.Effect<Page<Worker>, DbError>
  /**
   * The `limit` workers that failed last, newest first (by `completed_at`, which a failure always sets; then by
   * pod name): the dashboard's failures, read by themselves instead of picked out of every recent worker.
   */
  readonly getRecentFailures: (limit: number) => Effect.Effect<ReadonlyArray<Worker>, DbError>
  /** Every (entity, label set) whose latest workers created within the lookback failed allocation. */
  readonly getAllocationFailures: (lookbackSeconds: number) => Effect.Effect<ReadonlyArray<AllocationFailureStreak>, DbError>

  // --- reports ----------------------------------------------------------------------------------------------
  /**
   * The weekly usage figures per (entity, ISO week) of the window, from one set-based statement over jobs and
   * workers; what each figure counts is said in `src/domain/WeeklyUsage.ts`. Rows in no particular order.
   */
  readonly getWeeklyUsage: (request: WeeklyUsageRequest) => Effect.Effect<ReadonlyArray<WeeklyUsageRow>, DbError>

  /**
   * One pass of the weekly usage roll-up at `now`: folds the whole days (at most `FOLD_MAX_DAYS`) from the mark up
   * to the day of the oldest job or worker that can still change, and no nearer to `now` than `FOLD_MARGIN_MS`,
   * and moves the mark; returns the mark and the days folded (0: caught up). Safe to run from several replicas at
   * once and to repeat. `getWeeklyUsage` gives the same figures before and after. The in-memory store keeps the
   * mark by the same rules and computes its report from the rows.
   */
  readonly foldWeeklyUsage: (now: Date) => Effect.Effect<WeeklyUsageFold, DbError>

  // --- installation events (append-only audit log) -----------------------------------------------------------
  /** Appends a row and returns its id. */
  readonly addInstallationEvent: (event: NewInstallationEvent) => Effect.Effect<number, DbError>
  /** The entity's timeline, oldest first, without payloads. */
  readonly getEventsByEntity: (entityId: number) => Effect.Effect<ReadonlyArray<EventSummary>, DbError>
  readonly getEventPayload: (eventId: number) => Effect.Effect<Option.Option<unknown>, DbError>
  /** The entity of the newest event with this installation id, else of the newest job with it. */
  readonly getEntityIdForInstallation: (installationId: number) => Effect.Effect<Option.Option<number>, DbError>
  readonly getEntityIdForJob: (jobId: number) => Effect.Effect<Option.Option<number>, DbError>

  // --- recovery passes (redelivery of lost webhooks, the sweep for unannounced jobs) ------------------------------
  /** Which of these GitHub delivery ids (`X-GitHub-Delivery`) have an `installation_events` row. */
  readonly knownDeliveryIds: (deliveryIds: ReadonlyArray<string>) => Effect.Effect<ReadonlySet<string>, DbError>
  /**
   * Takes the pass's lease for `leaseMillis` when it is free, expired or already `holder`'s, in one statement, so
   * one replica at a time runs the pass; returns where the pass got to (`finishPass`'s cursor).
   */
  readonly claimPass: (pass: string, holder: string, leaseMillis: number) => Effect.Effect<PassClaim, DbError>
  /** Stores where the pass got to and frees its lease, if `holder` still holds it. */
  readonly finishPass: (pass: string, holder: string, cursor: string | null) => Effect.Effect<void, DbError>
  /** Every repository with a job created at or after `since`, each once (case-insensitively), from its newest job. */
  readonly getRecentRepositories: (since: Date) => Effect.Effect<ReadonlyArray<RecentRepository>, DbError>
  // --- boards (quarantine) -----------------------------------------------------------------------------------
  /** Every board with a standing (quarantined, on trial, or trusted again after either), by node name. */
  readonly getBoardStates: Effect.Effect<ReadonlyArray<BoardState>, DbError>
  /**
   * How the workers that ran on a node ended since `since` (completed or failed, with a node recorded), oldest
   * first: the input of the quarantine rule.
   */
  readonly getNodeOutcomes: (since: Date) => Effect.Effect<ReadonlyArray<NodeOutcome>, DbError>
  /** Sets the board's standing and appends its event, both or neither. Returns the event's id. */
  readonly recordBoardTransition: (state: BoardState, event: NewBoardEvent) => Effect.Effect<number, DbError>
  /** The latest board events, newest first, at most `limit`; of one node when given. */
  readonly listBoardEvents: (limit: number, node?: string) => Effect.Effect<ReadonlyArray<BoardEvent>, DbError>

  // --- coordination ------------------------------------------------------------------------------------------
  /**
   * Does the database answer? One trivial round trip, bounded by the store's own timeouts (the readiness check;
   * the caller adds its own deadline).
   */
  readonly ping: Effect.Effect<void, DbError>
  /**
   * One element per job insert (the job id), from any process sharing the database. A lost notification channel
   * is opened again by the store, and one extra element then says that notifications may have been missed.
   */
  readonly wakeups: Stream.Stream<string, DbError>
  /**
   * Runs one scheduler cycle while holding the scheduler lock. A second caller, in this process or another, waits
   * (without a timeout: the wait is by design) until the first finishes or its process dies. No transaction spans
   * the cycle: each write inside commits on its own (a `step`, or a single statement), so whatever the cycle did
   * stands if it fails or its process dies half-way. If the lock is lost while the cycle runs (its connection
   * died), the cycle is interrupted and this fails with an unavailable `DbError`.
   */
  readonly withWorkerLock: <A, E, R>(cycle: Effect.Effect<A, E, R>) => Effect.Effect<A, E | DbError, R>
  /**
   * One short transaction: if `step` fails (or is interrupted), its writes are undone and the error is returned;
   * when it succeeds it has committed, and the cycle's earlier and later steps stand either way. Inside a cycle it
   * first checks that the cycle still holds the scheduler lock, and fails (unavailable) when it does not. Nested
   * in another step it is a savepoint. Never put a GitHub or Kubernetes call inside one.
   */
  readonly step: <A, E, R>(step: Effect.Effect<A, E, R>) => Effect.Effect<A, E | DbError, R>
}

/** One worker's plain move, for `markWorkersMoved`: to running (from pending), or to completed. */
export interface WorkerMove {
  readonly podName: string
  readonly to: "running" | "completed"
  readonly node: string | null
  readonly runningAt: Date | null
  /** completed only; ignored for running */
  readonly completedAt: Date | null
}

export class Db extends Context.Tag("riscv-runner/Db")<Db, DbShape>() {}
