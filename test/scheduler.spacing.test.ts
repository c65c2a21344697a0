import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Context, Effect, Exit, Layer, Redacted, Scope, TestClock } from "effect"
import { DbMemory } from "../layers/db/memory.ts"
import { DbPostgres } from "../layers/db/postgres.ts"
import { GithubMemory, GithubMemoryControl } from "../layers/github/memory.ts"
import { makeWriteSpacing } from "../layers/github/writeSpacing.ts"
import { KubeMemory } from "../layers/kube/memory.ts"
import { runDemandCycle } from "../src/scheduler/cycle.ts"
import { SchedulerSettingsLive } from "../src/scheduler/settings.ts"
import { Db } from "../src/services/Db.ts"
import { Github, type GithubShape, type InstallationRef } from "../src/services/Github.ts"
import { newJob } from "./support/dbFixtures.ts"
import { emptyStore, freshDatabase } from "./support/postgres.ts"
import { installBoth, podNames, queueJob, testRunnerConfig, workerRows, type World } from "./support/schedulerWorld.ts"

/*
 * One installation's write spacing off the others' path (issue 13): demand matching starts, per installation, only
 * the GitHub writes that need not wait for its spacing, and says when the rest can go. The GitHub here is the
 * in-memory one with the live layer's own spacing (`writeSpacing.ts`) around its JIT config writes, so its
 * `writeWait` answers from real writes, on the TestClock. The clock never moves inside a cycle: a cycle that
 * waited for a gap would never end.
 */

const BETA = { id: 1002, login: "beta", installation: 5002 } as const
const GAP = 334

/** The in-memory GitHub whose JIT config writes are spaced per installation, as the live layer's are. */
const SpacedGithubMemory = (writeBurst: number) => Layer.map(GithubMemory, (context) => {
  const inner = Context.get(context, Github)
  const spacing = makeWriteSpacing({ writeGapMs: GAP, writeBurst, pointsPerMinute: 900 })
  const key = (ref: InstallationRef) => `installation:${ref.installationId}`
  const spaced: GithubShape = {
    ...inner,
    createJitConfigOrg: (ref, org, groupId, request) => spacing.run(key(ref), true, inner.createJitConfigOrg(ref, org, groupId, request)),
    createJitConfigRepo: (ref, repo, request) => spacing.run(key(ref), true, inner.createJitConfigRepo(ref, repo, request)),
    writeWait: (ref) => spacing.writeWait(key(ref))
  }
  return Context.add(context, Github, spaced)
})

const world = (db: Layer.Layer<Db>, writeBurst = 1): Layer.Layer<World> =>
  Layer.mergeAll(
    db,
    SpacedGithubMemory(writeBurst),
    KubeMemory({ tick: null, nodes: [{ name: "node-1", pool: "scw-em-rv1", slots: 8 }] }),
    SchedulerSettingsLive({ runnerConfig: testRunnerConfig({ defaultMaxWorkers: null }), prod: false })
  )

const betaJob = (jobId: number) =>
  newJob(jobId, { entity_id: BETA.id, entity_name: BETA.login, installation_id: BETA.installation, repo_full_name: "beta/app" })

/** Runs one fast-path cycle, returning the demand wake-ups it asked for. */
const demandCycle = Effect.gen(function*() {
  const asked: Array<number> = []
  yield* runDemandCycle((at) => Effect.sync(() => asked.push(at)))
  return asked
})

const jobOfPod = Effect.gen(function*() {
  const rows = yield* workerRows
  return rows.map((w) => `${w.entity_name}:${w.status}`)
})

type Provide = <A, E>(body: Effect.Effect<A, E, World>, writeBurst?: number) => Effect.Effect<A, E, never>

const scenarios = (name: string, provide: Provide) =>
  describe(`write spacing in demand matching, ${name}`, () => {
    it.effect("with a burst of 3, one organisation's first three jobs go in one cycle and the fourth waits for its gap", () =>
      provide(
        Effect.gen(function*() {
          yield* installBoth
          yield* (yield* GithubMemoryControl).addInstallation({ id: BETA.installation, account: { login: BETA.login, type: "Organization", id: BETA.id } })
          const gh = yield* Github
          yield* gh.ensureRunnerGroup({ installationId: 5001, entityType: "Organization" }, "acme", "riscv-runners").pipe(Effect.ignore)
          yield* gh.ensureRunnerGroup({ installationId: BETA.installation, entityType: "Organization" }, BETA.login, "riscv-runners").pipe(Effect.ignore)
          yield* TestClock.adjust(3 * GAP)
          const start = yield* TestClock.currentTimeMillis
          for (let i = 1; i <= 4; i++) yield* queueJob(newJob(i))
          yield* queueJob(betaJob(5))
          const asked = yield* demandCycle
          expect((yield* jobOfPod).sort()).toEqual(["acme:pending", "acme:pending", "acme:pending", "beta:pending"])
          // three starts booked three slots: the fourth's comes a gap from now
          expect(asked).toEqual([start + GAP])
          expect((yield* (yield* Db).getPendingJobs).map((j) => j.job_id).sort()).toEqual([1, 2, 3, 4, 5])
          yield* TestClock.adjust(GAP)
          expect(yield* demandCycle).toEqual([])
          expect(yield* podNames).toHaveLength(5)
        }),
        3
      ))

    it.effect("two jobs of one organisation and one of another: the first cycle starts one of each, waits for no gap, and says when the second can go", () =>
      provide(Effect.gen(function*() {
        yield* installBoth
        yield* (yield* GithubMemoryControl).addInstallation({ id: BETA.installation, account: { login: BETA.login, type: "Organization", id: BETA.id } })
        // the organisations' runner groups exist already: each runner is one write
        const gh = yield* Github
        yield* gh.ensureRunnerGroup({ installationId: 5001, entityType: "Organization" }, "acme", "riscv-runners").pipe(Effect.ignore)
        yield* gh.ensureRunnerGroup({ installationId: BETA.installation, entityType: "Organization" }, BETA.login, "riscv-runners").pipe(Effect.ignore)
        yield* TestClock.adjust(GAP)
        const start = yield* TestClock.currentTimeMillis
        yield* queueJob(newJob(1))
        yield* queueJob(newJob(2))
        yield* queueJob(betaJob(3))

        const asked = yield* demandCycle
        // acme's first job and beta's, and no reservation for acme's second
        expect((yield* jobOfPod).sort()).toEqual(["acme:pending", "beta:pending"])
        expect(yield* podNames).toHaveLength(2)
        // the wake-up comes when acme can write again: a gap after its write started (the clock never moved)
        expect(asked).toEqual([start + GAP])
        const db = yield* Db
        // a deferral is no allocation failure: no back-off streak
        expect(yield* db.getAllocationFailures(3600)).toEqual([])
        // acme's second job is still pending, in its place
        expect((yield* db.getPendingJobs).map((j) => j.job_id).sort()).toEqual([1, 2, 3])

        // before the gap has passed, another cycle starts nothing for acme and asks for the same time again
        expect(yield* demandCycle).toEqual([start + GAP])
        expect(yield* podNames).toHaveLength(2)

        // the wake-up: acme's gap has passed, and its second job is provisioned
        yield* TestClock.adjust(GAP)
        expect(yield* demandCycle).toEqual([])
        expect((yield* jobOfPod).sort()).toEqual(["acme:pending", "acme:pending", "beta:pending"])
        expect(yield* podNames).toHaveLength(3)
        expect(yield* db.getAllocationFailures(3600)).toEqual([])
      })))

    it.effect("an installation whose next write would wait gets nothing in this cycle, and its jobs are not lost", () =>
      provide(Effect.gen(function*() {
        yield* installBoth
        const gh = yield* Github
        yield* gh.ensureRunnerGroup({ installationId: 5001, entityType: "Organization" }, "acme", "riscv-runners").pipe(Effect.ignore)
        // a write of acme's starts outside demand matching (a runner delete, say): its gap runs now
        yield* gh.createJitConfigOrg({ installationId: 5001, entityType: "Organization" }, "acme", 1, { runnerName: "elsewhere-1", labels: ["x"] }).pipe(Effect.ignore)
        const start = yield* TestClock.currentTimeMillis
        for (let i = 1; i <= 3; i++) yield* queueJob(newJob(i))
        expect(yield* demandCycle).toEqual([start + GAP])
        // nothing reserved, nothing created
        expect(yield* workerRows).toEqual([])
        expect(yield* podNames).toEqual([])
        // one job per gap after that, and every job gets its runner in the end
        for (let round = 1; round <= 3; round++) {
          yield* TestClock.adjust(GAP)
          yield* demandCycle
          expect(yield* podNames).toHaveLength(round)
        }
        expect(yield* demandCycle).toEqual([])
      })))
  })

scenarios("in memory", (body, writeBurst) => Effect.provide(body, world(Layer.fresh(DbMemory), writeBurst)))

// One migrated database for the suite; every case starts from empty tables.
let url = ""
let context: Context.Context<Db>
const suiteScope = Effect.runSync(Scope.make())
beforeAll(async () => {
  const db = await Effect.runPromise(freshDatabase("spacing").pipe(Scope.extend(suiteScope)))
  url = db.url
  context = await Effect.runPromise(
    Layer.buildWithScope(DbPostgres({ url: Redacted.make(url), schema: "staging", migrate: true }), suiteScope)
  )
})
afterAll(() => Effect.runPromise(Scope.close(suiteScope, Exit.void)))

scenarios("on PostgreSQL", (body, writeBurst) =>
  Effect.zipRight(
    Effect.promise(() => emptyStore(url)),
    Effect.provide(body, world(Layer.suspend(() => Layer.succeedContext(context)), writeBurst))
  ))
