import { describe, expect, it } from "@effect/vitest"
import {
  Cause,
  Duration,
  Effect,
  HashMap,
  type Layer,
  Logger,
  LogLevel,
  Option,
  Redacted,
  TestClock
} from "effect"
import {
  Github,
  type GithubError,
  type GithubOperation,
  type InstallationRef,
  totalCalls
} from "../../src/services/Github.ts"
import { GithubWorld } from "../support/githubWorld.ts"

export const orgInstallation = { id: 11, account: { login: "rise-org", type: "Organization", id: 501 } }
export const userInstallation = { id: 22, account: { login: "alice", type: "User", id: 502 } }
export const orgRef: InstallationRef = { installationId: 11, entityType: "Organization" }
export const userRef: InstallationRef = { installationId: 22, entityType: "User" }
export const labels = ["ubuntu-24.04-riscv"]

/** Both installations exist (most scenarios need them). */
export const seedInstallations = Effect.gen(function* () {
  const world = yield* GithubWorld
  yield* world.addInstallation(orgInstallation)
  yield* world.addInstallation(userInstallation)
})

export const calls = (operation: GithubOperation, status?: number) =>
  Effect.flatMap(Github, (gh) => gh.callCounts).pipe(Effect.map((c) => totalCalls(c, [operation], status)))

/** Every way an error could be shown to a person or a log: its message, its JSON, its inspection. */
const renderings = (e: unknown): ReadonlyArray<string> => [String(e), JSON.stringify(e), Cause.pretty(Cause.fail(e))]

/** Text pieces of a secret worth looking for: every line of a PEM body, or the whole secret. */
const fragmentsOf = (secret: string): ReadonlyArray<string> =>
  secret.includes("-----BEGIN")
    ? secret.split("\n").filter((line) => line.length >= 16 && !line.startsWith("-----"))
    : [secret]

/**
 * The Github contract: what every implementation of the service must do, seeded and checked through a
 * GithubWorld so the same scenario runs against the in-memory GitHub and against the live layer on a stub server.
 */
export const githubContract = (name: string, layer: Layer.Layer<Github | GithubWorld>) =>
  describe(`Github contract: ${name}`, () => {
    // Each test gets a fresh GitHub; afterwards no request may have strayed from GitHub's REST description.
    const scenario = (title: string, body: Effect.Effect<void, unknown, Github | GithubWorld>) =>
      it.effect(title, () =>
        Effect.gen(function* () {
          yield* body
          expect(yield* (yield* GithubWorld).specViolations).toEqual([])
        }).pipe(Effect.provide(layer)))

    scenario(
      "caches an installation token for 59 minutes per installation and app",
      Effect.gen(function* () {
        const gh = yield* Github
        const world = yield* GithubWorld
        yield* seedInstallations
        const first = yield* gh.installationToken(orgRef)
        expect(Redacted.value(yield* gh.installationToken(orgRef))).toBe(Redacted.value(first))
        expect(yield* world.tokenRequests).toBe(1)
        yield* TestClock.adjust(Duration.minutes(58))
        yield* gh.installationToken(orgRef)
        expect(yield* world.tokenRequests).toBe(1)
        yield* TestClock.adjust(Duration.minutes(1))
        const refreshed = yield* gh.installationToken(orgRef)
        expect(yield* world.tokenRequests).toBe(2)
        expect(Redacted.value(refreshed)).not.toBe(Redacted.value(first))
        // Another installation (of the other app) has its own token; calls that need a token reuse the cache.
        yield* gh.installationToken(userRef)
        yield* gh.getJob(userRef, "alice/project", 1).pipe(Effect.ignore)
        expect(yield* world.tokenRequests).toBe(3)
        expect(yield* calls("installationToken", 201)).toBe(3)
      })
    )

    scenario(
      "does not cache a failed token request",
      Effect.gen(function* () {
        const gh = yield* Github
        const world = yield* GithubWorld
        const missing = yield* Effect.flip(gh.installationToken(orgRef))
        expect(missing._tag).toBe("GithubNotFound")
        expect(missing.operation).toBe("installationToken")
        yield* world.addInstallation(orgInstallation)
        yield* gh.installationToken(orgRef)
        expect(yield* world.tokenRequests).toBe(2)
        // The installation exists, but under the org app: the personal app gets a 404 for it.
        const wrongApp = yield* Effect.flip(gh.installationToken({ installationId: 11, entityType: "User" }))
        expect(wrongApp._tag).toBe("GithubNotFound")
        expect(yield* calls("installationToken", 404)).toBe(2)
      })
    )

    scenario(
      "forgets a token GitHub revoked, and then reports the installation gone",
      Effect.gen(function* () {
        const gh = yield* Github
        const world = yield* GithubWorld
        yield* seedInstallations
        yield* world.createJob({ id: 5, repo: "alice/project", runId: 50 })
        yield* gh.getJob(userRef, "alice/project", 5)
        yield* world.removeInstallation(22)
        const revoked = yield* Effect.flip(gh.getJob(userRef, "alice/project", 5))
        expect(revoked).toMatchObject({ _tag: "GithubHttpError", status: 401, operation: "getJob" })
        const gone = yield* Effect.flip(gh.getJob(userRef, "alice/project", 5))
        expect(gone).toMatchObject({ _tag: "GithubNotFound", operation: "installationToken" })
      })
    )

    scenario(
      "looks an installation up with the JWT of the app serving the entity type",
      Effect.gen(function* () {
        const gh = yield* Github
        yield* seedInstallations
        const found = yield* gh.getInstallation(11, "Organization")
        expect(found).toEqual(orgInstallation)
        expect((yield* gh.getInstallation(22, "User")).account).toEqual(userInstallation.account)
        expect((yield* Effect.flip(gh.getInstallation(11, "User")))._tag).toBe("GithubNotFound")
        expect((yield* Effect.flip(gh.getInstallation(999, "Organization")))._tag).toBe("GithubNotFound")
        expect(yield* calls("getInstallation")).toBe(4)
      })
    )

    scenario(
      "finds a runner group on the second page of groups and remembers its id",
      Effect.gen(function* () {
        const gh = yield* Github
        const world = yield* GithubWorld
        yield* seedInstallations
        for (let i = 0; i < 120; i++) yield* world.addRunnerGroup("rise-org", `group-${i}`)
        const target = yield* world.addRunnerGroup("rise-org", "riscv-runners")
        expect(yield* gh.ensureRunnerGroup(orgRef, "rise-org", "riscv-runners")).toBe(target)
        expect(yield* calls("listRunnerGroups", 200)).toBe(2)
        expect(yield* gh.ensureRunnerGroup(orgRef, "rise-org", "riscv-runners")).toBe(target)
        expect(yield* calls("listRunnerGroups")).toBe(2)
        expect(yield* calls("createRunnerGroup")).toBe(0)
      })
    )

    scenario(
      "creates the runner group when no page has it, visible to all repositories",
      Effect.gen(function* () {
        const gh = yield* Github
        const world = yield* GithubWorld
        yield* seedInstallations
        yield* world.addRunnerGroup("rise-org", "something-else")
        const id = yield* gh.ensureRunnerGroup(orgRef, "rise-org", "riscv-runners")
        const created = (yield* world.runnerGroups("rise-org")).find((g) => g.name === "riscv-runners")
        expect(created).toMatchObject({ id, visibility: "all", allowsPublicRepositories: true })
        expect(yield* gh.ensureRunnerGroup(orgRef, "rise-org", "riscv-runners")).toBe(id)
        expect(yield* calls("listRunnerGroups")).toBe(1)
        expect(yield* calls("createRunnerGroup", 201)).toBe(1)
      })
    )

    scenario(
      "creates an org JIT runner that shows offline until its pod registers",
      Effect.gen(function* () {
        const gh = yield* Github
        const world = yield* GithubWorld
        yield* seedInstallations
        const groupId = yield* gh.ensureRunnerGroup(orgRef, "rise-org", "riscv-runners")
        const jit = yield* gh.createJitConfigOrg(orgRef, "rise-org", groupId, {
          runnerName: "rise-riscv-runner-abc123def",
          labels
        })
        expect(String(jit.jitConfig)).toBe("<redacted>")
        expect(Redacted.value(jit.jitConfig).length).toBeGreaterThan(10)
        const before = yield* gh.listRunnersOrgGroup(orgRef, "rise-org", groupId)
        expect(before).toEqual([{
          id: jit.runnerId,
          name: "rise-riscv-runner-abc123def",
          status: "offline",
          busy: false
        }])
        expect(yield* world.registerRunnerFromJit(jit.jitConfig)).toBe(true)
        const after = yield* gh.listRunnersOrgGroup(orgRef, "rise-org", groupId)
        expect(after.map((r) => r.status)).toEqual(["online"])
        expect((yield* world.runners)[0]).toMatchObject({ labels, scope: { _tag: "Org", groupId } })
        // Runner names are unique: GitHub answers 409.
        const dup = yield* Effect.flip(
          gh.createJitConfigOrg(orgRef, "rise-org", groupId, { runnerName: "rise-riscv-runner-abc123def", labels })
        )
        expect(dup).toMatchObject({ _tag: "GithubHttpError", status: 409, operation: "createJitConfigOrg" })
        // An unknown group is a 404.
        const noGroup = yield* Effect.flip(
          gh.createJitConfigOrg(orgRef, "rise-org", 987654, { runnerName: "x", labels })
        )
        expect(noGroup._tag).toBe("GithubNotFound")
      })
    )

    scenario(
      "creates a repository JIT runner in the default group",
      Effect.gen(function* () {
        const gh = yield* Github
        const world = yield* GithubWorld
        yield* seedInstallations
        const jit = yield* gh.createJitConfigRepo(userRef, "alice/project", {
          runnerName: "rise-riscv-runner-u1",
          labels
        })
        expect(yield* world.registerRunnerFromJit(jit.jitConfig)).toBe(true)
        expect(yield* gh.listRunnersRepo(userRef, "alice/project")).toEqual([
          { id: jit.runnerId, name: "rise-riscv-runner-u1", status: "online", busy: false }
        ])
        expect(yield* gh.listRunnersRepo(userRef, "alice/elsewhere")).toEqual([])
        expect((yield* world.runners)[0]?.scope).toEqual({ _tag: "Repo", repo: "alice/project" })
        // Another owner's repository is not this installation's.
        expect((yield* Effect.flip(gh.createJitConfigRepo(userRef, "bob/project", { runnerName: "y", labels })))._tag)
          .toBe("GithubNotFound")
        expect(yield* calls("createJitConfigRepo", 201)).toBe(1)
      })
    )

    scenario(
      "lists every page of runners, optionally by name prefix",
      Effect.gen(function* () {
        const gh = yield* Github
        const world = yield* GithubWorld
        yield* seedInstallations
        for (let i = 0; i < 120; i++) {
          yield* world.addRunner({ _tag: "Repo", repo: "alice/project" }, { name: `rise-riscv-runner-${i}` })
        }
        for (let i = 0; i < 15; i++) {
          yield* world.addRunner({ _tag: "Repo", repo: "alice/project" }, { name: `someone-else-${i}`, busy: true })
        }
        yield* world.addRunner({ _tag: "Repo", repo: "alice/other" }, { name: "rise-riscv-runner-other" })
        const all = yield* gh.listRunnersRepo(userRef, "alice/project")
        expect(all.length).toBe(135)
        expect(new Set(all.map((r) => r.id)).size).toBe(135)
        expect(yield* calls("listRunnersRepo", 200)).toBe(2)
        const ours = yield* gh.listRunnersRepo(userRef, "alice/project", { namePrefix: "rise-riscv-runner-" })
        expect(ours.length).toBe(120)
        expect(ours.every((r) => r.name.startsWith("rise-riscv-runner-") && !r.busy)).toBe(true)

        const groupId = yield* world.addRunnerGroup("rise-org", "riscv-runners")
        for (let i = 0; i < 105; i++) {
          yield* world.addRunner({ _tag: "Org", org: "rise-org", groupId }, { name: `rise-riscv-runner-g${i}` })
        }
        yield* world.addRunner({ _tag: "Org", org: "rise-org", groupId: 1 }, { name: "rise-riscv-runner-default" })
        const inGroup = yield* gh.listRunnersOrgGroup(orgRef, "rise-org", groupId)
        expect(inGroup.length).toBe(105)
        expect(yield* calls("listRunnersOrgGroup", 200)).toBe(2)
        expect(
          (yield* gh.listRunnersOrgGroup(orgRef, "rise-org", groupId, { namePrefix: "rise-riscv-runner-g10" })).map((
            r
          ) => r.name).sort()
        ).toEqual(
          [
            "rise-riscv-runner-g10",
            "rise-riscv-runner-g100",
            "rise-riscv-runner-g101",
            "rise-riscv-runner-g102",
            "rise-riscv-runner-g103",
            "rise-riscv-runner-g104"
          ]
        )
        expect((yield* Effect.flip(gh.listRunnersOrgGroup(orgRef, "rise-org", 424242)))._tag).toBe("GithubNotFound")
      })
    )

    scenario(
      "deletes runners: 204 and 404 are done, 422 is busy",
      Effect.gen(function* () {
        const gh = yield* Github
        const world = yield* GithubWorld
        yield* seedInstallations
        const idleOrg = yield* world.addRunner({ _tag: "Org", org: "rise-org", groupId: 1 }, { name: "idle-org" })
        const busyOrg = yield* world.addRunner({ _tag: "Org", org: "rise-org", groupId: 1 }, {
          name: "busy-org",
          busy: true
        })
        const idleRepo = yield* world.addRunner({ _tag: "Repo", repo: "alice/project" }, { name: "idle-repo" })
        const busyRepo = yield* world.addRunner({ _tag: "Repo", repo: "alice/project" }, {
          name: "busy-repo",
          busy: true
        })

        yield* gh.deleteRunnerOrg(orgRef, "rise-org", idleOrg)
        yield* gh.deleteRunnerOrg(orgRef, "rise-org", idleOrg)
        yield* gh.deleteRunnerRepo(userRef, "alice/project", idleRepo)
        yield* gh.deleteRunnerRepo(userRef, "alice/project", 31337)
        const busy1 = yield* Effect.flip(gh.deleteRunnerOrg(orgRef, "rise-org", busyOrg))
        const busy2 = yield* Effect.flip(gh.deleteRunnerRepo(userRef, "alice/project", busyRepo))
        expect(busy1).toMatchObject({ _tag: "GithubBusy", operation: "deleteRunnerOrg" })
        expect(busy2).toMatchObject({ _tag: "GithubBusy", operation: "deleteRunnerRepo" })
        expect((yield* world.runners).map((r) => r.name).sort()).toEqual(["busy-org", "busy-repo"])

        // Once its job is over the runner can go.
        yield* world.setRunnerBusy("busy-org", false)
        yield* gh.deleteRunnerOrg(orgRef, "rise-org", busyOrg)
        expect((yield* world.runners).map((r) => r.name)).toEqual(["busy-repo"])
        expect(yield* calls("deleteRunnerOrg", 204)).toBe(2)
        expect(yield* calls("deleteRunnerOrg", 404)).toBe(1)
        expect(yield* calls("deleteRunnerOrg", 422)).toBe(1)
      })
    )

    scenario(
      "reads jobs and runs, and reports missing ones as GithubNotFound",
      Effect.gen(function* () {
        const gh = yield* Github
        const world = yield* GithubWorld
        yield* seedInstallations
        yield* world.createJob({ id: 7001, repo: "alice/project", runId: 9001 })
        yield* world.createRun({ id: 9001, repo: "alice/project", status: "in_progress" })
        expect(yield* gh.getJob(userRef, "alice/project", 7001)).toEqual({
          status: "queued",
          conclusion: null,
          runner_name: null,
          run_id: 9001
        })
        yield* world.setJobStatus(7001, {
          status: "completed",
          conclusion: "success",
          runnerName: "rise-riscv-runner-x"
        })
        expect(yield* gh.getJob(userRef, "alice/project", 7001)).toEqual({
          status: "completed",
          conclusion: "success",
          runner_name: "rise-riscv-runner-x",
          run_id: 9001
        })
        expect(yield* gh.getRun(userRef, "alice/project", 9001)).toEqual({ status: "in_progress", conclusion: null })

        const missingJob = yield* Effect.flip(gh.getJob(userRef, "alice/project", 7002))
        expect(missingJob).toMatchObject({ _tag: "GithubNotFound", operation: "getJob" })
        expect((yield* Effect.flip(gh.getRun(userRef, "alice/project", 9002)))._tag).toBe("GithubNotFound")
        expect((yield* Effect.flip(gh.getJob(userRef, "alice/elsewhere", 7001)))._tag).toBe("GithubNotFound")
        expect((yield* Effect.flip(gh.getJob(userRef, "not-a-repo", 7001)))._tag).toBe("GithubNotFound")
      })
    )

    scenario(
      "polls conditionally: an unchanged job costs no rate-limit budget",
      Effect.gen(function* () {
        const gh = yield* Github
        const world = yield* GithubWorld
        yield* seedInstallations
        yield* world.createJob({
          id: 7001,
          repo: "alice/project",
          runId: 9001,
          status: "in_progress",
          runnerName: "r1"
        })
        expect(yield* gh.rateLimit(22)).toEqual(Option.none())
        yield* gh.getJob(userRef, "alice/project", 7001)
        const afterFirst = Option.getOrThrow(yield* gh.rateLimit(22))
        expect(afterFirst.remaining).toBe(afterFirst.limit - 1)
        const again = yield* gh.getJob(userRef, "alice/project", 7001)
        yield* gh.getJob(userRef, "alice/project", 7001)
        expect(again).toEqual({ status: "in_progress", conclusion: null, runner_name: "r1", run_id: 9001 })
        expect(Option.getOrThrow(yield* gh.rateLimit(22)).remaining).toBe(afterFirst.remaining)
        expect(yield* calls("getJob", 304)).toBe(2)
        yield* world.setJobStatus(7001, { status: "completed", conclusion: "cancelled" })
        expect((yield* gh.getJob(userRef, "alice/project", 7001)).conclusion).toBe("cancelled")
        expect(yield* calls("getJob", 200)).toBe(2)
        expect(Option.getOrThrow(yield* gh.rateLimit(22)).remaining).toBe(afterFirst.remaining - 1)
        // Runs are polled the same way.
        yield* world.createRun({ id: 9001, repo: "alice/project", status: "completed", conclusion: "failure" })
        yield* gh.getRun(userRef, "alice/project", 9001)
        yield* gh.getRun(userRef, "alice/project", 9001)
        expect(yield* calls("getRun", 304)).toBe(1)
      })
    )

    scenario(
      "reports a spent budget as GithubRateLimited with the reset time, and stops asking",
      Effect.gen(function* () {
        const gh = yield* Github
        const world = yield* GithubWorld
        yield* seedInstallations
        yield* world.createJob({ id: 7001, repo: "alice/project", runId: 9001 })
        const resetAt = new Date((Math.floor(Date.now() / 1000) + 3600) * 1000)
        yield* world.setRateLimit(22, { limit: 5000, remaining: 0, resetAt })
        const limited = yield* Effect.flip(gh.getJob(userRef, "alice/project", 7001))
        expect(limited._tag).toBe("GithubRateLimited")
        if (limited._tag !== "GithubRateLimited") return
        expect(limited.resetAt?.getTime()).toBe(resetAt.getTime())
        expect(limited.operation).toBe("getJob")
        expect(Option.getOrThrow(yield* gh.rateLimit(22))).toMatchObject({ limit: 5000, remaining: 0, resetAt })
        // Until the reset, asking again would only spend a round trip.
        const again = yield* Effect.flip(gh.getJob(userRef, "alice/project", 7001))
        expect(again._tag).toBe("GithubRateLimited")
        expect(yield* calls("getJob")).toBe(1)
        // Other installations have their own budget.
        yield* gh.ensureRunnerGroup(orgRef, "rise-org", "riscv-runners")
      })
    )

    scenario(
      "never puts a token, JWT, private key or JIT config in an error or a log",
      Effect.gen(function* () {
        const gh = yield* Github
        const world = yield* GithubWorld
        const logs: Array<string> = []
        const capture = Logger.make(({ message, annotations, cause }) => {
          logs.push(
            JSON.stringify(message),
            JSON.stringify(Array.from(HashMap.toEntries(annotations))),
            Cause.pretty(cause)
          )
        })
        const errors: Array<unknown> = []
        const attempt = <A>(effect: Effect.Effect<A, GithubError>) =>
          effect.pipe(
            Effect.tapError((e) => Effect.sync(() => errors.push(e))),
            Effect.tap((a) => Effect.sync(() => logs.push(JSON.stringify(a), String(a)))),
            Effect.option
          )
        const run = Effect.gen(function* () {
          yield* attempt(gh.installationToken(orgRef))
          yield* seedInstallations
          const groupId = yield* gh.ensureRunnerGroup(orgRef, "rise-org", "riscv-runners")
          const jit = yield* attempt(
            gh.createJitConfigOrg(orgRef, "rise-org", groupId, { runnerName: "rise-riscv-runner-s1", labels })
          )
          yield* attempt(
            gh.createJitConfigOrg(orgRef, "rise-org", groupId, { runnerName: "rise-riscv-runner-s1", labels })
          )
          yield* attempt(
            gh.createJitConfigRepo(userRef, "alice/project", { runnerName: "rise-riscv-runner-s2", labels })
          )
          yield* attempt(gh.createJitConfigRepo(userRef, "bob/project", { runnerName: "rise-riscv-runner-s3", labels }))
          if (Option.isSome(jit)) {
            yield* world.registerRunnerFromJit(jit.value.jitConfig)
            yield* world.setRunnerBusy("rise-riscv-runner-s1", true)
            yield* attempt(gh.deleteRunnerOrg(orgRef, "rise-org", jit.value.runnerId))
          }
          yield* attempt(gh.getJob(userRef, "alice/project", 1))
          yield* world.removeInstallation(22)
          yield* attempt(gh.listRunnersRepo(userRef, "alice/project"))
          yield* attempt(gh.listRunnersRepo(userRef, "alice/project"))
          yield* attempt(gh.getInstallation(22, "User"))
        })
        yield* run.pipe(
          Effect.provide(Logger.replace(Logger.defaultLogger, capture)),
          Logger.withMinimumLogLevel(LogLevel.All)
        )

        expect(errors.length).toBeGreaterThanOrEqual(6)
        expect(logs.some((l) => l.includes("installation token"))).toBe(true)
        const secrets = yield* world.secrets
        expect(secrets.length).toBeGreaterThanOrEqual(4)
        const texts = [...logs, ...errors.flatMap(renderings)]
        for (const fragment of secrets.flatMap(fragmentsOf)) {
          expect(texts.filter((t) => t.includes(fragment))).toEqual([])
        }
      })
    )

    // --- recovering lost deliveries (issue 12) -------------------------------------------------------------------

    const attempt = (guid: string, statusCode: number, app: "Organization" | "User" = "Organization") => ({
      app,
      guid,
      event: "workflow_job",
      action: "queued",
      installationId: app === "Organization" ? 11 : 22,
      repositoryId: 77,
      statusCode,
      redelivery: false
    })

    scenario(
      "lists an app's delivery log newest first, page by page, with the app's JWT, until told to stop",
      Effect.gen(function* () {
        const gh = yield* Github
        const world = yield* GithubWorld
        yield* seedInstallations
        const ids: Array<number> = []
        for (let i = 0; i < 130; i++) ids.push(yield* world.recordDelivery(attempt(`guid-${i}`, i % 10 === 0 ? 503 : 200)))
        yield* world.recordDelivery(attempt("mine-not-yours", 200, "User"))

        const all = yield* gh.listHookDeliveries("Organization", () => false)
        expect(all.map((d) => d.id)).toEqual([...ids].reverse())
        expect(all[0]).toMatchObject({
          guid: "guid-129",
          redelivery: false,
          status_code: 200,
          event: "workflow_job",
          action: "queued",
          installation_id: 11,
          repository_id: 77
        })
        expect(all.find((d) => d.guid === "guid-120")?.status_code).toBe(503)
        expect(Number.isNaN(Date.parse(all[0]!.delivered_at))).toBe(false)
        expect(yield* calls("listHookDeliveries", 200)).toBe(2)
        // Signed with the app's JWT: no installation token, no installation budget.
        expect(yield* world.tokenRequests).toBe(0)

        // Stopping at an attempt already examined reads only the pages down to it.
        const newest = yield* gh.listHookDeliveries("Organization", (d) => d.id <= ids[120]!)
        expect(newest).toHaveLength(100)
        expect(yield* calls("listHookDeliveries", 200)).toBe(3)
        // Each app sees its own log only.
        expect((yield* gh.listHookDeliveries("User", () => false)).map((d) => d.guid)).toEqual(["mine-not-yours"])
      })
    )

    scenario(
      "asks GitHub to redeliver an attempt of the app's own log, and nothing else",
      Effect.gen(function* () {
        const gh = yield* Github
        const world = yield* GithubWorld
        const failed = yield* world.recordDelivery(attempt("lost", 502))
        const personal = yield* world.recordDelivery(attempt("other", 0, "User"))
        yield* gh.redeliverHookDelivery("Organization", failed)
        expect(yield* world.redeliveryRequests).toEqual([{ app: "Organization", attemptId: failed }])
        expect(yield* calls("redeliverHookDelivery", 202)).toBe(1)
        const unknown = yield* Effect.flip(gh.redeliverHookDelivery("Organization", 999_999))
        expect(unknown).toMatchObject({ _tag: "GithubNotFound", operation: "redeliverHookDelivery" })
        const otherApp = yield* Effect.flip(gh.redeliverHookDelivery("Organization", personal))
        expect(otherApp._tag).toBe("GithubNotFound")
        expect(yield* world.redeliveryRequests).toHaveLength(1)
      })
    )

    scenario(
      "lists a repository's queued runs and a run's jobs, conditionally",
      Effect.gen(function* () {
        const gh = yield* Github
        const world = yield* GithubWorld
        yield* seedInstallations
        yield* world.createRun({ id: 900, repo: "alice/project", status: "queued" })
        yield* world.createRun({ id: 901, repo: "alice/project", status: "completed", conclusion: "success" })
        yield* world.createRun({ id: 902, repo: "alice/elsewhere", status: "queued" })
        yield* world.createJob({ id: 9, repo: "alice/project", runId: 900, labels })
        yield* world.createJob({ id: 10, repo: "alice/project", runId: 900, labels: ["ubuntu-latest"], status: "in_progress" })
        yield* world.createJob({ id: 11, repo: "alice/project", runId: 901, labels })

        const runs = yield* gh.listQueuedRuns(userRef, "alice/project")
        expect(runs.map((r) => r.id)).toEqual([900])
        expect(runs[0]?.status).toBe("queued")
        const jobs = yield* gh.listRunJobs(userRef, "alice/project", 900)
        expect(jobs.map((j) => [j.id, j.run_id, j.status, j.labels])).toEqual([
          [9, 900, "queued", labels],
          [10, 900, "in_progress", ["ubuntu-latest"]]
        ])
        expect(jobs[0]?.html_url).toMatch(/alice\/project\/actions\/runs\/900\/job\/9$/)

        // Unchanged listings are answered 304 and cost no budget; a change is seen at once.
        const before = Option.getOrThrow(yield* gh.rateLimit(22)).remaining
        expect((yield* gh.listQueuedRuns(userRef, "alice/project")).map((r) => r.id)).toEqual([900])
        expect((yield* gh.listRunJobs(userRef, "alice/project", 900)).map((j) => j.id)).toEqual([9, 10])
        expect(yield* calls("listQueuedRuns", 304)).toBe(1)
        expect(yield* calls("listRunJobs", 304)).toBe(1)
        expect(Option.getOrThrow(yield* gh.rateLimit(22)).remaining).toBe(before)
        yield* world.setJobStatus(9, { status: "in_progress", runnerName: "r9" })
        expect((yield* gh.listRunJobs(userRef, "alice/project", 900))[0]?.status).toBe("in_progress")
        yield* world.setRunStatus(900, { status: "in_progress" })
        expect(yield* gh.listQueuedRuns(userRef, "alice/project")).toEqual([])

        expect((yield* Effect.flip(gh.listRunJobs(userRef, "alice/project", 902)))._tag).toBe("GithubNotFound")
        expect((yield* Effect.flip(gh.listQueuedRuns(orgRef, "alice/project")))._tag).toBe("GithubNotFound")
      })
    )
    scenario(
      "an idle installation can write now, and a minute after its writes were answered it can again",
      Effect.gen(function* () {
        const gh = yield* Github
        yield* seedInstallations
        // never written for: nothing to wait for
        expect((yield* gh.writeWait(orgRef)).waitMs).toBe(0)
        expect((yield* gh.writeWait(userRef)).waitMs).toBe(0)
        const groupId = yield* gh.ensureRunnerGroup(orgRef, "rise-org", "riscv-runners")
        yield* gh.createJitConfigOrg(orgRef, "rise-org", groupId, { runnerName: "rise-riscv-runner-wait00001", labels })
        // asking starts nothing: the other installation still may write at once
        expect((yield* gh.writeWait(userRef)).waitMs).toBe(0)
        const wait = yield* gh.writeWait(orgRef)
        expect(wait.waitMs).toBeGreaterThanOrEqual(0)
        expect(wait.waitMs).toBeLessThanOrEqual(Math.max(wait.gapMs, 0))
        // every spacing of a layer (gap, points of the minute) is over within a minute of quiet
        yield* TestClock.adjust(Duration.minutes(1))
        expect((yield* gh.writeWait(orgRef)).waitMs).toBe(0)
      })
    )
  })
