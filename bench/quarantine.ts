/**
 * `npm run bench:quarantine`: what board quarantine buys. 4 boards, one bad (its runners never register), 200 jobs
 * of 5 minutes queued at once; the scheduler on the in-memory layers under TestClock. Prints the mean and longest
 * wait, the failed workers (and how many on the bad board) and the quarantines, with quarantine on (the default:
 * 3 failures within 1 h, 1 h probation) and off. Figures, not a test (`test/scheduler.memory.test.ts` and
 * `test/scheduler.postgres.test.ts` check the rule).
 */
import { loadavg } from "node:os"
import { Effect } from "effect"
import { QUARANTINE_LOAD, runQuarantine } from "./support/simQuarantine.ts"

const rows: Array<string> = []
for (const quarantine of [true, false]) {
  const started = performance.now()
  const r = await Effect.runPromise(runQuarantine(quarantine, QUARANTINE_LOAD))
  const wall = ((performance.now() - started) / 1000).toFixed(1)
  rows.push(
    `| ${quarantine ? "on (3 in 1 h, 1 h probation)" : "off"} | ${r.served}/${QUARANTINE_LOAD.jobs} | ${r.meanWaitMinutes.toFixed(1)} | ${
      r.maxWaitMinutes.toFixed(1)
    } | ${r.failedWorkers} (${r.failedOnBadBoard} on the bad board) | ${r.quarantines} | ${r.makespanMinutes.toFixed(0)} | ${wall} s |`
  )
}
console.log(`${QUARANTINE_LOAD.boards} boards (1 bad: runners never register), ${QUARANTINE_LOAD.jobs} jobs of ${QUARANTINE_LOAD.jobMinutes} min at once; load average ${loadavg().map((l) => l.toFixed(2)).join(" ")}\n`)
console.log("| quarantine | jobs served | mean wait (min) | max wait (min) | failed workers | quarantines | makespan (min) | wall |")
console.log("|---|---|---|---|---|---|---|---|")
for (const row of rows) console.log(row)
