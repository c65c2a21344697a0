import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Fiber, Layer, Option, TestClock } from "effect"
import { GithubMemory, GithubMemoryControl } from "../layers/github/memory.ts"
import { Github, totalCalls } from "../src/services/Github.ts"
import {
  calls,
  githubContract,
  labels,
  orgInstallation,
  orgRef,
  userInstallation,
  userRef
} from "./contracts/github.ts"
import { GithubWorldFromMemory } from "./support/githubWorld.ts"

const memoryLayer = GithubWorldFromMemory.pipe(Layer.provideMerge(GithubMemory))

githubContract("in memory", memoryLayer)

// --- what only the memory layer has ----------------------------------------------------------------------------

describe("GithubMemory control", () => {
  it.effect("runs a job end to end: JIT, registration, assignment, completion", () =>
    Effect.gen(function* () {
      const gh = yield* Github
      const control = yield* GithubMemoryControl
      yield* control.addInstallation(orgInstallation)
      yield* control.createJob({ id: 1, repo: "rise-org/app", runId: 10, labels })
      const groupId = yield* gh.ensureRunnerGroup(orgRef, "rise-org", "riscv-runners")
      const jit = yield* gh.createJitConfigOrg(orgRef, "rise-org", groupId, {
        runnerName: "rise-riscv-runner-1",
        labels
      })
      expect(Option.isSome(yield* control.registerRunnerFromJit(jit.jitConfig))).toBe(true)
      const assigned = yield* control.assignQueuedJob("rise-riscv-runner-1")
      expect(Option.getOrThrow(assigned)).toMatchObject({
        id: 1,
        status: "in_progress",
        runner_name: "rise-riscv-runner-1"
      })
      expect((yield* gh.listRunnersOrgGroup(orgRef, "rise-org", groupId))[0]?.busy).toBe(true)
      yield* control.completeJob(1, "success")
      expect(yield* gh.getJob(orgRef, "rise-org/app", 1)).toMatchObject({ status: "completed", conclusion: "success" })
      expect(yield* gh.listRunnersOrgGroup(orgRef, "rise-org", groupId)).toEqual([])
      // API calls for one provisioned runner: token, group listing, group creation, JIT.
      const counts = yield* gh.callCounts
      expect(totalCalls(counts, ["installationToken", "listRunnerGroups", "createRunnerGroup", "createJitConfigOrg"]))
        .toBe(4)
    }).pipe(Effect.provide(GithubMemory)))

  it.effect("keeps a never-registering runner offline and a stuck runner busy", () =>
    Effect.gen(function* () {
      const gh = yield* Github
      const control = yield* GithubMemoryControl
      yield* control.addInstallation(userInstallation)
      yield* control.neverRegister("rise-riscv-runner-ghost")
      const ghost = yield* gh.createJitConfigRepo(userRef, "alice/p", { runnerName: "rise-riscv-runner-ghost", labels })
      expect(Option.isNone(yield* control.registerRunnerFromJit(ghost.jitConfig))).toBe(true)
      const stuck = yield* gh.createJitConfigRepo(userRef, "alice/p", { runnerName: "rise-riscv-runner-stuck", labels })
      yield* control.registerRunnerFromJit(stuck.jitConfig)
      yield* control.setRunnerStuckBusy("rise-riscv-runner-stuck", true)
      yield* control.finishRunner("rise-riscv-runner-stuck")
      expect((yield* Effect.flip(gh.deleteRunnerRepo(userRef, "alice/p", stuck.runnerId)))._tag).toBe("GithubBusy")
      const runners = yield* gh.listRunnersRepo(userRef, "alice/p")
      expect(runners.map((r) => [r.name, r.status, r.busy])).toEqual([
        ["rise-riscv-runner-ghost", "offline", false],
        ["rise-riscv-runner-stuck", "online", true]
      ])
    }).pipe(Effect.provide(GithubMemory)))

  it.effect("injects errors and latency by operation", () =>
    Effect.gen(function* () {
      const gh = yield* Github
      const control = yield* GithubMemoryControl
      yield* control.addInstallation(userInstallation)
      yield* control.createJob({ id: 1, repo: "alice/p", runId: 2 })
      yield* control.injectFault("getJob", { _tag: "Status", status: 500, message: "boom" }, { times: 1 })
      yield* control.injectFault("getRun", { _tag: "Transport" }, { times: 1 })
      yield* control.injectFault("listRunnersRepo", { _tag: "RateLimited", resetAt: new Date(7_200_000) }, { times: 1 })
      expect(yield* Effect.flip(gh.getJob(userRef, "alice/p", 1))).toMatchObject({
        _tag: "GithubHttpError",
        status: 500
      })
      expect((yield* gh.getJob(userRef, "alice/p", 1)).status).toBe("queued")
      expect((yield* Effect.flip(gh.getRun(userRef, "alice/p", 2)))._tag).toBe("GithubTransportError")
      const limited = yield* Effect.flip(gh.listRunnersRepo(userRef, "alice/p"))
      expect(limited).toMatchObject({ _tag: "GithubRateLimited", resetAt: new Date(7_200_000) })

      yield* control.injectFault("getJob", { _tag: "Latency", duration: Duration.seconds(30) })
      const slow = yield* Effect.fork(gh.getJob(userRef, "alice/p", 1))
      yield* TestClock.adjust(Duration.seconds(29))
      expect(Option.isNone(yield* Fiber.poll(slow))).toBe(true)
      yield* TestClock.adjust(Duration.seconds(1))
      expect((yield* Fiber.join(slow)).status).toBe("queued")
      yield* control.clearFaults
      expect(yield* calls("getJob", 500)).toBe(1)
      expect(yield* calls("getRun", 0)).toBe(1)
    }).pipe(Effect.provide(GithubMemory)))

  it.effect("spends and refills the installation budget on the Clock", () =>
    Effect.gen(function* () {
      const gh = yield* Github
      const control = yield* GithubMemoryControl
      yield* control.addInstallation(userInstallation)
      yield* control.setRateLimit(22, { limit: 2, remaining: 2, resetAt: new Date(3_600_000) })
      yield* gh.listRunnersRepo(userRef, "alice/p")
      yield* gh.listRunnersRepo(userRef, "alice/p")
      expect((yield* Effect.flip(gh.listRunnersRepo(userRef, "alice/p")))._tag).toBe("GithubRateLimited")
      yield* TestClock.adjust(Duration.hours(1))
      yield* gh.listRunnersRepo(userRef, "alice/p")
      expect(Option.getOrThrow(yield* gh.rateLimit(22))).toMatchObject({ limit: 2, remaining: 1 })
    }).pipe(Effect.provide(GithubMemory)))
})
