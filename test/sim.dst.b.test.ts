import { describe } from "vitest"
import { dstSeeds } from "./support/simDst.ts"

// Deterministic simulation: seeds 11-20 (1-10 are in sim.dst.a.test.ts).
describe("deterministic simulation, seeds 11-20", () => {
  dstSeeds([11, 12, 13, 14, 15, 16, 17, 18, 19, 20])
})
