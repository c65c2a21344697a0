import type { NewJob } from "../domain/Job.ts"
import { resolvePool, type RunnerConfig } from "../domain/RunnerConfig.ts"
import type { RecentRepository } from "../services/Db.ts"
import type { GithubRunJob } from "../services/Github.ts"

/*
 * The sweep's decision, as a plain function: which of a run's jobs GitHub shows queued, that resolve to a pool and
 * that we have no row for, and the pending job each becomes. The row is the one a `queued` delivery would have
 * stored (`src/webhook/workflowJob.ts`): the same fields, the same label→pool rule.
 */

export const discoveredJobs = (input: {
  readonly repository: RecentRepository
  readonly jobs: ReadonlyArray<GithubRunJob>
  /** job ids we already have a row for, in any status */
  readonly stored: ReadonlySet<number>
  readonly runnerConfig: RunnerConfig
  readonly prod: boolean
}): ReadonlyArray<NewJob> => {
  const { repository: repo } = input
  const out: Array<NewJob> = []
  for (const job of input.jobs) {
    if (job.status !== "queued" || input.stored.has(job.id)) continue
    const target = resolvePool(input.runnerConfig, { entityId: repo.entity_id, repoFullName: repo.repo_full_name, labels: job.labels }, input.prod)
    if (target === undefined) continue
    out.push({
      job_id: job.id,
      provider: "github",
      entity_id: repo.entity_id,
      entity_name: repo.entity_name,
      entity_type: repo.entity_type,
      repo_full_name: repo.repo_full_name,
      installation_id: repo.installation_id,
      job_labels: job.labels,
      k8s_pool: target.pool,
      k8s_image: target.image,
      html_url: job.html_url ?? `https://github.com/${repo.repo_full_name}/actions/runs/${job.run_id}/job/${job.id}`
    })
  }
  return out
}

/** Calls the sweep may spend for an installation now: what job polls may spend, so the reserve stays untouched. */
export { pollAllowance as sweepAllowance } from "./jobSyncDecision.ts"
