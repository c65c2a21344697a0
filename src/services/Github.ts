import { Context, Data, type Effect, type Option, type Redacted, Schema } from "effect"
import type { EntityType } from "../domain/Entity.ts"

/**
 * The GitHub REST calls the service makes, one name per request kind. Both layers count calls under these names
 * (with the HTTP status), so the cost of provisioning a runner or of a scheduler cycle can be measured.
 * `listRunnerGroups` and the runner listings count one call per page.
 */
export type GithubOperation =
  | "installationToken"
  | "getInstallation"
  | "listRunnerGroups"
  | "createRunnerGroup"
  | "createJitConfigOrg"
  | "createJitConfigRepo"
  | "listRunnersOrgGroup"
  | "listRunnersRepo"
  | "deleteRunnerOrg"
  | "deleteRunnerRepo"
  | "getJob"
  | "getRun"
  | "listHookDeliveries"
  | "redeliverHookDelivery"
  | "listQueuedRuns"
  | "listRunJobs"

export const githubOperations: ReadonlyArray<GithubOperation> = [
  "installationToken",
  "getInstallation",
  "listRunnerGroups",
  "createRunnerGroup",
  "createJitConfigOrg",
  "createJitConfigRepo",
  "listRunnersOrgGroup",
  "listRunnersRepo",
  "deleteRunnerOrg",
  "deleteRunnerRepo",
  "getJob",
  "getRun",
  "listHookDeliveries",
  "redeliverHookDelivery",
  "listQueuedRuns",
  "listRunJobs"
]

// --- GitHub's shapes (the fields we read; GitHub sends more, and decoding ignores the rest) ----------------------

/** A self-hosted runner. `status` is `online` or `offline`; a JIT runner is `offline` until its pod connects. */
export const GithubRunner = Schema.Struct({
  id: Schema.Number,
  name: Schema.String,
  status: Schema.String,
  busy: Schema.Boolean
})
export type GithubRunner = typeof GithubRunner.Type

/** A workflow job. A non-empty `conclusion` means the job is over, whatever `status` says. */
export const GithubJob = Schema.Struct({
  status: Schema.String,
  conclusion: Schema.NullOr(Schema.String),
  runner_name: Schema.NullOr(Schema.String),
  run_id: Schema.Number
})
export type GithubJob = typeof GithubJob.Type

export const GithubRun = Schema.Struct({
  status: Schema.NullOr(Schema.String),
  conclusion: Schema.NullOr(Schema.String)
})
export type GithubRun = typeof GithubRun.Type

/**
 * One attempt to deliver a webhook of the app, from the app's delivery log (`GET /app/hook/deliveries`). Every
 * attempt has its own `id`; the attempts of one event (the first and each redelivery) share its `guid`, which is
 * the `X-GitHub-Delivery` header our endpoint received. `status_code` is our endpoint's answer (0: none).
 */
export const HookDelivery = Schema.Struct({
  id: Schema.Number,
  guid: Schema.String,
  delivered_at: Schema.String,
  redelivery: Schema.Boolean,
  status_code: Schema.Number,
  event: Schema.String,
  action: Schema.NullOr(Schema.String),
  installation_id: Schema.NullOr(Schema.Number),
  repository_id: Schema.NullOr(Schema.Number)
})
export type HookDelivery = typeof HookDelivery.Type

/** A workflow run as the queued-runs listing shows it (the fields the sweep reads). */
export const GithubRunSummary = Schema.Struct({
  id: Schema.Number,
  status: Schema.NullOr(Schema.String)
})
export type GithubRunSummary = typeof GithubRunSummary.Type

/** A job of a workflow run, with what storing it as a pending job needs. */
export const GithubRunJob = Schema.Struct({
  id: Schema.Number,
  run_id: Schema.Number,
  status: Schema.String,
  conclusion: Schema.NullOr(Schema.String),
  labels: Schema.Array(Schema.String),
  html_url: Schema.NullOr(Schema.String),
  runner_name: Schema.NullOr(Schema.String)
})
export type GithubRunJob = typeof GithubRunJob.Type

/** An installation of one of our two apps. `account.type` is `Organization` or `User` (or `Enterprise`). */
export const GithubInstallation = Schema.Struct({
  id: Schema.Number,
  account: Schema.Struct({
    login: Schema.String,
    type: Schema.String,
    id: Schema.Number
  })
})
export type GithubInstallation = typeof GithubInstallation.Type

/**
 * Whom a call acts for. The entity type picks the app: the org app serves `Organization` installations, the
 * personal app serves `User` installations. The service fetches (and caches) the installation token itself.
 */
export interface InstallationRef {
  readonly installationId: number
  readonly entityType: EntityType
}

/** The installation's primary rate-limit budget, as GitHub last reported it (`x-ratelimit-*` headers). */
export interface RateLimit {
  readonly limit: number
  readonly remaining: number
  readonly used: number
  readonly resetAt: Date
}

/** Calls made so far: per operation, per HTTP status (`0` = no answer: connection refused, timeout, ...). */
export type GithubCallCounts = Readonly<Record<GithubOperation, Readonly<Record<number, number>>>>

/** Sums call counts over the given operations (all of them when none is given), optionally for one status. */
export const totalCalls = (
  counts: GithubCallCounts,
  operations: ReadonlyArray<GithubOperation> = githubOperations,
  status?: number
): number => {
  let total = 0
  for (const op of operations) {
    for (const [s, n] of Object.entries(counts[op])) {
      if (status === undefined || Number(s) === status) total += n
    }
  }
  return total
}

// --- errors ---------------------------------------------------------------------------------------------------
// Every error names the operation that failed, so a caller can tell "the installation is gone"
// (`installationToken` + GithubNotFound) from "the job is gone" (`getJob` + GithubNotFound).
// Messages are built from the status and GitHub's own `message`; they never carry tokens, JWTs, private keys or
// JIT configs.

/** 404: the installation, org, repository, runner group, job or run does not exist (or is not visible to us). */
export class GithubNotFound extends Data.TaggedError("GithubNotFound")<{
  readonly operation: GithubOperation
  readonly message: string
}> {}

/** 422 on a runner delete: the runner is running a job. Try again later. */
export class GithubBusy extends Data.TaggedError("GithubBusy")<{
  readonly operation: GithubOperation
  readonly message: string
}> {}

/**
 * The primary budget is spent (403/429 with `x-ratelimit-remaining: 0`) or a secondary limit hit, and waiting it
 * out was longer than the client is allowed to sit. `resetAt` is when the primary budget refills;
 * `retryAfterSeconds` is GitHub's `Retry-After`, when it sent one.
 */
export class GithubRateLimited extends Data.TaggedError("GithubRateLimited")<{
  readonly operation: GithubOperation
  readonly status: number
  readonly message: string
  readonly resetAt: Date | undefined
  readonly retryAfterSeconds: number | undefined
}> {}

/** Any other HTTP error status (401 revoked token, 409 duplicate runner name, 5xx after retries, ...). */
export class GithubHttpError extends Data.TaggedError("GithubHttpError")<{
  readonly operation: GithubOperation
  readonly status: number
  readonly message: string
}> {}

/** No HTTP answer: connection refused, reset, timed out, or a response we could not read. */
export class GithubTransportError extends Data.TaggedError("GithubTransportError")<{
  readonly operation: GithubOperation
  readonly message: string
}> {}

export type GithubError = GithubNotFound | GithubBusy | GithubRateLimited | GithubHttpError | GithubTransportError

/** The layer could not start: an app id or private key is unusable. The message never holds the key. */
export class GithubConfigError extends Data.TaggedError("GithubConfigError")<{ readonly message: string }> {}

// --- the service ----------------------------------------------------------------------------------------------

export interface JitConfigRequest {
  /** the runner name, which is also the pod name */
  readonly runnerName: string
  readonly labels: ReadonlyArray<string>
}

/** A freshly generated just-in-time runner configuration. GitHub has already registered the runner (offline). */
export interface JitRunner {
  readonly runnerId: number
  /** the only thing a runner pod needs to register; redacted so it cannot be logged by accident */
  readonly jitConfig: Redacted.Redacted<string>
}

export interface ListRunnersOptions {
  /** keep only runners whose name starts with this */
  readonly namePrefix?: string | undefined
}

/** See `GithubShape.writeWait`. */
export interface WriteWait {
  /** until the next write could start; 0: now */
  readonly waitMs: number
  /** the least time between the starts of two writes once a burst is spent; 0: writes are not spaced */
  readonly gapMs: number
  /**
   * how many writes could start now, one after another, without waiting for the spacing: 0 when `waitMs` > 0,
   * `Infinity` where writes are not spaced
   */
  readonly startNow: number
}

export interface GithubShape {
  /**
   * The installation token of `ref`'s app, cached for 59 minutes per (installation, app). Failures are not cached.
   * Every other installation-scoped method goes through this, so callers never handle tokens; it is exposed so
   * the scheduler can check (and audit) authentication before acting for an installation.
   */
  readonly installationToken: (ref: InstallationRef) => Effect.Effect<Redacted.Redacted<string>, GithubError>
  /**
   * `GET /app/installations/{id}` with the JWT of the app that serves `entityType`. A 404 means this app has no
   * such installation (never installed, removed, or installed through the other app).
   */
  readonly getInstallation: (
    installationId: number,
    entityType: EntityType
  ) => Effect.Effect<GithubInstallation, GithubError>
  /**
   * The id of the org runner group named `groupName`, created (visible to all repositories, public ones
   * included) if missing. Looks through every page of groups; the id is cached per (org, group name).
   */
  readonly ensureRunnerGroup: (
    ref: InstallationRef,
    org: string,
    groupName: string
  ) => Effect.Effect<number, GithubError>
  /** A JIT runner in the org's group `groupId`. A runner name already taken gives GithubHttpError 409. */
  readonly createJitConfigOrg: (
    ref: InstallationRef,
    org: string,
    groupId: number,
    request: JitConfigRequest
  ) => Effect.Effect<JitRunner, GithubError>
  /** A JIT runner registered on one repository (`owner/name`), in the default group. */
  readonly createJitConfigRepo: (
    ref: InstallationRef,
    repoFullName: string,
    request: JitConfigRequest
  ) => Effect.Effect<JitRunner, GithubError>
  /** Every runner of the org's group `groupId` (all pages). */
  readonly listRunnersOrgGroup: (
    ref: InstallationRef,
    org: string,
    groupId: number,
    options?: ListRunnersOptions
  ) => Effect.Effect<ReadonlyArray<GithubRunner>, GithubError>
  /** Every runner registered on the repository (all pages). */
  readonly listRunnersRepo: (
    ref: InstallationRef,
    repoFullName: string,
    options?: ListRunnersOptions
  ) => Effect.Effect<ReadonlyArray<GithubRunner>, GithubError>
  /** Removes an org runner. Already gone (404) counts as done; a runner running a job fails with GithubBusy. */
  readonly deleteRunnerOrg: (ref: InstallationRef, org: string, runnerId: number) => Effect.Effect<void, GithubError>
  /** Removes a repository runner, with the same rules as `deleteRunnerOrg`. */
  readonly deleteRunnerRepo: (
    ref: InstallationRef,
    repoFullName: string,
    runnerId: number
  ) => Effect.Effect<void, GithubError>
  /** A workflow job. Polls are conditional: an unchanged job costs no rate-limit budget. */
  readonly getJob: (ref: InstallationRef, repoFullName: string, jobId: number) => Effect.Effect<GithubJob, GithubError>
  /** A workflow run, polled conditionally like `getJob`. */
  readonly getRun: (ref: InstallationRef, repoFullName: string, runId: number) => Effect.Effect<GithubRun, GithubError>
  /**
   * The app's webhook delivery log, newest first, with the app's JWT (no installation budget): page after page
   * (`per_page=100`, following GitHub's cursor) until a page holds an attempt for which `stopAt` is true, or there
   * are no more. Every attempt read is returned, the one that stopped the listing included.
   */
  readonly listHookDeliveries: (
    app: EntityType,
    stopAt: (delivery: HookDelivery) => boolean
  ) => Effect.Effect<ReadonlyArray<HookDelivery>, GithubError>
  /** Asks GitHub to deliver that attempt's event again (`202`); the new attempt shows up in the log with its guid. */
  readonly redeliverHookDelivery: (app: EntityType, deliveryId: number) => Effect.Effect<void, GithubError>
  /** The repository's queued workflow runs (first 100), polled conditionally: an unchanged listing is free. */
  readonly listQueuedRuns: (
    ref: InstallationRef,
    repoFullName: string
  ) => Effect.Effect<ReadonlyArray<GithubRunSummary>, GithubError>
  /** The jobs of a run's latest attempt (first 100), polled conditionally. */
  readonly listRunJobs: (
    ref: InstallationRef,
    repoFullName: string,
    runId: number
  ) => Effect.Effect<ReadonlyArray<GithubRunJob>, GithubError>
  /**
   * How long a write of `ref`'s installation (a JIT config, a runner delete) would wait, if asked now, before it
   * could start, how many could start now, and the gap the layer keeps between its writes: without starting one.
   * The live layer spaces each installation's writes (GitHub's secondary limits: one at a time, a short burst then
   * a gap between starts, points per minute) and answers from that state; the in-memory GitHub does not space
   * writes and answers 0, 0 and `Infinity`. The scheduler asks
   * before provisioning, so one installation's spacing does not hold up the others' jobs.
   */
  readonly writeWait: (ref: InstallationRef) => Effect.Effect<WriteWait>
  /** The installation's budget as last reported by GitHub; none before the first call for that installation. */
  readonly rateLimit: (installationId: number) => Effect.Effect<Option.Option<RateLimit>>
  /** API calls made so far, by operation and status (for metrics, tests and benchmarks). */
  readonly callCounts: Effect.Effect<GithubCallCounts>
}

export class Github extends Context.Tag("riscv-runner/Github")<Github, GithubShape>() {}
