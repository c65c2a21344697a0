import { describe, expect, it } from "@effect/vitest"
import { Context, Duration, Effect, HashMap, Layer, Logger, LogLevel, Option } from "effect"
import { GithubMemory, GithubMemoryControl } from "../../layers/github/memory.ts"
import { KubeMemory, KubeMemoryControl } from "../../layers/kube/memory.ts"
import { SchedulerLoop } from "../../src/scheduler/loop.ts"
import { SchedulerSettingsLive } from "../../src/scheduler/settings.ts"
import { Db } from "../../src/services/Db.ts"
import { totalCalls } from "../../src/services/Github.ts"
import { newJob } from "./dbFixtures.ts"
import { ORG, testRunnerConfig } from "./schedulerWorld.ts"

/**
 * The scheduler loop's wake-ups end to end, on the real clock, against a Db implementation: the loop runs as
 * `main.ts` runs it, with the in-memory GitHub and cluster, and a poll interval of an hour, so only the job
 * notifications and the pod watch can wake it. No case waits for a fixed time to assert: each polls until what
 * it waits for has happened (or the case times out).
 */
export const loopScenarios = (label: string, setup: Effect.Effect<Layer.Layer<Db, unknown>>) =>
  describe(`the scheduler loop's wake-ups: ${label}`, () => {
    const world = (slots: number, podEndSpacing: Duration.Duration = Duration.zero) =>
      Effect.gen(function*() {
        const db = yield* setup
        const shared = yield* Layer.build(Layer.mergeAll(
          db,
          GithubMemory,
          KubeMemory({ tick: null, nodes: [{ name: "n1", pool: "scw-em-rv1", slots }] })
        ))
        yield* Context.get(shared, GithubMemoryControl).addInstallation({
          id: ORG.installation,
          account: { login: ORG.login, type: "Organization", id: ORG.id }
        })
        yield* Layer.build(SchedulerLoop.pipe(
          Layer.provide(Layer.succeedContext(shared)),
          Layer.provide(SchedulerSettingsLive({
            runnerConfig: testRunnerConfig({ defaultMaxWorkers: null }),
            prod: false,
            timeouts: { pollInterval: Duration.hours(1), podEndSpacing }
          }))
        ))
        return { db: Context.get(shared, Db), kube: Context.get(shared, KubeMemoryControl), github: Context.get(shared, GithubMemoryControl) }
      })

    const until = <A>(check: Effect.Effect<A>, holds: (a: A) => boolean) =>
      Effect.gen(function*() {
        let last = yield* check
        while (!holds(last)) {
          yield* Effect.sleep("20 millis")
          last = yield* check
        }
        return last
      })

    /** The loop's "scheduler cycle done" lines (which kind of cycle, woken by what); every other line is dropped. */
    const cycles: Array<{ readonly cycle: string; readonly wokenBy: string }> = []
    const recorder = Logger.make(({ annotations, message }) => {
      const text = Array.isArray(message) ? message.join(" ") : String(message)
      if (text !== "scheduler cycle done") return
      const get = (key: string) => String(Option.getOrElse(HashMap.get(annotations, key), () => ""))
      cycles.push({ cycle: get("cycle"), wokenBy: get("woken_by") })
    })
    const quiet = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
      Effect.suspend(() => {
        cycles.length = 0
        return effect
      }).pipe(
        Effect.provide(Layer.mergeAll(Logger.replace(Logger.defaultLogger, recorder), Logger.minimumLogLevel(LogLevel.Debug)))
      )

    /**
     * Two jobs on one slot: job 1 gets the pod, its runner takes it and exits (the webhooks say so, and neither
     * wakes the loop), and the pod succeeds. Returns the pod and how many cycle lines came before its end.
     */
    const firstRunsAndEnds = (w: Effect.Effect.Success<ReturnType<typeof world>>) =>
      Effect.gen(function*() {
        yield* w.db.addJob(newJob(1))
        yield* w.db.addJob(newJob(2))
        const first = (yield* until(w.kube.pods, (ps) => ps.length === 1))[0]!
        yield* w.kube.reconcile
        yield* w.db.markJobRunning(1, first.name)
        yield* w.db.markJobCompleted(1, first.name)
        const before = cycles.length
        yield* w.kube.finishPod(first.name, 0)
        return { first, before }
      })

    it.live("a stored job wakes the fast path: demand matching alone, which creates its pod", () =>
      Effect.gen(function*() {
        const w = yield* world(2)
        // start-up: the first tick and the watch's first listing each ask for a full cycle (maybe the same one);
        // a job stored meanwhile would be served by that full cycle
        yield* until(Effect.sync(() => cycles), (cs) => cs.some((c) => c.wokenBy.includes("tick")) && cs.some((c) => c.wokenBy.includes("pods")))
        yield* w.db.addJob(newJob(1))
        const pods = yield* until(w.kube.pods, (ps) => ps.length === 1)
        expect(pods).toHaveLength(1)
        // the notification ran the demand path (the start-up cycle and the watch's first listing ran full ones)
        yield* until(Effect.sync(() => cycles), (cs) => cs.some((c) => c.cycle === "demand"))
        expect(cycles.filter((c) => c.cycle === "demand").every((c) => c.wokenBy === "notification")).toBe(true)
        expect(totalCalls(yield* w.github.callCounts, ["getJob"])).toBe(0)
      }).pipe(Effect.scoped, quiet))

    it.live("a runner pod that ends wakes the full cycle, and the freed board goes to a waiting job", () =>
      Effect.gen(function*() {
        const w = yield* world(1)
        const { first, before } = yield* firstRunsAndEnds(w)
        // nothing else can wake it: the tick is an hour away and no job was stored since
        const pods = yield* until(w.kube.pods, (ps) => ps.length === 2)
        expect(pods.map((p) => p.phase).sort()).toEqual(["Pending", "Succeeded"])
        const done = yield* until(w.db.getWorker(first.name).pipe(Effect.orDie), (row) => row._tag === "Some" && row.value.status === "completed")
        expect(done._tag === "Some" && done.value.status).toBe("completed")
        // what woke it was the pod watch (a clean end: "ended"), into a full cycle. That cycle logs its line when it
        // ends, which may be well after the row is seen (it can create the second pod between its parts, after phase
        // 2 recorded the end), so the line is waited for rather than expected
        const woken = yield* until(
          Effect.sync(() => cycles.slice(before)),
          (cs) => cs.some((c) => c.cycle === "full" && /\b(ended|pods)\b/.test(c.wokenBy))
        )
        expect(woken.some((c) => c.cycle === "full" && /\b(ended|pods)\b/.test(c.wokenBy))).toBe(true)
      }).pipe(Effect.scoped, quiet))
  
    it.live("a pod that succeeds wakes the fast path, which records its end itself and fills the board, with the full cycle held off", () =>
      Effect.gen(function*() {
        // the clean end's full cycle is held an hour after the start-up ones: only the fast path can act
        const w = yield* world(1, Duration.hours(1))
        yield* until(Effect.sync(() => cycles), (cs) => cs.some((c) => c.wokenBy.includes("tick")) && cs.some((c) => c.wokenBy.includes("pods")))
        const { first, before } = yield* firstRunsAndEnds(w)
        // worker 1 counted as job 2's runner until its end was recorded; the fast path recorded it, then matched
        const pods = yield* until(w.kube.pods, (ps) => ps.length === 2)
        expect(pods.map((p) => p.phase).sort()).toEqual(["Pending", "Succeeded"])
        const row = yield* w.db.getWorker(first.name).pipe(Effect.orDie)
        expect(Option.map(row, (r) => r.status)).toEqual(Option.some("completed"))
        const since = cycles.slice(before)
        expect(since.length).toBeGreaterThan(0)
        // a failure names the cycle that was not the fast path, and what woke it
        expect(since.filter((c) => c.cycle !== "demand")).toEqual([])
      }).pipe(Effect.scoped, quiet))
  })
