import { describe, expect, it } from "@effect/vitest"
import { Cause, Context, Duration, Effect, Exit, Fiber, Layer, Option, Redacted, TestClock } from "effect"
import { GithubLive } from "../layers/github/octokit.ts"
import { Github } from "../src/services/Github.ts"
import { calls, githubContract, labels, orgRef, seedInstallations, userRef } from "./contracts/github.ts"
import { githubTestKeys } from "../bench/support/githubKeys.ts"
import { checkBody, checkParameters, matchOperation } from "../bench/support/githubOpenapi.ts"
import { type GithubStubState, startGithubStub } from "../bench/support/githubStub.ts"
import { githubWorldFromStub } from "./support/githubStubWorld.ts"
import { GithubWorld } from "./support/githubWorld.ts"

const ORG_APP = 2167633
const PERSONAL_APP = 3131217

/** The live layer's stub server, for the tests that script answers. */
class Stub extends Context.Tag("test/GithubStub")<Stub, GithubStubState>() {}

type Limits = NonNullable<Parameters<typeof GithubLive>[0]["limits"]>

/** A stub server per test, and the live layer pointed at it through a GHES-style `/api/v3` base URL. */
const liveLayerWith = (limits: Limits) => Layer.unwrapScoped(
  Effect.gen(function* () {
    const keys = githubTestKeys()
    const stub = yield* startGithubStub(
      [
        { appId: ORG_APP, serves: "Organization", publicKey: keys.org.publicKey },
        { appId: PERSONAL_APP, serves: "User", publicKey: keys.personal.publicKey }
      ],
      "/api/v3"
    )
    const github = GithubLive({
      orgApp: { appId: ORG_APP, privateKey: Redacted.make(keys.org.privateKeyPem) },
      personalApp: { appId: PERSONAL_APP, privateKey: Redacted.make(keys.personal.privateKeyPem) },
      apiUrl: stub.url,
      requestTimeout: Duration.seconds(5),
      limits
    }).pipe(Layer.orDie)
    return Layer.mergeAll(
      github,
      Layer.succeed(
        GithubWorld,
        githubWorldFromStub(stub.state, [keys.org.privateKeyPem, keys.personal.privateKeyPem])
      ),
      Layer.succeed(Stub, stub.state)
    )
  })
)

const liveLayer = liveLayerWith({ millisPerSecond: 1, spaceWrites: false, maxWaitSeconds: 15, maxRetries: 2 })

githubContract("octokit against a local stub of api.github.com", liveLayer)

// --- what only the live layer has ------------------------------------------------------------------------------

describe("GithubLive", () => {
  const jobPath = /\/actions\/jobs\/\d+$/

  it.effect("sits out a short secondary rate limit (Retry-After) and retries", () =>
    Effect.gen(function* () {
      const gh = yield* Github
      const world = yield* GithubWorld
      const stub = yield* Stub
      yield* seedInstallations
      yield* world.createJob({ id: 1, repo: "alice/project", runId: 2 })
      stub.script({
        method: "GET",
        path: jobPath,
        status: 403,
        headers: { "retry-after": "1" },
        body: { message: "You have exceeded a secondary rate limit. Please wait a few minutes before you try again." }
      })
      expect((yield* gh.getJob(userRef, "alice/project", 1)).status).toBe("queued")
      expect(yield* calls("getJob", 403)).toBe(1)
      expect(yield* calls("getJob", 200)).toBe(1)
    }).pipe(Effect.provide(liveLayer)))

  it.effect("gives up at once on a long Retry-After and says how long", () =>
    Effect.gen(function* () {
      const gh = yield* Github
      const world = yield* GithubWorld
      const stub = yield* Stub
      yield* seedInstallations
      yield* world.createJob({ id: 1, repo: "alice/project", runId: 2 })
      stub.script({
        method: "GET",
        path: jobPath,
        status: 429,
        headers: { "retry-after": "3600" },
        body: { message: "You have exceeded a secondary rate limit." }
      })
      const error = yield* Effect.flip(gh.getJob(userRef, "alice/project", 1))
      expect(error).toMatchObject({ _tag: "GithubRateLimited", status: 429, retryAfterSeconds: 3600 })
      expect(yield* calls("getJob")).toBe(1)
    }).pipe(Effect.provide(liveLayer)))

  it.effect("retries a 502 and counts both attempts", () =>
    Effect.gen(function* () {
      const gh = yield* Github
      const world = yield* GithubWorld
      const stub = yield* Stub
      yield* seedInstallations
      yield* world.createJob({ id: 1, repo: "alice/project", runId: 2 })
      stub.script({ method: "GET", path: jobPath, status: 502, body: { message: "Server Error" } })
      yield* gh.getJob(userRef, "alice/project", 1)
      expect(yield* calls("getJob", 502)).toBe(1)
      expect(yield* calls("getJob", 200)).toBe(1)
      // A 5xx that does not go away surfaces as GithubHttpError after the retries.
      stub.script({
        method: "GET",
        path: /\/actions\/runs\/\d+$/,
        status: 503,
        body: { message: "Unavailable" },
        times: 10
      })
      const error = yield* Effect.flip(gh.getRun(userRef, "alice/project", 2))
      expect(error).toMatchObject({ _tag: "GithubHttpError", status: 503 })
      expect(yield* calls("getRun", 503)).toBe(3)
    }).pipe(Effect.provide(liveLayer)))

  it.effect("spaces writes per installation: one organisation's JIT config does not wait behind another's", () =>
    Effect.gen(function* () {
      const gh = yield* Github
      yield* seedInstallations
      // Effect's TestClock: a spacing wait never ends unless the test moves the clock.
      const groupId = yield* gh.ensureRunnerGroup(orgRef, "rise-org", "riscv-runners") // creates the group: a write of 11
      // the rest of installation 11's burst of 3 (the default) goes at once, on the clock that never moved
      for (const n of [1, 2]) yield* gh.createJitConfigOrg(orgRef, "rise-org", groupId, { runnerName: `rise-riscv-runner-o${n}`, labels })
      expect((yield* gh.writeWait(orgRef))).toMatchObject({ waitMs: 334, startNow: 0 })
      const orgJit = yield* Effect.fork(gh.createJitConfigOrg(orgRef, "rise-org", groupId, { runnerName: "rise-riscv-runner-o3", labels }))
      // installation 22's first write goes through at once, while installation 11's waits for its gap
      const userJit = yield* gh.createJitConfigRepo(userRef, "alice/project", { runnerName: "rise-riscv-runner-u1", labels })
      expect(userJit.runnerId).toBeGreaterThan(0)
      expect(Option.isNone(yield* Fiber.poll(orgJit))).toBe(true)
      expect(yield* calls("createJitConfigOrg")).toBe(2)
      yield* TestClock.adjust("334 millis")
      expect((yield* Fiber.join(orgJit)).runnerId).toBeGreaterThan(0)
      expect(yield* calls("createJitConfigOrg", 201)).toBe(3)
    }).pipe(Effect.provide(liveLayerWith({ millisPerSecond: 1, maxWaitSeconds: 15, maxRetries: 2 }))))

  it.effect("reports no answer as GithubTransportError", () =>
    Effect.gen(function* () {
      const keys = githubTestKeys()
      const layer = GithubLive({
        orgApp: { appId: ORG_APP, privateKey: Redacted.make(keys.org.privateKeyPem) },
        personalApp: { appId: PERSONAL_APP, privateKey: Redacted.make(keys.personal.privateKeyPem) },
        // Port 9 (discard) on loopback: nothing listens, so the connection is refused.
        apiUrl: "http://127.0.0.1:9",
        limits: { millisPerSecond: 1, spaceWrites: false }
      })
      const error = yield* Effect.flip(Effect.flatMap(Github, (gh) => gh.installationToken(orgRef))).pipe(
        Effect.provide(Layer.orDie(layer))
      )
      expect(error._tag).toBe("GithubTransportError")
      expect(error.operation).toBe("installationToken")
    }))

  it.effect("refuses an unusable private key without quoting it", () =>
    Effect.gen(function* () {
      const keys = githubTestKeys()
      // assembled at run time so that no file in the repository looks like it holds a private key
      const armour = (edge: string) => `-----${edge} RSA PRIVATE ${"KEY"}-----`
      const broken = `${armour("BEGIN")}\nTHISISNOTAKEYATALLBUTITLOOKSLIKEONE\n${armour("END")}`
      const exit = yield* Effect.exit(
        Effect.scoped(
          Layer.build(
            GithubLive({
              orgApp: { appId: ORG_APP, privateKey: Redacted.make(keys.org.privateKeyPem) },
              personalApp: { appId: PERSONAL_APP, privateKey: Redacted.make(broken) }
            })
          )
        )
      )
      expect(Exit.isFailure(exit)).toBe(true)
      const text = Exit.isFailure(exit) ? Cause.pretty(exit.cause) : ""
      expect(text).toContain("personal app")
      expect(text).not.toContain("THISISNOTAKEY")
    }))

  it("the stub's checker rejects requests GitHub's description does not allow", () => {
    expect(matchOperation("GET", "/no/such/endpoint")).toBeUndefined()
    const jit = matchOperation("POST", "/orgs/rise-org/actions/runners/generate-jitconfig")
    expect(jit?.operationId).toBe("actions/generate-runner-jitconfig-for-org")
    expect(checkBody(jit!, { name: "r", runner_group_id: 3, labels, work_folder: "../../../work" })).toEqual([])
    const bad = checkBody(jit!, { name: "r", runner_group_id: "3", labels: [], colour: "red" })
    expect(bad.join("\n")).toMatch(/runner_group_id: expected integer/)
    expect(bad.join("\n")).toMatch(/fewer than 1 items/)
    expect(bad.join("\n")).toMatch(/colour is not a declared property/)
    const group = matchOperation("POST", "/orgs/rise-org/actions/runner-groups")!
    expect(checkBody(group, { name: "g", visibility: "everyone" }).join("\n")).toMatch(/not one of/)
    // A GET on the JIT path is the runner-by-id operation, whose id must be an integer.
    const byId = matchOperation("GET", "/orgs/rise-org/actions/runners/generate-jitconfig")!
    expect(checkParameters(byId, new URLSearchParams())).not.toEqual([])
    expect(
      checkParameters(
        matchOperation("GET", "/repos/a/b/actions/runners")!,
        new URLSearchParams("per_page=100&colour=1")
      )
    ).toEqual([
      "query parameter colour is not declared for actions/list-self-hosted-runners-for-repo"
    ])
  })
})
