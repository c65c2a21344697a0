import { Effect } from "effect"
import { describe, expect, it } from "vitest"
import { dstSeeds } from "./support/simDst.ts"
import { runDst } from "../bench/support/simScenario.ts"

// Deterministic simulation: seeds 1-10 here, 11-20 in sim.dst.b.test.ts (two files, so vitest runs them side by side).
describe("deterministic simulation, seeds 1-10", () => {
  dstSeeds([1, 2, 3, 4, 5, 6, 7, 8, 9, 10])

  it("a seed replays exactly: the same events, rows and API calls", async () => {
    const first = await Effect.runPromise(runDst({ seed: 4, jobs: 8 }))
    const again = await Effect.runPromise(runDst({ seed: 4, jobs: 8 }))
    expect(again.fingerprint).toBe(first.fingerprint)
    expect(again.faults).toEqual(first.faults)
    const other = await Effect.runPromise(runDst({ seed: 5, jobs: 8 }))
    expect(other.fingerprint).not.toBe(first.fingerprint)
  }, 120_000)
})
