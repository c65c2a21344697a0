import { failureV1, type FailureInfoV1 } from "../domain/FailureInfo.ts"
import type { Job } from "../domain/Job.ts"
import type { GithubError, GithubJob, GithubRun } from "../services/Github.ts"

/**
 * What job sync does with GitHub's answer about one job (reference §5, `syncJobsState`), as pure functions.
 * The program polls, asks these, and applies the transition through `Db`.
 */

export type JobSyncAction =
  | { readonly _tag: "Nothing"; readonly why: string }
  | { readonly _tag: "MarkRunning"; readonly runnerName: string | null }
  | { readonly _tag: "MarkCompleted"; readonly runnerName: string | null }
  | { readonly _tag: "MarkFailed"; readonly info: FailureInfoV1 }
  /** the job still waits; look at its run, which may have ended without it */
  | { readonly _tag: "ProbeRun"; readonly runId: number }

const nothing = (why: string): JobSyncAction => ({ _tag: "Nothing", why })

export const installationNotFoundInfo = (job: Pick<Job, "installation_id" | "entity_type">): FailureInfoV1 =>
  failureV1(`installation not found for installation_id=${job.installation_id} entity_type=${job.entity_type}`)

export const jobNotFoundInfo = (job: Pick<Job, "job_id" | "entity_name" | "entity_id" | "entity_type">): FailureInfoV1 =>
  failureV1(`job not found for job_id=${job.job_id} entity=${job.entity_name} entity_id=${job.entity_id} entity_type=${job.entity_type}`)

export const runCompletedInfo = (jobId: number, runId: number, conclusion: string | null): FailureInfoV1 =>
  failureV1(`workflow run ${runId} completed (conclusion=${conclusion === null || conclusion === "" ? "unknown" : conclusion}) while job ${jobId} stayed queued`)

/** GitHub's status, except that a conclusion means the job is over whatever the status says. */
export const effectiveStatus = (answer: GithubJob): string =>
  answer.conclusion !== null && answer.conclusion !== "" ? "completed" : answer.status

export const decideJobSync = (
  job: Job,
  answer: { readonly _tag: "Job"; readonly job: GithubJob } | { readonly _tag: "Error"; readonly error: GithubError },
  nowMs: number,
  stuckQueuedMs: number
): JobSyncAction => {
  if (answer._tag === "Error") {
    return answer.error._tag === "GithubNotFound"
      ? { _tag: "MarkFailed", info: jobNotFoundInfo(job) }
      : nothing(`poll failed: ${answer.error.message}`)
  }
  const gh = answer.job
  switch (effectiveStatus(gh)) {
    // A cancelled or failed conclusion still completes the job: its runner (if any) is done either way.
    case "completed":
      return { _tag: "MarkCompleted", runnerName: gh.runner_name }
    case "in_progress":
      return job.status === "pending" ? { _tag: "MarkRunning", runnerName: gh.runner_name } : nothing("already running")
    case "queued":
      if (gh.run_id === 0) return nothing("queued, no run id")
      if (nowMs - job.created_at.getTime() < stuckQueuedMs) return nothing("queued, too young to probe its run")
      return { _tag: "ProbeRun", runId: gh.run_id }
    default:
      return nothing(`GitHub status ${gh.status}`)
  }
}

/** After a probe: a run that completed while its job stayed queued will never start the job. */
export const decideRunProbe = (job: Pick<Job, "job_id">, runId: number, run: GithubRun): JobSyncAction =>
  run.status === "completed"
    ? { _tag: "MarkFailed", info: runCompletedInfo(job.job_id, runId, run.conclusion) }
    : nothing(`run ${run.status ?? "unknown"}`)

/** Is the job's latest news (a webhook's `updated_at`, or our last poll) older than the threshold? */
export const isStale = (job: Pick<Job, "updated_at">, lastPollMs: number | undefined, nowMs: number, stalenessMs: number): boolean =>
  nowMs - Math.max(job.updated_at.getTime(), lastPollMs ?? Number.NEGATIVE_INFINITY) >= stalenessMs

/**
 * How many polls an installation may spend now: everything above the reserve share of its budget. Unknown
 * (no call made yet) or a window that has already reset allows `max`.
 */
export const pollAllowance = (
  budget: { readonly limit: number; readonly remaining: number; readonly resetAt: Date } | undefined,
  reserveShare: number,
  nowMs: number,
  max: number
): number => {
  if (budget === undefined || budget.resetAt.getTime() <= nowMs) return max
  const reserve = Math.ceil(budget.limit * reserveShare)
  return Math.max(0, Math.min(max, budget.remaining - reserve))
}
