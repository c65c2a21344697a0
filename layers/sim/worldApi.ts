import { Context, Data, type Duration, type Effect, type Option, type Queue, type Scope } from "effect"
import type { RunnerConfig } from "../../src/domain/RunnerConfig.ts"
import type { BoardFault } from "./boardFaults.ts"
import type { SimEvent } from "./events.ts"
import type { FaultPatch, FaultCounts, FaultSettings } from "./faults.ts"
import type { OwnerType } from "./payloads.ts"

/*
 * What the simulated world offers (`SimWorld`) and how it is set up (`SimOptions`); `world.ts` builds it. The tests,
 * the control API, the printer and the benchmarks depend on this file only.
 */

export interface SimOptions {
  /** simulated seconds per real second, for the world's own delays (job durations, boot, downtime) */
  readonly speed: number
  readonly runnerConfig: RunnerConfig
  /** GitHub App ids, for the `X-GitHub-Hook-Installation-Target-Id` of each delivery */
  readonly apps: { readonly orgAppId: number; readonly personalAppId: number }
  /** from a runner pod's start to its runner's registration (simulated) */
  readonly bootDelay?: Duration.DurationInput
  /** GitHub cancels a job that stayed queued this long (simulated; GitHub's is 24 h) */
  readonly queuedJobTimeout?: Duration.DurationInput
  /** how long a lost node stays away (simulated) */
  readonly nodeDowntime?: Duration.DurationInput
  /** how long a stuck-busy runner stays stuck, at most (simulated) */
  readonly stuckBusyFor?: Duration.DurationInput
  /** how long a pod held Pending by a fault stays held, at most (simulated); absent: until the scheduler gives up */
  readonly stuckPendingFor?: Duration.DurationInput
  /**
   * period of the world's housekeeping: runner heartbeats, queued-job expiry, node losses (simulated); null
   * leaves it to whoever calls `housekeep` (the simulation tests do, once per step)
   */
  readonly housekeeping?: Duration.DurationInput | null
  /**
   * first job id; ids then count up. Default: derived from the clock at start-up (milliseconds, rounded to the
   * second), so a restarted simulation never reuses an id the database kept from an earlier run.
   */
  readonly firstJobId?: number
  /** faulty boards: runners that never register there, or a board NotReady for a while or for good (`boardFaults.ts`) */
  readonly boardFaults?: ReadonlyArray<BoardFault>
}

export interface JobRequest {
  readonly owner: string
  readonly ownerType?: OwnerType | undefined
  /** `owner/name`, or just `name` */
  readonly repo?: string | undefined
  readonly labels?: ReadonlyArray<string> | undefined
  readonly durationSeconds?: number | undefined
  readonly count?: number | undefined
}

export class SimRequestError extends Data.TaggedError("SimRequestError")<{ readonly message: string }> {}

/** A job as the simulated GitHub tracks it, with the times the statistics need (Clock millis). */
export interface SimJob {
  readonly id: number
  readonly runId: number
  readonly owner: string
  readonly entityId: number
  readonly repo: string
  readonly labels: ReadonlyArray<string>
  readonly durationMs: number
  status: "queued" | "in_progress" | "completed"
  conclusion: string | null
  runner: string | null
  readonly queuedAt: number
  startedAt: number | null
  completedAt: number | null
}

export interface SimStats {
  readonly deliveries: number
  readonly deliveryFailures: number
  /** attempts made because someone asked GitHub to redeliver */
  readonly redeliveries: number
  readonly faults: FaultCounts
}

export interface SimWorldShape {
  readonly options: SimOptions
  /** Creates jobs in GitHub (and the owner's installation on first use); their `queued` deliveries follow. */
  readonly submitJobs: (request: JobRequest) => Effect.Effect<ReadonlyArray<number>, SimRequestError>
  readonly jobs: Effect.Effect<ReadonlyArray<SimJob>>
  readonly faults: Effect.Effect<FaultSettings>
  readonly setFaults: (patch: FaultPatch) => Effect.Effect<FaultSettings>
  /** Takes a node away now (the named one, or one drawn at random); it returns after the downtime. */
  readonly loseNode: (name?: string) => Effect.Effect<Option.Option<string>>
  readonly stats: Effect.Effect<SimStats>
  /** The world's view for `GET /sim/state`: nodes, pods, runners and jobs as GitHub sees them. */
  readonly state: Effect.Effect<unknown>
  /** Events from the moment of subscription. */
  readonly subscribe: Effect.Effect<Queue.Dequeue<SimEvent>, never, Scope.Scope>
  /** True when no task the world started (a delivery, a running job, a boot) is still under way; for tests. */
  readonly idle: Effect.Effect<boolean>
  /** One housekeeping pass now (see `SimOptions.housekeeping`). */
  readonly housekeep: Effect.Effect<void>
}

export class SimWorld extends Context.Tag("riscv-runner/sim/SimWorld")<SimWorld, SimWorldShape>() {}
