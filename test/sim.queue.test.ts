import { describe, expect, it } from "vitest"
import { json, withSimService, until } from "./support/simService.ts"

/*
 * Queue truth end to end, under `--simulate` on real sockets: what `/queue.json` says about who gets the next
 * board is what the scheduler then does, under the default `fair` policy.
 */


const post = (control: string, owner: string, count: number, durationSeconds = 300) =>
  json(`${control}/sim/jobs`, {
    method: "POST",
    body: JSON.stringify({ owner, ownerType: "Organization", repo: `${owner}/app`, labels: ["ubuntu-24.04-riscv"], durationSeconds, count })
  })

describe("/queue.json under --simulate", () => {
  it("fair: a younger job of an entity with no board is position 1, and it gets the next board", async () => {
    const { result } = await withSimService(async ({ control, scheduler }) => {
      const queue = () => json(`${scheduler}/queue.json`).then((r) => r.body)
      // bigco takes both boards (one run ends after 15 simulated minutes, the other after 40) and queues two more
      // one at a time, so the two runs start at different moments: with no run time known yet, the forecast
      // frees each board a nominal run after its start, and two starts in the same instant would tie
      const running = async (id: number) =>
        until(`job ${id} running`, () => json(`${control}/sim/state`).then((r) => r.body.jobs), (jobs) => jobs.find((j: any) => j.id === id)?.status === "in_progress")
      const first = await post(control, "bigco", 1, 900)
      await running(first.body.jobIds[0])
      const second = await post(control, "bigco", 1, 2400)
      await running(second.body.jobIds[0])
      const big = await post(control, "bigco", 2)
      expect([first.status, second.status, big.status]).toEqual([200, 200, 200])
      await until("bigco's two waiting jobs", queue, (q) => q.total === 2 && q.jobs.every((e: any) => e.reason === "no_free_board"))
      // then smallco's one job, younger than bigco's
      const small = await post(control, "smallco", 1)
      const smallId: number = small.body.jobIds[0]
      const listed = await until("smallco's job in the queue", queue, (q) => q.total === 3)
      const started = async () => (await json(`${control}/sim/state`)).body.jobs
      // the board that frees next goes to smallco, as position 1 said
      const after = await until("smallco's job to start", started, (jobs) => jobs.find((j: any) => j.id === smallId)?.status !== "queued")
      return { listed, after, bigIds: big.body.jobIds as Array<number>, smallId }
    }, { boards: 2 })
    const { listed, after, bigIds, smallId } = result
    expect(listed.jobs.map((e: any) => [e.entity_name, e.position, e.reason]), JSON.stringify(listed)).toEqual([
      ["smallco", 1, "no_free_board"],
      ["bigco", 2, "no_free_board"],
      ["bigco", 3, "no_free_board"]
    ])
    expect(listed.jobs[0].job_id).toBe(smallId)
    // bigco's waiting jobs were still waiting when smallco's started: it got the board that freed first
    const statusOf = (id: number) => after.find((j: any) => j.id === id)?.status
    expect(bigIds.map(statusOf)).toEqual(["queued", "queued"])
  }, 60_000)
})
