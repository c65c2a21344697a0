import type { FailureReason } from "../domain/FailureInfo.ts"
import type { Status } from "../domain/Status.ts"

/**
 * The health-check decision table of phase 3 (reference §5), as a pure function of one worker's snapshot.
 * The program gathers the inputs (pod ages, GitHub's view of the runner, whether a job ran on it) and carries out
 * the decision; tests walk the table row by row.
 */

/** GitHub's view of the runner that has the worker's name; undefined when GitHub lists no such runner. */
export type RunnerSighting = { readonly status: string; readonly busy: boolean } | undefined

export interface HealthLimits {
  readonly registrationMs: number
  readonly idleMs: number
  readonly podPendingMs: number
  /** a pod's node NotReady or Unknown this long fails the worker as `node_unreachable` */
  readonly nodeUnreachableMs: number
}

export interface HealthInput {
  readonly workerStatus: Status
  /** since the pod's creation */
  readonly pendingAgeMs: number
  /** since the worker's `running_at`; Infinity when it has none, so "never set" counts as old */
  readonly runningAgeMs: number
  readonly runner: RunnerSighting
  /** some job (any status) records this runner: it ran its job and unregistered itself */
  readonly jobRanOnPod: boolean
  /**
   * A pending or running job records this runner, as the webhook (or a poll) told us. GitHub only hands a job to
   * an online runner, so it is healthy without asking GitHub. Our addition to the table: it spares the runner
   * listing for every long job, every cycle.
   */
  readonly jobActiveOnPod: boolean
  /**
   * The pod reports that its image cannot be pulled (`imagePullFailure`). Our addition to the table: the original
   * waited the 10 minutes of `pod_stuck_pending` for each such pod, one job after another.
   */
  readonly imagePullFailed?: boolean | undefined
  /** how long the pod's node has been NotReady or Unknown; 0 when it is Ready, unknown, or the pod has no node */
  readonly nodeUnreachableMs: number
}

export type HealthDecision =
  | { readonly _tag: "Wait"; readonly why: string }
  | { readonly _tag: "Healthy"; readonly why: string }
  | { readonly _tag: "Fail"; readonly reason: FailureReason }
  /** a status the phase should never see among active workers; logged as an error */
  | { readonly _tag: "Unexpected"; readonly status: Status }

const wait = (why: string): HealthDecision => ({ _tag: "Wait", why })
const healthy = (why: string): HealthDecision => ({ _tag: "Healthy", why })
const fail = (reason: FailureReason): HealthDecision => ({ _tag: "Fail", reason })

/** Not registered yet: wait out the registration timeout, then give up on the runner. */
const registrationClock = (input: HealthInput, limits: HealthLimits, why: string): HealthDecision =>
  input.runningAgeMs < limits.registrationMs ? wait(why) : fail("runner_never_registered")

/** Has the pod's node been unreachable for longer than the limit? */
const nodeLost = (input: Pick<HealthInput, "nodeUnreachableMs">, limits: HealthLimits): boolean =>
  input.nodeUnreachableMs > 0 && input.nodeUnreachableMs >= limits.nodeUnreachableMs

export const classifyWorker = (input: HealthInput, limits: HealthLimits): HealthDecision => {
  if ((input.workerStatus === "pending" || input.workerStatus === "running") && nodeLost(input, limits)) {
    // GitHub's word first, as for every other check: a runner it still shows busy is left alone.
    if (input.runner?.status === "online" && input.runner.busy) return healthy("busy, though its node is unreachable")
    return fail("node_unreachable")
  }
  switch (input.workerStatus) {
    case "pending":
      if (input.imagePullFailed === true) return fail("image_pull_failed")
      return input.pendingAgeMs < limits.podPendingMs ? wait("pod not running yet") : fail("pod_stuck_pending")
    case "running": {
      if (input.jobActiveOnPod) return healthy("a job is running on it")
      const runner = input.runner
      if (runner === undefined) {
        if (input.jobRanOnPod) return healthy("it ran its job and unregistered")
        return registrationClock(input, limits, "runner not registered yet")
      }
      if (runner.status === "online") {
        if (runner.busy) return healthy("online and busy")
        return input.runningAgeMs < limits.idleMs ? wait("online, waiting for a job") : fail("runner_idle")
      }
      // `offline`, and any status GitHub may add later, count as not registered.
      return registrationClock(input, limits, `runner ${runner.status}`)
    }
    case "completed":
    case "failed":
      return { _tag: "Unexpected", status: input.workerStatus }
  }
}

/**
 * Can the decision for this worker depend on GitHub's view of its runner? When it cannot, the scheduler need not
 * list the scope's runners for it. A failure needs the view too: the runner is deleted before the worker is failed.
 * `classifyWorker` gives Wait or Healthy for every runner sighting whenever this is false (a property test holds
 * the two to that).
 */
export const needsRunnerView = (
  input: Pick<HealthInput, "workerStatus" | "pendingAgeMs" | "runningAgeMs" | "jobActiveOnPod" | "imagePullFailed" | "nodeUnreachableMs">,
  limits: HealthLimits
): boolean => {
  if ((input.workerStatus === "pending" || input.workerStatus === "running") && nodeLost(input, limits)) return true
  switch (input.workerStatus) {
    case "pending":
      return input.imagePullFailed === true || input.pendingAgeMs >= limits.podPendingMs
    case "running":
      return !input.jobActiveOnPod && input.runningAgeMs >= limits.registrationMs
    case "completed":
    case "failed":
      return false
  }
}
