import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Layer, Option, Ref, TestClock } from "effect"
import { DbMemory } from "../layers/db/memory.ts"
import { GithubMemoryControl, type RedeliveryRequest } from "../layers/github/memory.ts"
import { redeliveryPass, redeliveryPassName } from "../src/scheduler/redelivery.ts"
import { nextCursor, planRedeliveries } from "../src/scheduler/redeliveryDecision.ts"
import { RecoverySettingsLive } from "../src/scheduler/recoverySettings.ts"
import { sweepPass } from "../src/scheduler/unannouncedJobs.ts"
import { discoveredJobs } from "../src/scheduler/unannouncedJobsDecision.ts"
import { Db } from "../src/services/Db.ts"
import type { HookDelivery } from "../src/services/Github.ts"
import { newEvent, newJob } from "./support/dbFixtures.ts"
import { installBoth, ORG, queueJob, testRunnerConfig, USER, userJob, worldLayer } from "./support/schedulerWorld.ts"

/*
 * The recovery passes (issue 12): the redelivery pass's and the sweep's decisions by table, then each pass on the
 * in-memory world (the store, GitHub's delivery log and its runs), with TestClock.
 */

const T0 = Date.UTC(2026, 0, 5, 9, 0, 0)
const iso = (ms: number) => new Date(ms).toISOString()
const attempt = (id: number, guid: string, status: number, at = T0): HookDelivery => ({
  id,
  guid,
  delivered_at: iso(at),
  redelivery: false,
  status_code: status,
  event: "workflow_job",
  action: "queued",
  installation_id: 5001,
  repository_id: 77
})
/** newest first, as the log lists them */
const log = (...attempts: Array<HookDelivery>) => [...attempts].sort((a, b) => b.id - a.id)
const plan = (attempts: ReadonlyArray<HookDelivery>, over: Partial<Parameters<typeof planRedeliveries>[0]> = {}) =>
  planRedeliveries({ attempts, cursor: null, oldestAllowed: T0 - 3 * 86_400_000, recorded: new Set(), max: 50, ...over })

describe("the redelivery pass's decisions", () => {
  it("asks again for events with no 2xx attempt and no audit row, oldest first, once per guid", () => {
    const p = plan(log(attempt(1, "a", 502), attempt(2, "b", 200), attempt(3, "c", 0), attempt(4, "a", 503), attempt(5, "d", 500)), {
      recorded: new Set(["d"])
    })
    // a: newest attempt named; ordered by first attempt; c: no answer at all; d: our endpoint took it after all
    expect(p.redeliver.map((c) => [c.guid, c.attemptId])).toEqual([["a", 4], ["c", 3]])
    expect(p.examined).toBe(5)
    expect(p.newest).toBe(5)
  })

  it("leaves a refused event alone, but not one our endpoint asked to be sent later", () => {
    const p = plan(log(attempt(1, "bad-signature", 401), attempt(2, "too-big", 413), attempt(3, "timeout", 408), attempt(4, "busy", 429)))
    expect(p.redeliver.map((c) => c.guid)).toEqual(["timeout", "busy"])
  })

  it("examines only what is newer than the cursor and young enough for GitHub to redeliver", () => {
    const old = T0 - 4 * 86_400_000
    const p = plan(log(attempt(1, "ancient", 502, old), attempt(7, "seen", 502), attempt(8, "new", 502)), { cursor: 7 })
    expect(p.redeliver.map((c) => c.guid)).toEqual(["new"])
    expect(p.examined).toBe(1)
    expect(plan([], { cursor: 7 }).newest).toBe(7)
    expect(plan([]).newest).toBeNull()
  })

  it("caps a pass, and its cursor stops below the oldest event still owed", () => {
    const p = plan(log(attempt(10, "a", 502), attempt(11, "b", 502), attempt(12, "c", 502), attempt(13, "ok", 200)), { max: 2, cursor: 9 })
    expect(p.redeliver.map((c) => c.guid)).toEqual(["a", "b"])
    expect(p.deferred.map((c) => c.guid)).toEqual(["c"])
    expect(nextCursor(p, p.deferred, 9)).toBe(11)
    // a failed request is owed too; nothing owed: the newest attempt examined
    expect(nextCursor(p, [p.redeliver[0]!, ...p.deferred], 9)).toBe(9)
    expect(nextCursor(p, [], 9)).toBe(13)
    expect(nextCursor(p, p.deferred, null)).toBe(11)
  })
})

describe("the sweep's decisions", () => {
  const repo = { repo_full_name: "acme/app", installation_id: 5001, entity_type: "Organization" as const, entity_id: 1001, entity_name: "acme" }
  const job = (id: number, status: string, labels: ReadonlyArray<string>) => ({
    id,
    run_id: 9,
    status,
    conclusion: null,
    labels: [...labels],
    html_url: `https://github.com/acme/app/actions/runs/9/job/${id}`,
    runner_name: null
  })

  it("stores queued jobs for a pool that have no row, as a queued delivery would", () => {
    const found = discoveredJobs({
      repository: repo,
      jobs: [job(1, "queued", ["ubuntu-24.04-riscv"]), job(2, "queued", ["ubuntu-latest"]), job(3, "in_progress", ["ubuntu-24.04-riscv"]), job(4, "queued", ["ubuntu-24.04-riscv"])],
      stored: new Set([4]),
      runnerConfig: testRunnerConfig(),
      prod: false
    })
    // exactly the row a queued delivery for this job would store
    expect(found).toEqual([newJob(1, { html_url: "https://github.com/acme/app/actions/runs/9/job/1" })])
  })
})

// --- the passes on the in-memory world -------------------------------------------------------------------------

const layer = (recovery: Parameters<typeof RecoverySettingsLive>[0] = {}) =>
  Layer.merge(worldLayer(DbMemory), RecoverySettingsLive(recovery))

/** The redeliveries GitHub accepted, as the world that makes the attempts hears of them. */
const askedFor = Effect.gen(function*() {
  const gh = yield* GithubMemoryControl
  const asked = yield* Ref.make<ReadonlyArray<RedeliveryRequest>>([])
  yield* gh.onRedelivery((r) => Ref.update(asked, (all) => [...all, r]))
  return Ref.get(asked)
})

const failed = (guid: string, statusCode = 502, app: "Organization" | "User" = "Organization") =>
  Effect.flatMap(GithubMemoryControl, (gh) =>
    gh.recordDelivery({ app, guid, event: "workflow_job", action: "queued", installationId: app === "User" ? USER.installation : ORG.installation, repositoryId: 77, statusCode, redelivery: false }))

describe("the redelivery pass", () => {
  it.effect("redelivers what our endpoint never took, records it in the entity's timeline, and continues from its cursor", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(T0)
      const asked = yield* askedFor
      const db = yield* Db
      const gh = yield* GithubMemoryControl
      yield* db.addInstallationEvent(newEvent({ installation_id: ORG.installation, entity_id: ORG.id, delivery_id: "seen-before" }))
      const lost = yield* failed("lost")
      yield* failed("seen-before")
      yield* failed("other-app", 0, "User")
      yield* gh.recordDelivery({ app: "Organization", guid: "fine", event: "workflow_job", action: "queued", installationId: 5001, repositoryId: 77, statusCode: 200, redelivery: false })

      const first = yield* redeliveryPass("Organization", "me")
      expect(first).toEqual({ ran: true, examined: 3, requested: 1, failed: 0, deferred: 0 })
      expect((yield* asked).map((r) => [r.app, r.guid, r.attemptId])).toEqual([["Organization", "lost", lost]])
      const timeline = yield* db.getEventsByEntity(ORG.id)
      expect(timeline.map((e) => [e.source, e.event, e.outcome, e.delivery_id])).toContainEqual(["scheduler", "redelivery.requested", "redelivery_requested", null])

      // Nothing new: the next pass reads one page and asks for nothing; the personal app's log is its own.
      expect(yield* redeliveryPass("Organization", "me")).toEqual({ ran: true, examined: 0, requested: 0, failed: 0, deferred: 0 })
      expect((yield* redeliveryPass("User", "me")).requested).toBe(1)
      expect((yield* asked).map((r) => r.guid)).toEqual(["lost", "other-app"])
      // The redelivery failed again (the endpoint is still down): the new attempt is examined, and asked for again.
      yield* gh.recordDelivery({ app: "Organization", guid: "lost", event: "workflow_job", action: "queued", installationId: 5001, repositoryId: 77, statusCode: 503, redelivery: true })
      expect((yield* redeliveryPass("Organization", "me")).requested).toBe(1)
      // A restarted process (another holder) continues from the stored cursor, not three days back.
      expect((yield* redeliveryPass("Organization", "after-restart")).examined).toBe(0)
    }).pipe(Effect.provide(layer())))

  it.effect("asks for at most the cap per pass, oldest first, and the rest next pass", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(T0)
      const asked = yield* askedFor
      for (const g of ["g1", "g2", "g3", "g4", "g5"]) yield* failed(g)
      expect((yield* redeliveryPass("Organization", "me")).deferred).toBe(3)
      expect((yield* asked).map((r) => r.guid)).toEqual(["g1", "g2"])
      expect((yield* redeliveryPass("Organization", "me")).requested).toBe(2)
      expect((yield* redeliveryPass("Organization", "me")).requested).toBe(1)
      expect((yield* asked).map((r) => r.guid)).toEqual(["g1", "g2", "g3", "g4", "g5"])
      expect((yield* redeliveryPass("Organization", "me")).requested).toBe(0)
    }).pipe(Effect.provide(layer({ maxRedeliveriesPerPass: 2 }))))

  it.effect("a failed listing or request is logged and tried next pass; one replica at a time", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(T0)
      const asked = yield* askedFor
      const gh = yield* GithubMemoryControl
      const db = yield* Db
      yield* failed("x")
      yield* gh.injectFault("listHookDeliveries", { _tag: "Status", status: 502 }, { times: 1 })
      expect((yield* Effect.flip(redeliveryPass("Organization", "me")))._tag).toBe("GithubHttpError")
      // the failed pass freed its lease: another replica may go on at once
      yield* gh.injectFault("redeliverHookDelivery", { _tag: "Status", status: 500 }, { times: 1 })
      expect(yield* redeliveryPass("Organization", "other")).toMatchObject({ requested: 0, failed: 1 })
      expect(yield* redeliveryPass("Organization", "other")).toMatchObject({ requested: 1, failed: 0 })
      expect((yield* asked).map((r) => r.guid)).toEqual(["x"])
      // while one replica holds the lease, the other's pass does nothing
      expect((yield* db.claimPass(redeliveryPassName("Organization"), "busy", 60_000)).claimed).toBe(true)
      expect((yield* redeliveryPass("Organization", "me")).ran).toBe(false)
      yield* TestClock.adjust(Duration.minutes(2))
      expect((yield* redeliveryPass("Organization", "me")).ran).toBe(true)
    }).pipe(Effect.provide(layer())))
})

describe("the sweep for unannounced jobs", () => {
  it.effect("stores a queued job of a recent repository that no delivery announced, once, with an audit row", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(T0)
      yield* installBoth
      const db = yield* Db
      const gh = yield* GithubMemoryControl
      yield* queueJob(userJob(1)) // known: the repository had a job
      // GitHub never sent these two: one for our pool, one not
      yield* gh.createRun({ id: 77, repo: "jane/tool", status: "queued" })
      yield* gh.createJob({ id: 2, repo: "jane/tool", runId: 77, labels: ["ubuntu-24.04-riscv"] })
      yield* gh.createJob({ id: 3, repo: "jane/tool", runId: 77, labels: ["ubuntu-latest"] })
      // a repository with no recent job is not swept
      yield* gh.createRun({ id: 88, repo: "jane/other", status: "queued" })
      yield* gh.createJob({ id: 4, repo: "jane/other", runId: 88, labels: ["ubuntu-24.04-riscv"] })

      expect(yield* sweepPass("me")).toMatchObject({ ran: true, repositories: 1, discovered: 1, failed: 0 })
      const stored = Option.getOrThrow(yield* db.getJob(2))
      expect(stored).toMatchObject({ status: "pending", entity_id: USER.id, entity_type: "User", installation_id: USER.installation, k8s_pool: "scw-em-rv1" })
      expect(Option.isNone(yield* db.getJob(3))).toBe(true)
      expect(Option.isNone(yield* db.getJob(4))).toBe(true)
      const rows = (yield* db.getEventsByEntity(USER.id)).filter((e) => e.event === "sweep.job_discovered")
      expect(rows.map((e) => [e.source, e.outcome, e.installation_id])).toEqual([["scheduler", "job_stored", USER.installation]])
      expect(Option.getOrThrow(yield* db.getEventPayload(rows[0]!.id))).toMatchObject({ workflow_job: { id: 2, run_id: 77 }, repository: { full_name: "jane/tool" } })
      // the next sweep finds nothing new, and the unchanged listings are free 304s
      expect((yield* sweepPass("me")).discovered).toBe(0)
      const counts = yield* gh.callCounts
      expect(counts.listQueuedRuns[304]).toBeGreaterThanOrEqual(1)
    }).pipe(Effect.provide(layer())))

  it.effect("spends no more than job polls may: an installation down to its reserve is not swept", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(T0)
      yield* installBoth
      const gh = yield* GithubMemoryControl
      yield* queueJob(userJob(1))
      // one call left above the reserve (20 % of 5000): the first sweep spends it, and GitHub's answer says so
      yield* gh.setRateLimit(USER.installation, { limit: 5000, remaining: 1002, resetAt: new Date(T0 + 3_600_000) })
      expect((yield* sweepPass("me")).heldBack).toBe(0)
      const calls = () => Effect.map(gh.callCounts, (c) => Object.values(c.listQueuedRuns).reduce((a, b) => a + b, 0) + Object.values(c.listRunJobs).reduce((a, b) => a + b, 0))
      const before = yield* calls()
      expect(yield* sweepPass("me")).toMatchObject({ heldBack: 1, discovered: 0 })
      expect(yield* calls()).toBe(before)
      // the budget refills: swept again
      yield* TestClock.adjust(Duration.hours(1))
      expect((yield* sweepPass("me")).heldBack).toBe(0)
    }).pipe(Effect.provide(layer())))
})
