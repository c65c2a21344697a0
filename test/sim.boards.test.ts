import { Duration } from "effect"
import { describe, expect, it } from "vitest"
import { json, withSimService, until } from "./support/simService.ts"

/*
 * Faulty boards under `--simulate`, end to end on real sockets: `SIM_NODES` marks a board whose runners never
 * register, and `/boards.json` shows it quarantined once its runners have failed, while the good boards serve the
 * jobs. The scheduler's registration timeout is cut to seconds (real time) so that the failures come quickly.
 * The jobs are long enough (12 of 3 simulated minutes on two good boards: about 18 s of real time at speed 60)
 * that they still wait when the bad board has failed three runners, even on a loaded machine; with jobs of 30 s
 * the queue could drain before the third failure, and the test then depended on the machine's speed.
 */


describe("faulty boards under --simulate", () => {
  it("SIM_NODES' board whose runners never register is quarantined on /boards.json, and the jobs are served elsewhere", async () => {
    const { result } = await withSimService(async ({ control, scheduler }) => {
      const posted = await json(`${control}/sim/jobs`, {
        method: "POST",
        body: JSON.stringify({ owner: "acme", ownerType: "Organization", repo: "acme/app", labels: ["ubuntu-24.04-riscv"], durationSeconds: 180, count: 12 })
      })
      expect(posted.status).toBe(200)
      const boards = await until(
        "scw-em-rv1-2 quarantined",
        () => json(`${scheduler}/boards.json`).then((r) => r.body),
        (b) => b.boards.some((x: any) => x.node === "scw-em-rv1-2" && x.standing === "quarantined"),
        400
      )
      const state = await until(
        "every job done",
        () => json(`${control}/sim/state`).then((r) => r.body),
        (s) => s.jobs.length === 12 && s.jobs.every((j: any) => j.status === "completed"),
        900
      )
      return { boards, state }
    }, {
      simNodes: "scw-em-rv1=3,scw-em-rv1-2:noregister",
      timeouts: { registration: Duration.millis(1500), pollInterval: Duration.millis(300) }
    })
    const bad = result.boards.boards.find((b: any) => b.node === "scw-em-rv1-2")
    expect(bad).toMatchObject({ usable: false, standing: "quarantined" })
    expect(bad.why_unusable).toMatch(/^quarantined until /)
    const record = result.boards.events.find((e: any) => e.node === "scw-em-rv1-2" && e.kind === "quarantined")
    expect(record.evidence.map((e: any) => e.reason)).toEqual(["runner_never_registered", "runner_never_registered", "runner_never_registered"])
    // the good boards stay usable and never quarantined, and they ran every job
    expect(result.boards.boards.filter((b: any) => b.node !== "scw-em-rv1-2").map((b: any) => [b.node, b.usable, b.standing])).toEqual([
      ["scw-em-rv1-1", true, null],
      ["scw-em-rv1-3", true, null]
    ])
    expect(result.state.jobs.map((j: any) => j.conclusion)).toEqual(Array(12).fill("success"))
    const onBad = result.state.pods.filter((p: any) => p.node === "scw-em-rv1-2")
    expect(onBad.length).toBeGreaterThanOrEqual(3)
  }, 150_000)
})
