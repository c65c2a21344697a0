/**
 * `npm run bench:provision-steps`: how many Effect steps provisioning one runner takes, ours apart from the
 * in-memory twins' (GitHub's server answering, the cluster), counted by a Supervisor with op supervision on. A
 * count, not a time, so it does not move with the machine's load: the figure to compare two trees by on a busy
 * machine, beside `bench:scheduler`'s CPU times.
 *
 * 500 runners for 200 organisations at 64 in flight, as a burst provisions them (`provisioner` from
 * `src/scheduler/demandMatch.ts`, no database: the names are given): first on a fresh GitHub, where each
 * organisation's first runner also fetches its installation token and looks up and creates its runner group, then
 * again on the same GitHub, every token and group cached (the steady cost of a runner). Logs below Warning are
 * filtered, as in `bench:scheduler`.
 */
import { Console, Context, Effect, Layer, Logger, LogLevel, RuntimeFlags, RuntimeFlagsPatch, Supervisor } from "effect"
import { DbMemory } from "../layers/db/memory.ts"
import { GithubMemoryControl, GithubMemoryWith } from "../layers/github/memory.ts"
import { KubeMemory } from "../layers/kube/memory.ts"
import type { Job } from "../src/domain/Job.ts"
import { defaultRunnerConfig } from "../src/domain/RunnerConfig.ts"
import { makeCycleAuthenticator } from "../src/scheduler/auth.ts"
import { provisioner } from "../src/scheduler/demandMatch.ts"
import { SchedulerSettings, SchedulerSettingsLive } from "../src/scheduler/settings.ts"
import { Github } from "../src/services/Github.ts"
import { Kube } from "../src/services/Kube.ts"

const RUNNERS = 500
const ORGS = 200

// Steps taken while a twin answers are the twins'; nested twin calls count once.
let inTwin = 0
const twin = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.suspend(() => {
    inTwin++
    return Effect.ensuring(effect, Effect.sync(() => void inTwin--))
  })
const twinService = <S extends object>(service: S): S =>
  Object.fromEntries(Object.entries(service).map(([key, value]) => {
    if (Effect.isEffect(value)) return [key, twin(value)]
    if (typeof value !== "function") return [key, value]
    return [key, (...args: Array<unknown>) => {
      const result = (value as (...a: Array<unknown>) => unknown)(...args)
      return Effect.isEffect(result) ? twin(result) : result
    }]
  })) as S

const counts = { ours: 0, twins: 0 }
class StepCounter extends Supervisor.AbstractSupervisor<void> {
  readonly value = Effect.void
  override onEffect() {
    if (inTwin > 0) counts.twins++
    else counts.ours++
  }
}

const jobOf = (i: number): Job => ({
  job_id: i + 1,
  status: "pending",
  failure_info: null,
  provider: "github",
  entity_id: 100_000 + (i % ORGS),
  entity_name: `org-${i % ORGS}`,
  entity_type: "Organization",
  repo_full_name: `org-${i % ORGS}/app`,
  installation_id: 500_000 + (i % ORGS),
  job_labels: ["ubuntu-24.04-riscv"],
  k8s_pool: "scw-em-rv1",
  k8s_image: "riscv-runner:ubuntu-24.04-staging",
  k8s_pod: null,
  html_url: null,
  created_at: new Date(),
  updated_at: new Date()
})

const program = Effect.gen(function*() {
  const world = yield* Layer.build(Layer.mergeAll(
    DbMemory,
    GithubMemoryWith({ meterServer: twin }),
    KubeMemory({ tick: null, nodes: Array.from({ length: 2 * RUNNERS }, (_, i) => ({ name: `node-${i}`, pool: "scw-em-rv1", slots: 1 })) }),
    SchedulerSettingsLive({ runnerConfig: defaultRunnerConfig, prod: false })
  ))
  const github = Context.get(world, GithubMemoryControl)
  for (let e = 0; e < ORGS; e++) {
    yield* github.addInstallation({ id: 500_000 + e, account: { login: `org-${e}`, type: "Organization", id: 100_000 + e } })
  }
  const kube = twinService(Context.get(world, Kube))
  const authenticate = yield* makeCycleAuthenticator((effect) => effect).pipe(Effect.provide(Context.add(world, Kube, kube)))
  const provision = provisioner({ github: Context.get(world, Github), kube, settings: Context.get(world, SchedulerSettings), authenticate })
  const jobs = Array.from({ length: RUNNERS }, (_, i) => jobOf(i))
  const rounds = ["fresh GitHub (each organisation's first runner fetches its token and group)", "everything cached"]
  for (const [r, round] of rounds.entries()) {
    counts.ours = 0
    counts.twins = 0
    const outcomes = yield* Effect.forEach(jobs, (job) => provision(job, `rise-riscv-runner-staging-${r}-${job.job_id}`), { concurrency: 64 }).pipe(
      Effect.supervised(new StepCounter()),
      Effect.withRuntimeFlagsPatch(RuntimeFlagsPatch.enable(RuntimeFlags.OpSupervision))
    )
    const failed = outcomes.filter((o) => o._tag !== "provisioned").length
    yield* Console.log(
      `${round}: ${(counts.ours / RUNNERS).toFixed(1)} Effect steps per runner of ours, ${(counts.twins / RUNNERS).toFixed(1)} of the twins` +
        (failed > 0 ? ` (${failed} failed)` : "")
    )
  }
}).pipe(Effect.scoped, Effect.provide(Logger.minimumLogLevel(LogLevel.Warning)))

Effect.runPromise(program)
