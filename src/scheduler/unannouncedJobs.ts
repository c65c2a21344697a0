import { Clock, Duration, Effect, Metric, Option } from "effect"
import type { NewJob } from "../domain/Job.ts"
import { jobsDiscovered } from "../observability/metrics.ts"
import { Db, type RecentRepository } from "../services/Db.ts"
import { Github, type InstallationRef } from "../services/Github.ts"
import { RecoverySettings } from "./recoverySettings.ts"
import { SchedulerSettings } from "./settings.ts"
import { discoveredJobs, sweepAllowance } from "./unannouncedJobsDecision.ts"

/*
 * The sweep for jobs nobody announced (issue 12): when GitHub never sent a `queued` delivery at all, nothing in
 * its delivery log can be redelivered. For every repository that had a job lately, the sweep lists its queued
 * runs and their jobs, and stores a queued job that resolves to a pool and has no row, as the delivery would
 * have. Its calls come out of each installation's budget within the share job polls may spend, and both listings
 * are conditional (an unchanged one is a free 304). One replica runs it at a time (a row lease).
 */

export const SWEEP_PASS = "sweep"

export interface SweepOutcome {
  readonly ran: boolean
  readonly repositories: number
  /** repositories left out because their installation's budget is down to its reserve */
  readonly heldBack: number
  readonly discovered: number
  readonly failed: number
}

const discoveryEvent = (job: NewJob, appId: number, runId: number) => ({
  source: "scheduler",
  event: "sweep.job_discovered",
  outcome: "job_stored",
  installation_id: job.installation_id,
  app_id: appId,
  entity_type: job.entity_type,
  entity_id: job.entity_id,
  entity_name: job.entity_name,
  // The shape of a workflow_job payload's ids, so the trace shows the job and the repository like a delivery's.
  payload: {
    workflow_job: { id: job.job_id, run_id: runId, labels: job.job_labels, html_url: job.html_url, status: "queued" },
    repository: { full_name: job.repo_full_name },
    installation: { id: job.installation_id }
  },
  delivery_id: null
})

export const sweepPass = Effect.fn("Scheduler.sweepUnannouncedJobs")(function*(holder: string) {
  const db = yield* Db
  const recovery = yield* RecoverySettings
  const claim = yield* db.claimPass(SWEEP_PASS, holder, Duration.toMillis(recovery.passLease))
  if (!claim.claimed) return { ran: false, repositories: 0, heldBack: 0, discovered: 0, failed: 0 } satisfies SweepOutcome
  return yield* sweepBody.pipe(Effect.ensuring(db.finishPass(SWEEP_PASS, holder, null).pipe(Effect.ignore)))
})

const sweepBody = Effect.gen(function*() {
  const db = yield* Db
  const github = yield* Github
  const recovery = yield* RecoverySettings
  const settings = yield* SchedulerSettings
  const now = yield* Clock.currentTimeMillis
  const repositories = yield* db.getRecentRepositories(new Date(now - Duration.toMillis(recovery.sweepLookback)))
  const allowance = new Map<number, number>()
  let heldBack = 0
  let discovered = 0
  let failed = 0

  /** Takes one call from the installation's allowance; false when none is left. */
  const spend = (installationId: number) =>
    Effect.gen(function*() {
      if (!allowance.has(installationId)) {
        const budget = Option.getOrUndefined(yield* github.rateLimit(installationId))
        allowance.set(installationId, sweepAllowance(budget, settings.budgetReserveShare, now, Number.MAX_SAFE_INTEGER))
      }
      const left = allowance.get(installationId)!
      if (left <= 0) return false
      allowance.set(installationId, left - 1)
      return true
    })

  const sweepRepository = (repo: RecentRepository) =>
    Effect.gen(function*() {
      const ref: InstallationRef = { installationId: repo.installation_id, entityType: repo.entity_type }
      if (!(yield* spend(repo.installation_id))) return "held back" as const
      const runs = yield* github.listQueuedRuns(ref, repo.repo_full_name)
      for (const run of runs) {
        if (!(yield* spend(repo.installation_id))) return "held back" as const
        const jobs = yield* github.listRunJobs(ref, repo.repo_full_name, run.id)
        const queued = jobs.filter((j) => j.status === "queued").map((j) => j.id)
        if (queued.length === 0) continue
        const stored = new Set((yield* db.getJobsByIds(queued)).map((j) => j.job_id))
        const appId = repo.entity_type === "User" ? settings.runnerConfig.apps.personalAppId : settings.runnerConfig.apps.orgAppId
        for (const job of discoveredJobs({ repository: repo, jobs, stored, runnerConfig: settings.runnerConfig, prod: settings.prod })) {
          // The webhook's own write: a job stored meanwhile by a late delivery is not stored twice.
          if (!(yield* db.addJob(job))) continue
          discovered += 1
          yield* Metric.increment(jobsDiscovered)
          yield* Effect.logInfo("stored a queued job no delivery had announced").pipe(
            Effect.annotateLogs({ job_id: job.job_id, repo: job.repo_full_name, entity: job.entity_name, labels: job.job_labels.join(",") })
          )
          yield* db.addInstallationEvent(discoveryEvent(job, appId, run.id)).pipe(
            Effect.catchAllCause((cause) => Effect.logError("could not record a discovered job", cause))
          )
        }
      }
      return "swept" as const
    })

  for (const repo of repositories) {
    const result = yield* Effect.either(sweepRepository(repo))
    if (result._tag === "Left") {
      failed += 1
      yield* Effect.logWarning("the sweep could not list a repository's queued jobs; the next sweep tries again").pipe(
        Effect.annotateLogs({ repo: repo.repo_full_name, installationId: repo.installation_id, error: errorText(result.left) })
      )
    } else if (result.right === "held back") heldBack += 1
  }
  const outcome: SweepOutcome = { ran: true, repositories: repositories.length, heldBack, discovered, failed }
  yield* Effect.annotateCurrentSpan({ ...outcome })
  if (discovered > 0 || heldBack > 0 || failed > 0) yield* Effect.logInfo("sweep for unannounced jobs done").pipe(Effect.annotateLogs({ ...outcome }))
  return outcome
})

const errorText = (e: unknown) => (typeof e === "object" && e !== null && "message" in e ? String((e as { message: unknown }).message) : String(e))
