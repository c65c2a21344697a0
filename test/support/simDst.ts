import { Effect } from "effect"
import { expect, it } from "vitest"
import { describeFailure, type DstOptions, runDst } from "../../bench/support/simScenario.ts"

/** The size `npm test` runs: jobs per seed. `npm run sim:check` runs the large version. */
export const CI_JOBS = 15

/** One vitest case per seed; a failure prints the seed and its replay command. */
export const dstSeeds = (seeds: ReadonlyArray<number>, jobs = CI_JOBS) => {
  for (const seed of seeds) {
    it(`seed ${seed}: ${jobs} jobs with faults end well, and every invariant holds at every step`, async () => {
      const options: DstOptions = { seed, jobs }
      const result = await Effect.runPromise(runDst(options))
      if (result.violations.length > 0) console.error(describeFailure(options, result))
      expect(result.violations, describeFailure(options, result)).toEqual([])
    }, 120_000)
  }
}
