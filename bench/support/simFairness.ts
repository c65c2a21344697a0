import { Duration, Effect, Random, Schema, TestClock, TestContext } from "effect"
import type { SimJob } from "../../layers/sim/worldApi.ts"
import { defaultRunnerConfigInput, RunnerConfig } from "../../src/domain/RunnerConfig.ts"
import { capturingLogger, DST_EPOCH, makeHarness } from "./simHarness.ts"
import { percentile } from "./percentile.ts"
import { fastZeroTimers } from "./simTimers.ts"

/*
 * Fairness under scarcity: 3 entities on 4 boards. `bigco` bursts 200 jobs at once; `small-a` and `small-b` send 10
 * each, one per job duration (a steady trickle, staggered), from the first minute. Every job runs 5 minutes. The
 * same load runs under `fair` and `fifo`, through the whole closed loop (webhook, scheduler, cluster, GitHub), on
 * TestClock. `npm test` runs a smaller burst with the same shape.
 */

export interface FairnessLoad {
  readonly boards: number
  readonly burst: number
  readonly small: number
  readonly jobMinutes: number
}

export const FAIRNESS: FairnessLoad = { boards: 4, burst: 200, small: 10, jobMinutes: 5 }

export interface EntityFigures {
  readonly entity: string
  readonly jobs: number
  readonly meanWaitMinutes: number
  readonly p95WaitMinutes: number
  /** board time received while all three entities had work */
  readonly contendedBoardMinutes: number
  /** its max-min fair share of the boards over that window, given its demand moment by moment */
  readonly fairShareBoardMinutes: number
}

export interface FairnessResult {
  readonly policy: "fair" | "fifo"
  readonly entities: ReadonlyArray<EntityFigures>
  /**
   * Jain's index of board time while all three entities had work, each entity's board time taken relative to its
   * max-min fair share (1 = everybody got its fair share)
   */
  readonly jain: number
  /** the same over raw board time (1 = equal board time, whatever each needed) */
  readonly jainRaw: number
  /** board time used by jobs / (boards x the time from the first arrival to the last completion) */
  readonly utilisation: number
  readonly makespanMinutes: number
  readonly violations: ReadonlyArray<string>
  readonly cycles: { readonly count: number; readonly wallMs: number }
}

export const jainIndex = (xs: ReadonlyArray<number>): number => {
  const sum = xs.reduce((a, b) => a + b, 0)
  const squares = xs.reduce((a, b) => a + b * b, 0)
  return squares === 0 ? 1 : (sum * sum) / (xs.length * squares)
}

/** Max-min fair split of `capacity` among demands (water-filling): nobody gets more than it asks for. */
export const maxMinShares = (demands: ReadonlyArray<number>, capacity: number): ReadonlyArray<number> => {
  const shares = demands.map(() => 0)
  let left = capacity
  let open = demands.map((_, i) => i).filter((i) => demands[i]! > 0)
  while (left > 1e-9 && open.length > 0) {
    const each = left / open.length
    const next: Array<number> = []
    for (const i of open) {
      const want = demands[i]! - shares[i]!
      const give = Math.min(want, each)
      shares[i]! += give
      left -= give
      if (want > each) next.push(i)
    }
    if (next.length === open.length) break
    open = next
  }
  return shares
}

/** The figures of one run, from the jobs as GitHub saw them. */
export const fairnessFigures = (jobs: ReadonlyArray<SimJob>, boards: number) => {
  const owners = [...new Set(jobs.map((j) => j.owner))]
  const start = Math.min(...jobs.map((j) => j.queuedAt))
  const end = Math.max(...jobs.map((j) => j.completedAt ?? j.queuedAt))
  // The contended window: from the last entity's first arrival to the first time an entity has no work left.
  const activeUntil = (owner: string) => Math.max(...jobs.filter((j) => j.owner === owner).map((j) => j.completedAt ?? end))
  const windowStart = Math.max(...owners.map((o) => Math.min(...jobs.filter((j) => j.owner === o).map((j) => j.queuedAt))))
  const windowEnd = Math.min(...owners.map(activeUntil))
  const overlap = (j: SimJob) =>
    j.startedAt === null ? 0 : Math.max(0, Math.min(j.completedAt ?? end, windowEnd) - Math.max(j.startedAt, windowStart))
  // Each entity's max-min fair share of the boards over the window, given how many jobs it had at each moment
  // (queued or running): an entity that needs one board is not owed four.
  const fairShare = owners.map(() => 0)
  const tick = 10_000
  for (let t = windowStart; t < windowEnd; t += tick) {
    const demand = owners.map((o) => jobs.filter((j) => j.owner === o && j.queuedAt <= t && t < (j.completedAt ?? end)).length)
    maxMinShares(demand, boards).forEach((share, i) => (fairShare[i]! += share * Math.min(tick, windowEnd - t)))
  }
  const minutes = (ms: number) => ms / 60_000
  const entities = owners.map((owner, i): EntityFigures => {
    const mine = jobs.filter((j) => j.owner === owner)
    const waits = mine.map((j) => (j.startedAt ?? end) - j.queuedAt)
    return {
      entity: owner,
      jobs: mine.length,
      meanWaitMinutes: minutes(waits.reduce((a, b) => a + b, 0) / Math.max(1, waits.length)),
      p95WaitMinutes: waits.length === 0 ? 0 : minutes(percentile(waits, 0.95)),
      contendedBoardMinutes: minutes(mine.reduce((a, j) => a + overlap(j), 0)),
      fairShareBoardMinutes: minutes(fairShare[i]!)
    }
  })
  const busy = jobs.reduce((a, j) => a + (j.startedAt === null ? 0 : (j.completedAt ?? end) - j.startedAt), 0)
  return {
    entities,
    jain: jainIndex(entities.map((e) => (e.fairShareBoardMinutes === 0 ? 1 : e.contendedBoardMinutes / e.fairShareBoardMinutes))),
    jainRaw: jainIndex(entities.map((e) => e.contendedBoardMinutes)),
    utilisation: busy / (boards * (end - start)),
    makespanMinutes: minutes(end - start)
  }
}

export const runFairness = (policy: "fair" | "fifo", load: FairnessLoad = FAIRNESS): Effect.Effect<FairnessResult> => {
  const logs: Array<string> = []
  return Effect.gen(function*() {
    yield* fastZeroTimers
    yield* TestClock.setTime(DST_EPOCH)
    const config = Schema.decodeUnknownSync(RunnerConfig)({
      ...defaultRunnerConfigInput,
      entities: { "1001": { name: "bigco" }, "1002": { name: "small-a" }, "1003": { name: "small-b" } },
      policy
    })
    const h = yield* makeHarness({
      nodes: Array.from({ length: load.boards }, (_, i) => ({ name: `board-${i + 1}`, pool: "scw-em-rv1", slots: 1 })),
      runnerConfig: config,
      step: Duration.seconds(30)
    }, logs)
    const submit = (owner: string, count: number) =>
      h.world.submitJobs({ owner, repo: `${owner}/ci`, durationSeconds: load.jobMinutes * 60, count }).pipe(Effect.orDie)
    yield* submit("bigco", load.burst)
    const trickle = (owner: string, firstMinute: number) =>
      Effect.gen(function*() {
        yield* Effect.sleep(Duration.minutes(firstMinute))
        for (let i = 0; i < load.small; i++) {
          yield* submit(owner, 1)
          yield* Effect.sleep(Duration.minutes(load.jobMinutes))
        }
      })
    yield* Effect.forkScoped(trickle("small-a", 1))
    yield* Effect.forkScoped(trickle("small-b", 1 + load.jobMinutes / 2))
    const cap = DST_EPOCH + Duration.toMillis(Duration.hours(12))
    while ((yield* TestClock.currentTimeMillis) < cap) {
      yield* h.step
      const jobs = yield* h.world.jobs
      if (jobs.length === load.burst + 2 * load.small && jobs.every((j) => j.status === "completed")) break
    }
    return { policy, ...fairnessFigures(yield* h.world.jobs, load.boards), violations: [...h.violations], cycles: { ...h.cycles } }
  }).pipe(
    Effect.scoped,
    Effect.withRandom(Random.make(`fairness/${policy}`)),
    Effect.provide(capturingLogger(logs, false)),
    Effect.provide(TestContext.TestContext)
  )
}

const fixed = (n: number, digits = 1) => n.toFixed(digits)

/** The table in docs/performance.md. */
export const fairnessTable = (results: ReadonlyArray<FairnessResult>): string => {
  const lines = [
    "| policy | entity | jobs | mean wait | p95 wait | board time while contended (fair share) | Jain's index | utilisation |",
    "|---|---|---:|---:|---:|---:|---:|---:|"
  ]
  for (const r of results) {
    r.entities.forEach((e, i) => {
      lines.push(
        `| ${i === 0 ? r.policy : ""} | ${e.entity} | ${e.jobs} | ${fixed(e.meanWaitMinutes)} min | ${fixed(e.p95WaitMinutes)} min | ${
          fixed(e.contendedBoardMinutes, 0)
        } min (${fixed(e.fairShareBoardMinutes, 0)}) | ${i === 0 ? `${fixed(r.jain, 2)} (raw ${fixed(r.jainRaw, 2)})` : ""} | ${
          i === 0 ? `${fixed(r.utilisation * 100, 1)} %` : ""
        } |`
      )
    })
  }
  return lines.join("\n")
}
