import { Config, Context, Duration, Effect, Layer, Option, type Redacted } from "effect"
import type { RunnerConfig } from "../domain/RunnerConfig.ts"
import { cryptoRunnerSuffix } from "./runnerName.ts"

/**
 * Everything the scheduler program is told rather than asks for: the runner config (rules, caps, weights,
 * policy), the deployment (prod or staging, which fixes the runner prefix and the org runner group), and every
 * timeout of the reference §5 as a Duration on Effect's Clock, so tests move time with TestClock.
 */
export interface SchedulerTimeouts {
  /** a running pod whose runner GitHub never shows (or shows offline) is failed after this (`runner_never_registered`) */
  readonly registration: Duration.Duration
  /** a runner online but never busy is failed after this (`runner_idle`) */
  readonly idle: Duration.Duration
  /** a worker still pending (no board, image pull, ...) is failed after this (`pod_stuck_pending`) */
  readonly podPending: Duration.Duration
  /** finished pods are kept this long for diagnosis, then deleted */
  readonly deleteGrace: Duration.Duration
  /** a queued job this old has its run probed; a completed run fails the job */
  readonly stuckQueued: Duration.Duration
  /** a cycle runs at least this often, notifications or not */
  readonly pollInterval: Duration.Duration
  /** terminal workers younger than this still count as known to the GitHub cleanup */
  readonly reconcileLookback: Duration.Duration
  /** a job is polled only when its last news (webhook or poll) is older than this */
  readonly jobPollStaleness: Duration.Duration
  /**
   * After a wake-up, wait this long and take what arrives meanwhile into the same cycle. Zero by default: a burst
   * is coalesced because a cycle is already running, and a lone job is not made to wait.
   */
  readonly wakeDebounce: Duration.Duration
  /**
   * A runner pod that ended cleanly (Succeeded, or deleted once finished) runs demand matching at once, which fills
   * its board; the full cycle that records the end waits until this long after the last full cycle ended, so a
   * stream of ends does not keep the lock busy ahead of new jobs. A failed pod or a fresh listing is not delayed.
   */
  readonly podEndSpacing: Duration.Duration
  /** the first pause after a failed provisioning of an (entity, label set); doubles per consecutive failure */
  readonly allocationBackoffBase: Duration.Duration
  readonly allocationBackoffMax: Duration.Duration
  /**
   * A scope (org group or repository) with active workers has its runners listed at least this often even when
   * no health check needs them, so leftover runners are still cleaned up (phase 4).
   */
  readonly runnerListRefresh: Duration.Duration
  /** a runner pod with our prefix and no worker row is deleted once it is this old (the sweep of unknown pods) */
  readonly orphanPodGrace: Duration.Duration
  /**
   * a worker whose pod is on a node that has been NotReady or Unknown this long is failed (`node_unreachable`)
   * and its pod deleted with grace 0
   */
  readonly nodeUnreachable: Duration.Duration
}

export interface SchedulerSettingsShape {
  readonly runnerConfig: RunnerConfig
  readonly prod: boolean
  /** `rise-riscv-runner-` in prod, `rise-riscv-runner-staging-` in staging: pod and runner names start with it */
  readonly runnerPrefix: string
  /** the org runner group our org runners live in */
  readonly runnerGroup: string
  readonly timeouts: SchedulerTimeouts
  /**
   * The share (0..1) of an installation's rate-limit budget that job polling leaves untouched, so provisioning
   * and health checks for that installation still have calls to spend.
   */
  readonly budgetReserveShare: number
  /** at most this many job polls per cycle (oldest news first), so a huge backlog cannot stretch a cycle */
  readonly maxJobPollsPerCycle: number
  /** GitHub reads made at once (job polls, runner listings); database writes stay one at a time */
  readonly githubConcurrency: number
  /**
   * Provisioning groups (entity, labels) served at once. Larger than `githubConcurrency`: a group mostly waits on
   * its installation's write spacing (334 ms between its JIT configs), which holds no request in flight, and with 8
   * at a time the ninth organisation's first runner waited behind eight others' spacing; the live GitHub layer
   * still keeps at most 10 requests in flight.
   */
  readonly provisionConcurrency: number
  /** 9 random characters of `[a-z0-9]` for a runner name; replaceable so tests can force a name clash */
  readonly runnerSuffix: Effect.Effect<string>
  /**
   * `TRACE_API_SECRET`, the bearer token of the operator's writes on this port (releasing a quarantined board);
   * none closes them (503), as it closes the trace API.
   */
  readonly operatorSecret: Option.Option<Redacted.Redacted<string>>
}

export class SchedulerSettings extends Context.Tag("riscv-runner/SchedulerSettings")<SchedulerSettings, SchedulerSettingsShape>() {}

export const PROD_PREFIX = "rise-riscv-runner-"
export const STAGING_PREFIX = "rise-riscv-runner-staging-"
export const PROD_GROUP = "RISE RISC-V Runners"
export const STAGING_GROUP = "RISE RISC-V Runners (staging)"

/** The reference's defaults (§3), plus ours for the knobs the original did not have. */
export const defaultTimeouts: SchedulerTimeouts = {
  registration: Duration.seconds(120),
  idle: Duration.seconds(600),
  podPending: Duration.seconds(600),
  deleteGrace: Duration.hours(6),
  stuckQueued: Duration.minutes(10),
  pollInterval: Duration.seconds(15),
  reconcileLookback: Duration.hours(1),
  jobPollStaleness: Duration.seconds(60),
  wakeDebounce: Duration.zero,
  podEndSpacing: Duration.millis(500),
  allocationBackoffBase: Duration.seconds(15),
  allocationBackoffMax: Duration.minutes(10),
  runnerListRefresh: Duration.minutes(5),
  orphanPodGrace: Duration.minutes(2),
  nodeUnreachable: Duration.minutes(5)
}

export interface SchedulerSettingsInput {
  readonly runnerConfig: RunnerConfig
  readonly prod: boolean
  readonly timeouts?: Partial<SchedulerTimeouts> | undefined
  readonly budgetReserveShare?: number | undefined
  readonly maxJobPollsPerCycle?: number | undefined
  readonly githubConcurrency?: number | undefined
  readonly provisionConcurrency?: number | undefined
  readonly runnerSuffix?: Effect.Effect<string> | undefined
  readonly operatorSecret?: Option.Option<Redacted.Redacted<string>> | undefined
}

export const makeSchedulerSettings = (input: SchedulerSettingsInput): SchedulerSettingsShape => ({
  runnerConfig: input.runnerConfig,
  prod: input.prod,
  runnerPrefix: input.prod ? PROD_PREFIX : STAGING_PREFIX,
  runnerGroup: input.prod ? PROD_GROUP : STAGING_GROUP,
  timeouts: { ...defaultTimeouts, ...input.timeouts },
  budgetReserveShare: input.budgetReserveShare ?? 0.2,
  maxJobPollsPerCycle: input.maxJobPollsPerCycle ?? 50,
  githubConcurrency: input.githubConcurrency ?? 8,
  provisionConcurrency: input.provisionConcurrency ?? 64,
  runnerSuffix: input.runnerSuffix ?? cryptoRunnerSuffix,
  operatorSecret: input.operatorSecret ?? Option.none()
})

export const SchedulerSettingsLive = (input: SchedulerSettingsInput) => Layer.succeed(SchedulerSettings, makeSchedulerSettings(input))

/**
 * Does this runner name belong to this deployment? The prod prefix is also the start of the staging prefix, so
 * in prod a staging runner (registered on the same personal repository) must not be taken for ours: phase 4 would
 * delete it.
 */
export const ownsRunnerName = (settings: Pick<SchedulerSettingsShape, "prod" | "runnerPrefix">, name: string): boolean =>
  name.startsWith(settings.runnerPrefix) && (!settings.prod || !name.startsWith(STAGING_PREFIX))

const durationOr = (name: string, fallback: Duration.Duration) => Config.duration(name).pipe(Config.withDefault(fallback))

/**
 * The timeouts and knobs from the environment (`SCHEDULER_*`, values like `120 seconds` or `10 minutes`), each
 * defaulting to the reference's value.
 */
export const schedulerTuningConfig = Config.all({
  timeouts: Config.all({
    registration: durationOr("SCHEDULER_REGISTRATION_TIMEOUT", defaultTimeouts.registration),
    idle: durationOr("SCHEDULER_IDLE_TIMEOUT", defaultTimeouts.idle),
    podPending: durationOr("SCHEDULER_POD_PENDING_TIMEOUT", defaultTimeouts.podPending),
    deleteGrace: durationOr("SCHEDULER_POD_DELETE_GRACE", defaultTimeouts.deleteGrace),
    stuckQueued: durationOr("SCHEDULER_STUCK_QUEUED_AGE", defaultTimeouts.stuckQueued),
    pollInterval: durationOr("SCHEDULER_POLL_INTERVAL", defaultTimeouts.pollInterval),
    reconcileLookback: durationOr("SCHEDULER_RECONCILE_LOOKBACK", defaultTimeouts.reconcileLookback),
    jobPollStaleness: durationOr("SCHEDULER_JOB_POLL_STALENESS", defaultTimeouts.jobPollStaleness),
    wakeDebounce: durationOr("SCHEDULER_WAKE_DEBOUNCE", defaultTimeouts.wakeDebounce),
    podEndSpacing: durationOr("SCHEDULER_POD_END_SPACING", defaultTimeouts.podEndSpacing),
    allocationBackoffBase: durationOr("SCHEDULER_ALLOCATION_BACKOFF_BASE", defaultTimeouts.allocationBackoffBase),
    allocationBackoffMax: durationOr("SCHEDULER_ALLOCATION_BACKOFF_MAX", defaultTimeouts.allocationBackoffMax),
    runnerListRefresh: durationOr("SCHEDULER_RUNNER_LIST_REFRESH", defaultTimeouts.runnerListRefresh),
    orphanPodGrace: durationOr("SCHEDULER_ORPHAN_POD_GRACE", defaultTimeouts.orphanPodGrace),
    nodeUnreachable: durationOr("SCHEDULER_NODE_UNREACHABLE_TIMEOUT", defaultTimeouts.nodeUnreachable)
  }),
  budgetReserveShare: Config.number("SCHEDULER_BUDGET_RESERVE_SHARE").pipe(
    Config.validate({ message: "must be between 0 and 1", validation: (n) => n >= 0 && n < 1 }),
    Config.withDefault(0.2)
  ),
  maxJobPollsPerCycle: Config.integer("SCHEDULER_MAX_JOB_POLLS_PER_CYCLE").pipe(
    Config.validate({ message: "must be positive", validation: (n) => n > 0 }),
    Config.withDefault(50)
  ),
  operatorSecret: Config.option(Config.redacted("TRACE_API_SECRET"))
})

/** The settings layer for a deployment: the runner config and prod flag given, the rest from the environment. */
export const schedulerSettingsFromEnv = (runnerConfig: RunnerConfig, prod: boolean) =>
  Layer.effect(
    SchedulerSettings,
    Effect.map(schedulerTuningConfig, (tuning) => makeSchedulerSettings({ runnerConfig, prod, ...tuning }))
  )
