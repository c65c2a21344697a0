import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect } from "effect"
import * as fc from "fast-check"
import type { Job } from "../src/domain/Job.ts"
import type { Status } from "../src/domain/Status.ts"
import { backoffDelayMs, blockedGroups, streakLookbackMs } from "../src/scheduler/allocationBackoff.ts"
import { groupKey, jobGroupKey, planProvisioning, type PlanInput } from "../src/scheduler/demandPlan.ts"
import { classifyWorker, type HealthInput, type HealthLimits, needsRunnerView } from "../src/scheduler/healthChecks.ts"
import { decideJobSync, decideRunProbe, isStale, pollAllowance } from "../src/scheduler/jobSyncDecision.ts"
import { cryptoRunnerSuffix, isRunnerSuffix } from "../src/scheduler/runnerName.ts"
import { makeSchedulerSettings, ownsRunnerName } from "../src/scheduler/settings.ts"
import type { DemandRow } from "../src/services/Db.ts"
import { GithubHttpError, GithubNotFound, GithubTransportError } from "../src/services/Github.ts"
import { testRunnerConfig } from "./support/schedulerWorld.ts"

const limits: HealthLimits = { registrationMs: 120_000, idleMs: 600_000, podPendingMs: 600_000, nodeUnreachableMs: 300_000 }
const s = (n: number) => n * 1000

const input = (over: Partial<HealthInput>): HealthInput => ({
  workerStatus: "running",
  pendingAgeMs: 0,
  runningAgeMs: 0,
  runner: undefined,
  jobRanOnPod: false,
  jobActiveOnPod: false,
  nodeUnreachableMs: 0,
  ...over
})

describe("health checks: the reference's decision table, row by row", () => {
  const online = (busy: boolean) => ({ status: "online", busy })
  const offline = { status: "offline", busy: false }
  const rows: ReadonlyArray<readonly [string, Partial<HealthInput>, string]> = [
    ["pending, pod younger than 600 s: wait", { workerStatus: "pending", pendingAgeMs: s(599) }, "Wait"],
    ["pending, pod 600 s old: pod_stuck_pending", { workerStatus: "pending", pendingAgeMs: s(600) }, "Fail:pod_stuck_pending"],
    ["ours: pending, its image cannot be pulled: image_pull_failed at once", { workerStatus: "pending", pendingAgeMs: s(3), imagePullFailed: true }, "Fail:image_pull_failed"],
    ["pending, any runner, old: still pod_stuck_pending", { workerStatus: "pending", pendingAgeMs: s(900), runner: online(true) }, "Fail:pod_stuck_pending"],
    ["running, no runner, a job ran on it: healthy", { runningAgeMs: s(5000), jobRanOnPod: true }, "Healthy"],
    ["running, no runner, younger than 120 s: wait", { runningAgeMs: s(119) }, "Wait"],
    ["running, no runner, 120 s: runner_never_registered", { runningAgeMs: s(120) }, "Fail:runner_never_registered"],
    ["running, no running_at at all: counts as old", { runningAgeMs: Number.POSITIVE_INFINITY }, "Fail:runner_never_registered"],
    ["running, offline, < 120 s: wait", { runningAgeMs: s(60), runner: offline }, "Wait"],
    ["running, offline, >= 120 s: runner_never_registered", { runningAgeMs: s(120), runner: offline }, "Fail:runner_never_registered"],
    ["running, online idle, < 600 s: wait", { runningAgeMs: s(599), runner: online(false) }, "Wait"],
    ["running, online idle, >= 600 s: runner_idle", { runningAgeMs: s(600), runner: online(false) }, "Fail:runner_idle"],
    ["running, online busy: healthy", { runningAgeMs: s(99_999), runner: online(true) }, "Healthy"],
    ["running, unknown status, < 120 s: wait", { runningAgeMs: s(10), runner: { status: "deploying", busy: false } }, "Wait"],
    ["running, unknown status, >= 120 s: not registered", { runningAgeMs: s(121), runner: { status: "deploying", busy: true } }, "Fail:runner_never_registered"],
    ["running, a runner present means jobRanOnPod is not consulted", { runningAgeMs: s(200), runner: offline, jobRanOnPod: true }, "Fail:runner_never_registered"],
    ["ours: running with a job recorded running on it: healthy without GitHub", { runningAgeMs: s(99_999), jobActiveOnPod: true }, "Healthy"],
    ["node unreachable < 300 s: the other rules apply", { runningAgeMs: s(30), nodeUnreachableMs: s(299) }, "Wait"],
    ["node unreachable 300 s, running: node_unreachable", { runningAgeMs: s(30), nodeUnreachableMs: s(300) }, "Fail:node_unreachable"],
    ["node unreachable, pending on it: node_unreachable", { workerStatus: "pending", pendingAgeMs: s(400), nodeUnreachableMs: s(400) }, "Fail:node_unreachable"],
    ["node unreachable, GitHub shows the runner busy: left alone", { runningAgeMs: s(900), nodeUnreachableMs: s(900), runner: online(true) }, "Healthy"],
    ["node unreachable, runner online idle: node_unreachable", { runningAgeMs: s(30), nodeUnreachableMs: s(900), runner: online(false) }, "Fail:node_unreachable"],
    ["node unreachable, a job recorded on it: GitHub decides", { runningAgeMs: s(900), nodeUnreachableMs: s(900), jobActiveOnPod: true, runner: offline }, "Fail:node_unreachable"],
    ["completed, node unreachable: still unexpected", { workerStatus: "completed", nodeUnreachableMs: s(900) }, "Unexpected"],
    ["completed: unexpected", { workerStatus: "completed" }, "Unexpected"],
    ["failed: unexpected", { workerStatus: "failed" }, "Unexpected"]
  ]
  for (const [title, over, expected] of rows) {
    it(title, () => {
      const d = classifyWorker(input(over), limits)
      expect(d._tag === "Fail" ? `Fail:${d.reason}` : d._tag).toBe(expected)
    })
  }

  it("when the runner view is not needed, no runner sighting can make the verdict a failure", () => {
    const status = fc.constantFrom<Status>("pending", "running", "completed", "failed")
    const age = fc.oneof(fc.integer({ min: 0, max: 2_000_000 }), fc.constant(Number.POSITIVE_INFINITY))
    const runner = fc.option(fc.record({ status: fc.constantFrom("online", "offline", "busy?", ""), busy: fc.boolean() }), { nil: undefined })
    const lost = fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 2_000_000 }))
    fc.assert(fc.property(status, age, age, runner, fc.boolean(), fc.boolean(), fc.boolean(), lost, (workerStatus, pendingAgeMs, runningAgeMs, r, ran, active, pull, nodeUnreachableMs) => {
      const base = { workerStatus, pendingAgeMs, runningAgeMs, jobActiveOnPod: active, imagePullFailed: pull, nodeUnreachableMs }
      if (needsRunnerView(base, limits)) return
      const d = classifyWorker({ ...base, runner: r, jobRanOnPod: ran }, limits)
      expect(d._tag).not.toBe("Fail")
    }), { numRuns: 2000 })
  })
})

let jobSeq = 0
const job = (entity: number, createdSec: number, over: Partial<Job> = {}): Job => {
  const id = ++jobSeq
  return {
    job_id: id,
    status: "pending",
    failure_info: null,
    provider: "github",
    entity_id: entity,
    entity_name: `e${entity}`,
    entity_type: "Organization",
    repo_full_name: `e${entity}/r`,
    installation_id: entity * 10,
    job_labels: ["ubuntu-24.04-riscv"],
    k8s_pool: "scw-em-rv1",
    k8s_image: "img",
    k8s_pod: null,
    html_url: null,
    created_at: new Date(createdSec * 1000),
    updated_at: new Date(createdSec * 1000),
    ...over
  }
}
const row = (j: Job, entityActiveWorkers = 0): DemandRow => ({ job: j, rank: 1, groupDemand: 1, groupSupply: 0, entityActiveWorkers })

const plan = (over: Partial<PlanInput> & Pick<PlanInput, "demand">) =>
  planProvisioning({
    available: new Map([["scw-em-rv1", 100]]),
    capFor: () => null,
    weightFor: () => 1,
    policy: "fair",
    ...over
  })
const entities = (p: ReturnType<typeof plan>) => p.provisions.map((x) => x.job.entity_id)

describe("demand planner", () => {
  it("fifo serves the oldest jobs first, whoever they belong to", () => {
    const demand = [row(job(1, 1)), row(job(1, 2)), row(job(1, 3)), row(job(2, 4)), row(job(2, 5))]
    expect(entities(plan({ demand, available: new Map([["scw-em-rv1", 3]]), policy: "fifo" }))).toEqual([1, 1, 1])
  })

  it("fair gives each free slot to the entity furthest below its share, FIFO inside an entity", () => {
    const a = [job(1, 1), job(1, 2), job(1, 3), job(1, 4)]
    const b = [job(2, 10), job(2, 11)]
    const p = plan({ demand: [...a, ...b].map((j) => row(j)), available: new Map([["scw-em-rv1", 3]]) })
    // a tie (0 vs 0) goes to the older waiting job: A; then B (0 < 1); then a tie again (1 vs 1): A
    expect(entities(p)).toEqual([1, 2, 1])
    expect(p.provisions.filter((x) => x.job.entity_id === 1).map((x) => x.job.job_id)).toEqual([a[0]!.job_id, a[1]!.job_id])
    expect(p.skipped.map((x) => x.why)).toEqual(["no_capacity", "no_capacity", "no_capacity"])
  })

  it("fair counts the workers an entity already has, and its weight", () => {
    const demand = [row(job(1, 1), 4), row(job(1, 2), 4), row(job(2, 5), 1), row(job(3, 6), 2), row(job(3, 7), 2)]
    // shares: e1 4/1, e2 1/1, e3 2/2=1 -> e2 (older head) then e3 (1 vs 2/1=2 for e2) ...
    const p = plan({ demand, available: new Map([["scw-em-rv1", 3]]), weightFor: (id) => (id === 3 ? 2 : 1) })
    expect(entities(p)).toEqual([2, 3, 3])
  })

  it("the cap counts active and planned workers over all pools; null means no cap", () => {
    const demand = [
      row(job(1, 1), 1), row(job(1, 2), 1), row(job(1, 3, { k8s_pool: "cloudv10x-jupiter" }), 1),
      row(job(2, 4), 50), row(job(2, 5), 50)
    ]
    const p = plan({
      demand,
      available: new Map([["scw-em-rv1", 10], ["cloudv10x-jupiter", 10]]),
      capFor: (id) => (id === 1 ? 2 : null)
    })
    // entity 1 has 1 worker and a cap of 2: one more, in whichever pool is planned first (by name)
    expect(p.provisions.map((x) => `${x.job.entity_id}@${x.pool}`)).toEqual(["1@cloudv10x-jupiter", "2@scw-em-rv1", "2@scw-em-rv1"])
    expect(p.skipped.map((x) => x.why)).toEqual(["entity_cap", "entity_cap"])
  })

  it("a cap of 0 provisions nothing; fifo passes over a capped entity to the next one", () => {
    const demand = [row(job(1, 1)), row(job(2, 2)), row(job(1, 3))]
    const p = plan({ demand, policy: "fifo", capFor: (id) => (id === 1 ? 0 : null) })
    expect(entities(p)).toEqual([2])
  })

  it("no, zero or negative capacity provisions nothing in that pool", () => {
    const demand = [row(job(1, 1)), row(job(1, 2, { k8s_pool: "elsewhere" })), row(job(1, 3, { k8s_pool: "full" }))]
    const p = plan({ demand, available: new Map([["scw-em-rv1", -2], ["full", 0]]) })
    expect(p.provisions).toEqual([])
    expect(p.skipped.map((x) => x.why)).toEqual(["no_capacity", "no_capacity", "no_capacity"])
  })

  it("a backed-off (entity, label set) group is skipped; the same entity's other label set is not", () => {
    const j1 = job(1, 1, { job_labels: ["a"] })
    const j2 = job(1, 2, { job_labels: ["b"] })
    const p = plan({ demand: [row(j1), row(j2)], blocked: new Set([groupKey(1, ["a"])]) })
    expect(p.provisions.map((x) => x.job.job_id)).toEqual([j2.job_id])
    expect(p.skipped).toEqual([{ job: j1, why: "backoff" }])
  })

  it("a personal account's groups are per repository: a back-off on one repository leaves the others", () => {
    const user = { entity_type: "User" as const, job_labels: ["a"] }
    const a = job(7, 1, { ...user, repo_full_name: "solo/a" })
    const b = job(7, 2, { ...user, repo_full_name: "solo/b" })
    const p = plan({ demand: [row(a), row(b)], blocked: new Set([jobGroupKey(a)]) })
    expect(p.provisions.map((x) => x.job.job_id)).toEqual([b.job_id])
    expect(p.skipped).toEqual([{ job: a, why: "backoff" }])
    // an organisation's group spans its repositories: its runners take any of them
    const o1 = job(8, 3, { repo_full_name: "org/a" })
    const o2 = job(8, 4, { repo_full_name: "org/b" })
    expect(jobGroupKey(o1)).toBe(jobGroupKey(o2))
    expect(plan({ demand: [row(o1), row(o2)], blocked: new Set([jobGroupKey(o1)]) }).provisions).toEqual([])
  })

  it("a personal account's cap counts its workers over all its repositories", () => {
    const user = { entity_type: "User" as const }
    const demand = [
      row(job(7, 1, { ...user, repo_full_name: "solo/a" }), 1),
      row(job(7, 2, { ...user, repo_full_name: "solo/b" }), 1),
      row(job(7, 3, { ...user, repo_full_name: "solo/c" }), 1)
    ]
    const p = plan({ demand, capFor: () => 2 })
    expect(p.provisions.map((x) => x.job.job_id)).toEqual([demand[0]!.job.job_id])
    expect(p.skipped.map((x) => x.why)).toEqual(["entity_cap", "entity_cap"])
  })

  it("a probing group (back-off passed, failures not yet ended) gets one runner, its oldest job; others are served in full", () => {
    const a = [job(1, 1), job(1, 2), job(1, 3)]
    const b = [job(2, 4), job(2, 5)]
    const p = plan({ demand: [...a, ...b].map((j) => row(j)), probing: new Set([jobGroupKey(a[0]!)]) })
    expect(p.provisions.map((x) => x.job.job_id)).toEqual([a[0]!.job_id, b[0]!.job_id, b[1]!.job_id])
    expect(p.skipped).toEqual([{ job: a[1], why: "backoff" }, { job: a[2], why: "backoff" }])
  })

  it("fair: each slot goes to the smallest (share, oldest head), as a scan of every entity per slot chooses", () => {
    // the rule written as the scan it is, against the planner's own (heap-ordered) choice
    const reference = (input: PlanInput): ReadonlyArray<number> => {
      const planned = new Map<number, number>()
      const workers = (r: DemandRow) => r.entityActiveWorkers + (planned.get(r.job.entity_id) ?? 0)
      const older = (a: DemandRow, b: DemandRow) => a.job.created_at.getTime() - b.job.created_at.getTime() || a.job.job_id - b.job.job_id
      const out: Array<number> = []
      const sorted = [...input.demand].sort(older)
      for (const pool of [...new Set(sorted.map((r) => r.job.k8s_pool))].sort()) {
        const queues = new Map<number, Array<DemandRow>>()
        for (const r of sorted) if (r.job.k8s_pool === pool) queues.set(r.job.entity_id, [...(queues.get(r.job.entity_id) ?? []), r])
        for (let slots = Math.max(0, input.available.get(pool) ?? 0); slots > 0; slots--) {
          let best: Array<DemandRow> | undefined
          let bestShare = Infinity
          for (const q of queues.values()) {
            const head = q[0]
            if (head === undefined) continue
            const cap = input.capFor(head.job.entity_id)
            if (cap !== null && workers(head) >= cap) continue
            const share = workers(head) / input.weightFor(head.job.entity_id)
            if (best === undefined || share < bestShare || (share === bestShare && older(head, best[0]!) < 0)) {
              best = q
              bestShare = share
            }
          }
          if (best === undefined) break
          const r = best.shift()!
          planned.set(r.job.entity_id, (planned.get(r.job.entity_id) ?? 0) + 1)
          out.push(r.job.job_id)
        }
      }
      return out
    }
    const spec = fc.record({
      jobs: fc.array(fc.record({ entity: fc.integer({ min: 1, max: 12 }), created: fc.integer({ min: 0, max: 20 }), pool: fc.constantFrom("a", "b") }), { maxLength: 80 }),
      active: fc.array(fc.integer({ min: 0, max: 4 }), { minLength: 13, maxLength: 13 }),
      caps: fc.array(fc.option(fc.integer({ min: 0, max: 6 }), { nil: null }), { minLength: 13, maxLength: 13 }),
      weights: fc.array(fc.constantFrom(1, 2, 3, 0.5), { minLength: 13, maxLength: 13 }),
      slots: fc.tuple(fc.integer({ min: -1, max: 40 }), fc.integer({ min: 0, max: 40 }))
    })
    fc.assert(fc.property(spec, ({ active, caps, jobs, slots, weights }) => {
      const input: PlanInput = {
        demand: jobs.map((j) => row(job(j.entity, j.created, { k8s_pool: j.pool }), active[j.entity]!)),
        available: new Map([["a", slots[0]], ["b", slots[1]]]),
        capFor: (id) => caps[id]!,
        weightFor: (id) => weights[id]!,
        policy: "fair"
      }
      expect(planProvisioning(input).provisions.map((x) => x.job.job_id)).toEqual(reference(input))
    }), { numRuns: 300 })
  })

  it("plans are the same whatever order the rows come in", () => {
    const demand = [row(job(1, 3)), row(job(2, 1)), row(job(3, 2)), row(job(2, 4))]
    const a = plan({ demand, available: new Map([["scw-em-rv1", 3]]) })
    const b = plan({ demand: [...demand].reverse(), available: new Map([["scw-em-rv1", 3]]) })
    expect(b.provisions.map((x) => x.job.job_id)).toEqual(a.provisions.map((x) => x.job.job_id))
  })
})

describe("allocation back-off", () => {
  it("doubles from the base up to the maximum", () => {
    expect([0, 1, 2, 3, 4, 5, 6, 7, 40].map((n) => backoffDelayMs(n, 15_000, 600_000))).toEqual([
      0, 15_000, 30_000, 60_000, 120_000, 240_000, 480_000, 600_000, 600_000
    ])
  })

  it("blocks a group until its latest failure plus the delay", () => {
    const streak = { entityId: 1, repoFullName: null, labels: ["a"], failures: 2, lastFailureAt: new Date(100_000) }
    expect([...blockedGroups([streak], 129_999, 15_000, 600_000).keys()]).toEqual([groupKey(1, ["a"])])
    expect(blockedGroups([streak], 130_000, 15_000, 600_000).size).toBe(0)
  })

  it("a personal account's streak blocks the jobs of its repository only", () => {
    const streak = { entityId: 7, repoFullName: "solo/a", labels: ["a"], failures: 1, lastFailureAt: new Date(100_000) }
    const blocked = blockedGroups([streak], 100_000, 15_000, 600_000)
    const user = { entity_id: 7, entity_type: "User" as const, job_labels: ["a"] }
    expect(blocked.has(jobGroupKey({ ...user, repo_full_name: "solo/a" }))).toBe(true)
    expect(blocked.has(jobGroupKey({ ...user, repo_full_name: "solo/b" }))).toBe(false)
  })

  it("reads far enough back for a streak to reach the maximum", () => {
    expect(streakLookbackMs(15_000, 600_000)).toBeGreaterThanOrEqual(15_000 + 30_000 + 60_000 + 120_000 + 240_000 + 480_000 + 600_000)
  })
})

describe("job sync decisions", () => {
  const j = job(1, 0)
  const gh = (status: string, conclusion: string | null = null, runner: string | null = "r1", runId = 77) => ({
    _tag: "Job" as const,
    job: { status, conclusion, runner_name: runner, run_id: runId }
  })
  const min = 60_000

  it("a conclusion completes the job whatever the status says; a cancelled job is completed too", () => {
    expect(decideJobSync(j, gh("completed", "success"), 0, 10 * min)).toEqual({ _tag: "MarkCompleted", runnerName: "r1" })
    expect(decideJobSync(j, gh("in_progress", "cancelled"), 0, 10 * min)).toEqual({ _tag: "MarkCompleted", runnerName: "r1" })
    expect(decideJobSync(j, gh("queued", "failure", null), 0, 10 * min)).toEqual({ _tag: "MarkCompleted", runnerName: null })
    expect(decideJobSync(j, gh("in_progress", ""), 0, 10 * min)._tag).toBe("MarkRunning")
  })

  it("in_progress marks a pending job running, and leaves a running one", () => {
    expect(decideJobSync(j, gh("in_progress"), 0, 10 * min)).toEqual({ _tag: "MarkRunning", runnerName: "r1" })
    expect(decideJobSync({ ...j, status: "running" }, gh("in_progress"), 0, 10 * min)._tag).toBe("Nothing")
  })

  it("job 404 fails it with v1 info; other errors change nothing", () => {
    const nf = decideJobSync(j, { _tag: "Error", error: new GithubNotFound({ operation: "getJob", message: "x" }) }, 0, 10 * min)
    expect(nf).toEqual({
      _tag: "MarkFailed",
      info: { version: 1, message: `job not found for job_id=${j.job_id} entity=e1 entity_id=1 entity_type=Organization` }
    })
    expect(decideJobSync(j, { _tag: "Error", error: new GithubHttpError({ operation: "getJob", status: 500, message: "x" }) }, 0, 10 * min)._tag).toBe("Nothing")
    expect(decideJobSync(j, { _tag: "Error", error: new GithubTransportError({ operation: "getJob", message: "x" }) }, 0, 10 * min)._tag).toBe("Nothing")
  })

  it("queued: its run is probed once the job is 10 minutes old and has a run id", () => {
    expect(decideJobSync(j, gh("queued"), 10 * min - 1, 10 * min)._tag).toBe("Nothing")
    expect(decideJobSync(j, gh("queued"), 10 * min, 10 * min)).toEqual({ _tag: "ProbeRun", runId: 77 })
    expect(decideJobSync(j, gh("queued", null, null, 0), 99 * min, 10 * min)._tag).toBe("Nothing")
    expect(decideJobSync(j, gh("waiting"), 99 * min, 10 * min)._tag).toBe("Nothing")
  })

  it("a completed run fails the job that stayed queued", () => {
    expect(decideRunProbe({ job_id: 5 }, 77, { status: "completed", conclusion: "cancelled" })).toEqual({
      _tag: "MarkFailed",
      info: { version: 1, message: "workflow run 77 completed (conclusion=cancelled) while job 5 stayed queued" }
    })
    expect(decideRunProbe({ job_id: 5 }, 77, { status: "completed", conclusion: null })).toMatchObject({
      info: { message: "workflow run 77 completed (conclusion=unknown) while job 5 stayed queued" }
    })
    expect(decideRunProbe({ job_id: 5 }, 77, { status: "in_progress", conclusion: null })._tag).toBe("Nothing")
  })

  it("staleness counts the later of the webhook's news and our last poll", () => {
    const updated = { updated_at: new Date(1_000) }
    expect(isStale(updated, undefined, 60_999, 60_000)).toBe(false)
    expect(isStale(updated, undefined, 61_000, 60_000)).toBe(true)
    expect(isStale(updated, 50_000, 61_000, 60_000)).toBe(false)
    expect(isStale(updated, 50_000, 110_000, 60_000)).toBe(true)
  })

  it("polls keep the reserve share of the installation's budget", () => {
    const reset = new Date(10_000)
    expect(pollAllowance(undefined, 0.2, 0, 100)).toBe(100)
    expect(pollAllowance({ limit: 5000, remaining: 5000, resetAt: reset }, 0.2, 0, 100)).toBe(100)
    expect(pollAllowance({ limit: 5000, remaining: 1030, resetAt: reset }, 0.2, 0, 100)).toBe(30)
    expect(pollAllowance({ limit: 5000, remaining: 900, resetAt: reset }, 0.2, 0, 100)).toBe(0)
    // the window has reset since GitHub last told us: the budget is full again
    expect(pollAllowance({ limit: 5000, remaining: 0, resetAt: reset }, 0.2, 10_000, 100)).toBe(100)
  })
})

describe("runner names and settings", () => {
  it.effect("a suffix is 9 characters of [a-z0-9], from a cryptographic source", () =>
    Effect.gen(function*() {
      const seen = new Set<string>()
      for (let i = 0; i < 500; i++) {
        const suffix = yield* cryptoRunnerSuffix
        expect(isRunnerSuffix(suffix)).toBe(true)
        seen.add(suffix)
      }
      expect(seen.size).toBe(500)
    }))

  it("prod and staging differ in prefix and group; timeouts default to the reference's", () => {
    const config = testRunnerConfig()
    const prod = makeSchedulerSettings({ runnerConfig: config, prod: true })
    const staging = makeSchedulerSettings({ runnerConfig: config, prod: false })
    expect([prod.runnerPrefix, prod.runnerGroup]).toEqual(["rise-riscv-runner-", "RISE RISC-V Runners"])
    expect([staging.runnerPrefix, staging.runnerGroup]).toEqual(["rise-riscv-runner-staging-", "RISE RISC-V Runners (staging)"])
    const t = prod.timeouts
    expect([t.registration, t.idle, t.podPending, t.deleteGrace, t.stuckQueued, t.pollInterval, t.reconcileLookback].map(Duration.toSeconds))
      .toEqual([120, 600, 600, 6 * 3600, 600, 15, 3600])
  })

  it("prod does not claim staging's runners, although its prefix is a prefix of theirs", () => {
    const config = testRunnerConfig()
    const prod = makeSchedulerSettings({ runnerConfig: config, prod: true })
    const staging = makeSchedulerSettings({ runnerConfig: config, prod: false })
    expect(ownsRunnerName(prod, "rise-riscv-runner-abc123xyz")).toBe(true)
    expect(ownsRunnerName(prod, "rise-riscv-runner-staging-abc123xyz")).toBe(false)
    expect(ownsRunnerName(staging, "rise-riscv-runner-staging-abc123xyz")).toBe(true)
    expect(ownsRunnerName(staging, "rise-riscv-runner-abc123xyz")).toBe(false)
    expect(ownsRunnerName(prod, "someone-elses-runner")).toBe(false)
  })
})
