import { Context, Data, type Effect, type Option, type Stream } from "effect"
import type { BoardEvent, BoardState, NewBoardEvent, NodeOutcome } from "../domain/BoardQuarantine.ts"
import type { FailureInfo } from "../domain/FailureInfo.ts"
import type { EventSummary, NewInstallationEvent } from "../domain/InstallationEvent.ts"
import type { Job, NewJob } from "../domain/Job.ts"
import type { Status } from "../domain/Status.ts"
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
 * One pending job that lacks a runner, from the set-based demand query. For every (entity, exact label set) the
 * deficit is active jobs minus active workers. Workers beyond the group's running jobs are taken to serve its
 * oldest pending jobs, so the newest `deficit` pending jobs are returned, oldest first, each with the figures the
 * matcher needs to apply caps without another query.
 */
export interface DemandRow {
  readonly job: Job
  /** position among the pending jobs of its (entity, label set), 1 for the oldest */
  readonly rank: number
  /** pending + running jobs of the (entity, label set) */
  readonly groupDemand: number
  /** pending + running workers of the (entity, label set) */
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
 * decisions need only these figures per job, so the backlog crosses as ids and positions, and full rows are read
 * (`getJobsByIds`) only for the jobs a page shows or the planner may take.
 */
export interface QueueGroup {
  readonly entityId: number
  /** the canonical label set */
  readonly labels: ReadonlyArray<string>
  readonly pool: string
  /** pending + running workers of the entity over all pools and label sets */
  readonly entityActiveWorkers: number
  /** the group's pending jobs, oldest first */
  readonly jobIds: ReadonlyArray<number>
  /** each one's position in its pool: 1 for the pool's oldest pending job (by created_at in ms, then job_id) */
  readonly positions: ReadonlyArray<number>
  /** each one lacks a runner (is one of `getDemand`'s rows), as `QueueRow.lacksRunner` */
  readonly lacking: ReadonlyArray<boolean>
}

/**
 * The current run of provisioning failures of one (entity, exact label set): workers failed with
 * `pod_allocation_failure` since the group's last worker that was allocated (any other outcome), within a
 * lookback. The scheduler backs off from a group with a streak, so a permanent error does not write a failed
 * worker every cycle; reading it from the table keeps the back-off across restarts and scheduler replicas.
 */
export interface AllocationFailureStreak {
  readonly entityId: number
  /** the canonical label set */
  readonly labels: ReadonlyArray<string>
  readonly failures: number
  /** when the latest of them failed */
  readonly lastFailureAt: Date
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
  /** `getQueueRows` in brief: every pending job as its group, id, pool position and whether it lacks a runner. */
  readonly getQueueIndex: Effect.Effect<ReadonlyArray<QueueGroup>, DbError>
  /** The jobs with these ids (any status), in no particular order; unknown ids are left out. */
  readonly getJobsByIds: (jobIds: ReadonlyArray<number>) => Effect.Effect<ReadonlyArray<Job>, DbError>
  /**
   * Deletes the jobs with status `completed` whose last change (`updated_at`) is before `cutoff`; pending,
   * running and failed jobs stay, and workers are never touched. Returns how many rows went (the scheduler's
   * `JOB_RETENTION_DAYS` clean-up).
   */
  readonly deleteCompletedJobsBefore: (cutoff: Date) => Effect.Effect<number, DbError>

  // --- workers ----------------------------------------------------------------------------------------------
  /** Reserves a pod name as a pending worker. */
  readonly addWorker: (worker: NewWorker) => Effect.Effect<void, DbError | DuplicatePodName>
  /** pending -> running. Overwrites the node; keeps the first `running_at` (else `runningAt`, else now). */
  readonly markWorkerRunning: (podName: string, node: string | null, runningAt: Date | null) => Effect.Effect<boolean, DbError>
  /** pending | running -> completed. Keeps a known node; keeps the first `completed_at` (else the given time, else now). */
  readonly markWorkerCompleted: (podName: string, node: string | null, completedAt: Date | null) => Effect.Effect<boolean, DbError>
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
  /** Every (entity, label set) whose latest workers created within the lookback failed allocation. */
  readonly getAllocationFailures: (lookbackSeconds: number) => Effect.Effect<ReadonlyArray<AllocationFailureStreak>, DbError>

  // --- installation events (append-only audit log) -----------------------------------------------------------
  /** Appends a row and returns its id. */
  readonly addInstallationEvent: (event: NewInstallationEvent) => Effect.Effect<number, DbError>
  /** The entity's timeline, oldest first, without payloads. */
  readonly getEventsByEntity: (entityId: number) => Effect.Effect<ReadonlyArray<EventSummary>, DbError>
  readonly getEventPayload: (eventId: number) => Effect.Effect<Option.Option<unknown>, DbError>
  /** The entity of the newest event with this installation id, else of the newest job with it. */
  readonly getEntityIdForInstallation: (installationId: number) => Effect.Effect<Option.Option<number>, DbError>
  readonly getEntityIdForJob: (jobId: number) => Effect.Effect<Option.Option<number>, DbError>

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

export class Db extends Context.Tag("riscv-runner/Db")<Db, DbShape>() {}
