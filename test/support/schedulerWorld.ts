import { Effect, Layer, Option, Ref, Schema } from "effect"
import { GithubMemory, GithubMemoryControl } from "../../layers/github/memory.ts"
import { KubeMemory, KubeMemoryControl, type MemoryNode } from "../../layers/kube/memory.ts"
import type { NewJob } from "../../src/domain/Job.ts"
import { defaultRunnerConfigInput, RunnerConfig, type RunnerConfigInput } from "../../src/domain/RunnerConfig.ts"
import { runCycle } from "../../src/scheduler/cycle.ts"
import { SchedulerSettings, SchedulerSettingsLive, type SchedulerSettingsInput } from "../../src/scheduler/settings.ts"
import { makeSchedulerState, type SchedulerState } from "../../src/scheduler/state.ts"
import { Db } from "../../src/services/Db.ts"
import type { Github } from "../../src/services/Github.ts"
import type { Kube } from "../../src/services/Kube.ts"
import { newJob } from "./dbFixtures.ts"

/**
 * A world for scheduler tests: a Db (in memory or on PostgreSQL), the in-memory GitHub and cluster, and the
 * scheduler's settings. The cluster's kubelet runs only when a test calls `reconcile`, and time is TestClock's.
 */
export type World = Db | Github | GithubMemoryControl | Kube | KubeMemoryControl | SchedulerSettings

export interface WorldOptions {
  readonly nodes?: ReadonlyArray<MemoryNode>
  readonly config?: Partial<RunnerConfigInput>
  readonly settings?: Omit<Partial<SchedulerSettingsInput>, "runnerConfig">
  /** suffixes handed out in order before the counter takes over (to force name clashes) */
  readonly suffixes?: ReadonlyArray<string>
}

export const ORG = { id: 1001, login: "acme", installation: 5001 } as const
export const USER = { id: 3003, login: "jane", installation: 7007 } as const

export const testRunnerConfig = (over: Partial<RunnerConfigInput> = {}): RunnerConfig =>
  Schema.decodeUnknownSync(RunnerConfig)({ ...defaultRunnerConfigInput, entities: {}, ...over })

/** Deterministic runner suffixes: the given ones first, then `t00000001`, `t00000002`, ... */
const suffixLayer = (given: ReadonlyArray<string>) =>
  Effect.map(Ref.make(0), (n) =>
    Ref.getAndUpdate(n, (i) => i + 1).pipe(
      Effect.map((i) => given[i] ?? `t${String(i + 1).padStart(8, "0")}`)
    ))

export const worldLayer = (db: Layer.Layer<Db>, options: WorldOptions = {}): Layer.Layer<World> => {
  const settings = Layer.unwrapEffect(Effect.map(suffixLayer(options.suffixes ?? []), (runnerSuffix) =>
    SchedulerSettingsLive({
      runnerConfig: testRunnerConfig(options.config),
      prod: false,
      ...options.settings,
      runnerSuffix
    })))
  return Layer.mergeAll(
    db,
    GithubMemory,
    KubeMemory({ tick: null, nodes: options.nodes ?? [{ name: "node-1", pool: "scw-em-rv1", slots: 4 }] }),
    settings
  )
}

/** A scheduler process's memory, one per test: `cycle` runs one locked cycle with it. */
export const makeCycle = Effect.map(makeSchedulerState, (state: SchedulerState) => runCycle(state))

/** Installs the org app on `acme` and the personal app on `jane`. */
export const installBoth = Effect.gen(function*() {
  const gh = yield* GithubMemoryControl
  yield* gh.addInstallation({ id: ORG.installation, account: { login: ORG.login, type: "Organization", id: ORG.id } })
  yield* gh.addInstallation({ id: USER.installation, account: { login: USER.login, type: "User", id: USER.id } })
})

export const userJob = (jobId: number, over: Partial<NewJob> = {}): NewJob =>
  newJob(jobId, {
    entity_id: USER.id,
    entity_name: USER.login,
    entity_type: "User",
    installation_id: USER.installation,
    repo_full_name: `${USER.login}/tool`,
    ...over
  })

/**
 * A job as the webhook stores it, and as GitHub knows it: queued, in a run of its own (run id = job id + 1e6).
 */
export const queueJob = (job: NewJob) =>
  Effect.gen(function*() {
    const db = yield* Db
    const gh = yield* GithubMemoryControl
    yield* gh.createRun({ id: job.job_id + 1_000_000, repo: job.repo_full_name, status: "queued" })
    yield* gh.createJob({ id: job.job_id, repo: job.repo_full_name, runId: job.job_id + 1_000_000, labels: job.job_labels })
    yield* db.addJob(job)
  })

/**
 * The kubelet's pass, then what a runner process does in a pod that started: it connects with its JIT config
 * (its GitHub runner goes online) and, if GitHub has a queued job for it, takes the job. Returns the pods whose
 * runner came online.
 */
export const startRunners = (options: { readonly takeJobs?: boolean } = {}) =>
  Effect.gen(function*() {
    const kube = yield* KubeMemoryControl
    const gh = yield* GithubMemoryControl
    yield* kube.reconcile
    const online: Array<string> = []
    for (const pod of yield* kube.pods) {
      if (pod.phase !== "Running") continue
      const runner = yield* gh.registerRunnerFromJit(pod.request.jitConfig)
      if (Option.isNone(runner)) continue
      online.push(pod.name)
      if (options.takeJobs !== false) yield* gh.assignQueuedJob(pod.name)
    }
    return online
  })

export const podNames = Effect.flatMap(KubeMemoryControl, (k) => k.pods).pipe(Effect.map((ps) => ps.map((p) => p.name)))

export const workerRows = Effect.flatMap(Db, (db) => db.listWorkers({ page: 0, perPage: 1000 })).pipe(
  Effect.map((p) => [...p.rows].reverse())
)

export const githubRunners = Effect.flatMap(GithubMemoryControl, (g) => g.snapshot).pipe(Effect.map((s) => s.runners))
