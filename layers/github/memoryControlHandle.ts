import { Clock, Effect, HashMap, HashSet, Option, Redacted, Ref } from "effect"
import type { CallCounter } from "./callCounter.ts"
import type { GithubMemoryControlShape, MemoryJob, MemoryRunner, RedeliveryRequest } from "./memoryControl.ts"
import {
  addGroup,
  addRunnerTo,
  bumpJob,
  bumpRun,
  findRunnerByName,
  finishRunner,
  jobView,
  ownerOf,
  putJob,
  putRun,
  type RunnerRecord,
  runnerView,
  same,
  snapshotOf,
  type State,
  updateRunner
} from "./memoryState.ts"

const maxDeliveries = 50_000

/**
 * The control handle over the in-memory GitHub's state: the world's side of GitHub (what people, runner
 * processes and GitHub itself do), never through the API, so it costs no calls and no budget.
 */
export const makeControlHandle = (
  state: Ref.Ref<State>,
  counter: CallCounter,
  defaultLimit: number,
  redeliveryListeners: Ref.Ref<ReadonlyArray<(request: RedeliveryRequest) => Effect.Effect<void>>>
): GithubMemoryControlShape => {
  const update = (f: (s: State) => State) => Ref.update(state, f)
  return {
    addInstallation: (installation, opts) =>
      update((s) => ({
        ...s,
        installations: HashMap.set(s.installations, installation.id, {
          installation,
          app: opts?.app ?? (installation.account.type === "User" ? "User" : "Organization")
        })
      })),
    removeInstallation: (installationId) =>
      update((s) => ({
        ...s,
        installations: HashMap.remove(s.installations, installationId),
        // Revoked, not forgotten: `issuedSecrets` still lists them for leak scans.
        tokens: HashMap.map(s.tokens, (t) => (t.installationId === installationId ? { ...t, expiresAt: 0 } : t))
      })),
    addRunnerGroup: (org, name) =>
      Ref.modify(state, (s) => {
        const [group, next] = addGroup(s, org, { name, visibility: "all", allowsPublicRepositories: true })
        return [group.id, next]
      }),
    addRunner: (scope, runner) =>
      Ref.modify(state, (s) => {
        const [record, next] = addRunnerTo(s, scope, {
          name: runner.name,
          status: runner.status ?? "online",
          busy: runner.busy ?? false,
          labels: runner.labels ?? [],
          stuckBusy: false
        })
        return [record.id, next]
      }),
    registerRunnerFromJit: (jitConfig) =>
      Ref.modify(state, (s): readonly [Option.Option<MemoryRunner>, State] => {
        const text = typeof jitConfig === "string" ? jitConfig : Redacted.value(jitConfig)
        const runner = Option.flatMap(HashMap.get(s.jits, text), (id) => HashMap.get(s.runners, id))
        if (Option.isNone(runner) || HashSet.has(s.neverRegister, runner.value.name)) return [Option.none(), s]
        const online: RunnerRecord = { ...runner.value, status: "online" }
        return [Option.some(runnerView(online)), { ...s, runners: HashMap.set(s.runners, online.id, online) }]
      }),
    neverRegister: (runnerName) => update((s) => ({ ...s, neverRegister: HashSet.add(s.neverRegister, runnerName) })),
    setRunnerStatus: (runnerName, status) => update((s) => updateRunner(s, runnerName, (r) => ({ ...r, status }))),
    setRunnerBusy: (runnerName, busy) =>
      update((s) => updateRunner(s, runnerName, (r) => ({ ...r, busy: r.stuckBusy || busy }))),
    setRunnerStuckBusy: (runnerName, stuck) =>
      update((s) => updateRunner(s, runnerName, (r) => ({ ...r, stuckBusy: stuck, busy: stuck ? true : r.busy }))),
    finishRunner: (runnerName) => update((s) => finishRunner(s, runnerName)),
    removeRunner: (runnerName) => update((s) => updateRunner(s, runnerName, () => undefined)),
    createJob: (job) =>
      update((s) =>
        putJob(s, {
          id: job.id,
          repo: job.repo,
          labels: job.labels ?? [],
          job: {
            status: job.status ?? "queued",
            conclusion: job.conclusion ?? null,
            runner_name: job.runnerName ?? null,
            run_id: job.runId
          }
        })
      ),
    setJobStatus: (jobId, u) =>
      update((s) =>
        bumpJob(s, jobId, (j) => ({
          ...j,
          job: {
            ...j.job,
            status: u.status,
            conclusion: u.conclusion === undefined ? j.job.conclusion : u.conclusion,
            runner_name: u.runnerName === undefined ? j.job.runner_name : u.runnerName
          }
        }))
      ),
    assignQueuedJob: (runnerName) =>
      Ref.modify(state, (s): readonly [Option.Option<MemoryJob>, State] => {
        const runner = Option.getOrUndefined(findRunnerByName(s, runnerName))
        if (runner === undefined || runner.status !== "online" || runner.busy) return [Option.none(), s]
        const carries = new Set(runner.labels.map((l) => l.toLowerCase()))
        const candidates = Array.from(HashMap.values(s.jobs))
          .filter((j) =>
            j.job.status === "queued"
            && (runner.scope._tag === "Org"
              ? same(ownerOf(j.repo), runner.scope.org)
              : same(j.repo, runner.scope.repo))
            && j.labels.every((l) => carries.has(l.toLowerCase()))
          )
          .sort((a, b) => a.id - b.id)
        const job = candidates[0]
        if (job === undefined) return [Option.none(), s]
        const s1 = bumpJob(
          s,
          job.id,
          (j) => ({ ...j, job: { ...j.job, status: "in_progress", runner_name: runnerName } })
        )
        const s2 = updateRunner(s1, runnerName, (r) => ({ ...r, busy: true }))
        return [Option.map(HashMap.get(s2.jobs, job.id), jobView), s2]
      }),
    completeJob: (jobId, conclusion) =>
      update((s) => {
        const runnerName = Option.getOrUndefined(HashMap.get(s.jobs, jobId))?.job.runner_name
        const s1 = bumpJob(s, jobId, (j) => ({ ...j, job: { ...j.job, status: "completed", conclusion } }))
        return runnerName ? finishRunner(s1, runnerName) : s1
      }),
    createRun: (run) =>
      update((s) =>
        putRun(s, {
          id: run.id,
          repo: run.repo,
          run: { status: run.status ?? "queued", conclusion: run.conclusion ?? null }
        })
      ),
    setRunStatus: (runId, u) =>
      update((s) =>
        bumpRun(s, runId, (r) => ({
          ...r,
          run: { status: u.status, conclusion: u.conclusion === undefined ? r.run.conclusion : u.conclusion }
        }))
      ),
    setRateLimit: (installationId, b) =>
      update((s) => {
        const limit = b.limit ?? Option.getOrUndefined(HashMap.get(s.budgets, installationId))?.limit ?? defaultLimit
        return {
          ...s,
          budgets: HashMap.set(s.budgets, installationId, {
            limit,
            remaining: b.remaining,
            resetAt: b.resetAt.getTime()
          })
        }
      }),
    injectFault: (operation, fault, opts) =>
      update((s) => ({
        ...s,
        faults: [...s.faults, {
          operation,
          fault,
          remaining: opts?.times ?? Number.POSITIVE_INFINITY,
          probability: opts?.probability ?? 1
        }]
      })),
    clearFaults: update((s) => ({ ...s, faults: [] })),
    recordDelivery: (attempt) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) =>
        Ref.modify(state, (s): readonly [number, State] => {
          const id = s.nextId
          // The log keeps the newest attempts; GitHub redelivers only the last three days anyway.
          const kept = s.deliveries.length >= maxDeliveries ? s.deliveries.slice(-maxDeliveries + 1) : s.deliveries
          return [id, { ...s, nextId: id + 1, deliveries: [...kept, { ...attempt, id, deliveredAt: now }] }]
        })),
    deliveries: Ref.get(state).pipe(Effect.map((s) => s.deliveries)),
    onRedelivery: (listener) => Ref.update(redeliveryListeners, (ls) => [...ls, listener]),
    callCounts: counter.snapshot,
    snapshot: Ref.get(state).pipe(Effect.map(snapshotOf)),
    issuedSecrets: Ref.get(state).pipe(Effect.map((s) => [...HashMap.keys(s.tokens), ...HashMap.keys(s.jits)]))
  }
}
