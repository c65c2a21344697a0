import { Effect } from "effect"
import { describe, expect, it } from "vitest"
import { describeFailure, type DstOptions, type DstResult, runDst } from "../bench/support/simScenario.ts"
import { CI_JOBS } from "./support/simDst.ts"

/*
 * The two-cluster world (`DstOptions.world`): cluster `lab` beside the default one, a board whose runners never
 * register in one and a board that goes NotReady in the other, lab's API down for a while, no other fault. On top
 * of every invariant of the other seeds: no pod is created, or starts, on a quarantined or unusable board; every
 * pod of a pool is in that pool's cluster; every job is served.
 */
describe("deterministic simulation, two clusters with faulty boards", () => {
  const results: Array<DstResult> = []
  for (const seed of [1, 2, 3, 4]) {
    it(`seed ${seed}: ${CI_JOBS} jobs over two clusters, every one served, every invariant at every step`, async () => {
      const options: DstOptions = { seed, jobs: CI_JOBS, world: "two-clusters" }
      const result = await Effect.runPromise(runDst(options))
      results.push(result)
      if (result.violations.length > 0) console.error(describeFailure(options, result))
      expect(result.violations, describeFailure(options, result)).toEqual([])
      // both clusters ran pods, and both faulty boards were there
      expect(Object.keys(result.podsByCluster ?? {})).toEqual(["default", "lab"])
      expect(result.faults["faultyBoards"]).toBe(2)
    }, 120_000)
  }

  it("the seeds exercised what they claim: pods in both clusters, silent runners, a board NotReady, quarantines", () => {
    expect(results).toHaveLength(4)
    const sum = (f: (r: DstResult) => number) => results.reduce((n, r) => n + f(r), 0)
    expect(sum((r) => r.podsByCluster?.["lab"] ?? 0)).toBeGreaterThan(0)
    expect(sum((r) => r.podsByCluster?.["default"] ?? 0)).toBeGreaterThan(0)
    expect(sum((r) => r.faults["boardSilentRunners"] ?? 0)).toBeGreaterThan(0)
    expect(sum((r) => r.faults["boardsNotReady"] ?? 0)).toBeGreaterThan(0)
    expect(sum((r) => r.boards["createdWhileUnusable"] ?? 0)).toBeGreaterThan(0)
    expect(sum((r) => r.boards["createdWhileQuarantined"] ?? 0)).toBeGreaterThan(0)
    expect(sum((r) => r.boards["quarantines"] ?? 0)).toBeGreaterThan(0)
    console.log(results.map((r) => `seed ${r.seed}: ${JSON.stringify(r.podsByCluster)} pods, ${JSON.stringify(r.boards)}, ${r.simulatedMinutes} simulated min`).join("\n"))
  })
})
