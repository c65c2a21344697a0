import { Duration, Effect, Option, Schema } from "effect"
import { describe, expect, it } from "vitest"
import { defaultRunnerConfigInput, RunnerConfig } from "../src/domain/RunnerConfig.ts"
import { STAGING_PREFIX } from "../src/scheduler/settings.ts"
import { type Harness, stepUntil, withHarness } from "../bench/support/simHarness.ts"

/*
 * The closed loop, one behaviour at a time: the real webhook program and scheduler on the in-memory layers, the
 * simulated world closing the loop, TestClock. Each case switches on one fault and checks how the system copes.
 */

const config = Schema.decodeUnknownSync(RunnerConfig)({ ...defaultRunnerConfigInput, entities: { "1001": { name: "acme" } } })
const nodes = (n: number) => Array.from({ length: n }, (_, i) => ({ name: `node-${i + 1}`, pool: "scw-em-rv1", slots: 1 }))
const spec = (n = 2) => ({ nodes: nodes(n), runnerConfig: config })
const run = <A>(body: (h: Harness) => Effect.Effect<A, unknown, never>, n = 2) =>
  Effect.runPromise(withHarness(spec(n), body) as Effect.Effect<A>)

const allDone = (h: Harness) =>
  Effect.map(h.world.jobs, (jobs) => jobs.length > 0 && jobs.every((j) => j.status === "completed"))
const rows = (h: Harness) => Effect.map(h.db.listJobs({ page: 0, perPage: 1000 }), (p) => p.rows)
const workers = (h: Harness) => Effect.map(h.db.listWorkers({ page: 0, perPage: 1000 }), (p) => p.rows)
const reasonOf = (info: unknown) => (info as { reason?: string } | null)?.reason
const outcomes = (h: Harness, entityId: number) =>
  Effect.map(h.db.getEventsByEntity(entityId), (events) => events.map((e) => `${e.event}:${e.outcome}`))

describe("the closed loop", () => {
  it("a queued job gets a runner that registers, takes it, reports it over signed webhooks and exits", () =>
    run((h) =>
      Effect.gen(function*() {
        const ids = yield* h.world.submitJobs({ owner: "acme", repo: "acme/app", durationSeconds: 120, count: 2 })
        const userIds = yield* h.world.submitJobs({ owner: "jane", ownerType: "User", repo: "jane/tool", durationSeconds: 60 })
        expect(yield* stepUntil(h, h.settled, Duration.minutes(20))).toBe(true)

        const gh = yield* h.github.snapshot
        for (const id of [...ids, ...userIds]) {
          const job = gh.jobs.find((j) => j.id === id)!
          expect(job).toMatchObject({ status: "completed", conclusion: "success" })
          expect(job.runner_name).toMatch(new RegExp(`^${STAGING_PREFIX}`))
          const row = (yield* rows(h)).find((r) => r.job_id === id)!
          expect(row).toMatchObject({ status: "completed", k8s_pod: job.runner_name })
        }
        // ephemeral runners are gone; their pods ended Succeeded; their workers completed
        expect(gh.runners).toEqual([])
        expect((yield* h.kube.pods).map((p) => p.phase)).toEqual(["Succeeded", "Succeeded", "Succeeded"])
        expect((yield* workers(h)).map((w) => w.status)).toEqual(["completed", "completed", "completed"])
        // every delivery was signed, verified and logged
        expect(yield* outcomes(h, 1001)).toEqual([
          "installation.created:ok",
          "workflow_job.queued:job_stored",
          "workflow_job.queued:job_stored",
          "workflow_job.in_progress:job_marked_running",
          "workflow_job.in_progress:job_marked_running",
          "workflow_job.completed:job_marked_completed",
          "workflow_job.completed:job_marked_completed"
        ])
        const jane = (yield* rows(h)).find((r) => r.job_id === userIds[0])!
        expect(jane).toMatchObject({ entity_type: "User", repo_full_name: "jane/tool" })
        expect((yield* h.world.stats).deliveryFailures).toBe(0)
        expect(h.violations).toEqual([])
      })
    ))

  it("a runner that never registers is failed after 120 s and its job goes to a fresh runner", () =>
    run((h) =>
      Effect.gen(function*() {
        yield* h.world.setFaults({ neverRegister: 1 })
        const [id] = yield* h.world.submitJobs({ owner: "acme", durationSeconds: 60 })
        yield* stepUntil(h, Effect.map(h.kube.pods, (p) => p.length > 0), Duration.minutes(1))
        yield* h.world.setFaults({ neverRegister: 0 })
        expect(yield* stepUntil(h, h.settled, Duration.minutes(20))).toBe(true)
        const ws = yield* workers(h)
        expect(ws.map((w) => [w.status, reasonOf(w.failure_info)])).toEqual([["completed", undefined], ["failed", "runner_never_registered"]])
        expect((yield* rows(h)).find((r) => r.job_id === id)).toMatchObject({ status: "completed", k8s_pod: ws[0]!.pod_name })
        expect(h.violations).toEqual([])
      })
    ))

  it("a node lost under a running job: GitHub fails the job, the worker fails with the pod's reason", () =>
    run((h) =>
      Effect.gen(function*() {
        const [id] = yield* h.world.submitJobs({ owner: "acme", durationSeconds: 600 })
        yield* stepUntil(h, Effect.map(h.world.jobs, (j) => j[0]?.status === "in_progress"), Duration.minutes(2))
        const pod = (yield* h.kube.pods)[0]!
        expect(Option.isSome(yield* h.world.loseNode(pod.nodeName!))).toBe(true)
        expect(yield* stepUntil(h, h.settled, Duration.minutes(30))).toBe(true)
        expect((yield* h.github.snapshot).jobs[0]).toMatchObject({ id, status: "completed", conclusion: "failure" })
        expect((yield* rows(h))[0]).toMatchObject({ status: "completed" })
        const [w] = yield* workers(h)
        expect(w).toMatchObject({ status: "failed", pod_name: pod.name })
        expect(w!.failure_info).toMatchObject({ reason: "pod_failed", pod_reason: "NodeLost" })
        expect(h.violations).toEqual([])
      })
    ))

  it("a runner stuck busy after its job: cleanup waits until GitHub lets go, and nothing is left", () =>
    run((h) =>
      Effect.gen(function*() {
        yield* h.world.setFaults({ stuckBusy: 1 })
        yield* h.world.submitJobs({ owner: "acme", durationSeconds: 60 })
        expect(yield* stepUntil(h, allDone(h), Duration.minutes(5))).toBe(true)
        yield* h.world.setFaults({ stuckBusy: 0 })
        expect((yield* h.github.snapshot).runners.map((r) => r.busy)).toEqual([true])
        expect(yield* stepUntil(h, h.settled, Duration.hours(1))).toBe(true)
        yield* h.finalChecks
        expect(h.violations).toEqual([])
      })
    ))

  it("lost, repeated and late deliveries: every job still ends, once", () =>
    run((h) =>
      Effect.gen(function*() {
        yield* h.world.setFaults({ dropWebhooks: 0.3, duplicateWebhooks: 0.5, reorderWebhooks: 0.5 })
        const ids = yield* h.world.submitJobs({ owner: "acme", durationSeconds: 90, count: 6 })
        yield* stepUntil(h, allDone(h), Duration.minutes(30))
        yield* h.world.setFaults({ off: true })
        expect(yield* stepUntil(h, h.settled, Duration.hours(2))).toBe(true)
        yield* h.finalChecks
        const stats = yield* h.world.stats
        expect(stats.faults.dropped + stats.faults.duplicated + stats.faults.reordered).toBeGreaterThan(0)
        const known = (yield* rows(h)).filter((r) => ids.includes(r.job_id))
        expect(known.every((r) => r.status === "completed")).toBe(true)
        expect(h.violations).toEqual([])
      })
    ), 60_000)

  it("a scheduler that crashes mid-cycle keeps that cycle's committed steps, and the system still converges", () =>
    run((h) =>
      Effect.gen(function*() {
        // the crash comes right after the next pod creation: the pod exists, and so does its worker row, committed
        // before the pod was asked for
        yield* h.armCrash(1, "createRunnerPod")
        yield* h.world.submitJobs({ owner: "acme", durationSeconds: 60, count: 3 })
        expect(yield* stepUntil(h, h.settled, Duration.hours(1))).toBe(true)
        yield* h.finalChecks
        expect(h.restarts.crashes).toBe(1)
        // no pod without its row: the one created just before the crash is recorded, and it ran and ended
        const recorded = new Set((yield* workers(h)).map((w) => w.pod_name))
        const strays = (yield* h.kube.pods).filter((p) => !recorded.has(p.name))
        expect(strays).toEqual([])
        expect((yield* rows(h)).every((r) => r.status === "completed")).toBe(true)
        expect(h.violations).toEqual([])
      }), 4))
})

describe("faulty boards in the closed loop", () => {
  it("a board whose runners never register is quarantined; a board NotReady for a while is no capacity meanwhile; every job is served", () =>
    Effect.runPromise(withHarness({
      nodes: nodes(3),
      runnerConfig: config,
      world: {
        boardFaults: [
          { node: "node-2", kind: "noRegister" },
          { node: "node-3", kind: "notReady", ready: "False", atMs: 60_000, forMs: 15 * 60_000 }
        ]
      }
    }, (h) =>
      Effect.gen(function*() {
        yield* h.world.submitJobs({ owner: "acme", repo: "acme/app", durationSeconds: 90, count: 12 })
        expect(yield* stepUntil(h, h.settled, Duration.hours(2))).toBe(true)
        const jobs = yield* h.world.jobs
        expect(jobs.map((j) => j.conclusion)).toEqual(Array(12).fill("success"))
        // node-2's runners came up silent and failed as never registered, until the board was quarantined
        const stats = yield* h.world.stats
        expect(stats.faults.boardSilentRunners).toBeGreaterThanOrEqual(3)
        const onBad = (yield* workers(h)).filter((w) => w.k8s_node === "node-2")
        expect(onBad.map((w) => [w.status, reasonOf(w.failure_info)])).toContainEqual(["failed", "runner_never_registered"])
        expect(onBad.every((w) => w.status === "failed")).toBe(true)
        const events = yield* h.db.listBoardEvents(100)
        expect(events.filter((e) => e.kind === "quarantined").map((e) => e.node)).toEqual(["node-2"])
        // node-3 went NotReady after a minute and came back after 15; no pod was created while the board was out
        // of capacity beyond what the good boards could take (the harness checks every creation)
        expect(stats.faults.boardsNotReady).toBe(1)
        expect(h.events.filter((e) => e._tag === "Fault" && e.kind.startsWith("board")).map((e) => e._tag === "Fault" ? `${e.kind} ${e.detail}` : "")).toEqual([
          "board not ready node-3 (Ready False)",
          "board ready again node-3"
        ])
        expect(h.boardChecks.whileUnusable).toBeGreaterThan(0)
        expect(h.boardChecks.whileQuarantined).toBeGreaterThan(0)
        expect(h.violations).toEqual([])
      })) as Effect.Effect<void>), 60_000)
})
