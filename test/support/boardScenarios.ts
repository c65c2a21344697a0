import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Option, TestClock } from "effect"
import { GithubMemoryControl } from "../../layers/github/memory.ts"
import { KubeMemoryControl } from "../../layers/kube/memory.ts"
import { STAGING_PREFIX } from "../../src/scheduler/settings.ts"
import { Db } from "../../src/services/Db.ts"
import { newJob } from "./dbFixtures.ts"
import type { WorldRunner } from "./schedulerScenarios.ts"
import { githubRunners, installBoth, makeCycle, queueJob, startRunners, type World, type WorldOptions } from "./schedulerWorld.ts"

/**
 * Scenarios of the boards a scheduler trusts: unusable boards are no capacity, a runner on an unreachable board
 * is failed as `node_unreachable`, and boards that fail runner after runner are quarantined. Run against every
 * Db implementation, like the other scheduler scenarios.
 */

const name = (n: number) => `${STAGING_PREFIX}t${String(n).padStart(8, "0")}`
const at = (seconds: number) => TestClock.setTime(seconds * 1000)
const worker = (pod: string) => Effect.flatMap(Db, (db) => db.getWorker(pod)).pipe(Effect.map(Option.getOrThrow))
const pods = Effect.flatMap(KubeMemoryControl, (k) => k.pods)
const twoBoards: WorldOptions = {
  nodes: [{ name: "n1", pool: "scw-em-rv1", slots: 1 }, { name: "n2", pool: "scw-em-rv1", slots: 1 }]
}

export const boardScenarios = (label: string, run: WorldRunner) =>
  describe(`board scenarios: ${label}`, () => {
    const scenario = <A, E>(title: string, body: Effect.Effect<A, E, World>, options?: WorldOptions) =>
      it.effect(title, () => run(Effect.asVoid(body), options))

    scenario("an unusable board is no capacity: no pod is created for it", Effect.gen(function*() {
      yield* installBoth
      const kube = yield* KubeMemoryControl
      const cycle = yield* makeCycle
      yield* kube.setNodeHealth("n1", { unschedulable: true })
      yield* kube.setNodeHealth("n2", { ready: "Unknown" })
      yield* queueJob(newJob(1))
      yield* cycle
      expect(yield* pods).toEqual([])
      yield* kube.setNodeHealth("n2", { ready: "True" })
      yield* cycle
      yield* kube.reconcile
      expect((yield* pods).map((p) => [p.name, p.nodeName])).toEqual([[name(1), "n2"]])
    }), twoBoards)

    scenario("a runner on a board unreachable for 5 min fails as node_unreachable; its pod goes with grace 0", Effect.gen(function*() {
      yield* installBoth
      const kube = yield* KubeMemoryControl
      const cycle = yield* makeCycle
      yield* queueJob(newJob(1))
      yield* cycle
      yield* at(10)
      // online, but no job taken yet: nothing on GitHub's side keeps it
      expect(yield* startRunners({ takeJobs: false })).toEqual([name(1)])
      yield* cycle
      const placedOn = (yield* worker(name(1))).k8s_node!
      yield* at(20)
      yield* kube.setNodeHealth(placedOn, { ready: "Unknown" })
      yield* at(319)
      yield* cycle
      expect((yield* worker(name(1))).status).toBe("running")
      yield* at(320)
      yield* cycle
      const failed = yield* worker(name(1))
      expect(failed.status).toBe("failed")
      expect(failed.failure_info).toMatchObject({
        version: 2,
        reason: "node_unreachable",
        node: { name: placedOn, conditions: [{ type: "Ready", status: "Unknown", reason: "NodeStatusUnknown" }] }
      })
      // The kubelet is gone, so only a deletion with grace 0 removes the pod; the runner went first.
      expect((yield* pods).map((p) => p.name)).not.toContain(name(1))
      expect((yield* githubRunners).map((r) => r.name)).not.toContain(name(1))
      // The job, still queued, is served on the other board.
      yield* kube.reconcile
      const other = placedOn === "n1" ? "n2" : "n1"
      expect((yield* pods).map((p) => [p.name, p.nodeName])).toEqual([[name(2), other]])
    }), { ...twoBoards, settings: { timeouts: { jobPollStaleness: Duration.hours(10) } } })

    scenario("a busy runner on an unreachable board is left alone, as GitHub says", Effect.gen(function*() {
      yield* installBoth
      const kube = yield* KubeMemoryControl
      const gh = yield* GithubMemoryControl
      const cycle = yield* makeCycle
      yield* queueJob(newJob(1))
      yield* cycle
      yield* at(10)
      yield* startRunners()
      yield* gh.setRunnerBusy(name(1), true)
      yield* cycle
      yield* kube.setNodeHealth((yield* worker(name(1))).k8s_node!, { ready: "Unknown" })
      yield* at(1000)
      yield* cycle
      expect((yield* worker(name(1))).status).toBe("running")
      expect((yield* pods).map((p) => p.name)).toContain(name(1))
    }), { ...twoBoards, settings: { timeouts: { jobPollStaleness: Duration.hours(10) } } })
  })
