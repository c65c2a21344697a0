/**
 * `npm run bench:fairness`: fairness under scarcity through the whole closed loop (webhook, scheduler, cluster,
 * GitHub) on TestClock: 3 entities on 4 boards; `bigco` bursts 200 jobs, `small-a` and `small-b` send 10 each, one
 * per job duration; every job runs 5 minutes. Prints each entity's mean and p95 wait, board time while all three
 * had work (with its max-min fair share), Jain's index and board utilisation, for `fair` and for `fifo`.
 * Figures, not a test: it never fails on a number (`test/sim.fairness.test.ts` checks the targets at a smaller size).
 */
import { Effect } from "effect"
import { FAIRNESS, type FairnessResult, fairnessTable, runFairness } from "./support/simFairness.ts"

const results: Array<FairnessResult> = []
for (const policy of ["fair", "fifo"] as const) {
  const started = performance.now()
  const result = await Effect.runPromise(runFairness(policy, FAIRNESS))
  results.push(result)
  console.log(
    `${policy}: ${result.makespanMinutes.toFixed(0)} simulated min, ${result.cycles.count} scheduler cycles, ${
      ((performance.now() - started) / 1000).toFixed(1)
    } s, ${result.violations.length} invariant violations`
  )
  for (const v of result.violations) console.log(`  - ${v}`)
}
console.log(`\n${FAIRNESS.boards} boards; bigco ${FAIRNESS.burst} jobs at once, small-a and small-b ${FAIRNESS.small} each, every job ${FAIRNESS.jobMinutes} min\n`)
console.log(fairnessTable(results))
