/**
 * The GitHub API cost of the recovery passes (issue 12): calls per redelivery pass and per sweep, by operation,
 * in the closed-loop simulation (the real scheduler, webhook and passes on the in-memory layers, TestClock), for
 * an hour of steady load with a share of deliveries lost. Prints figures with the load average; fails on nothing.
 */
import { Duration, Effect, Schema } from "effect"
import * as os from "node:os"
import { stepUntil, withHarness } from "./support/simHarness.ts"
import { defaultRunnerConfigInput, RunnerConfig } from "../src/domain/RunnerConfig.ts"
import { type GithubOperation, totalCalls } from "../src/services/Github.ts"

const config = Schema.decodeUnknownSync(RunnerConfig)(defaultRunnerConfigInput)
const nodes = Array.from({ length: 4 }, (_, i) => ({ name: `node-${i + 1}`, pool: "scw-em-rv1", slots: 1 }))
const MINUTES = 60
const REPOS = ["acme/app", "acme/lib", "acme/docs", "jane/tool"]

const measure = (dropShare: number) =>
  withHarness({ nodes, runnerConfig: config, world: { queuedJobTimeout: Duration.minutes(30) } }, (h) =>
    Effect.gen(function*() {
      yield* h.world.setFaults({ dropWebhooks: dropShare })
      // one job a minute, round the repositories, 3 minutes each: the boards stay busy, never swamped
      for (let minute = 0; minute < MINUTES; minute++) {
        const repo = REPOS[minute % REPOS.length]!
        yield* h.world.submitJobs({ owner: repo.split("/")[0]!, ownerType: repo.startsWith("jane") ? "User" : "Organization", repo, durationSeconds: 180 })
          .pipe(Effect.orDie)
        yield* h.step
        yield* h.step
      }
      yield* h.world.setFaults({ off: true })
      yield* stepUntil(h, h.settled, Duration.minutes(40))
      const counts = yield* h.github.callCounts
      const calls = (op: GithubOperation, status?: number) => totalCalls(counts, [op], status)
      const stats = yield* h.world.stats
      return { counts: calls, stats }
    }), `recovery-bench-${dropShare}`)

const main = Effect.gen(function*() {
  const started = performance.now()
  console.log(`recovery passes: ${MINUTES} simulated minutes of one job a minute over ${REPOS.length} repositories, then until settled`)
  for (const drop of [0, 0.2]) {
    const { counts, stats } = yield* measure(drop)
    const redeliveryPasses = counts("listHookDeliveries") === 0 ? 0 : counts("listHookDeliveries")
    const sweepListings = counts("listQueuedRuns")
    console.log(`\ndropWebhooks ${drop}: ${stats.faults.dropped} deliveries lost, ${stats.redeliveries} redelivery attempts made`)
    console.log(`  listHookDeliveries   ${counts("listHookDeliveries")} calls (app JWT, no installation budget), one page per pass and app`)
    console.log(`  redeliverHookDelivery ${counts("redeliverHookDelivery")} calls (202: ${counts("redeliverHookDelivery", 202)})`)
    console.log(`  listQueuedRuns       ${sweepListings} calls (304, free: ${counts("listQueuedRuns", 304)})`)
    console.log(`  listRunJobs          ${counts("listRunJobs")} calls (304, free: ${counts("listRunJobs", 304)})`)
    console.log(`  per redelivery pass and app: ${(counts("listHookDeliveries") / Math.max(1, redeliveryPasses)).toFixed(2)} listing + ${(counts("redeliverHookDelivery") / Math.max(1, redeliveryPasses)).toFixed(2)} redelivery calls`)
  }
  console.log(`\nwall ${((performance.now() - started) / 1000).toFixed(1)} s; load average ${os.loadavg().map((l) => l.toFixed(2)).join(" ")}`)
})

Effect.runPromise(main).catch((e) => {
  console.error(e)
  process.exit(1)
})
