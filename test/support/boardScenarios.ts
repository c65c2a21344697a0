import { describe, expect, it } from "@effect/vitest"
import { Clock, Duration, Effect, Option, TestClock } from "effect"
import { GithubMemoryControl } from "../../layers/github/memory.ts"
import { KubeMemoryControl } from "../../layers/kube/memory.ts"
import { runDemandCycle } from "../../src/scheduler/cycle.ts"
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

/**
 * The kubelet's pass, then the runners of pods that started come online and take a queued job, except on the
 * boards named bad: there the runner never connects (a broken kernel, no network).
 */
const startRunnersExceptOn = (bad: ReadonlySet<string>) =>
  Effect.gen(function*() {
    const kube = yield* KubeMemoryControl
    const gh = yield* GithubMemoryControl
    const now = yield* Clock.currentTimeMillis
    // Runners on good boards finish their job a minute after they started, which frees the board.
    for (const p of yield* kube.pods) {
      if (p.phase !== "Running" || p.nodeName === null || bad.has(p.nodeName)) continue
      if (p.readyTransition === null || now - p.readyTransition.getTime() < 60_000) continue
      yield* gh.finishRunner(p.name)
      yield* kube.finishPod(p.name, 0)
    }
    yield* kube.reconcile
    for (const p of yield* kube.pods) {
      if (p.phase !== "Running" || p.nodeName === null || bad.has(p.nodeName)) continue
      const runner = yield* gh.registerRunnerFromJit(p.request.jitConfig)
      if (Option.isSome(runner)) yield* gh.assignQueuedJob(p.name)
    }
  })

const boardEvents = Effect.flatMap(Db, (db) => db.listBoardEvents(100)).pipe(Effect.map((es) => [...es].reverse()))
const standing = (node: string) =>
  Effect.flatMap(Db, (db) => db.getBoardStates).pipe(Effect.map((ss) => ss.find((s) => s.node === node)))

const quarantineWorld: WorldOptions = {
  ...twoBoards,
  config: { quarantine: { after: 2, withinMinutes: 60, probationMinutes: 10 } },
  settings: { timeouts: { jobPollStaleness: Duration.hours(10) } }
}

export const boardScenarios = (label: string, run: WorldRunner) =>
  describe(`board scenarios: ${label}`, () => {
    // The quarantine scenarios run a few hundred cycles; on PostgreSQL that takes longer than the default 5 s.
    const scenario = <A, E>(title: string, body: Effect.Effect<A, E, World>, options?: WorldOptions, timeoutMs?: number) =>
      it.effect(title, () => run(Effect.asVoid(body), options), timeoutMs)

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

    scenario("a board whose runners never register is quarantined, avoided, tried again after probation, and trusted after a good trial", Effect.gen(function*() {
      yield* installBoth
      const cycle = yield* makeCycle
      const bad = new Set(["n1"])
      for (const id of [1, 2, 3]) yield* queueJob(newJob(id))
      let t = 0
      const runUntil = (until: number, stop: Effect.Effect<boolean, unknown, World> = Effect.succeed(false)) =>
        Effect.gen(function*() {
          for (; t <= until; t += 30) {
            yield* at(t)
            if (t % 150 === 0) yield* queueJob(newJob(100 + t / 150))
            yield* cycle
            yield* startRunnersExceptOn(bad)
            if (yield* stop) return
          }
        })
      const isStanding = (what: string) => Effect.map(standing("n1"), (s) => s?.state === what)

      // Two runners in a row never register on n1: quarantined, with both as evidence.
      yield* runUntil(2000, isStanding("quarantined"))
      const q = (yield* standing("n1"))!
      expect(q).toMatchObject({ pool: "scw-em-rv1", state: "quarantined", probation_seconds: 600 })
      expect(q.until!.getTime() - q.since.getTime()).toBe(600_000)
      const [first] = yield* boardEvents
      expect(first).toMatchObject({ node: "n1", kind: "quarantined", probation_seconds: 600 })
      expect(first!.evidence.map((e) => e.reason)).toEqual(["runner_never_registered", "runner_never_registered"])
      expect((yield* standing("n2"))).toBeUndefined()

      // While quarantined no pod goes to n1, and every new pod's affinity keeps it off.
      const quarantinedAt = q.since.getTime()
      yield* runUntil(quarantinedAt / 1000 + 570)
      const since = (yield* pods).filter((p) => p.creationTime.getTime() >= quarantinedAt)
      expect(since.length).toBeGreaterThan(0)
      for (const p of since) {
        expect(p.nodeName).not.toBe("n1")
        expect(p.request.avoidNodes).toEqual(["n1"])
      }

      // After the probation it is on trial and gets one runner; that one fails too: quarantined for twice as long.
      yield* runUntil(4000, Effect.map(boardEvents, (es) => es.length >= 3))
      expect((yield* boardEvents).map((e) => [e.kind, e.probation_seconds])).toEqual([
        ["quarantined", 600],
        ["released", null],
        ["quarantined", 1200]
      ])

      // Repaired: after the longer probation its trial runner runs and ends well, and the board is trusted again.
      bad.clear()
      const finishOnN1 = Effect.gen(function*() {
        return yield* isStanding("healthy")
      })
      yield* runUntil(8000, finishOnN1)
      expect((yield* boardEvents).map((e) => e.kind)).toEqual(["quarantined", "released", "quarantined", "released", "trial_passed"])
      expect(yield* standing("n1")).toMatchObject({ state: "healthy" })
    }), quarantineWorld, 120_000)

    scenario("the fast path honours quarantine: a quarantined board gets no runner from it, a released one does", Effect.gen(function*() {
      yield* installBoth
      const db = yield* Db
      const kube = yield* KubeMemoryControl
      yield* at(100)
      // n1 stands quarantined, as a full cycle's board review records it; the fast path only reads the standing
      const since = new Date(100_000)
      yield* db.recordBoardTransition(
        { node: "n1", pool: "scw-em-rv1", state: "quarantined", since, until: new Date(since.getTime() + 3_600_000), probation_seconds: 3600 },
        { node: "n1", pool: "scw-em-rv1", kind: "quarantined", at: since, probation_seconds: 3600, evidence: [] }
      )
      // a NOTIFY's fast path, without the full cycle: its pod must keep off n1, and lands on n2
      yield* queueJob(newJob(1))
      yield* runDemandCycle()
      yield* kube.reconcile
      expect((yield* pods).map((p) => [p.name, p.nodeName, p.request.avoidNodes])).toEqual([[name(1), "n2", ["n1"]]])
      // n2 is busy and n1 quarantined: the next job gets no runner from the fast path
      yield* queueJob(newJob(2))
      yield* runDemandCycle()
      expect((yield* pods).map((p) => p.name)).toEqual([name(1)])
      // once the operator released n1, the fast path sends the waiting job there
      yield* at(200)
      const released = new Date(200_000)
      yield* db.recordBoardTransition(
        { node: "n1", pool: "scw-em-rv1", state: "healthy", since: released, until: null, probation_seconds: 3600 },
        { node: "n1", pool: "scw-em-rv1", kind: "operator_release", at: released, probation_seconds: null, evidence: [] }
      )
      yield* runDemandCycle()
      yield* kube.reconcile
      const second = (yield* pods).find((p) => p.name !== name(1))
      expect([second?.nodeName, second?.request.avoidNodes]).toEqual(["n1", undefined])
    }), quarantineWorld)

    scenario("with quarantine off in the runner config a failing board keeps getting runners", Effect.gen(function*() {
      yield* installBoth
      const cycle = yield* makeCycle
      const bad = new Set(["n1"])
      for (const id of [1, 2, 3]) yield* queueJob(newJob(id))
      for (let t = 0; t <= 900; t += 30) {
        yield* at(t)
        if (t % 150 === 0) yield* queueJob(newJob(100 + t / 150))
        yield* cycle
        yield* startRunnersExceptOn(bad)
      }
      expect(yield* boardEvents).toEqual([])
      const failedOnN1 = (yield* Effect.flatMap(Db, (db) => db.getNodeOutcomes(new Date(0)))).filter((o) => o.node === "n1" && o.status === "failed")
      expect(failedOnN1.length).toBeGreaterThan(3)
    }), { ...quarantineWorld, config: { quarantine: null } }, 120_000)
  })
