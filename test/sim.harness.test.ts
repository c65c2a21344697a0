import { Effect, Option, Schema } from "effect"
import { describe, expect, it } from "vitest"
import { defaultRunnerConfigInput, RunnerConfig } from "../src/domain/RunnerConfig.ts"
import { STAGING_PREFIX } from "../src/scheduler/settings.ts"
import { type Harness, withHarness } from "../bench/support/simHarness.ts"
import { describeFailure } from "../bench/support/simScenario.ts"

/* The simulation's checks must catch what they claim to catch: each case breaks one invariant on purpose. */

const config = Schema.decodeUnknownSync(RunnerConfig)({
  ...defaultRunnerConfigInput,
  entities: { "1001": { name: "acme", maxWorkers: 1 } }
})
const run = (body: (h: Harness) => Effect.Effect<unknown, unknown, never>) =>
  Effect.runPromise(withHarness({ nodes: [{ name: "n1", pool: "scw-em-rv1", slots: 4 }], runnerConfig: config }, body) as Effect.Effect<unknown>)

const worker = (name: string) => ({
  pod_name: `${STAGING_PREFIX}${name}`,
  provider: "github" as const,
  entity_id: 1001,
  entity_name: "acme",
  entity_type: "Organization" as const,
  installation_id: 1,
  repo_full_name: null,
  job_labels: ["ubuntu-24.04-riscv"],
  k8s_pool: "scw-em-rv1",
  k8s_image: "img"
})

describe("the simulation's checks", () => {
  it("flag a worker provisioned without demand", () =>
    run((h) =>
      Effect.gen(function*() {
        yield* h.store.addWorker(worker("nodemand01"))
        expect(h.violations.join("\n")).toContain("supply exceeds demand")
      })
    ))

  it("flag an entity over its cap", () =>
    run((h) =>
      Effect.gen(function*() {
        yield* h.db.addWorker(worker("overcap001"))
        yield* h.db.addWorker(worker("overcap002"))
        yield* h.check
        expect(h.violations.join("\n")).toContain("entity 1001 has 2 active workers, over its cap of 1")
      })
    ))

  it("flag a JIT config in a log line, and a runner left registered", () =>
    run((h) =>
      Effect.gen(function*() {
        yield* h.world.submitJobs({ owner: "acme", durationSeconds: 60 })
        for (let i = 0; i < 4; i++) yield* h.step
        const [jit] = (yield* h.github.issuedSecrets).filter((s) => s.startsWith("ey"))
        expect(jit).toBeDefined()
        yield* Effect.logInfo(`oops ${jit}`)
        yield* h.github.addRunner({ _tag: "Repo", repo: "acme/app" }, { name: `${STAGING_PREFIX}leftover1` })
        yield* h.finalChecks
        const found = h.violations.join("\n")
        expect(found).toContain("appears in a log")
        expect(found).toContain(`GitHub runner ${STAGING_PREFIX}leftover1 leaked`)
        // and the report never prints the secret itself
        expect(found).not.toContain(jit!)
      })
    ))

  it("a crash right after a pod's creation leaves its committed row: no pod without a row, and the job still ends", () =>
    run((h) =>
      Effect.gen(function*() {
        yield* h.world.submitJobs({ owner: "acme", durationSeconds: 60 })
        // the process dies right after the pod's creation, whichever cycle (the fast path or a full one) makes it
        yield* h.armCrash(1, "createRunnerPod")
        yield* h.step
        expect(h.restarts.crashes).toBe(1)
        const pods = yield* h.kube.pods
        expect(pods).toHaveLength(1)
        // it died before it could log the provisioning: the crash did land right after the pod's creation
        expect(h.logs.filter((l) => l.includes("runner provisioned"))).toEqual([])
        const row = yield* h.db.getWorker(pods[0]!.name)
        expect(Option.isSome(row) && row.value.status).not.toBe(false)
        for (let i = 0; i < 30 && !(yield* h.settled); i++) yield* h.step
        expect(yield* h.settled).toBe(true)
        yield* h.finalChecks
        expect(h.violations).toEqual([])
      })
    ))

  it("a crash right after the worker sync lists the runner pods: the next process picks up from the rows, and the job ends", () =>
    run((h) =>
      Effect.gen(function*() {
        yield* h.world.submitJobs({ owner: "acme", durationSeconds: 60 })
        for (let i = 0; i < 5 && (yield* h.kube.pods).length === 0; i++) yield* h.step
        expect(yield* h.kube.pods).toHaveLength(1)
        // the next full cycle's listing of the cluster's runner pods is where the process dies
        yield* h.armCrash(1, "listRunnerPods")
        for (let i = 0; i < 10 && h.restarts.crashes === 0; i++) yield* h.step
        expect(h.restarts.crashes).toBe(1)
        for (let i = 0; i < 30 && !(yield* h.settled); i++) yield* h.step
        expect(yield* h.settled).toBe(true)
        yield* h.finalChecks
        expect(h.violations).toEqual([])
      })
    ))

  it("a failing seed prints itself with the one command that replays it", () => {
    const text = describeFailure(
      { seed: 7, jobs: 15 },
      { seed: 7, jobs: 15, faults: {}, boards: {}, violations: ["[t+60 s] something broke"], simulatedMinutes: 30, fingerprint: "x", logLines: 0 }
    )
    expect(text).toContain("DST seed 7")
    expect(text).toContain("replay: npm run sim:check -- --seed 7 --jobs 15 --verbose")
  })
})
