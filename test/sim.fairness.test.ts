import { Effect } from "effect"
import { describe, expect, it } from "vitest"
import { fairnessTable, runFairness } from "../bench/support/simFairness.ts"

/*
 * Fairness under scarcity through the whole closed loop, at a size that fits `npm test`: a burst of 40 jobs from
 * one entity and a trickle of 5 each from two others, on 4 boards. `npm run bench:fairness` runs the full
 * 200 + 10 + 10 scenario and prints the table of docs/performance.md.
 */
const load = { boards: 4, burst: 40, small: 5, jobMinutes: 5 }

describe("fair share under scarcity", () => {
  it("fair keeps the small entities' p95 wait within two job durations, and uses the boards as well as fifo", async () => {
    const fair = await Effect.runPromise(runFairness("fair", load))
    const fifo = await Effect.runPromise(runFairness("fifo", load))
    const table = fairnessTable([fair, fifo])
    expect(fair.violations, table).toEqual([])
    expect(fifo.violations, table).toEqual([])
    for (const small of fair.entities.filter((e) => e.entity !== "bigco")) {
      expect(small.jobs).toBe(load.small)
      expect(small.p95WaitMinutes, table).toBeLessThanOrEqual(2 * load.jobMinutes)
    }
    expect(fair.utilisation, table).toBeGreaterThanOrEqual(fifo.utilisation - 1e-9)
    expect(fair.jain, table).toBeGreaterThan(fifo.jain)
    // under fifo the burst goes first: the small entities wait behind it
    const fifoSmall = fifo.entities.find((e) => e.entity === "small-a")!
    expect(fifoSmall.p95WaitMinutes).toBeGreaterThan(2 * load.jobMinutes)
  }, 120_000)
})
