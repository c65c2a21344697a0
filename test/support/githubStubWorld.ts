import { Effect, Redacted } from "effect"
import type { EntityType } from "../../src/domain/Entity.ts"
import type { MemoryRunner, MemoryRunnerGroup } from "../../layers/github/memory.ts"
import type { GithubStubState } from "../../bench/support/githubStub.ts"
import type { GithubWorldShape } from "./githubWorld.ts"

/** The stub's state seen as a contract world. `privateKeys` are listed among the secrets. */
export const githubWorldFromStub = (state: GithubStubState, privateKeys: ReadonlyArray<string>): GithubWorldShape => ({
  name: "stub",
  addInstallation: (installation, options) =>
    Effect.sync(() => {
      const serves: EntityType = options?.app ?? (installation.account.type === "User" ? "User" : "Organization")
      state.installations.set(installation.id, { installation, appId: state.appFor(serves).appId })
    }),
  removeInstallation: (installationId) =>
    Effect.sync(() => {
      state.installations.delete(installationId)
      for (const t of state.tokens.values()) if (t.installationId === installationId) t.expiresAt = 0
    }),
  addRunnerGroup: (org, name) =>
    Effect.sync(() => {
      const group: MemoryRunnerGroup = { org, id: state.id(), name, visibility: "all", allowsPublicRepositories: true }
      state.groupsOf(org).push(group)
      return group.id
    }),
  addRunner: (scope, runner) => Effect.sync(() => state.addRunner(scope, runner).id),
  registerRunnerFromJit: (jit) =>
    Effect.sync(() => {
      const runner = state.runners.get(state.jits.get(Redacted.value(jit)) ?? -1)
      if (runner === undefined) return false
      runner.status = "online"
      return true
    }),
  setRunnerBusy: (name, busy) =>
    Effect.sync(() => {
      for (const r of state.runners.values()) if (r.name === name) r.busy = busy
    }),
  createJob: (job) =>
    Effect.sync(() => {
      state.jobs.set(job.id, {
        repo: job.repo,
        status: job.status ?? "queued",
        conclusion: job.conclusion ?? null,
        runner_name: job.runnerName ?? null,
        run_id: job.runId,
        labels: job.labels ?? ["ubuntu-24.04-riscv"]
      })
    }),
  setJobStatus: (jobId, u) =>
    Effect.sync(() => {
      const job = state.jobs.get(jobId)
      if (job === undefined) return
      job.status = u.status
      if (u.conclusion !== undefined) job.conclusion = u.conclusion
      if (u.runnerName !== undefined) job.runner_name = u.runnerName
    }),
  createRun: (run) =>
    Effect.sync(() => {
      state.runs.set(run.id, { repo: run.repo, status: run.status ?? "queued", conclusion: run.conclusion ?? null })
    }),
  setRateLimit: (installationId, b) =>
    Effect.sync(() => {
      const limit = b.limit ?? state.budgets.get(installationId)?.limit ?? 5000
      state.budgets.set(installationId, { limit, remaining: b.remaining, resetAt: b.resetAt.getTime() })
    }),
  recordDelivery: (attempt) =>
    Effect.sync(() => {
      const id = state.id()
      state.deliveries.push({ ...attempt, id, deliveredAt: Date.now(), appId: state.appFor(attempt.app).appId })
      return id
    }),
  redeliveryRequests: Effect.sync(() =>
    state.redeliveries.map((r) => ({
      app: state.apps.find((a) => a.appId === r.appId)!.serves,
      attemptId: r.attemptId
    }))
  ),
  setRunStatus: (runId, u) =>
    Effect.sync(() => {
      const run = state.runs.get(runId)
      if (run === undefined) return
      run.status = u.status
      if (u.conclusion !== undefined) run.conclusion = u.conclusion
    }),
  tokenRequests: Effect.sync(() => state.tokenRequests),
  runnerGroups: (org) => Effect.sync(() => [...state.groupsOf(org)]),
  runners: Effect.sync(() =>
    [...state.runners.values()].sort((a, b) => a.id - b.id).map((r): MemoryRunner => ({ ...r, stuckBusy: false }))
  ),
  secrets: Effect.sync(() => [...privateKeys, ...state.tokens.keys(), ...state.jits.keys()]),
  specViolations: Effect.sync(() => [...state.violations])
})
