/**
 * Issue 12's "done when", as an operator would see it: the bundled entrypoint as `all --simulate`, driven through
 * the simulation's control API. A job whose `queued` delivery is lost stays queued on the simulated GitHub while we
 * know nothing of it; once the faults are off, the scheduler's redelivery pass asks GitHub to send it again and
 * the job completes. The interval is short here (3 s) so the test is quick.
 */
import { describe, expect, it } from "vitest"
import { processSuite, startSimulated } from "./support/processSuite.ts"

const suite = processSuite()

const post = (url: string, body: unknown) =>
  fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) })
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

describe("all --simulate: a lost delivery", () => {
  it("is redelivered once the faults are off, and its job completes", async () => {
    const { child, control: sim, scheduler } = await startSimulated(suite, "proc_redelivery", {
      SIM_SPEED: "100",
      SCHEDULER_REDELIVERY_INTERVAL: "3 seconds",
      LOG_LEVEL: "info"
    })

    // the repro: every delivery lost, one job posted
    expect((await post(`${sim}/sim/faults`, { dropWebhooks: 1 })).status).toBe(200)
    const submitted = await post(`${sim}/sim/jobs`, { owner: "acme", repo: "acme/app", durationSeconds: 5, count: 1 })
    expect(submitted.status).toBe(200)
    const { jobIds } = (await submitted.json()) as { jobIds: Array<number> }
    const id = jobIds[0]!
    // two redelivery intervals with the network still failing: the redeliveries are lost too
    await sleep(6_500)
    const state = await (await fetch(`${sim}/sim/state`)).text()
    expect(state).toContain(String(id))
    const ours = await (await fetch(`${scheduler}/jobs`)).text()
    expect(ours).not.toContain(String(id))

    // faults off: the next pass redelivers, the webhook stores the job, a runner takes it
    const off = Date.now()
    expect((await post(`${sim}/sim/faults`, { off: true })).status).toBe(200)
    await child.waitForLine((l) => l.includes("done") && l.includes(`job ${id}`) && l.includes("success"), 60_000)
    const took = Date.now() - off
    console.log(`job ${id} completed ${took} ms after the faults were turned off (redelivery interval 3000 ms)`)

    const metrics = await (await fetch(`${scheduler}/metrics`)).text()
    const requested = /riscv_runner_redeliveries_total\{[^}]*result="requested"[^}]*\} (\d+)/.exec(metrics)
    expect(Number(requested?.[1] ?? 0)).toBeGreaterThanOrEqual(1)
    expect(await child.stop()).toBe(0)
  }, 120_000)
})
