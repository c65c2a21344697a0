import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Either, Fiber, Option, Stream, TestClock } from "effect"
import { failureV1, failureV2 } from "../../src/domain/FailureInfo.ts"
import { DEFAULT_CLUSTER } from "../../src/domain/RunnerConfig.ts"
import { UNCLAIMED_RUNNER_GRACE_MS } from "../../src/domain/Worker.ts"
import { Db, DuplicatePodName } from "../../src/services/Db.ts"
import { newEvent, newJob, newWorker } from "../support/dbFixtures.ts"

/**
 * How an implementation's suite declares one case of the contract: the body runs on an empty store, under a fresh
 * TestClock of Effect's when `clock` is "test" and on the real clock when it is "live".
 */
export type DbCase = (title: string, body: Effect.Effect<void, unknown, Db>, clock: "test" | "live") => void

/** The number of cases in the contract; printed by the suites so the count is visible in CI. */
export let dbContractCaseCount = 0

/**
 * The one Db contract. Every implementation of the service runs all of it; the in-memory store is trusted in
 * other tests only because it passes the same cases as PostgreSQL.
 */
export const dbContract = (name: string, declare: DbCase) =>
  describe(`Db contract: ${name}`, () => {
    let cases = 0
    const test = (title: string, body: Effect.Effect<void, unknown, Db>) => {
      cases++
      declare(title, body, "test")
    }
    const liveTest = (title: string, body: Effect.Effect<void, unknown, Db>) => {
      cases++
      declare(title, body, "live")
    }
    const at = (seconds: number) => TestClock.setTime(seconds * 1000)

    test("addJob stores a pending job with a canonical label set, once", Effect.gen(function*() {
      const db = yield* Db
      expect(yield* db.addJob(newJob(1, { job_labels: ["z", "a", "z"] }))).toBe(true)
      expect(yield* db.addJob(newJob(1, { entity_name: "other" }))).toBe(false)
      const job = Option.getOrThrow(yield* db.getJob(1))
      expect(job.status).toBe("pending")
      expect(job.job_labels).toEqual(["a", "z"])
      expect(job.entity_name).toBe("acme")
      expect(job.k8s_pod).toBeNull()
      expect(job.failure_info).toBeNull()
      expect(Option.isNone(yield* db.getJob(2))).toBe(true)
    }))

    test("job transitions only move forward; late and duplicate news change nothing", Effect.gen(function*() {
      const db = yield* Db
      yield* db.addJob(newJob(1))
      expect(yield* db.markJobRunning(404, "r")).toEqual({ found: false })
      expect(yield* db.markJobRunning(1, "runner-a")).toEqual({ found: true, previous: "pending", changed: true })
      expect(yield* db.markJobRunning(1, "runner-b")).toEqual({ found: true, previous: "running", changed: false })
      expect(yield* db.markJobCompleted(1, "runner-b")).toEqual({ found: true, previous: "running", changed: true })
      expect(yield* db.markJobCompleted(1, "runner-b")).toEqual({ found: true, previous: "completed", changed: false })
      expect(yield* db.markJobRunning(1, "runner-c")).toEqual({ found: true, previous: "completed", changed: false })
      expect(yield* db.markJobFailed(1, failureV1("late"))).toEqual({ found: true, previous: "completed", changed: false })
      const job = Option.getOrThrow(yield* db.getJob(1))
      expect(job.status).toBe("completed")
      expect(job.k8s_pod).toBe("runner-a")
      expect(job.failure_info).toBeNull()
    }))

    test("a pending job may complete or fail directly; a failed job stays failed", Effect.gen(function*() {
      const db = yield* Db
      yield* db.addJob(newJob(1))
      yield* db.addJob(newJob(2))
      expect(yield* db.markJobCompleted(1, "")).toEqual({ found: true, previous: "pending", changed: true })
      expect(Option.getOrThrow(yield* db.getJob(1)).k8s_pod).toBeNull()
      expect(yield* db.markJobFailed(2, failureV1("job not found"))).toMatchObject({ changed: true, previous: "pending" })
      expect(yield* db.markJobCompleted(2, "r")).toEqual({ found: true, previous: "failed", changed: false })
      expect(yield* db.markJobRunning(2, "r")).toEqual({ found: true, previous: "failed", changed: false })
      const failed = Option.getOrThrow(yield* db.getJob(2))
      expect(failed.status).toBe("failed")
      expect(failed.failure_info).toEqual({ version: 1, message: "job not found" })
    }))

    test("active and pending jobs come oldest first", Effect.gen(function*() {
      const db = yield* Db
      yield* at(100)
      yield* db.addJob(newJob(3))
      yield* at(200)
      yield* db.addJob(newJob(1))
      yield* at(300)
      yield* db.addJob(newJob(2))
      yield* db.markJobRunning(1, "r1")
      yield* db.markJobCompleted(2, "r2")
      expect((yield* db.getActiveJobs).map((j) => j.job_id)).toEqual([3, 1])
      expect((yield* db.getPendingJobs).map((j) => j.job_id)).toEqual([3])
      expect((yield* db.getRunningJobs).map((j) => j.job_id)).toEqual([1])
      expect(Option.getOrThrow(yield* db.getJob(3)).created_at.getTime()).toBe(100_000)
    }))

    test("listJobs pages newest first within a created_at range and counts the total", Effect.gen(function*() {
      const db = yield* Db
      for (let i = 1; i <= 5; i++) {
        yield* at(i * 86_400)
        yield* db.addJob(newJob(i))
      }
      const all = yield* db.listJobs({ page: 0, perPage: 2 })
      expect(all.total).toBe(5)
      expect(all.rows.map((j) => j.job_id)).toEqual([5, 4])
      expect((yield* db.listJobs({ page: 2, perPage: 2 })).rows.map((j) => j.job_id)).toEqual([1])
      const ranged = yield* db.listJobs({ start: new Date(2 * 86_400_000), end: new Date(4 * 86_400_000), page: 0, perPage: 10 })
      expect(ranged.total).toBe(2)
      expect(ranged.rows.map((j) => j.job_id)).toEqual([3, 2])
      expect(yield* db.listJobs({ page: 9, perPage: 10 })).toEqual({ rows: [], total: 5 })
    }))

    test("getDemand returns the oldest pending jobs lacking a runner, per (entity, label set)", Effect.gen(function*() {
      const db = yield* Db
      yield* at(10)
      yield* db.addJob(newJob(1))
      yield* at(20)
      yield* db.addJob(newJob(2))
      yield* at(30)
      yield* db.addJob(newJob(3))
      yield* at(40)
      yield* db.addJob(newJob(4, { job_labels: ["other"] }))
      yield* at(50)
      yield* db.addJob(newJob(5, { entity_id: 2002, entity_name: "beta" }))
      // one running job that already has its worker, one worker for the first pending job
      yield* db.markJobRunning(1, "w-run")
      yield* db.addWorker(newWorker("w-run"))
      yield* db.addWorker(newWorker("w-new"))
      yield* db.addWorker(newWorker("w-beta-done", { entity_id: 2002 }))
      yield* db.markWorkerCompleted("w-beta-done", null, null)
      // (a runner that ended a moment ago still serves while no job names it: past that grace, it serves nothing)
      yield* at(50 + UNCLAIMED_RUNNER_GRACE_MS / 1000 + 1)
      const rows = yield* db.getDemand
      expect(rows.map((r) => r.job.job_id)).toEqual([3, 4, 5])
      const [three, four, five] = rows
      expect(three).toMatchObject({ rank: 2, groupDemand: 3, groupSupply: 2, entityActiveWorkers: 2 })
      expect(four).toMatchObject({ rank: 1, groupDemand: 1, groupSupply: 0, entityActiveWorkers: 2 })
      expect(five).toMatchObject({ rank: 1, groupDemand: 1, groupSupply: 0, entityActiveWorkers: 0 })
      // a failed worker stops counting as supply, so job 2 needs a runner again
      yield* db.markWorkerFailed("w-new", null, failureV2("runner_never_registered"), null)
      expect((yield* db.getDemand).map((r) => r.job.job_id)).toEqual([2, 3, 4, 5])
    }))

    test("getDemand: a personal account's runner serves only its own repository; an organisation's serves any", Effect.gen(function*() {
      const db = yield* Db
      const solo = { entity_id: 4004, entity_name: "solo", entity_type: "User" as const }
      yield* at(10)
      yield* db.addJob(newJob(1, { ...solo, repo_full_name: "solo/a" }))
      yield* at(20)
      yield* db.addJob(newJob(2, { ...solo, repo_full_name: "solo/b" }))
      yield* at(30)
      yield* db.addJob(newJob(3, { repo_full_name: "acme/app" }))
      yield* at(40)
      yield* db.addJob(newJob(4, { repo_full_name: "acme/other" }))
      // solo/a's job has its repo-scoped runner; one organisation runner is on its way for acme
      yield* db.addWorker(newWorker("w-solo-a", { ...solo, repo_full_name: "solo/a" }))
      yield* db.addWorker(newWorker("w-acme"))
      const rows = yield* db.getDemand
      // solo/b needs its own runner; the acme runner serves acme's oldest job, whatever its repository
      expect(rows.map((r) => r.job.job_id)).toEqual([2, 4])
      expect(rows[0]).toMatchObject({ rank: 1, groupDemand: 1, groupSupply: 0, entityActiveWorkers: 1 })
      expect(rows[1]).toMatchObject({ rank: 2, groupDemand: 2, groupSupply: 1, entityActiveWorkers: 1 })
      // solo/a's job is cancelled before its runner takes it: the idle solo/a runner cannot serve solo/b, which
      // still lacks one (counted per entity, the spare runner hid solo/b's job until it was failed as idle)
      yield* db.markJobCompleted(1, "")
      expect((yield* db.getDemand).map((r) => r.job.job_id)).toEqual([2, 4])
    }))

    test("demand: a running job whose runner's worker ended holds no runner, so a pending job keeps its worker", Effect.gen(function*() {
      const db = yield* Db
      yield* at(10)
      yield* db.addJob(newJob(1))
      yield* db.addWorker(newWorker("w-1"))
      yield* db.markJobRunning(1, "w-1")
      yield* at(20)
      yield* db.addJob(newJob(2))
      yield* db.addWorker(newWorker("w-2"))
      // both served: job 1 by w-1, job 2 by w-2
      expect(yield* db.getDemand).toEqual([])
      // w-1's pod ended before job 1's completed news came: w-2 still serves job 2, nobody needs another runner
      yield* db.markWorkerCompleted("w-1", null, null)
      expect(yield* db.getDemand).toEqual([])
      expect((yield* db.getQueueRows).map((r) => [r.job.job_id, r.lacksRunner])).toEqual([[2, false]])
      expect((yield* db.getQueueIndex).flatMap((g) => g.lacking)).toEqual([false])
    }))

    test("demand: a runner that ended before its job's news named it still serves its group, for a grace", Effect.gen(function*() {
      const db = yield* Db
      yield* at(10)
      yield* db.addJob(newJob(1))
      yield* db.addWorker(newWorker("w-1"))
      expect(yield* db.getDemand).toEqual([])
      // the watch saw the runner's pod succeed before GitHub's news of the job it ran (job 1, still pending here)
      yield* at(12)
      yield* db.markWorkerCompleted("w-1", null, null)
      expect(yield* db.getDemand, "job 1 was taken by w-1: no second runner").toEqual([])
      expect((yield* db.getQueueRows).map((r) => [r.job.job_id, r.lacksRunner])).toEqual([[1, false]])
      expect((yield* db.getQueueIndex).flatMap((g) => g.lacking)).toEqual([false])
      // a runner whose job is known serves nothing more: job 2 arrives after w-1's job named it
      yield* db.markJobCompleted(1, "w-1")
      yield* at(13)
      yield* db.addJob(newJob(2))
      expect((yield* db.getDemand).map((r) => r.job.job_id)).toEqual([2])
      // a runner that ended without any news: after the grace its job gets a runner after all
      yield* db.addWorker(newWorker("w-2"))
      yield* at(14)
      yield* db.markWorkerCompleted("w-2", null, null)
      expect(yield* db.getDemand).toEqual([])
      yield* at(14 + UNCLAIMED_RUNNER_GRACE_MS / 1000 + 1)
      expect((yield* db.getDemand).map((r) => r.job.job_id)).toEqual([2])
      expect((yield* db.getQueueIndex).flatMap((g) => g.lacking)).toEqual([true])
      // a failed runner never counts: it may have failed before taking any job
      yield* db.addWorker(newWorker("w-3"))
      yield* db.markWorkerFailed("w-3", null, failureV1("test"), null)
      expect((yield* db.getDemand).map((r) => r.job.job_id)).toEqual([2])
    }))

    test("getQueueRows: every pending job, oldest first, with getDemand's figures; those lacking a runner are getDemand's", Effect.gen(function*() {
      const db = yield* Db
      yield* at(10)
      yield* db.addJob(newJob(1))
      yield* at(20)
      yield* db.addJob(newJob(2))
      yield* at(30)
      yield* db.addJob(newJob(3))
      yield* at(40)
      yield* db.addJob(newJob(4, { job_labels: ["other"], html_url: null }))
      yield* at(50)
      yield* db.addJob(newJob(5, { entity_id: 2002, entity_name: "beta" }))
      yield* db.markJobRunning(1, "w-run")
      yield* db.addWorker(newWorker("w-run"))
      yield* db.addWorker(newWorker("w-new"))
      const rows = yield* db.getQueueRows
      expect(rows.map((r) => r.job)).toEqual(yield* db.getPendingJobs)
      expect(rows.map((r) => [r.job.job_id, r.lacksRunner])).toEqual([[2, false], [3, true], [4, true], [5, true]])
      const demand = yield* db.getDemand
      expect(rows.filter((r) => r.lacksRunner).map(({ lacksRunner: _, ...r }) => r)).toEqual(demand)
      expect(rows[0]).toMatchObject({ rank: 1, groupDemand: 3, groupSupply: 2, entityActiveWorkers: 2 })
      // a job with a stored failure_info still decodes (through the Schema)
      yield* db.markJobFailed(3, failureV2("pod_failed"))
      expect((yield* db.getQueueRows).map((r) => r.job.job_id)).toEqual([2, 4, 5])
    }))

    test("getQueueIndex: getQueueRows by (entity, label set, pool), each job with its creation time; getJobsByIds reads them back", Effect.gen(function*() {
      const db = yield* Db
      yield* at(10)
      yield* db.addJob(newJob(1))
      yield* at(20)
      yield* db.addJob(newJob(2, { k8s_pool: "other-pool" }))
      yield* at(30)
      yield* db.addJob(newJob(3))
      yield* at(40)
      yield* db.addJob(newJob(4, { job_labels: ["other"], html_url: null }))
      yield* at(40)
      yield* db.addJob(newJob(5, { entity_id: 2002, entity_name: "beta" }))
      yield* at(50)
      yield* db.addJob(newJob(6, { k8s_pool: "other-pool" }))
      yield* db.addWorker(newWorker("w-new"))
      const rows = yield* db.getQueueRows
      const index = yield* db.getQueueIndex
      const flat = index.flatMap((g) =>
        g.jobIds.map((id, k) => ({ id, entity: g.entityId, labels: g.labels, pool: g.pool, active: g.entityActiveWorkers, created: g.createdMs[k], lacking: g.lacking[k] }))
      )
      const expected = rows.map((r) => ({
        id: r.job.job_id,
        entity: r.job.entity_id,
        labels: r.job.job_labels,
        pool: r.job.k8s_pool,
        active: r.entityActiveWorkers,
        created: r.job.created_at.getTime(),
        lacking: r.lacksRunner
      }))
      const byId = (a: { id: number }, b: { id: number }) => a.id - b.id
      expect(flat.sort(byId)).toEqual(expected.sort(byId))
      // one group per (entity, label set, pool), its jobs oldest first
      expect(index.map((g) => g.jobIds).sort((a, b) => a[0]! - b[0]!)).toEqual([[1, 3], [2, 6], [4], [5]])
      expect(flat.filter((r) => !r.lacking).map((r) => r.id)).toEqual([1])
      const jobs = yield* db.getJobsByIds([5, 1, 999, 4])
      expect([...jobs].sort((a, b) => a.job_id - b.job_id)).toEqual(rows.map((r) => r.job).filter((j) => [1, 4, 5].includes(j.job_id)))
      expect(yield* db.getJobsByIds([])).toEqual([])
      // a job that is no longer pending leaves its group
      yield* db.markJobFailed(3, failureV2("pod_failed"))
      // a second worker of the (entity, label set): its oldest pending jobs over both pools (1, then 2) have one
      yield* db.addWorker(newWorker("w-second"))
      const after = yield* db.getQueueIndex
      expect(after.find((g) => g.jobIds.includes(1))).toMatchObject({ jobIds: [1], lacking: [false] })
      expect(after.find((g) => g.jobIds.includes(2))).toMatchObject({ jobIds: [2, 6], lacking: [false, true] })
      expect(after.find((g) => g.jobIds.includes(4))).toMatchObject({ lacking: [true] })
      // a personal account matches per repository: its worker on solo/a serves solo/a's job, not solo/b's
      const solo = { entity_id: 3003, entity_name: "solo", entity_type: "User" as const }
      yield* at(60)
      yield* db.addJob(newJob(7, { ...solo, repo_full_name: "solo/a" }))
      yield* db.addJob(newJob(8, { ...solo, repo_full_name: "solo/b" }))
      yield* db.addWorker(newWorker("w-solo-a", { ...solo, repo_full_name: "solo/a" }))
      const personal = (yield* db.getQueueIndex).filter((g) => g.entityId === 3003)
      expect(personal.map((g) => [g.repo, g.jobIds, g.lacking]).sort()).toEqual([["solo/a", [7], [false]], ["solo/b", [8], [true]]])
      expect((yield* db.getQueueIndex).find((g) => g.jobIds.includes(2))?.repo).toBeNull()
    }))

    test("getWaitSpans: each ended wait since a moment, to its runner's start or else its last change", Effect.gen(function*() {
      const db = yield* Db
      yield* at(100)
      yield* db.addJob(newJob(1)) // before the window
      yield* at(200)
      yield* db.addJob(newJob(2)) // its runner starts at 250
      yield* db.addJob(newJob(3)) // fails at 300 without a runner
      yield* db.addJob(newJob(4)) // still pending: the queue's index has it
      yield* db.addWorker(newWorker("w2"))
      yield* at(250)
      yield* db.markWorkerRunning("w2", "node-a", new Date(250_000))
      yield* db.markJobRunning(2, "w2")
      yield* db.markJobRunning(1, "w1")
      yield* at(300)
      yield* db.markJobFailed(3, failureV2("pod_failed"))
      const spans = yield* db.getWaitSpans(new Date(150_000))
      expect([...spans].sort((a, b) => a.endMs - b.endMs)).toEqual([
        { createdMs: 200_000, endMs: 250_000 },
        { createdMs: 200_000, endMs: 300_000 }
      ])
    }))

    test("allocation failure streaks: failures since the group's last allocated worker, within the lookback", Effect.gen(function*() {
      const db = yield* Db
      const allocFailed = (name: string, over: Parameters<typeof newWorker>[1] = {}) =>
        Effect.zipRight(db.addWorker(newWorker(name, over)), db.markWorkerFailed(name, null, failureV2("pod_allocation_failure"), null))
      yield* at(100)
      yield* allocFailed("old-a") // beyond the lookback
      yield* at(1000)
      yield* allocFailed("a1")
      yield* at(1010)
      yield* allocFailed("a2", { job_labels: ["b", "a"] }) // another label set: its own group
      yield* at(1020)
      yield* allocFailed("a3")
      // entity 2002: a failure, then an allocated worker (which later failed for another reason) ends the streak
      yield* at(1030)
      yield* allocFailed("b1", { entity_id: 2002 })
      yield* at(1040)
      yield* db.addWorker(newWorker("b2", { entity_id: 2002 }))
      yield* db.markWorkerFailed("b2", null, failureV2("runner_never_registered"), null)
      // entity 3003: allocated, then two failures
      yield* at(1050)
      yield* db.addWorker(newWorker("c1", { entity_id: 3003 }))
      yield* at(1060)
      yield* allocFailed("c2", { entity_id: 3003 })
      yield* at(1070)
      yield* allocFailed("c3", { entity_id: 3003 })
      yield* at(1100)
      const streaks = yield* db.getAllocationFailures(600)
      expect(streaks.map((s) => ({ ...s, lastFailureAt: s.lastFailureAt.getTime() }))).toEqual([
        { entityId: 1001, repoFullName: null, labels: ["a", "b"], failures: 1, lastFailureAt: 1_010_000 },
        { entityId: 1001, repoFullName: null, labels: ["ubuntu-24.04-riscv"], failures: 2, lastFailureAt: 1_020_000 },
        { entityId: 3003, repoFullName: null, labels: ["ubuntu-24.04-riscv"], failures: 2, lastFailureAt: 1_070_000 }
      ])
      expect(yield* db.getAllocationFailures(10)).toEqual([])
    }))

    test("allocation failure streaks: a personal account's are per repository; an image that cannot be pulled counts", Effect.gen(function*() {
      const db = yield* Db
      const solo = { entity_id: 4004, entity_name: "solo", entity_type: "User" as const }
      const fail = (name: string, reason: "pod_allocation_failure" | "image_pull_failed", over: Parameters<typeof newWorker>[1]) =>
        Effect.zipRight(db.addWorker(newWorker(name, over)), db.markWorkerFailed(name, null, failureV2(reason), null))
      yield* at(1000)
      yield* fail("a1", "image_pull_failed", { ...solo, repo_full_name: "solo/a" })
      yield* at(1010)
      yield* fail("a2", "pod_allocation_failure", { ...solo, repo_full_name: "solo/a" })
      // solo/b: a failure, then an allocated worker ends that repository's streak and not solo/a's
      yield* at(1020)
      yield* fail("b1", "image_pull_failed", { ...solo, repo_full_name: "solo/b" })
      yield* at(1030)
      yield* db.addWorker(newWorker("b2", { ...solo, repo_full_name: "solo/b" }))
      yield* at(1100)
      const streaks = yield* db.getAllocationFailures(600)
      expect(streaks.map((s) => ({ ...s, lastFailureAt: s.lastFailureAt.getTime() }))).toEqual([
        { entityId: 4004, repoFullName: "solo/a", labels: ["ubuntu-24.04-riscv"], failures: 2, lastFailureAt: 1_010_000 }
      ])
    }))

    test("jobs to poll: active, with a repository, news older than the cut-off, stalest first, limited", Effect.gen(function*() {
      const db = yield* Db
      yield* at(10)
      yield* db.addJob(newJob(1))
      yield* at(20)
      yield* db.addJob(newJob(2))
      yield* db.addJob(newJob(3, { repo_full_name: "" }))
      yield* at(30)
      yield* db.addJob(newJob(4))
      yield* db.addJob(newJob(5))
      yield* db.markJobCompleted(5, "r5")
      // news at 40 s makes job 1 the freshest
      yield* at(40)
      yield* db.markJobRunning(1, "r1")
      const ids = (jobs: ReadonlyArray<{ readonly job_id: number }>) => jobs.map((j) => j.job_id)
      expect(ids(yield* db.getJobsToPoll(new Date(100_000), 10))).toEqual([2, 4, 1])
      expect(ids(yield* db.getJobsToPoll(new Date(100_000), 2))).toEqual([2, 4])
      expect(ids(yield* db.getJobsToPoll(new Date(30_000), 10))).toEqual([2])
      expect(yield* db.getJobsToPoll(new Date(5_000), 10)).toEqual([])
    }))

    test("running job pods: the runners recorded on running jobs", Effect.gen(function*() {
      const db = yield* Db
      for (let i = 1; i <= 4; i++) yield* db.addJob(newJob(i))
      yield* db.markJobRunning(1, "runner-b")
      yield* db.markJobRunning(2, "runner-a")
      yield* db.markJobRunning(3, "")
      yield* db.markJobCompleted(4, "runner-c")
      expect(yield* db.getRunningJobPods).toEqual(["runner-a", "runner-b"])
    }))

    test("getRecentFailures: the failed workers only, the last to fail first, at most the limit", Effect.gen(function*() {
      const db = yield* Db
      yield* at(1000)
      // created in one order, failing in another: the order is by when they failed
      for (const name of ["f-early", "f-late", "f-mid", "ok", "running"]) yield* db.addWorker(newWorker(name))
      yield* at(1010)
      yield* db.markWorkerFailed("f-late", "node-a", failureV2("runner_never_registered"), new Date(1_030_000))
      yield* db.markWorkerFailed("f-early", null, failureV2("pod_allocation_failure"), new Date(1_010_000))
      yield* db.markWorkerFailed("f-mid", "node-b", failureV2("pod_stuck_pending"), new Date(1_020_000))
      yield* db.markWorkerCompleted("ok", "node-a", new Date(1_040_000))
      yield* db.markWorkerRunning("running", "node-b", null)
      const names = (ws: ReadonlyArray<{ readonly pod_name: string }>) => ws.map((w) => w.pod_name)
      const all = yield* db.getRecentFailures(10)
      expect(names(all)).toEqual(["f-late", "f-mid", "f-early"])
      expect(all[0]).toMatchObject({ status: "failed", k8s_node: "node-a", failure_info: { reason: "runner_never_registered" } })
      expect(names(yield* db.getRecentFailures(2))).toEqual(["f-late", "f-mid"])
      expect(yield* db.getRecentFailures(0)).toEqual([])
    }))

    test("addWorker reserves a unique pod name", Effect.gen(function*() {
      const db = yield* Db
      yield* db.addWorker(newWorker("rise-riscv-runner-staging-abc", { entity_type: "User", repo_full_name: "me/repo", job_labels: ["b", "a"] }))
      const dup = yield* Effect.either(db.addWorker(newWorker("rise-riscv-runner-staging-abc")))
      expect(Either.isLeft(dup) && dup.left instanceof DuplicatePodName).toBe(true)
      const w = Option.getOrThrow(yield* db.getWorker("rise-riscv-runner-staging-abc"))
      expect(w).toMatchObject({ status: "pending", entity_type: "User", repo_full_name: "me/repo", job_labels: ["a", "b"] })
      expect(w.running_at).toBeNull()
      expect(w.completed_at).toBeNull()
      expect(Option.isNone(yield* db.getWorker("nope"))).toBe(true)
    }))

    test("a worker's cluster round-trips through addWorker, addWorkers and every read; left out, it is the default", Effect.gen(function*() {
      const db = yield* Db
      yield* db.addWorker(newWorker("w-lab", { k8s_pool: "jupiter", cluster: "lab" }))
      yield* db.addWorker(newWorker("w-home"))
      expect(yield* db.addWorkers([
        newWorker("b-lab", { k8s_pool: "jupiter", cluster: "lab" }),
        newWorker("b-scw", { cluster: "scw-2" }),
        newWorker("b-home")
      ])).toEqual([])
      const expected = { "w-lab": "lab", "w-home": DEFAULT_CLUSTER, "b-lab": "lab", "b-scw": "scw-2", "b-home": DEFAULT_CLUSTER }
      for (const [pod, cluster] of Object.entries(expected)) {
        expect(Option.getOrThrow(yield* db.getWorker(pod)).cluster).toBe(cluster)
      }
      const byPod = (rows: ReadonlyArray<{ pod_name: string; cluster: string }>) => Object.fromEntries(rows.map((w) => [w.pod_name, w.cluster]))
      expect(byPod(yield* db.getActiveWorkers)).toEqual(expected)
      expect(byPod(yield* db.getWorkersForReconcile(3600))).toEqual(expected)
      expect(byPod((yield* db.listWorkers({ page: 0, perPage: 10 })).rows)).toEqual(expected)
      // a transition keeps it
      yield* db.markWorkerRunning("w-lab", "jupiter-1", null)
      yield* db.markWorkerFailed("b-lab", "jupiter-2", failureV2("node_unreachable"), null)
      expect(Option.getOrThrow(yield* db.getWorker("w-lab")).cluster).toBe("lab")
      expect(Option.getOrThrow(yield* db.getWorker("b-lab")).cluster).toBe("lab")
    }))

    test("worker transitions keep the first times and only move forward", Effect.gen(function*() {
      const db = yield* Db
      yield* at(1000)
      yield* db.addWorker(newWorker("w1"))
      yield* db.addWorker(newWorker("w2"))
      yield* db.addWorker(newWorker("w3"))
      yield* db.addWorker(newWorker("w4"))
      yield* at(1100)
      expect(yield* db.markWorkerRunning("w1", "node-a", new Date(1_050_000))).toBe(true)
      expect(yield* db.markWorkerRunning("w1", "node-b", null)).toBe(false)
      expect(yield* db.markWorkerCompleted("w1", "node-z", new Date(1_090_000))).toBe(true)
      const w1 = Option.getOrThrow(yield* db.getWorker("w1"))
      expect(w1).toMatchObject({ status: "completed", k8s_node: "node-a" })
      expect(w1.running_at?.getTime()).toBe(1_050_000)
      expect(w1.completed_at?.getTime()).toBe(1_090_000)
      expect(yield* db.markWorkerFailed("w1", null, failureV2("pod_failed"), null)).toBe(false)

      expect(yield* db.markWorkerRunning("w2", "node-b", null)).toBe(true)
      const info = failureV2("runner_idle", { pod_reason: "DeadlineExceeded", containers: { runner: { exit_code: null, reason: "", message: "" } } })
      expect(yield* db.markWorkerFailed("w2", null, info, null)).toBe(true)
      const w2 = Option.getOrThrow(yield* db.getWorker("w2"))
      expect(w2).toMatchObject({ status: "failed", k8s_node: "node-b", failure_info: info })
      expect(w2.running_at?.getTime()).toBe(1_100_000)
      expect(w2.completed_at?.getTime()).toBe(1_100_000)
      expect(yield* db.markWorkerCompleted("w2", null, null)).toBe(false)

      // first seen finished: the runner's start becomes running_at; a known running_at is kept
      yield* db.addWorker(newWorker("w5"))
      expect(yield* db.markWorkerCompleted("w5", "node-c", new Date(1_099_000), new Date(1_020_000))).toBe(true)
      expect(Option.getOrThrow(yield* db.getWorker("w5"))).toMatchObject({ running_at: new Date(1_020_000), completed_at: new Date(1_099_000) })
      expect(yield* db.markWorkerCompleted("w1", null, null, new Date(1))).toBe(false)
      expect(Option.getOrThrow(yield* db.getWorker("w1")).running_at?.getTime()).toBe(1_050_000)

      expect(yield* db.markWorkerOrphaned("w3")).toBe(true)
      expect(Option.getOrThrow(yield* db.getWorker("w3"))).toMatchObject({ status: "completed", failure_info: null })
      expect(yield* db.markWorkerOrphaned("w3")).toBe(false)
      expect(yield* db.markWorkerOrphaned("missing")).toBe(false)
      expect((yield* db.getActiveWorkers).map((w) => w.pod_name)).toEqual(["w4"])
    }))

    test("markWorkersMoved makes many moves in one call, each by the rules of markWorkerRunning and markWorkerCompleted", Effect.gen(function*() {
      const db = yield* Db
      yield* at(1000)
      for (const name of ["m1", "m2", "m3", "m4", "m5", "m6"]) yield* db.addWorker(newWorker(name))
      yield* db.markWorkerRunning("m2", "node-b", new Date(1_010_000))
      yield* db.markWorkerRunning("m3", "node-c", new Date(1_020_000))
      yield* db.markWorkerCompleted("m3", null, new Date(1_030_000))
      yield* db.markWorkerFailed("m6", null, failureV2("pod_failed"), null)
      yield* at(1100)
      const moved = yield* db.markWorkersMoved([
        // pending -> running, the start as given; and a second listing of the same pod, which does not count
        { podName: "m1", to: "running", node: "node-a", runningAt: new Date(1_050_000), completedAt: null },
        { podName: "m1", to: "completed", node: "node-x", runningAt: null, completedAt: new Date(1_060_000) },
        // running -> completed: the node and the start already known are kept
        { podName: "m2", to: "completed", node: "node-z", runningAt: new Date(1), completedAt: new Date(1_090_000) },
        // already completed, already failed, unknown: nothing moves
        { podName: "m3", to: "completed", node: null, runningAt: null, completedAt: null },
        { podName: "m6", to: "completed", node: null, runningAt: null, completedAt: null },
        { podName: "missing", to: "running", node: null, runningAt: null, completedAt: null },
        // pending, first seen finished, no times: completed now, with the start it was given (none)
        { podName: "m4", to: "completed", node: "node-d", runningAt: null, completedAt: null },
        // pending -> running without a start: now
        { podName: "m5", to: "running", node: "node-e", runningAt: null, completedAt: null }
      ])
      expect([...moved].sort()).toEqual(["m1", "m2", "m4", "m5"])
      expect(Option.getOrThrow(yield* db.getWorker("m1"))).toMatchObject({ status: "running", k8s_node: "node-a", running_at: new Date(1_050_000), completed_at: null })
      expect(Option.getOrThrow(yield* db.getWorker("m2"))).toMatchObject({
        status: "completed",
        k8s_node: "node-b",
        running_at: new Date(1_010_000),
        completed_at: new Date(1_090_000)
      })
      expect(Option.getOrThrow(yield* db.getWorker("m3"))).toMatchObject({ status: "completed", completed_at: new Date(1_030_000) })
      expect(Option.getOrThrow(yield* db.getWorker("m6")).status).toBe("failed")
      expect(Option.getOrThrow(yield* db.getWorker("m4"))).toMatchObject({ status: "completed", k8s_node: "node-d", running_at: null, completed_at: new Date(1_100_000) })
      expect(Option.getOrThrow(yield* db.getWorker("m5"))).toMatchObject({ status: "running", k8s_node: "node-e", running_at: new Date(1_100_000) })
      expect(yield* db.markWorkersMoved([])).toEqual([])
      // a running worker is not moved to running again
      expect(yield* db.markWorkersMoved([{ podName: "m5", to: "running", node: "node-q", runningAt: null, completedAt: null }])).toEqual([])
      expect(Option.getOrThrow(yield* db.getWorker("m5")).k8s_node).toBe("node-e")
    }))

    test("workers for reconcile: active ones plus those finished within the lookback", Effect.gen(function*() {
      const db = yield* Db
      yield* at(0)
      yield* db.addWorker(newWorker("active"))
      yield* db.addWorker(newWorker("old"))
      yield* db.addWorker(newWorker("recent"))
      yield* at(1000)
      yield* db.markWorkerCompleted("old", null, null)
      yield* at(4000)
      yield* db.markWorkerFailed("recent", null, failureV2("pod_failed"), null)
      yield* at(4700)
      expect((yield* db.getWorkersForReconcile(3600)).map((w) => w.pod_name).sort()).toEqual(["active", "recent"])
      expect((yield* db.getWorkersForReconcile(4000)).map((w) => w.pod_name).sort()).toEqual(["active", "old", "recent"])
    }))

    test("listWorkers pages newest first", Effect.gen(function*() {
      const db = yield* Db
      for (let i = 1; i <= 3; i++) {
        yield* at(i)
        yield* db.addWorker(newWorker(`w${i}`))
      }
      const page = yield* db.listWorkers({ page: 0, perPage: 2 })
      expect(page.total).toBe(3)
      expect(page.rows.map((w) => w.pod_name)).toEqual(["w3", "w2"])
    }))

    test("jobExistsForPod finds the runner a job ran on", Effect.gen(function*() {
      const db = yield* Db
      yield* db.addJob(newJob(1))
      expect(yield* db.jobExistsForPod("runner-x")).toBe(false)
      yield* db.markJobRunning(1, "runner-x")
      expect(yield* db.jobExistsForPod("runner-x")).toBe(true)
    }))

    test("installation events: an ordered timeline without payloads, payloads one by one", Effect.gen(function*() {
      const db = yield* Db
      yield* at(50)
      const second = yield* db.addInstallationEvent(newEvent({
        event: "workflow_job.queued",
        outcome: "job_stored",
        payload: { workflow_job: { id: 77, labels: ["x"] }, repository: { full_name: "acme/app" } },
        delivery_id: "d-1"
      }))
      yield* at(10)
      const first = yield* db.addInstallationEvent(newEvent({ payload: { action: "created", big: "x".repeat(1000) } }))
      yield* db.addInstallationEvent(newEvent({ entity_id: 2002 }))
      yield* db.addInstallationEvent(newEvent({ source: "scheduler", event: "auth_attempt.404", outcome: "auth_404", entity_type: null, entity_name: null, payload: { http_status: 404 } }))
      expect(second).toBeLessThan(first)
      const timeline = yield* db.getEventsByEntity(1001)
      expect(timeline.map((e) => e.id)).toEqual([first, first + 2, second])
      for (const e of timeline) expect(Object.keys(e)).not.toContain("payload")
      expect(timeline[0]).toMatchObject({ event: "installation.created", job_id: null, repo_full_name: null, entity_type: "Organization", app_id: 2167633 })
      expect(timeline[1]).toMatchObject({ source: "scheduler", entity_type: null, entity_name: null })
      expect(timeline[2]).toMatchObject({ job_id: "77", repo_full_name: "acme/app", delivery_id: "d-1", outcome: "job_stored" })
      expect(timeline[2]!.received_at.getTime()).toBe(50_000)
      expect(yield* db.getEventsByEntity(3003)).toEqual([])
      expect(yield* db.getEventPayload(first)).toEqual(Option.some({ action: "created", big: "x".repeat(1000) }))
      expect(Option.isNone(yield* db.getEventPayload(999_999))).toBe(true)
    }))

    test("trace look-ups resolve an installation or a job to its entity", Effect.gen(function*() {
      const db = yield* Db
      yield* at(1)
      yield* db.addJob(newJob(1, { installation_id: 7, entity_id: 3003 }))
      expect(yield* db.getEntityIdForInstallation(7)).toEqual(Option.some(3003))
      yield* at(2)
      yield* db.addInstallationEvent(newEvent({ installation_id: 7, entity_id: 4004 }))
      yield* db.addInstallationEvent(newEvent({ installation_id: 7, entity_id: null, entity_type: null }))
      expect(yield* db.getEntityIdForInstallation(7)).toEqual(Option.some(4004))
      expect(Option.isNone(yield* db.getEntityIdForInstallation(8))).toBe(true)
      expect(yield* db.getEntityIdForJob(1)).toEqual(Option.some(3003))
      expect(Option.isNone(yield* db.getEntityIdForJob(2))).toBe(true)
    }))

    test("a failed step undoes only its own writes; the cycle's other steps stand", Effect.gen(function*() {
      const db = yield* Db
      yield* db.addWorker(newWorker("w1"))
      yield* db.addWorker(newWorker("w2"))
      const outcome = yield* db.withWorkerLock(Effect.gen(function*() {
        yield* db.step(db.markWorkerRunning("w1", "n1", null))
        const failed = yield* Effect.either(db.step(Effect.gen(function*() {
          yield* db.markWorkerRunning("w2", "n2", null)
          yield* db.addWorker(newWorker("w3"))
          return yield* Effect.fail("kube said no" as const)
        })))
        yield* db.step(db.addJob(newJob(9)))
        return failed
      }))
      expect(outcome).toEqual(Either.left("kube said no"))
      expect(Option.getOrThrow(yield* db.getWorker("w1")).status).toBe("running")
      expect(Option.getOrThrow(yield* db.getWorker("w2")).status).toBe("pending")
      expect(Option.isNone(yield* db.getWorker("w3"))).toBe(true)
      expect(Option.isSome(yield* db.getJob(9))).toBe(true)
    }))

    liveTest("each step of a cycle commits on its own: it is visible outside the cycle while the cycle still runs", Effect.gen(function*() {
      const db = yield* Db
      const reserved = yield* Deferred.make<void>()
      const finish = yield* Deferred.make<void>()
      const cycle = yield* Effect.fork(db.withWorkerLock(Effect.gen(function*() {
        yield* db.step(db.addWorker(newWorker("w-reserved")))
        yield* Deferred.succeed(reserved, undefined)
        yield* Deferred.await(finish)
      })))
      yield* Deferred.await(reserved)
      // read by another fiber, outside the cycle (on PostgreSQL another pooled connection)
      expect(Option.getOrThrow(yield* db.getWorker("w-reserved")).status).toBe("pending")
      yield* Deferred.succeed(finish, undefined)
      yield* Fiber.join(cycle)
    }))

    test("a cycle that fails after some steps keeps them: no transaction spans the cycle", Effect.gen(function*() {
      const db = yield* Db
      yield* db.addWorker(newWorker("w1"))
      const outcome = yield* Effect.either(db.withWorkerLock(Effect.gen(function*() {
        yield* db.step(db.markWorkerRunning("w1", "n1", null))
        yield* db.step(db.addWorker(newWorker("w2")))
        return yield* Effect.fail("the cycle broke" as const)
      })))
      expect(outcome).toEqual(Either.left("the cycle broke"))
      expect(Option.getOrThrow(yield* db.getWorker("w1")).status).toBe("running")
      expect(Option.getOrThrow(yield* db.getWorker("w2")).status).toBe("pending")
    }))

    liveTest("a cycle interrupted mid-way (a crash) keeps its committed steps; the lock is free again", Effect.gen(function*() {
      const db = yield* Db
      const reserved = yield* Deferred.make<void>()
      const cycle = yield* Effect.fork(db.withWorkerLock(Effect.gen(function*() {
        yield* db.step(db.addWorker(newWorker("w-before-crash")))
        yield* Deferred.succeed(reserved, undefined)
        yield* Effect.never
      })))
      yield* Deferred.await(reserved)
      yield* Fiber.interrupt(cycle)
      expect(Option.isSome(yield* db.getWorker("w-before-crash"))).toBe(true)
      const next = yield* db.withWorkerLock(db.step(db.addWorker(newWorker("w-next-cycle")))).pipe(Effect.timeout("5 seconds"))
      expect(next).toBeUndefined()
      expect(Option.isSome(yield* db.getWorker("w-next-cycle"))).toBe(true)
    }))

    test("knownPodNames says which of the names have a worker row, whatever its status or age", Effect.gen(function*() {
      const db = yield* Db
      yield* at(1)
      yield* db.addWorker(newWorker("w-old"))
      yield* db.markWorkerCompleted("w-old", null, null)
      yield* at(100_000)
      yield* db.addWorker(newWorker("w-new"))
      expect([...(yield* db.knownPodNames(["w-old", "w-new", "w-none"]))].sort()).toEqual(["w-new", "w-old"])
      expect((yield* db.knownPodNames([])).size).toBe(0)
    }))

    liveTest("a second cycle waits for the first to release the workers lock", Effect.gen(function*() {
      const db = yield* Db
      const order: Array<string> = []
      const firstHolds = yield* Deferred.make<void>()
      const releaseFirst = yield* Deferred.make<void>()
      const first = yield* Effect.fork(db.withWorkerLock(Effect.gen(function*() {
        order.push("first:start")
        yield* Deferred.succeed(firstHolds, undefined)
        yield* Deferred.await(releaseFirst)
        yield* db.addWorker(newWorker("from-first"))
        order.push("first:end")
      })))
      yield* Deferred.await(firstHolds)
      const second = yield* Effect.fork(db.withWorkerLock(Effect.sync(() => order.push("second:start"))))
      yield* Effect.sleep("200 millis")
      expect(order).toEqual(["first:start"])
      yield* Deferred.succeed(releaseFirst, undefined)
      yield* Fiber.join(first)
      yield* Fiber.join(second)
      expect(order).toEqual(["first:start", "first:end", "second:start"])
    }))

    test("ping answers while the store is up", Effect.gen(function*() {
      const db = yield* Db
      yield* db.ping
      yield* db.addJob(newJob(1))
      yield* db.ping
      expect(Option.isSome(yield* db.getJob(1))).toBe(true)
    }))

    liveTest("a stored job wakes the schedulers; a duplicate does not", Effect.gen(function*() {
      const db = yield* Db
      const woken = yield* Effect.fork(Stream.runCollect(Stream.take(db.wakeups, 2)))
      yield* Effect.sleep("300 millis") // let LISTEN reach the server
      yield* db.addJob(newJob(41))
      yield* db.addJob(newJob(41))
      yield* db.addJob(newJob(42))
      const ids = yield* Fiber.join(woken).pipe(Effect.timeout("5 seconds"))
      expect([...ids]).toEqual(["41", "42"])
    }))

    const queuedDelivery = (jobId: number, deliveryId: string, over: Parameters<typeof newEvent>[0] = {}) => ({
      event: newEvent({ event: "workflow_job.queued", outcome: "job_stored", delivery_id: deliveryId, payload: { workflow_job: { id: jobId } }, ...over }),
      job: { row: newJob(jobId), outcomeIfExists: "job_already_exists" as const }
    })

    test("storeDelivery stores a queued job with its audit row; a re-delivery adds only its row, with the other outcome", Effect.gen(function*() {
      const db = yield* Db
      yield* at(20)
      const first = yield* db.storeDelivery(queuedDelivery(7, "d-1"))
      const again = yield* db.storeDelivery(queuedDelivery(7, "d-2"))
      const logOnly = yield* db.storeDelivery({ event: newEvent({ delivery_id: "d-3" }) })
      expect(first.jobCreated).toBe(true)
      expect(again.jobCreated).toBe(false)
      expect(logOnly.jobCreated).toBe(false)
      expect(Option.getOrThrow(yield* db.getJob(7))).toMatchObject({ status: "pending", entity_id: 1001, job_labels: ["ubuntu-24.04-riscv"] })
      expect(Option.getOrThrow(yield* db.getJob(7)).created_at.getTime()).toBe(20_000)
      const timeline = yield* db.getEventsByEntity(1001)
      expect(timeline.map((e) => [e.id, e.delivery_id, e.outcome])).toEqual([
        [first.eventId, "d-1", "job_stored"],
        [again.eventId, "d-2", "job_already_exists"],
        [logOnly.eventId, "d-3", "ok"]
      ])
      expect(timeline[0]!.received_at.getTime()).toBe(20_000)
      expect(yield* db.getEventPayload(first.eventId)).toEqual(Option.some({ workflow_job: { id: 7 } }))
    }))

    liveTest("storeDelivery, concurrent deliveries: each job once, every audit row, the duplicates told so", Effect.gen(function*() {
      const db = yield* Db
      // 60 deliveries of 20 jobs, each job delivered three times, all at once
      const writes = Array.from({ length: 60 }, (_, i) => queuedDelivery(100 + (i % 20), `c-${i}`))
      const stored = yield* Effect.forEach(writes, (w) => db.storeDelivery(w), { concurrency: "unbounded" })
      expect(new Set(stored.map((s) => s.eventId)).size).toBe(60)
      const timeline = yield* db.getEventsByEntity(1001)
      expect(timeline).toHaveLength(60)
      for (let job = 100; job < 120; job++) {
        const rows = timeline.filter((e) => e.job_id === String(job))
        expect(rows.map((e) => e.outcome).sort(), `job ${job}`).toEqual(["job_already_exists", "job_already_exists", "job_stored"])
        // the delivery told it created the job is the one whose row says so
        const creator = stored.findIndex((s, i) => s.jobCreated && writes[i]!.job.row.job_id === job)
        expect(rows.find((e) => e.outcome === "job_stored")!.id).toBe(stored[creator]!.eventId)
      }
      expect((yield* db.getPendingJobs).map((j) => j.job_id).sort((a, b) => a - b)).toEqual(Array.from({ length: 20 }, (_, i) => 100 + i))
    }))

    liveTest("storeDelivery is both or neither: an audit row the store refuses leaves no job, and fails only its delivery", Effect.gen(function*() {
      const db = yield* Db
      const writes = Array.from({ length: 12 }, (_, i) =>
        i === 5
          ? queuedDelivery(205, "bad", { entity_type: "Enterprise" as never })
          : queuedDelivery(200 + i, `ok-${i}`))
      const outcomes = yield* Effect.forEach(writes, (w) => Effect.either(db.storeDelivery(w)), { concurrency: "unbounded" })
      expect(outcomes.map(Either.isLeft)).toEqual(writes.map((_, i) => i === 5))
      expect(Option.isNone(yield* db.getJob(205))).toBe(true)
      expect((yield* db.getPendingJobs).map((j) => j.job_id).sort((a, b) => a - b)).toEqual([200, 201, 202, 203, 204, 206, 207, 208, 209, 210, 211])
      expect((yield* db.getEventsByEntity(1001)).map((e) => e.delivery_id)).not.toContain("bad")
    }))

    test("storeDelivery inside a step is part of it: a failed step undoes both rows", Effect.gen(function*() {
      const db = yield* Db
      const failed = yield* Effect.either(db.step(Effect.zipRight(db.storeDelivery(queuedDelivery(300, "s-1")), Effect.fail("later" as const))))
      expect(failed).toEqual(Either.left("later"))
      expect(Option.isNone(yield* db.getJob(300))).toBe(true)
      expect(yield* db.getEventsByEntity(1001)).toEqual([])
      expect((yield* db.step(db.storeDelivery(queuedDelivery(300, "s-2")))).jobCreated).toBe(true)
      expect(Option.isSome(yield* db.getJob(300))).toBe(true)
    }))

    liveTest("storeDelivery wakes the schedulers once per new job, whatever the batching", Effect.gen(function*() {
      const db = yield* Db
      // until every new job has been announced; a duplicate announced meanwhile would show in the list
      const seen = new Set<string>()
      const woken = yield* Effect.fork(Stream.runCollect(Stream.takeUntil(db.wakeups, (id) => {
        seen.add(id)
        return ["51", "52", "53"].every((x) => seen.has(x))
      })))
      yield* Effect.sleep("300 millis") // let LISTEN reach the server
      yield* Effect.forEach([51, 51, 52, 53, 52], (id, i) => db.storeDelivery(queuedDelivery(id, `w-${i}`)), { concurrency: "unbounded" })
      const ids = yield* Fiber.join(woken).pipe(Effect.timeout("5 seconds"))
      expect([...ids].sort()).toEqual(["51", "52", "53"])
    }))

    test("storeTransition moves a job and appends its audit row together; an unknown job writes nothing", Effect.gen(function*() {
      const db = yield* Db
      yield* db.addJob(newJob(8))
      const event = (deliveryId: string, outcome: "job_marked_running" | "job_marked_completed") =>
        newEvent({ event: "workflow_job.in_progress", outcome, delivery_id: deliveryId, payload: { workflow_job: { id: 8 } } })
      expect(yield* db.storeTransition({ jobId: 8, to: "running", runnerName: "r-8", event: event("t-1", "job_marked_running") }))
        .toEqual({ found: true, previous: "pending", changed: true })
      expect(yield* db.storeTransition({ jobId: 8, to: "completed", runnerName: null, event: event("t-2", "job_marked_completed") }))
        .toEqual({ found: true, previous: "running", changed: true })
      // a late in_progress for a completed job: logged, not moved
      expect(yield* db.storeTransition({ jobId: 8, to: "running", runnerName: "other", event: event("t-3", "job_marked_running") }))
        .toEqual({ found: true, previous: "completed", changed: false })
      expect(Option.getOrThrow(yield* db.getJob(8))).toMatchObject({ status: "completed", k8s_pod: "r-8" })
      expect(yield* db.storeTransition({ jobId: 99, to: "running", runnerName: null, event: event("t-4", "job_marked_running") })).toEqual({ found: false })
      expect((yield* db.getEventsByEntity(1001)).map((e) => e.delivery_id)).toEqual(["t-1", "t-2", "t-3"])
      // both or neither: an audit row the store refuses leaves the job where it was
      const refused = yield* Effect.either(db.storeTransition({ jobId: 8, to: "completed", runnerName: null, event: { ...event("t-5", "job_marked_completed"), entity_type: "Enterprise" as never } }))
      expect(Either.isLeft(refused)).toBe(true)
      yield* db.addJob(newJob(9))
      const refusedMove = yield* Effect.either(db.storeTransition({ jobId: 9, to: "running", runnerName: "r-9", event: { ...event("t-6", "job_marked_running"), entity_type: "Enterprise" as never } }))
      expect(Either.isLeft(refusedMove)).toBe(true)
      expect(Option.getOrThrow(yield* db.getJob(9))).toMatchObject({ status: "pending", k8s_pod: null })
      expect((yield* db.getEventsByEntity(1001)).map((e) => e.delivery_id)).toEqual(["t-1", "t-2", "t-3"])
    }))

    test("addWorkers reserves a burst of names in one call; taken names are reported and the rest reserved", Effect.gen(function*() {
      const db = yield* Db
      yield* at(30)
      yield* db.addWorker(newWorker("w-old"))
      const taken = yield* db.addWorkers([
        newWorker("w-a"),
        newWorker("w-old", { entity_id: 9 }),
        newWorker("w-b", { entity_id: 2002, entity_type: "User", repo_full_name: "bob/x", job_labels: ["z", "a"] }),
        newWorker("w-a", { entity_id: 9 })
      ])
      expect(taken).toEqual(["w-old", "w-a"])
      expect(Option.getOrThrow(yield* db.getWorker("w-old")).entity_id).toBe(1001)
      expect(Option.getOrThrow(yield* db.getWorker("w-a")).entity_id).toBe(1001)
      expect(Option.getOrThrow(yield* db.getWorker("w-b"))).toMatchObject({
        status: "pending", entity_type: "User", repo_full_name: "bob/x", job_labels: ["a", "z"], k8s_node: null
      })
      expect(Option.getOrThrow(yield* db.getWorker("w-b")).created_at.getTime()).toBe(30_000)
      expect(yield* db.addWorkers([])).toEqual([])
    }))

    test("releaseWorkers gives back unused reservations only: a worker that moved on stays", Effect.gen(function*() {
      const db = yield* Db
      yield* db.addWorkers([newWorker("r-1"), newWorker("r-2"), newWorker("r-3")])
      yield* db.markWorkerRunning("r-2", "node-1", null)
      expect(yield* db.releaseWorkers(["r-1", "r-2", "r-unknown"])).toBe(1)
      expect(Option.isNone(yield* db.getWorker("r-1"))).toBe(true)
      expect(Option.getOrThrow(yield* db.getWorker("r-2")).status).toBe("running")
      expect(Option.getOrThrow(yield* db.getWorker("r-3")).status).toBe("pending")
      // inside a failed step the release is undone
      yield* Effect.either(db.step(Effect.zipRight(db.releaseWorkers(["r-3"]), Effect.fail("no"))))
      expect(Option.isSome(yield* db.getWorker("r-3"))).toBe(true)
      expect(yield* db.releaseWorkers([])).toBe(0)
    }))

    test("deleteCompletedJobsBefore removes old completed jobs only, and never a worker", Effect.gen(function*() {
      const db = yield* Db
      yield* at(1000)
      for (const id of [1, 2, 3, 4]) yield* db.addJob(newJob(id))
      yield* db.addWorker(newWorker("w-old"))
      yield* db.markJobCompleted(1, "w-old")
      yield* db.markJobFailed(2, failureV1("gone"))
      yield* db.markJobRunning(3, "w-old")
      yield* db.markWorkerCompleted("w-old", null, null)
      yield* at(5000)
      yield* db.addJob(newJob(5))
      yield* db.markJobCompleted(5, "")
      expect(yield* db.deleteCompletedJobsBefore(new Date(1000 * 1000))).toBe(0)
      expect(yield* db.deleteCompletedJobsBefore(new Date(1001 * 1000))).toBe(1)
      expect(Option.isNone(yield* db.getJob(1))).toBe(true)
      for (const id of [2, 3, 4, 5]) expect(Option.isSome(yield* db.getJob(id)), `job ${id}`).toBe(true)
      expect(Option.getOrThrow(yield* db.getWorker("w-old")).status).toBe("completed")
      expect(yield* db.deleteCompletedJobsBefore(new Date(1001 * 1000))).toBe(0)
      expect(yield* db.deleteCompletedJobsBefore(new Date(6000 * 1000))).toBe(1)
      expect((yield* db.listJobs({ page: 0, perPage: 10 })).rows.map((j) => j.job_id).sort()).toEqual([2, 3, 4])
    }))


    test("getWeeklyUsage: jobs, board time, waits, failures by class and time at the cap, per entity and week", Effect.gen(function*() {
      const db = yield* Db
      const base = Date.UTC(2026, 10, 23) / 1000 // a Monday
      const DAY = 86_400
      const t = (s: number) => TestClock.setTime((base + s) * 1000)
      const date = (s: number) => new Date((base + s) * 1000)
      const beta = { entity_id: 2002, entity_name: "beta" }
      // before the window: its job and worker count only where they reach into it (w0 runs on until +600)
      yield* t(-4000)
      yield* db.addJob(newJob(1))
      yield* t(-3600)
      yield* db.addWorker(newWorker("w0"))
      yield* t(-3000)
      yield* db.markWorkerRunning("w0", "node-a", null)
      yield* db.markJobRunning(1, "w0")
      // week 0, acme (cap 1): job 2 waits 50 s, job 3 waits 1100 s behind the cap, job 4 fails while queued
      yield* t(100)
      yield* db.addJob(newJob(2))
      yield* db.addWorker(newWorker("w1"))
      yield* t(150)
      yield* db.markWorkerRunning("w1", "node-a", null)
      yield* db.markJobRunning(2, "w1")
      yield* t(200)
      yield* db.addJob(newJob(3))
      yield* t(300)
      yield* db.addJob(newJob(4))
      yield* t(400)
      yield* db.markJobFailed(4, failureV1("job not found for job_id=4 entity=acme entity_id=1001 entity_type=Organization"))
      // week 0, beta (no cap): job 7 runs on wb after 60 s, then fails; job 8 is cancelled while queued
      yield* t(500)
      yield* db.addJob(newJob(7, beta))
      yield* db.addWorker(newWorker("wb", beta))
      yield* t(560)
      yield* db.markWorkerRunning("wb", "node-b", null)
      yield* db.markJobRunning(7, "wb")
      yield* t(600)
      yield* db.markWorkerCompleted("w0", null, null)
      yield* db.markJobCompleted(1, "w0")
      yield* db.addJob(newJob(8, beta))
      yield* t(700)
      yield* db.markJobCompleted(8, "")
      yield* t(860)
      yield* db.markWorkerFailed("wb", "node-b", failureV2("pod_failed"), null)
      yield* db.markJobFailed(7, failureV1("installation not found for installation_id=5001 entity_type=Organization"))
      yield* t(1000)
      yield* db.markJobCompleted(2, "w1")
      yield* db.markWorkerCompleted("w1", null, null)
      yield* db.addWorker(newWorker("w2"))
      yield* t(1300)
      yield* db.markWorkerRunning("w2", "node-a", null)
      yield* db.markJobRunning(3, "w2")
      yield* t(2000)
      yield* db.markJobCompleted(3, "w2")
      yield* db.markWorkerCompleted("w2", null, null)
      // week 1, acme (renamed): w3 runs to the end of the window; job 5 waits 10 s, job 6 is still waiting at the cap
      yield* t(7 * DAY + 5)
      yield* db.addWorker(newWorker("w3"))
      yield* t(7 * DAY + 10)
      yield* db.addJob(newJob(5))
      yield* t(7 * DAY + 20)
      yield* db.markWorkerRunning("w3", "node-a", null)
      yield* db.markJobRunning(5, "w3")
      yield* t(7 * DAY + 30)
      yield* db.addJob(newJob(6, { entity_name: "acme-renamed" }))

      const caps = { entities: [{ entityId: 1001, cap: 1 }, { entityId: 2002, cap: null }], defaultCap: 5 }
      const rows = yield* db.getWeeklyUsage({ from: date(0), weeks: 2, now: date(10 * DAY), caps })
      const sorted = [...rows].sort((a, b) => a.weekStart.getTime() - b.weekStart.getTime() || a.entityId - b.entityId)
      expect(sorted).toEqual([
        {
          weekStart: date(0), entityId: 1001, entityName: "acme-renamed", entityType: "Organization",
          jobs: 3, jobsRun: 2, jobsFailed: { job_not_found: 1 },
          boardSeconds: 600 + 850 + 700, waitP50Seconds: 50, waitP95Seconds: 1100, waitMaxSeconds: 1100,
          // job 3 waits [200, 1300) while w0, w1 or w2 holds acme's one slot, but from 1000 its own runner w2 is
          // starting; job 2's wait [100, 150) is its own runner's start
          atCapSeconds: 800
        },
        {
          weekStart: date(0), entityId: 2002, entityName: "beta", entityType: "Organization",
          jobs: 2, jobsRun: 1, jobsFailed: { installation_not_found: 1 },
          boardSeconds: 300, waitP50Seconds: 60, waitP95Seconds: 60, waitMaxSeconds: 60, atCapSeconds: 0
        },
        {
          weekStart: date(7 * DAY), entityId: 1001, entityName: "acme-renamed", entityType: "Organization",
          jobs: 2, jobsRun: 1, jobsFailed: {},
          boardSeconds: 3 * DAY - 20, waitP50Seconds: 10, waitP95Seconds: 10, waitMaxSeconds: 10,
          // job 5 waits for w3 to start; job 6 waits behind the cap from its queueing to the end of the window
          atCapSeconds: 3 * DAY - 30
        }
      ])

      // a window of one week holds only the last week; the default cap applies to unlisted entities
      const lastWeek = yield* db.getWeeklyUsage({ from: date(7 * DAY), weeks: 1, now: date(10 * DAY), caps: { entities: [], defaultCap: 5 } })
      expect(lastWeek.map((r) => [r.entityId, r.jobs, r.boardSeconds, r.atCapSeconds])).toEqual([[1001, 2, 3 * DAY - 20, 0]])
      // with a cap of 0 every waiting second is at the cap; with no cap at all, none is
      const zero = yield* db.getWeeklyUsage({ from: date(7 * DAY), weeks: 1, now: date(10 * DAY), caps: { entities: [], defaultCap: 0 } })
      expect(zero[0]?.atCapSeconds).toBe(3 * DAY - 30)
      const none = yield* db.getWeeklyUsage({ from: date(0), weeks: 2, now: date(10 * DAY), caps: { entities: [], defaultCap: null } })
      expect(none.map((r) => r.atCapSeconds)).toEqual([0, 0, 0])
      // a window before anything happened is empty
      expect(yield* db.getWeeklyUsage({ from: date(-30 * DAY), weeks: 2, now: date(-16 * DAY), caps })).toEqual([])
    }))

    test("getWeeklyUsage: time at a cap of 2 across hours, in hours with fewer workers than the cap too", Effect.gen(function*() {
      const db = yield* Db
      const base = Date.UTC(2026, 10, 23) / 1000 // a Monday
      const t = (s: number) => TestClock.setTime((base + s) * 1000)
      const gamma = { entity_id: 4004, entity_name: "gamma" }
      const run = (job: number, pod: string, queued: number, created: number, running: number) =>
        Effect.gen(function*() {
          yield* t(queued)
          yield* db.addJob(newJob(job, gamma))
          if (created > queued) yield* t(created)
          yield* db.addWorker(newWorker(pod, gamma))
          yield* t(running)
          yield* db.markWorkerRunning(pod, "node-g", null)
          yield* db.markJobRunning(job, pod)
        })
      const end = (job: number, pod: string, at: number) =>
        Effect.gen(function*() {
          yield* t(at)
          yield* db.markWorkerCompleted(pod, null, null)
          yield* db.markJobCompleted(job, pod)
        })
      // wa runs through hours 0–3; wb from 1800 to 7300 (crossing two hours); job 43 waits [3000, 7400) and gets wc
      yield* run(41, "wa", 0, 0, 60)
      yield* run(42, "wb", 1800, 1800, 1860)
      yield* t(3000)
      yield* db.addJob(newJob(43, gamma))
      yield* end(42, "wb", 7300)
      yield* db.addWorker(newWorker("wc", gamma))
      yield* t(7400)
      yield* db.markWorkerRunning("wc", "node-g", null)
      yield* db.markJobRunning(43, "wc")
      yield* end(43, "wc", 8000)
      // job 44 waits [9000, 9900) beside wa alone, then its runner wd starts; hour 3 holds wa alone (to 11400) and
      // job 45, still waiting at the end of the window
      yield* run(44, "wd", 9000, 9900, 10000)
      yield* end(44, "wd", 10500)
      yield* end(41, "wa", 11400)
      yield* t(11000)
      yield* db.addJob(newJob(45, gamma))
      const atCap = (cap: number) =>
        db.getWeeklyUsage({ from: new Date(base * 1000), weeks: 1, now: new Date((base + 4 * 3600) * 1000), caps: { entities: [{ entityId: 4004, cap }], defaultCap: null } })
          .pipe(Effect.map((rows) => rows.find((r) => r.entityId === 4004)?.atCapSeconds))
      // cap 2: only while wa and wb both run and job 43 waits with no runner starting, [3000, 7300)
      expect(yield* atCap(2)).toBe(4300)
      // cap 1: that, plus job 44 beside wa [9000, 9900), plus job 45 while wa still runs [11000, 11400)
      expect(yield* atCap(1)).toBe(4300 + 900 + 400)
      // cap 3: never three workers while a job waits
      expect(yield* atCap(3)).toBe(0)
    }))

    test("foldWeeklyUsage folds only days no row can change any more; the report is the same before and after every fold", Effect.gen(function*() {
      const db = yield* Db
      const base = Date.UTC(2026, 10, 23) / 1000 // a Monday
      const D = 86_400
      const t = (s: number) => TestClock.setTime((base + s) * 1000)
      const date = (s: number) => new Date((base + s) * 1000)
      const caps = { entities: [{ entityId: 1001, cap: 1 }], defaultCap: null }
      const report = (now: number, cap: number | null = 1) =>
        db.getWeeklyUsage({ from: date(0), weeks: 1, now: date(now), caps: { entities: [{ entityId: 1001, cap }], defaultCap: null } })
      // the same figures whether the days are folded or computed from the rows
      const foldKeepsReport = (now: number, expected: { foldedUntil: number; days: number }) =>
        Effect.gen(function*() {
          const before = yield* report(now)
          const before0 = yield* report(now, 0)
          expect(yield* db.foldWeeklyUsage(date(now))).toEqual({ foldedUntil: date(expected.foldedUntil), days: expected.days })
          expect(yield* report(now)).toEqual(before)
          expect(yield* report(now, 0)).toEqual(before0)
          // again at once: nothing more to fold
          expect(yield* db.foldWeeklyUsage(date(now))).toEqual({ foldedUntil: date(expected.foldedUntil), days: 0 })
          expect(yield* report(now)).toEqual(before)
        })

      // day 0: job 1 waits 50 s for w1; job 2 waits 1000 s, behind the cap until w1 ends, then for w2; job 3 fails queued
      yield* t(100)
      yield* db.addJob(newJob(1))
      yield* db.addWorker(newWorker("w1"))
      yield* t(150)
      yield* db.markWorkerRunning("w1", "node-a", null)
      yield* db.markJobRunning(1, "w1")
      yield* t(200)
      yield* db.addJob(newJob(2))
      yield* t(300)
      yield* db.addJob(newJob(3))
      yield* t(400)
      yield* db.markJobFailed(3, failureV1("job not found for job_id=3 entity=acme entity_id=1001 entity_type=Organization"))
      yield* t(1000)
      yield* db.markJobCompleted(1, "w1")
      yield* db.markWorkerCompleted("w1", null, null)
      yield* t(1100)
      yield* db.addWorker(newWorker("w2"))
      yield* t(1200)
      yield* db.markWorkerRunning("w2", "node-a", null)
      yield* db.markJobRunning(2, "w2")
      yield* t(1800)
      yield* db.markJobCompleted(2, "w2")
      yield* db.markWorkerCompleted("w2", null, null)
      // day 1: job 4 and its runner w4 stay pending for two days
      yield* t(D + 100)
      yield* db.addJob(newJob(4))
      yield* t(D + 200)
      yield* db.addWorker(newWorker("w4"))
      // day 2: job 5 waits 10 s for w5; job 7 is queued, its runner w7 comes on day 3
      yield* t(2 * D + 50)
      yield* db.addJob(newJob(5))
      yield* db.addWorker(newWorker("w5"))
      yield* t(2 * D + 60)
      yield* db.markWorkerRunning("w5", "node-a", null)
      yield* db.markJobRunning(5, "w5")
      yield* t(2 * D + 500)
      yield* db.markJobCompleted(5, "w5")
      yield* db.markWorkerCompleted("w5", null, null)
      yield* t(2 * D + 1000)
      yield* db.addJob(newJob(7))

      // the first passes, from two replicas at once: only day 0 can be folded (job 4 and w4 are pending)
      const firstPasses = yield* Effect.all([db.foldWeeklyUsage(date(3 * D + 3600)), db.foldWeeklyUsage(date(3 * D + 3600))], { concurrency: 2 })
      expect(firstPasses.map((p) => p.days).sort()).toEqual([0, 1])
      expect(firstPasses.map((p) => p.foldedUntil)).toEqual([date(D), date(D)])
      yield* foldKeepsReport(3 * D + 3600, { foldedUntil: D, days: 0 })

      // day 3: w7 is made and GitHub says job 7 completed on it while the pod has not started yet; job 4 runs on w4
      yield* t(3 * D + 100)
      yield* db.addWorker(newWorker("w7"))
      yield* t(3 * D + 200)
      yield* db.markJobCompleted(7, "w7")
      yield* t(3 * D + 4000)
      yield* db.markWorkerRunning("w4", "node-b", null)
      yield* db.markJobRunning(4, "w4")
      yield* t(3 * D + 4500)
      yield* db.addJob(newJob(6))
      yield* t(3 * D + 5000)
      yield* db.markJobCompleted(4, "w4")
      yield* db.markWorkerCompleted("w4", null, null)
      // job 7's wait is not known until w7 runs, so day 2 stays open; day 1 folds
      yield* foldKeepsReport(4 * D + 3600, { foldedUntil: 2 * D, days: 1 })

      // w7's pod started at +150 on day 3 (its start read late) and ends on day 4; job 6 is still pending
      yield* t(4 * D + 4000)
      yield* db.markWorkerRunning("w7", "node-a", date(3 * D + 150))
      yield* t(4 * D + 4100)
      yield* db.markWorkerCompleted("w7", null, null)
      yield* foldKeepsReport(5 * D + 3600, { foldedUntil: 3 * D, days: 1 })

      const [week] = yield* report(5 * D + 3600)
      expect(week).toEqual({
        weekStart: date(0), entityId: 1001, entityName: "acme", entityType: "Organization",
        jobs: 7, jobsRun: 5, jobsFailed: { job_not_found: 1 },
        // w1 850, w2 600, w4 1000, w5 440, w7 from +150 on day 3 to +4100 on day 4
        boardSeconds: 850 + 600 + 1000 + 440 + (D + 3950),
        // waits 10, 50, 1000, job 7's D - 850, job 4's 2 D + 3900
        waitP50Seconds: 1000, waitP95Seconds: 2 * D + 3900, waitMaxSeconds: 2 * D + 3900,
        // day 0: [200, 1000) behind w1; day 3: job 6 beside w4 and w7 [3D+4500, 3D+5000), beside w7 until 4D+4100
        atCapSeconds: 800 + 500 + (D - 900)
      })
      // at a cap of 0 the waits with no worker active count too: [1000, 1100), [D+100, D+200) and job 6 after w7
      expect((yield* report(5 * D + 3600, 0))[0]?.atCapSeconds).toBe(800 + 100 + 100 + 500 + (D - 900) + (D - 500))
      expect(caps.entities[0]?.cap).toBe(1)
    }))

    test("getWeeklyUsage classes failures as the domain does, and a pending job waits until now", Effect.gen(function*() {
      const db = yield* Db
      const base = Date.UTC(2026, 10, 23) / 1000
      const t = (s: number) => TestClock.setTime((base + s) * 1000)
      const failures = [
        failureV1("workflow run 7 completed (conclusion=cancelled) while job 11 stayed queued"),
        failureV2("runner_idle"),
        failureV1("something else"),
        { version: 1 as const, reason: "installation not found for installation_id=1 entity_type=User" }
      ]
      for (const [i, info] of failures.entries()) {
        yield* t(10 + i)
        yield* db.addJob(newJob(10 + i))
        yield* db.markJobFailed(10 + i, info)
      }
      // still pending, queued two days before the window: it waits through the window, at a cap of 0
      yield* t(-2 * 86_400)
      yield* db.addJob(newJob(99, { entity_id: 3003, entity_name: "old" }))
      const rows = yield* db.getWeeklyUsage({
        from: new Date(base * 1000), weeks: 1, now: new Date((base + 3600) * 1000),
        caps: { entities: [{ entityId: 3003, cap: 0 }], defaultCap: 20 }
      })
      const acme = rows.find((r) => r.entityId === 1001)
      expect(acme?.jobsFailed).toEqual({ run_completed_while_queued: 1, runner_idle: 1, other: 1, installation_not_found: 1 })
      expect(acme?.jobsRun).toBe(0)
      expect(acme?.waitP50Seconds).toBeNull()
      const old = rows.find((r) => r.entityId === 3003)
      expect(old).toMatchObject({ jobs: 0, boardSeconds: 0, atCapSeconds: 3600, entityName: "old" })
    }))

    test("knownDeliveryIds says which deliveries have an installation_events row", Effect.gen(function*() {
      const db = yield* Db
      expect(yield* db.knownDeliveryIds([])).toEqual(new Set())
      yield* db.addInstallationEvent(newEvent({ delivery_id: "guid-a" }))
      yield* db.addInstallationEvent(newEvent({ delivery_id: "guid-a" }))
      yield* db.addInstallationEvent(newEvent({ delivery_id: null }))
      yield* db.addInstallationEvent(newEvent({ delivery_id: "guid-b" }))
      expect(yield* db.knownDeliveryIds(["guid-a", "guid-c", "guid-b", "guid-a"])).toEqual(new Set(["guid-a", "guid-b"]))
    }))

    test("claimPass lets one holder at a time run a pass, until it finishes or its lease runs out", Effect.gen(function*() {
      const db = yield* Db
      yield* at(1000)
      expect(yield* db.claimPass("redelivery:Organization", "a", 60_000)).toEqual({ claimed: true, cursor: null })
      expect(yield* db.claimPass("redelivery:Organization", "b", 60_000)).toEqual({ claimed: false })
      // another pass has its own lease; the holder may renew its own
      expect(yield* db.claimPass("redelivery:User", "b", 60_000)).toEqual({ claimed: true, cursor: null })
      expect(yield* db.claimPass("redelivery:Organization", "a", 60_000)).toEqual({ claimed: true, cursor: null })
      // someone else's finish changes nothing
      yield* db.finishPass("redelivery:Organization", "b", "999")
      expect(yield* db.claimPass("redelivery:Organization", "b", 60_000)).toEqual({ claimed: false })
      yield* db.finishPass("redelivery:Organization", "a", "41")
      expect(yield* db.claimPass("redelivery:Organization", "b", 60_000)).toEqual({ claimed: true, cursor: "41" })
      // b dies without finishing: its lease runs out and a takes over from the last stored cursor
      yield* at(1030)
      expect(yield* db.claimPass("redelivery:Organization", "a", 60_000)).toEqual({ claimed: false })
      yield* at(1061)
      expect(yield* db.claimPass("redelivery:Organization", "a", 60_000)).toEqual({ claimed: true, cursor: "41" })
    }))

    test("getRecentRepositories names each repository with a recent job once, from its newest job", Effect.gen(function*() {
      const db = yield* Db
      yield* at(1000)
      yield* db.addJob(newJob(1, { repo_full_name: "acme/old" }))
      yield* at(5000)
      yield* db.addJob(newJob(2, { repo_full_name: "acme/app", installation_id: 5001 }))
      yield* at(6000)
      yield* db.addJob(newJob(3, { repo_full_name: "ACME/app", installation_id: 5002 }))
      yield* db.addJob(newJob(4, { repo_full_name: "bob/tool", entity_type: "User", entity_id: 7, entity_name: "bob", installation_id: 9 }))
      const recent = yield* db.getRecentRepositories(new Date(5000 * 1000))
      expect([...recent].sort((a, b) => a.repo_full_name.localeCompare(b.repo_full_name))).toEqual([
        { repo_full_name: "ACME/app", installation_id: 5002, entity_type: "Organization", entity_id: 1001, entity_name: "acme" },
        { repo_full_name: "bob/tool", installation_id: 9, entity_type: "User", entity_id: 7, entity_name: "bob" }
      ])
    }))

    test("node outcomes: the ended workers that ran on a node, since a time, oldest first", Effect.gen(function*() {
      const db = yield* Db
      yield* at(100)
      yield* db.addWorker(newWorker("w-ok", { k8s_image: "img-a" }))
      yield* db.addWorker(newWorker("w-bad"))
      yield* db.addWorker(newWorker("w-v1"))
      yield* db.addWorker(newWorker("w-unplaced"))
      yield* db.addWorker(newWorker("w-live"))
      yield* db.markWorkerRunning("w-ok", "n1", null)
      yield* db.markWorkerRunning("w-live", "n1", null)
      yield* at(200)
      yield* db.markWorkerFailed("w-bad", "n2", failureV2("runner_never_registered"), null)
      yield* at(300)
      yield* db.markWorkerCompleted("w-ok", null, null)
      yield* db.markWorkerFailed("w-v1", "n2", failureV1("installation gone"), null)
      // never placed: no node, so nothing to hold against a board
      yield* db.markWorkerFailed("w-unplaced", null, failureV2("pod_stuck_pending"), null)
      const all = yield* db.getNodeOutcomes(new Date(0))
      expect(all.map((o) => [o.pod_name, o.node, o.status, o.reason, o.at.getTime()])).toEqual([
        ["w-bad", "n2", "failed", "runner_never_registered", 200_000],
        ["w-ok", "n1", "completed", null, 300_000],
        ["w-v1", "n2", "failed", null, 300_000]
      ])
      expect(all[1]).toMatchObject({ pool: "scw-em-rv1", image: "img-a" })
      expect((yield* db.getNodeOutcomes(new Date(250_000))).map((o) => o.pod_name)).toEqual(["w-ok", "w-v1"])
    }))

    test("board transitions: the standing is replaced, every event kept with its evidence, newest first", Effect.gen(function*() {
      const db = yield* Db
      expect(yield* db.getBoardStates).toEqual([])
      const evidence = [{ pod_name: "w1", reason: "runner_never_registered", at: "2026-01-01T00:00:00.000Z" }]
      const q = { node: "n1", pool: "scw-em-rv1", state: "quarantined" as const, since: new Date(1000), until: new Date(3_601_000), probation_seconds: 3600 }
      const id1 = yield* db.recordBoardTransition(q, { node: "n1", pool: "scw-em-rv1", kind: "quarantined", at: new Date(1000), probation_seconds: 3600, evidence })
      yield* db.recordBoardTransition(
        { node: "n0", pool: "p0", state: "quarantined", since: new Date(1500), until: new Date(9000), probation_seconds: 60 },
        { node: "n0", pool: "p0", kind: "quarantined", at: new Date(1500), probation_seconds: 60, evidence: [] }
      )
      const id2 = yield* db.recordBoardTransition(
        { ...q, state: "trial", since: new Date(3_601_000), until: null },
        { node: "n1", pool: "scw-em-rv1", kind: "released", at: new Date(3_601_000), probation_seconds: null, evidence: [] }
      )
      expect(id2).toBeGreaterThan(id1)
      expect(yield* db.getBoardStates).toEqual([
        { node: "n0", pool: "p0", state: "quarantined", since: new Date(1500), until: new Date(9000), probation_seconds: 60 },
        { ...q, state: "trial", since: new Date(3_601_000), until: null }
      ])
      const events = yield* db.listBoardEvents(10)
      expect(events.map((e) => [e.node, e.kind])).toEqual([["n1", "released"], ["n0", "quarantined"], ["n1", "quarantined"]])
      expect(events[2]).toEqual({ id: id1, node: "n1", pool: "scw-em-rv1", kind: "quarantined", at: new Date(1000), probation_seconds: 3600, evidence })
      expect((yield* db.listBoardEvents(10, "n1")).map((e) => e.kind)).toEqual(["released", "quarantined"])
      expect(yield* db.listBoardEvents(1)).toHaveLength(1)
    }))

    test("a board transition inside a failed step leaves neither the standing nor the event", Effect.gen(function*() {
      const db = yield* Db
      const failed = yield* Effect.either(db.step(Effect.zipRight(
        db.recordBoardTransition(
          { node: "n1", pool: "p", state: "quarantined", since: new Date(0), until: new Date(1), probation_seconds: 1 },
          { node: "n1", pool: "p", kind: "quarantined", at: new Date(0), probation_seconds: 1, evidence: [] }
        ),
        Effect.fail("boom")
      )))
      expect(Either.isLeft(failed)).toBe(true)
      expect(yield* db.getBoardStates).toEqual([])
      expect(yield* db.listBoardEvents(10)).toEqual([])
    }))

    it("counts its cases", () => {
      dbContractCaseCount = cases
      console.log(`Db contract (${name}): ${cases} cases`)
      expect(cases).toBeGreaterThan(15)
    })
  })
