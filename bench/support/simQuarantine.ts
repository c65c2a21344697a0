import { Duration, Effect, Layer, Logger, Option, Schema, TestClock, TestContext } from "effect"
import { DbMemory } from "../../layers/db/memory.ts"
import { GithubMemory, GithubMemoryControl } from "../../layers/github/memory.ts"
import { KubeMemory, KubeMemoryControl } from "../../layers/kube/memory.ts"
import { defaultRunnerConfigInput, RunnerConfig } from "../../src/domain/RunnerConfig.ts"
import { runCycle } from "../../src/scheduler/cycle.ts"
import { SchedulerSettingsLive } from "../../src/scheduler/settings.ts"
import { makeSchedulerState } from "../../src/scheduler/state.ts"
import { Db } from "../../src/services/Db.ts"

/*
 * What quarantine buys: 4 boards of one slot, one of them bad (its runners never register: a broken kernel, no
 * network), and a backlog of jobs of 5 minutes each. The scheduler cycle runs on the in-memory layers under
 * TestClock, every 30 s; a runner on a good board takes a queued job at once and finishes it 5 minutes later. The
 * same load runs with the default quarantine (3 failures within 1 h, 1 h probation) and with quarantine off.
 */

export interface QuarantineLoad {
  readonly boards: number
  readonly jobs: number
  readonly jobMinutes: number
}

export const QUARANTINE_LOAD: QuarantineLoad = { boards: 4, jobs: 200, jobMinutes: 5 }

export interface QuarantineResult {
  readonly quarantine: boolean
  readonly meanWaitMinutes: number
  readonly maxWaitMinutes: number
  readonly failedWorkers: number
  readonly failedOnBadBoard: number
  readonly quarantines: number
  readonly makespanMinutes: number
  readonly served: number
}

const ORG = { id: 1001, login: "acme", installation: 5001 }
const STEP_MS = 30_000

export const runQuarantine = (quarantine: boolean, load: QuarantineLoad) =>
  Effect.gen(function*() {
    const db = yield* Db
    const gh = yield* GithubMemoryControl
    const kube = yield* KubeMemoryControl
    yield* gh.addInstallation({ id: ORG.installation, account: { login: ORG.login, type: "Organization", id: ORG.id } })
    const cycle = runCycle(yield* makeSchedulerState)
    const queuedAt = new Map<number, number>()
    const startedAt = new Map<number, number>()
    const runningSince = new Map<string, { readonly job: number; readonly at: number }>()
    for (let id = 1; id <= load.jobs; id++) {
      const job = {
        job_id: id,
        provider: "github" as const,
        entity_id: ORG.id,
        entity_name: ORG.login,
        entity_type: "Organization" as const,
        repo_full_name: "acme/app",
        installation_id: ORG.installation,
        job_labels: ["ubuntu-24.04-riscv"],
        k8s_pool: "scw-em-rv1",
        k8s_image: "riscv-runner:ubuntu-24.04-staging",
        html_url: null
      }
      yield* gh.createRun({ id: id + 1_000_000, repo: job.repo_full_name, status: "queued" })
      yield* gh.createJob({ id, repo: job.repo_full_name, runId: id + 1_000_000, labels: job.job_labels })
      yield* db.addJob(job)
      queuedAt.set(id, 0)
    }
    let now = 0
    const limit = 48 * 3_600_000
    while (startedAt.size < load.jobs || runningSince.size > 0) {
      if (now > limit) break
      yield* TestClock.setTime(now)
      yield* cycle
      yield* kube.reconcile
      for (const p of yield* kube.pods) {
        // A runner on a good board finishes its job after the job's minutes; on the bad one it never connects.
        const running = runningSince.get(p.name)
        if (running !== undefined && now - running.at >= load.jobMinutes * 60_000) {
          yield* gh.completeJob(running.job, "success")
          yield* kube.finishPod(p.name, 0)
          runningSince.delete(p.name)
          continue
        }
        if (p.phase !== "Running" || p.nodeName === "board-1" || runningSince.has(p.name)) continue
        const runner = yield* gh.registerRunnerFromJit(p.request.jitConfig)
        if (Option.isNone(runner)) continue
        const job = yield* gh.assignQueuedJob(p.name)
        if (Option.isSome(job) && !startedAt.has(job.value.id)) {
          startedAt.set(job.value.id, now)
          runningSince.set(p.name, { job: job.value.id, at: now })
        }
      }
      now += STEP_MS
    }
    const workers = (yield* db.listWorkers({ page: 0, perPage: 100_000 })).rows
    const failed = workers.filter((w) => w.status === "failed")
    const waits = [...startedAt].map(([id, at]) => (at - queuedAt.get(id)!) / 60_000)
    return {
      quarantine,
      meanWaitMinutes: waits.reduce((a, b) => a + b, 0) / Math.max(1, waits.length),
      maxWaitMinutes: Math.max(0, ...waits),
      failedWorkers: failed.length,
      failedOnBadBoard: failed.filter((w) => w.k8s_node === "board-1").length,
      quarantines: (yield* db.listBoardEvents(1000)).filter((e) => e.kind === "quarantined").length,
      makespanMinutes: now / 60_000,
      served: startedAt.size
    } satisfies QuarantineResult
  }).pipe(
    Effect.provide(Layer.mergeAll(
      DbMemory,
      GithubMemory,
      KubeMemory({
        tick: null,
        nodes: Array.from({ length: load.boards }, (_, i) => ({ name: `board-${i + 1}`, pool: "scw-em-rv1", slots: 1 }))
      }),
      SchedulerSettingsLive({
        runnerConfig: Schema.decodeUnknownSync(RunnerConfig)({
          ...defaultRunnerConfigInput,
          entities: {},
          quarantine: quarantine ? { after: 3, withinMinutes: 60, probationMinutes: 60 } : null
        }),
        prod: false,
        timeouts: { jobPollStaleness: Duration.seconds(30) }
      })
    )),
    Effect.provide(TestContext.TestContext),
    // The scheduler's logs are not the figures; printing them would cost more than the cycles.
    Effect.provide(Logger.replace(Logger.defaultLogger, Logger.none))
  )
