import { Clock, Duration, Effect, Either, Option } from "effect"
import type { Job } from "../domain/Job.ts"
import { Db } from "../services/Db.ts"
import { jobLogFields } from "../observability/logFields.ts"
import { Github, type GithubError, type GithubJob } from "../services/Github.ts"
import type { Authenticate } from "./auth.ts"
import {
  decideJobSync,
  decideRunProbe,
  installationNotFoundInfo,
  isStale,
  type JobSyncAction,
  pollAllowance
} from "./jobSyncDecision.ts"
import { SchedulerSettings } from "./settings.ts"
import type { SchedulerState } from "./state.ts"

/**
 * Job sync: reconciles pending and running jobs with GitHub, for the news a webhook failed to bring.
 *
 * It spends the API budget deliberately (design decision 4): only jobs whose last news (webhook or poll) is
 * older than the staleness threshold are polled, oldest news first, at most `maxJobPollsPerCycle` per cycle and
 * never into the reserve share of an installation's budget; polls are conditional in the Github layer, so an
 * unchanged job costs nothing. GitHub is asked concurrently; the database is written one step at a time, each
 * step its own transaction.
 */

interface Selected {
  readonly installationKey: string
  readonly jobs: Array<Job>
}

const installationKey = (job: Job) => `${job.installation_id}/${job.entity_type}`

export const syncJobs = Effect.fn("Scheduler.syncJobs")(function*(state: SchedulerState, authenticate: Authenticate) {
  const db = yield* Db
  const github = yield* Github
  const settings = yield* SchedulerSettings
  const now = yield* Clock.currentTimeMillis
  const stalenessMs = Duration.toMillis(settings.timeouts.jobPollStaleness)
  const stuckQueuedMs = Duration.toMillis(settings.timeouts.stuckQueued)

  // A poll older than the threshold no longer makes a job fresh: forget it, so the memory holds one window of polls.
  for (const [id, at] of state.lastPoll) if (now - at >= stalenessMs) state.lastPoll.delete(id)
  // The database picks the stalest jobs by their webhook news; the ones we polled recently are skipped here, so
  // ask for that many more.
  const candidates = yield* db.getJobsToPoll(new Date(now - stalenessMs + 1), settings.maxJobPollsPerCycle + state.lastPoll.size)
  const lastNews = (j: Job) => Math.max(j.updated_at.getTime(), state.lastPoll.get(j.job_id) ?? Number.NEGATIVE_INFINITY)
  const stale = candidates
    .filter((j) => isStale(j, state.lastPoll.get(j.job_id), now, stalenessMs))
    .sort((a, b) => lastNews(a) - lastNews(b) || a.job_id - b.job_id)

  // Oldest news first, within each installation's allowance and the cycle's cap.
  const allowance = new Map<string, number>()
  const selected = new Map<string, Selected>()
  let total = 0
  for (const job of stale) {
    if (total >= settings.maxJobPollsPerCycle) break
    const key = installationKey(job)
    if (!allowance.has(key)) {
      const budget = Option.getOrUndefined(yield* github.rateLimit(job.installation_id))
      allowance.set(key, pollAllowance(budget, settings.budgetReserveShare, now, settings.maxJobPollsPerCycle))
    }
    const left = allowance.get(key)!
    if (left <= 0) continue
    allowance.set(key, left - 1)
    const group = selected.get(key) ?? { installationKey: key, jobs: [] }
    group.jobs.push(job)
    selected.set(key, group)
    total++
  }
  const starved = [...allowance.entries()].filter(([, n]) => n <= 0).map(([k]) => k)
  if (starved.length > 0) {
    yield* Effect.logInfo("job polls held back to keep the installations' budget reserve").pipe(
      Effect.annotateLogs({ installations: starved.join(",") })
    )
  }

  // Authenticate once per installation. A 404 means the installation is gone: its jobs will never get a runner.
  const writes: Array<{ readonly job: Job; readonly action: JobSyncAction }> = []
  const toPoll: Array<Job> = []
  for (const group of selected.values()) {
    const first = group.jobs[0]!
    const auth = yield* Effect.either(authenticate({
      installationId: first.installation_id,
      entityType: first.entity_type,
      entityId: first.entity_id,
      entityName: first.entity_name,
      repoFullName: first.repo_full_name,
      jobId: first.job_id
    }))
    if (Either.isRight(auth)) toPoll.push(...group.jobs)
    else if (auth.left._tag === "GithubNotFound") {
      for (const job of group.jobs) writes.push({ job, action: { _tag: "MarkFailed", info: installationNotFoundInfo(job) } })
    }
  }

  // Ask GitHub concurrently, then decide.
  const answers = yield* Effect.forEach(
    toPoll,
    (job) =>
      github.getJob({ installationId: job.installation_id, entityType: job.entity_type }, job.repo_full_name, job.job_id).pipe(
        Effect.map((gh): { readonly _tag: "Job"; readonly job: GithubJob } => ({ _tag: "Job", job: gh })),
        Effect.catchAll((error: GithubError) => Effect.succeed({ _tag: "Error" as const, error })),
        Effect.map((answer) => ({ job, answer }))
      ),
    { concurrency: settings.githubConcurrency }
  )
  for (const job of toPoll) state.lastPoll.set(job.job_id, now)

  const probes: Array<{ readonly job: Job; readonly runId: number }> = []
  for (const { answer, job } of answers) {
    const action = decideJobSync(job, answer, now, stuckQueuedMs)
    if (answer._tag === "Error" && answer.error._tag !== "GithubNotFound") {
      yield* Effect.logWarning("job poll failed").pipe(Effect.annotateLogs({ ...jobLogFields(job), error: answer.error.message }))
    }
    if (action._tag === "ProbeRun") probes.push({ job, runId: action.runId })
    else if (action._tag !== "Nothing") writes.push({ job, action })
  }
  const probed = yield* Effect.forEach(
    probes,
    ({ job, runId }) =>
      github.getRun({ installationId: job.installation_id, entityType: job.entity_type }, job.repo_full_name, runId).pipe(
        // A failed probe changes nothing: the job is probed again when its news is stale again.
        Effect.map((run) => ({ job, action: decideRunProbe(job, runId, run) })),
        Effect.catchAll(() => Effect.succeed({ job, action: { _tag: "Nothing", why: "run probe failed" } as JobSyncAction }))
      ),
    { concurrency: settings.githubConcurrency }
  )
  for (const p of probed) if (p.action._tag !== "Nothing") writes.push(p)

  // Apply, one transaction per job, so one failed write undoes only itself.
  for (const { action, job } of writes) {
    const write = applyAction(db, job.job_id, action)
    const result = yield* Effect.either(db.step(write))
    if (Either.isLeft(result)) {
      yield* Effect.logError("job sync could not record a transition").pipe(
        Effect.annotateLogs({ ...jobLogFields(job), action: action._tag, error: result.left.message })
      )
      continue
    }
    if (result.right) {
      yield* Effect.logInfo("job reconciled with GitHub").pipe(Effect.annotateLogs({ ...jobLogFields(job), action: action._tag }))
    }
  }
})

const applyAction = (db: Db["Type"], jobId: number, action: JobSyncAction) => {
  switch (action._tag) {
    case "MarkRunning":
      return Effect.map(db.markJobRunning(jobId, action.runnerName), (t) => t.found && t.changed)
    case "MarkCompleted":
      return Effect.map(db.markJobCompleted(jobId, action.runnerName), (t) => t.found && t.changed)
    case "MarkFailed":
      return Effect.map(db.markJobFailed(jobId, action.info), (t) => t.found && t.changed)
    case "Nothing":
    case "ProbeRun":
      return Effect.succeed(false)
  }
}
