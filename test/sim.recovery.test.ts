import { Duration, Effect, Option, Schema } from "effect"
import { describe, expect, it } from "vitest"
import { defaultRunnerConfigInput, RunnerConfig } from "../src/domain/RunnerConfig.ts"
import { type Harness, stepUntil, withHarness } from "../bench/support/simHarness.ts"

/*
 * Lost deliveries in the closed loop (issue 12): the real webhook program, scheduler loop and recovery passes on
 * the in-memory layers, the simulated GitHub keeping its delivery log, TestClock. GitHub never sends a failed
 * delivery again by itself; these cases show what does.
 */

const config = Schema.decodeUnknownSync(RunnerConfig)({ ...defaultRunnerConfigInput, entities: { "1001": { name: "acme" } } })
const nodes = Array.from({ length: 2 }, (_, i) => ({ name: `node-${i + 1}`, pool: "scw-em-rv1", slots: 1 }))
const never = Duration.hours(10_000)
const run = <A>(body: (h: Harness) => Effect.Effect<A, unknown, never>, recovery: Record<string, unknown> = {}) =>
  Effect.runPromise(withHarness({ nodes, runnerConfig: config, recovery, world: { queuedJobTimeout: Duration.minutes(30) } }, body) as Effect.Effect<A>)

const row = (h: Harness, id: number) => Effect.orDie(Effect.map(h.db.getJob(id), Option.getOrUndefined))
const githubJob = (h: Harness, id: number) => Effect.map(h.github.snapshot, (s) => s.jobs.find((j) => j.id === id))
const provisioned = (h: Harness) => h.events.filter((e) => e._tag === "RunnerProvisioned").length

describe("recovering lost deliveries", () => {
  it("a queued delivery lost on the way is redelivered, and the job runs, within one redelivery interval", () =>
    run((h) =>
      Effect.gen(function*() {
        // the installation is known (its delivery got through); then the network starts losing deliveries
        yield* h.world.submitJobs({ owner: "acme", repo: "acme/app", durationSeconds: 30 })
        expect(yield* stepUntil(h, h.settled, Duration.minutes(10))).toBe(true)
        yield* h.world.setFaults({ dropWebhooks: 1 })
        const [id] = yield* h.world.submitJobs({ owner: "acme", repo: "acme/app", durationSeconds: 60 })
        for (let i = 0; i < 6; i++) yield* h.step
        // GitHub keeps the job queued, and we know nothing of it
        expect((yield* githubJob(h, id!))?.status).toBe("queued")
        expect(yield* row(h, id!)).toBeUndefined()
        const log = yield* h.github.deliveries
        // the first attempt and every redelivery asked for while the network was still failing: none got through
        const attempts = log.filter((d) => d.event === "workflow_job" && d.id > log.find((x) => x.action === "completed")!.id)
        expect(attempts.length).toBeGreaterThanOrEqual(1)
        expect(attempts.every((d) => d.statusCode === 0)).toBe(true)

        yield* h.world.setFaults({ off: true })
        expect(yield* stepUntil(h, Effect.map(row(h, id!), (r) => r !== undefined), Duration.minutes(2))).toBe(true)
        expect(yield* stepUntil(h, Effect.map(githubJob(h, id!), (j) => j?.conclusion === "success"), Duration.minutes(5))).toBe(true)
        expect((yield* h.world.stats).redeliveries).toBeGreaterThanOrEqual(1)
        const outcomes = (yield* h.db.getEventsByEntity(1001)).map((e) => `${e.event}:${e.outcome}`)
        expect(outcomes).toContain("redelivery.requested:redelivery_requested")
        expect(outcomes).toContain("workflow_job.queued:job_stored")
        expect(yield* stepUntil(h, h.settled, Duration.minutes(20))).toBe(true)
        yield* h.finalChecks
        expect(h.violations).toEqual([])
      })))

  it("without the redelivery pass the job is lost, and the simulation's invariant says so", () =>
    run((h) =>
      Effect.gen(function*() {
        yield* h.world.setFaults({ dropWebhooks: 1 })
        const [id] = yield* h.world.submitJobs({ owner: "acme", repo: "acme/app", durationSeconds: 60 })
        yield* h.world.setFaults({ off: true })
        expect(yield* stepUntil(h, h.settled, Duration.minutes(60))).toBe(true)
        expect((yield* githubJob(h, id!))?.conclusion).toBe("cancelled")
        yield* h.finalChecks
        expect(h.violations.join("\n")).toMatch(new RegExp(`job ${id} was stored only when GitHub gave up on it`))
      }), { redeliveryInterval: never, sweepInterval: never }))

  it("an outage of our endpoint: every delivery it refused is redelivered after it, and no job gets two runners", () =>
    run((h) =>
      Effect.gen(function*() {
        yield* h.world.setFaults({ webhookOutage: 600 })
        const ids = yield* h.world.submitJobs({ owner: "acme", repo: "acme/app", durationSeconds: 60, count: 3 })
        expect(yield* stepUntil(h, Effect.succeed(false), Duration.minutes(9))).toBe(false)
        for (const id of ids) expect(yield* row(h, id)).toBeUndefined()
        expect((yield* h.world.stats).faults.outageRefused).toBeGreaterThanOrEqual(3)
        // the outage ends at 10 min; a pass follows within 2
        expect(yield* stepUntil(h, Effect.map(Effect.forEach(ids, (id) => row(h, id)), (rs) => rs.every((r) => r !== undefined)), Duration.minutes(3.5))).toBe(true)
        expect(yield* stepUntil(h, h.settled, Duration.minutes(20))).toBe(true)
        for (const id of ids) expect((yield* githubJob(h, id))?.conclusion).toBe("success")
        expect(provisioned(h)).toBe(3)
        yield* h.finalChecks
        expect(h.violations).toEqual([])
      })))

  it("a delivery GitHub never made: the sweep finds the queued job in a repository it knows", () =>
    run((h) =>
      Effect.gen(function*() {
        const [first] = yield* h.world.submitJobs({ owner: "acme", repo: "acme/app", durationSeconds: 60 })
        expect(yield* stepUntil(h, Effect.map(row(h, first!), (r) => r !== undefined), Duration.minutes(1))).toBe(true)
        yield* h.world.setFaults({ unsentWebhooks: 1 })
        const [unsent] = yield* h.world.submitJobs({ owner: "acme", repo: "acme/app", durationSeconds: 60 })
        yield* h.world.setFaults({ off: true })
        // nothing in the delivery log to redeliver: only the sweep (every 10 min) can find it
        expect((yield* h.github.deliveries).some((d) => d.action === "queued" && d.guid.endsWith("3"))).toBe(false)
        expect(yield* stepUntil(h, Effect.map(row(h, unsent!), (r) => r !== undefined), Duration.minutes(10.5))).toBe(true)
        const discovered = (yield* h.db.getEventsByEntity(1001)).filter((e) => e.event === "sweep.job_discovered")
        expect(discovered.map((e) => e.outcome)).toEqual(["job_stored"])
        expect(yield* stepUntil(h, h.settled, Duration.minutes(20))).toBe(true)
        expect((yield* githubJob(h, unsent!))?.conclusion).toBe("success")
        yield* h.finalChecks
        expect(h.violations).toEqual([])
      })))
})
