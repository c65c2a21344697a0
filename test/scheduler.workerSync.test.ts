import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Fiber, Option, TestClock } from "effect"
import { DbMemory } from "../layers/db/memory.ts"
import { GithubMemoryControl } from "../layers/github/memory.ts"
import { KubeMemoryControl } from "../layers/kube/memory.ts"
import { makeCycleAuthenticator } from "../src/scheduler/auth.ts"
import { STAGING_GROUP, STAGING_PREFIX } from "../src/scheduler/settings.ts"
import { guardedOr, makeSchedulerState } from "../src/scheduler/state.ts"
import { syncWorkers } from "../src/scheduler/workerSync.ts"
import { deleteFinishedPods } from "../src/scheduler/workerSync/finishedPods.ts"
import { githubCleanup } from "../src/scheduler/workerSync/githubCleanup.ts"
import { healthChecks } from "../src/scheduler/workerSync/healthCheckPhase.ts"
import { orphanSweep } from "../src/scheduler/workerSync/orphanSweep.ts"
import { podPhaseSync } from "../src/scheduler/workerSync/podPhaseSync.ts"
import { scopeOf } from "../src/scheduler/workerSync/runnerScope.ts"
import { sweepUnknownPods } from "../src/scheduler/workerSync/unknownPods.ts"
import { Github } from "../src/services/Github.ts"
import { combineWrites, noWrites } from "../src/scheduler/workerSync/workerWrites.ts"
import { Db } from "../src/services/Db.ts"
import { Kube } from "../src/services/Kube.ts"
import { newJob } from "./support/dbFixtures.ts"
import { installBoth, makeCycle, ORG, podNames, queueJob, startRunners, type World, worldLayer } from "./support/schedulerWorld.ts"

/*
 * Each phase of the worker sync returns what it did (rows written, scopes ended, workers failed, runners and pods
 * deleted), and `syncWorkers` combines them. These tests call the phases one by one on the in-memory world and
 * check those results; the scenarios (`support/schedulerScenarios.ts`) check the effects through whole cycles.
 */

const name = (n: number) => `${STAGING_PREFIX}t${String(n).padStart(8, "0")}`
const at = (seconds: number) => TestClock.setTime(seconds * 1000)
const ORG_SCOPE = `org|${ORG.installation}|${ORG.id}|${ORG.login}`
const inWorld = <A, E>(body: Effect.Effect<A, E, World>) => Effect.provide(body, worldLayer(DbMemory))

/** What the phases are handed: the pod listing by name, and the worker rows. */
const snapshot = Effect.gen(function*() {
  const kube = yield* Kube
  const db = yield* Db
  const pods = new Map((yield* kube.listRunnerPods).map((p) => [p.name, p]))
  const workers = yield* db.getWorkersForReconcile(3600)
  return { pods, workers }
})

/** One job provisioned by a cycle: a pending worker `name(1)`, its pod and its offline runner. */
const provisioned = Effect.gen(function*() {
  yield* installBoth
  const cycle = yield* makeCycle
  yield* queueJob(newJob(1))
  yield* cycle
  return cycle
})

/** The provisioned runner starts at 5 s, takes job 1, and its pod ends at `endedAt` seconds with `exitCode`. */
const ranAndEnded = (endedAt: number, exitCode: number) =>
  Effect.gen(function*() {
    yield* provisioned
    yield* at(5)
    yield* startRunners()
    yield* at(endedAt)
    yield* Effect.flatMap(KubeMemoryControl, (kube) => kube.finishPod(name(1), exitCode))
  })

const authenticator = Effect.flatMap(Effect.makeSemaphore(1), (mutex) => makeCycleAuthenticator((effect) => mutex.withPermits(1)(effect)))

describe("worker sync phases: what each returns", () => {
  it("combineWrites adds the counts and unites the ended scopes", () => {
    const a = { written: 2, ended: new Set(["s1", "s2"]) }
    const b = { written: 1, ended: new Set(["s2", "s3"]) }
    expect(combineWrites(a, b)).toEqual({ written: 3, ended: new Set(["s1", "s2", "s3"]) })
    expect(combineWrites(noWrites, noWrites)).toEqual({ written: 0, ended: new Set() })
  })

  it.effect("phase 1 returns the orphans it wrote and their scopes; a second sweep writes nothing", () =>
    inWorld(Effect.gen(function*() {
      yield* provisioned
      const kube = yield* Kube
      yield* kube.deletePod(name(1))
      const { pods, workers } = yield* snapshot
      const first = yield* orphanSweep(workers, pods)
      expect(first).toEqual({ written: 1, ended: new Set([ORG_SCOPE]) })
      expect(scopeOf(workers[0]!).key).toBe(ORG_SCOPE)
      // the rows read before the first sweep still say active, but the worker is completed now: no second write
      expect(yield* orphanSweep(workers, pods)).toEqual(noWrites)
    })))

  it.effect("phase 2 counts every change it writes; only a failed pod ends its worker's scope", () =>
    inWorld(Effect.gen(function*() {
      yield* provisioned
      const kube = yield* KubeMemoryControl
      yield* at(5)
      yield* startRunners({ takeJobs: false })
      const running = yield* snapshot
      expect(yield* podPhaseSync(running.workers, running.pods)).toEqual({ written: 1, ended: new Set() })
      // Running again: the worker is running already, nothing to write
      const again = yield* snapshot
      expect(yield* podPhaseSync(again.workers, again.pods)).toEqual(noWrites)
      yield* kube.finishPod(name(1), 1)
      const failed = yield* snapshot
      expect(yield* podPhaseSync(failed.workers, failed.pods)).toEqual({ written: 1, ended: new Set([ORG_SCOPE]) })
    })))

  it.effect("phase 2: a succeeded pod completes its worker without ending the scope", () =>
    inWorld(Effect.gen(function*() {
      yield* ranAndEnded(5, 0)
      const { pods, workers } = yield* snapshot
      expect(yield* podPhaseSync(workers, pods)).toEqual({ written: 1, ended: new Set() })
    })))

  it.effect("phase 3 returns the workers it failed, and listings without the runners it deleted", () =>
    inWorld(Effect.gen(function*() {
      const kube = yield* KubeMemoryControl
      yield* kube.holdPending({ pool: "scw-em-rv1" })
      yield* provisioned
      yield* kube.reconcile
      yield* at(600)
      const state = yield* makeSchedulerState
      const { pods, workers } = yield* snapshot
      const result = yield* healthChecks(state, yield* authenticator, pods, workers, new Set())
      expect(result.failed).toEqual([name(1)])
      expect([...result.listed.keys()]).toEqual([ORG_SCOPE])
      expect([...result.listed.get(ORG_SCOPE)!.runners.keys()]).toEqual([])
      expect(Option.getOrThrow(yield* Effect.flatMap(Db, (db) => db.getWorker(name(1)))).status).toBe("failed")
    })))

  it.effect("phase 3 lists an ended scope even when no worker needs it, and fails nobody healthy", () =>
    inWorld(Effect.gen(function*() {
      yield* provisioned
      const state = yield* makeSchedulerState
      const { pods, workers } = yield* snapshot
      const quiet = yield* healthChecks(state, yield* authenticator, pods, workers, new Set())
      expect(quiet).toEqual({ failed: [], listed: new Map() })
      const ended = yield* healthChecks(state, yield* authenticator, pods, workers, new Set([ORG_SCOPE]))
      expect(ended.failed).toEqual([])
      expect([...ended.listed.get(ORG_SCOPE)!.runners.keys()]).toEqual([name(1)])
    })))

  it.effect("phase 4 returns the leftover runners it deleted; live workers' and foreign runners stay", () =>
    inWorld(Effect.gen(function*() {
      yield* provisioned
      const gh = yield* GithubMemoryControl
      const group = (yield* gh.snapshot).runnerGroups.find((g) => g.org === ORG.login && g.name === STAGING_GROUP)!.id
      yield* gh.addRunner({ _tag: "Org", org: ORG.login, groupId: group }, { name: `${STAGING_PREFIX}leftover1`, status: "offline" })
      yield* gh.addRunner({ _tag: "Org", org: ORG.login, groupId: group }, { name: "self-hosted-by-acme", status: "online" })
      expect(yield* githubCleanup(new Map())).toEqual([])
      const state = yield* makeSchedulerState
      const { pods, workers } = yield* snapshot
      const { listed } = yield* healthChecks(state, yield* authenticator, pods, workers, new Set([ORG_SCOPE]))
      expect(yield* githubCleanup(listed)).toEqual([`${STAGING_PREFIX}leftover1`])
      expect((yield* gh.snapshot).runners.map((r) => r.name).sort()).toEqual([name(1), "self-hosted-by-acme"])
    })))

  it.effect("phase 5 returns the finished pods it deleted, once their grace has passed", () =>
    inWorld(Effect.gen(function*() {
      yield* ranAndEnded(10, 0)
      yield* at(10 + 6 * 3600 - 1)
      expect(yield* deleteFinishedPods((yield* snapshot).pods)).toEqual([])
      yield* at(10 + 6 * 3600)
      expect(yield* deleteFinishedPods((yield* snapshot).pods)).toEqual([name(1)])
      expect(yield* Effect.flatMap(KubeMemoryControl, (kube) => kube.pods)).toEqual([])
    })))

  it.effect("syncWorkers combines the phases' results, and returns none when the pods cannot be listed", () =>
    inWorld(Effect.gen(function*() {
      yield* provisioned
      const kube = yield* KubeMemoryControl
      const state = yield* makeSchedulerState
      yield* at(5)
      yield* startRunners({ takeJobs: false })
      yield* kube.finishPod(name(1), 1)
      yield* at(6)
      const result = Option.getOrThrow(yield* syncWorkers(state, yield* authenticator))
      expect(result).toEqual({
        writes: { written: 1, ended: new Set([ORG_SCOPE]) },
        failed: [],
        runnersDeleted: [name(1)],
        unknownPodsDeleted: [],
        podsDeleted: [],
        unreachableClusters: []
      })
      yield* kube.injectFault({ operation: "listPods", status: 500, times: 1 })
      expect(yield* syncWorkers(state, yield* authenticator)).toEqual(Option.none())
    })))
})

/** A runner pod of acme with a registered (offline) runner and no worker row: what a crash of an older version left. */
const strayPod = (n: number) =>
  Effect.gen(function*() {
    const github = yield* Github
    const kube = yield* Kube
    const ref = { installationId: ORG.installation, entityType: "Organization" as const }
    const group = yield* github.ensureRunnerGroup(ref, ORG.login, STAGING_GROUP)
    const jit = yield* github.createJitConfigOrg(ref, ORG.login, group, { runnerName: name(n), labels: ["ubuntu-24.04-riscv"] })
    yield* kube.createRunnerPod({
      name: name(n),
      jitConfig: jit.jitConfig,
      image: "ghcr.io/example/runner:latest",
      pool: "scw-em-rv1",
      entity: { type: "Organization", id: ORG.id, name: ORG.login },
      installationId: ORG.installation
    })
  })

describe("the sweep of pods no worker row knows", () => {
  it.effect("a pod without a row is kept through its grace, then deleted with its idle runner; rows' pods are never touched", () =>
    inWorld(Effect.gen(function*() {
      yield* provisioned
      yield* strayPod(9)
      const state = yield* makeSchedulerState
      const gh = yield* GithubMemoryControl
      yield* at(60)
      expect(Option.getOrThrow(yield* syncWorkers(state, yield* authenticator)).unknownPodsDeleted).toEqual([])
      expect((yield* podNames).sort()).toEqual([name(1), name(9)])
      yield* at(121)
      expect(Option.getOrThrow(yield* syncWorkers(state, yield* authenticator)).unknownPodsDeleted).toEqual([name(9)])
      expect(yield* podNames).toEqual([name(1)])
      expect((yield* gh.snapshot).runners.map((r) => r.name)).toEqual([name(1)])
      // a second cycle finds nothing more to do
      expect(Option.getOrThrow(yield* syncWorkers(state, yield* authenticator)).unknownPodsDeleted).toEqual([])
    })))

  it.effect("a busy runner keeps its pod for a later cycle; an old finished row still knows its pod", () =>
    inWorld(Effect.gen(function*() {
      yield* provisioned
      yield* strayPod(9)
      yield* queueJob(newJob(2))
      yield* at(5)
      // name(1) takes job 1, the stray takes job 2 (GitHub hands queued jobs to whichever runner asks)
      yield* startRunners()
      const gh = yield* GithubMemoryControl
      expect((yield* gh.snapshot).runners.find((r) => r.name === name(9))?.busy).toBe(true)
      yield* at(300)
      const { pods, workers } = yield* snapshot
      expect(yield* sweepUnknownPods(yield* authenticator, pods, workers, new Map(), [])).toEqual([])
      expect((yield* podNames).sort()).toEqual([name(1), name(9)])
      // a row outside the reconcile lookback (here: none handed over) is still looked up by name
      expect(yield* sweepUnknownPods(yield* authenticator, new Map([[name(1), pods.get(name(1))!]]), [], new Map(), [])).toEqual([])
    })))
})

describe("guardedOr", () => {
  it.effect("passes a result through, gives the fallback for a failure or a defect, and lets interruption through", () =>
    Effect.gen(function*() {
      expect(yield* guardedOr("ok", Effect.succeed(1), 0)).toBe(1)
      expect(yield* guardedOr("failure", Effect.fail("boom"), 0)).toBe(0)
      expect(yield* guardedOr("defect", Effect.die(new Error("bug")), 0)).toBe(0)
      const fiber = yield* Effect.fork(guardedOr("interrupted", Effect.never, 0))
      yield* Effect.yieldNow()
      expect(Exit.isInterrupted(yield* Fiber.interrupt(fiber))).toBe(true)
    }))
})
