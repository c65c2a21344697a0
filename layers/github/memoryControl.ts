import { Context, type Duration, type Effect, type Option, type Redacted } from "effect"
import type { EntityType } from "../../src/domain/Entity.ts"
import type {
  GithubCallCounts,
  GithubInstallation,
  GithubJob,
  GithubOperation,
  GithubRun,
  GithubRunner
} from "../../src/services/Github.ts"

/*
 * The in-memory GitHub's control handle: what the tests and the simulation do to GitHub behind the service's
 * back (install apps, connect runners, run jobs, spend budgets, inject faults) and what they read (snapshots,
 * call counts, issued secrets). Its implementation is `memoryControlHandle.ts`.
 */

/** Where a runner is registered: in an org's runner group, or on one repository (`owner/name`). */
export type MemoryRunnerScope =
  | { readonly _tag: "Org"; readonly org: string; readonly groupId: number }
  | { readonly _tag: "Repo"; readonly repo: string }

export interface MemoryRunner extends GithubRunner {
  readonly scope: MemoryRunnerScope
  readonly labels: ReadonlyArray<string>
  /** a runner stuck busy never finishes its job: deletes keep answering 422 */
  readonly stuckBusy: boolean
}

export interface MemoryJob extends GithubJob {
  readonly id: number
  readonly repo: string
  readonly labels: ReadonlyArray<string>
}

export interface MemoryRun extends GithubRun {
  readonly id: number
  readonly repo: string
}

export interface MemoryRunnerGroup {
  readonly org: string
  readonly id: number
  readonly name: string
  readonly visibility: string
  readonly allowsPublicRepositories: boolean
}

export interface GithubMemorySnapshot {
  readonly installations: ReadonlyArray<{ readonly installation: GithubInstallation; readonly app: EntityType }>
  readonly runnerGroups: ReadonlyArray<MemoryRunnerGroup>
  readonly runners: ReadonlyArray<MemoryRunner>
  readonly jobs: ReadonlyArray<MemoryJob>
  readonly runs: ReadonlyArray<MemoryRun>
}

/**
 * What can go wrong with a call. `Status` answers with an HTTP error (mapped exactly like a real answer: 404 →
 * GithubNotFound, 422 on a delete → GithubBusy, ...); `RateLimited` answers 403 with a spent budget (or 429 with
 * Retry-After when `retryAfterSeconds` is given); `Transport` gets no answer; `Latency` delays the call.
 */
export type GithubFault =
  | { readonly _tag: "Status"; readonly status: number; readonly message?: string }
  | { readonly _tag: "RateLimited"; readonly resetAt: Date; readonly retryAfterSeconds?: number }
  | { readonly _tag: "Transport"; readonly message?: string }
  | { readonly _tag: "Latency"; readonly duration: Duration.DurationInput }

/** An attempt to deliver a webhook, as the sender records it in the app's delivery log. */
export interface DeliveryAttemptInput {
  /** the app the hook belongs to */
  readonly app: EntityType
  /** `X-GitHub-Delivery`: the same for every attempt of one event */
  readonly guid: string
  readonly event: string
  readonly action: string | null
  readonly installationId: number | null
  readonly repositoryId: number | null
  /** our endpoint's answer; 0 when nothing answered */
  readonly statusCode: number
  readonly redelivery: boolean
}

/** One attempt in an app's delivery log. */
export interface MemoryDelivery extends DeliveryAttemptInput {
  readonly id: number
  /** epoch ms on Effect's Clock */
  readonly deliveredAt: number
}

/** Someone asked GitHub (`POST /app/hook/deliveries/{id}/attempts`) to deliver this attempt's event again. */
export interface RedeliveryRequest {
  readonly app: EntityType
  readonly attemptId: number
  readonly guid: string
}

export interface FaultOptions {
  /** how many calls the fault hits; unlimited when absent */
  readonly times?: number
  /** chance (0..1) that a matching call is hit, drawn from Effect's Random (seed it for repeatable runs) */
  readonly probability?: number
}

export interface GithubMemoryControlShape {
  // installations
  /** Installs one of our apps. `app` is the app it was installed through; by default the one serving the account type. */
  readonly addInstallation: (
    installation: GithubInstallation,
    options?: { readonly app?: EntityType }
  ) => Effect.Effect<void>
  /** Uninstalls: the installation disappears and its tokens stop working (401). */
  readonly removeInstallation: (installationId: number) => Effect.Effect<void>
  // runner groups and runners
  readonly addRunnerGroup: (org: string, name: string) => Effect.Effect<number>
  /** Registers a runner directly (no JIT), e.g. a leftover from an earlier life. */
  readonly addRunner: (
    scope: MemoryRunnerScope,
    runner: {
      readonly name: string
      readonly status?: "online" | "offline"
      readonly busy?: boolean
      readonly labels?: ReadonlyArray<string>
    }
  ) => Effect.Effect<number>
  /**
   * The runner process in a pod started with this JIT config and connected: its runner goes online. None when the
   * JIT config is unknown, its runner was deleted, or the runner was told to never register.
   */
  readonly registerRunnerFromJit: (
    jitConfig: Redacted.Redacted<string> | string
  ) => Effect.Effect<Option.Option<MemoryRunner>>
  /** That runner (by name, now or later) stays offline whatever its pod does. */
  readonly neverRegister: (runnerName: string) => Effect.Effect<void>
  readonly setRunnerStatus: (runnerName: string, status: "online" | "offline") => Effect.Effect<void>
  readonly setRunnerBusy: (runnerName: string, busy: boolean) => Effect.Effect<void>
  /** The runner is busy and stays busy: `finishRunner` leaves it, deletes answer 422. */
  readonly setRunnerStuckBusy: (runnerName: string, stuck: boolean) => Effect.Effect<void>
  /** An ephemeral runner is done with its job and removes itself (unless stuck busy). */
  readonly finishRunner: (runnerName: string) => Effect.Effect<void>
  readonly removeRunner: (runnerName: string) => Effect.Effect<void>
  // jobs and runs
  readonly createJob: (job: {
    readonly id: number
    readonly repo: string
    readonly runId: number
    readonly labels?: ReadonlyArray<string>
    readonly status?: string
    readonly conclusion?: string | null
    readonly runnerName?: string | null
  }) => Effect.Effect<void>
  readonly setJobStatus: (
    jobId: number,
    update: { readonly status: string; readonly conclusion?: string | null; readonly runnerName?: string | null }
  ) => Effect.Effect<void>
  /**
   * What GitHub does when a runner comes online: it hands the runner the oldest queued job of its scope whose
   * labels the runner carries. The job goes in_progress on the runner, which turns busy.
   */
  readonly assignQueuedJob: (runnerName: string) => Effect.Effect<Option.Option<MemoryJob>>
  /** The job ends with `conclusion`; its runner (if any) finishes and removes itself. */
  readonly completeJob: (jobId: number, conclusion: string) => Effect.Effect<void>
  readonly createRun: (run: {
    readonly id: number
    readonly repo: string
    readonly status?: string | null
    readonly conclusion?: string | null
  }) => Effect.Effect<void>
  readonly setRunStatus: (
    runId: number,
    update: { readonly status: string | null; readonly conclusion?: string | null }
  ) => Effect.Effect<void>
  // budget and faults
  /** Sets an installation's primary budget (the window then refills to `limit` at `resetAt`). */
  readonly setRateLimit: (
    installationId: number,
    budget: { readonly limit?: number; readonly remaining: number; readonly resetAt: Date }
  ) => Effect.Effect<void>
  readonly injectFault: (operation: GithubOperation, fault: GithubFault, options?: FaultOptions) => Effect.Effect<void>
  readonly clearFaults: Effect.Effect<void>
  // webhook deliveries (the app's delivery log)
  /** Records an attempt in the app's delivery log (what the sender of deliveries does); returns its id. */
  readonly recordDelivery: (attempt: DeliveryAttemptInput) => Effect.Effect<number>
  /** Every attempt recorded, oldest first. */
  readonly deliveries: Effect.Effect<ReadonlyArray<MemoryDelivery>>
  /**
   * Who makes the attempt when a redelivery is asked for: GitHub answers the request with 202, and then the
   * listener (the simulated world) sends the event again and records that attempt. With no listener the request
   * is accepted and nothing is sent.
   */
  readonly onRedelivery: (listener: (request: RedeliveryRequest) => Effect.Effect<void>) => Effect.Effect<void>
  // observation
  readonly callCounts: Effect.Effect<GithubCallCounts>
  readonly snapshot: Effect.Effect<GithubMemorySnapshot>
  /** every token and JIT config ever issued, for tests that scan logs and stores for leaked secrets */
  readonly issuedSecrets: Effect.Effect<ReadonlyArray<string>>
}

/** Drives the in-memory GitHub (the simulator's and the tests' side of it). Provided by `GithubMemory` only. */
export class GithubMemoryControl extends Context.Tag("riscv-runner/GithubMemoryControl")<
  GithubMemoryControl,
  GithubMemoryControlShape
>() {}

export interface GithubMemoryOptions {
  readonly orgAppId?: number
  readonly personalAppId?: number
  /** installation budget per hour; GitHub's default for an installation is 5000 */
  readonly rateLimit?: number
  /**
   * Runs every request the in-memory server answers through it: the scheduler benchmark counts the server's own
   * CPU time this way, apart from the client's and the scheduler's (which are ours).
   */
  readonly meterServer?: <A, E>(answer: Effect.Effect<A, E>) => Effect.Effect<A, E>
}
