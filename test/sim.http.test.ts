import { Duration } from "effect"
import { describe, expect, it } from "vitest"
import { json, withSimService } from "./support/simService.ts"

describe("--simulate over HTTP", () => {
  it("jobs posted to the control API run to completion through signed webhooks and the real scheduler loop", async () => {
    const { result, secrets } = await withSimService(async ({ control }) => {
      const posted = await json(`${control}/sim/jobs`, {
        method: "POST",
        body: JSON.stringify({ owner: "acme", ownerType: "Organization", repo: "acme/app", labels: ["ubuntu-24.04-riscv"], durationSeconds: 30, count: 3 })
      })
      expect(posted.status).toBe(200)
      expect(posted.body.jobIds).toHaveLength(3)
      let state: any
      for (let i = 0; i < 150; i++) {
        state = (await json(`${control}/sim/state`)).body
        if (state.jobs.length === 3 && state.jobs.every((j: any) => j.status === "completed")) break
        await new Promise((r) => setTimeout(r, 100))
      }
      return { posted: posted.body, state, text: JSON.stringify(state) }
    })
    expect(result.state.jobs.map((j: any) => [j.id, j.status, j.conclusion])).toEqual(
      result.posted.jobIds.map((id: number) => [id, "completed", "success"])
    )
    expect(result.state.nodes.map((n: any) => n.name)).toEqual(["node-1", "node-2", "node-3"])
    // one cluster without SIM_NODES' cluster/ prefixes: every node in the default one
    expect(result.state.nodes.map((n: any) => n.cluster)).toEqual(["default", "default", "default"])
    expect(result.state.pods.length).toBeGreaterThanOrEqual(3)
    // the state shows runner names, never what a pod carries
    for (const secret of secrets) expect(result.text).not.toContain(secret)
  }, 30_000)

  it("the control API refuses what it cannot do, with the reason, and switches faults on and off", async () => {
    const { result } = await withSimService(async ({ control }) => {
      const badOwner = await json(`${control}/sim/jobs`, { method: "POST", body: JSON.stringify({ owner: "not a login" }) })
      const badRepo = await json(`${control}/sim/jobs`, { method: "POST", body: JSON.stringify({ owner: "acme", repo: "other/app" }) })
      const badField = await json(`${control}/sim/jobs`, { method: "POST", body: JSON.stringify({ owner: "acme", cout: 3 }) })
      const badFault = await json(`${control}/sim/faults`, { method: "POST", body: JSON.stringify({ githubErrors: 2 }) })
      const on = await json(`${control}/sim/faults`, { method: "POST", body: JSON.stringify({ dropWebhooks: 0.25, githubErrors: 0.1 }) })
      const off = await json(`${control}/sim/faults`, { method: "POST", body: JSON.stringify({ off: true }) })
      return { badOwner, badRepo, badField, badFault, on, off }
    })
    expect(result.badOwner.status).toBe(400)
    expect(result.badOwner.body.error).toContain("owner must be a GitHub login")
    expect(result.badRepo.status).toBe(400)
    expect(result.badField.status).toBe(400)
    expect(result.badField.body.error).toContain("cout")
    expect(result.badFault.status).toBe(400)
    expect(result.on.body).toMatchObject({ dropWebhooks: 0.25, githubErrors: 0.1, neverRegister: 0 })
    expect(Object.values(result.off.body).every((v) => v === 0)).toBe(true)
  }, 30_000)

  it("a personal account's runner held on one repository does not keep another repository's job waiting (issue 17)", async () => {
    const post = (control: string, repo: string) =>
      json(`${control}/sim/jobs`, {
        method: "POST",
        body: JSON.stringify({ owner: "solo", ownerType: "User", repo, labels: ["ubuntu-24.04-riscv"], durationSeconds: 30, count: 1 })
      })
    const { result } = await withSimService(async ({ control, scheduler }) => {
      // solo/a's runner finishes its job and stays busy (and so registered on solo/a) far longer than this test
      await json(`${control}/sim/faults`, { method: "POST", body: JSON.stringify({ stuckBusy: 1 }) })
      const a = (await post(control, "solo/a")).body.jobIds[0]
      let state: any
      for (let i = 0; i < 150; i++) {
        state = (await json(`${control}/sim/state`)).body
        if (state.jobs.some((j: any) => j.id === a && j.status === "completed")) break
        await new Promise((r) => setTimeout(r, 100))
      }
      await json(`${control}/sim/faults`, { method: "POST", body: JSON.stringify({ off: true }) })
      const b = (await post(control, "solo/b")).body.jobIds[0]
      // the queue lists solo/b's job while it waits; with boards free it gets its own runner and completes
      const seen: Array<any> = []
      for (let i = 0; i < 150; i++) {
        const queue = (await json(`${scheduler}/queue.json`)).body
        seen.push(...queue.jobs.filter((j: any) => j.job_id === b))
        state = (await json(`${control}/sim/state`)).body
        if (state.jobs.some((j: any) => j.id === b && j.status === "completed")) break
        await new Promise((r) => setTimeout(r, 100))
      }
      const queueAfter = (await json(`${scheduler}/queue.json`)).body
      return { a, b, state, seen, queueAfter }
    }, { world: { stuckBusyFor: Duration.hours(100) } })
    const byId = new Map(result.state.jobs.map((j: any) => [j.id, j]))
    expect(byId.get(result.a)).toMatchObject({ status: "completed" })
    expect(byId.get(result.b)).toMatchObject({ status: "completed", conclusion: "success" })
    // solo/a's runner is still held busy: solo/b's job ran on a runner of its own repository
    expect(result.state.runners.some((r: any) => r.busy === true)).toBe(true)
    for (const entry of result.seen) expect(entry).toMatchObject({ entity_name: "solo", reason: "provisioning" })
    expect(result.queueAfter.jobs.map((j: any) => j.job_id)).not.toContain(result.b)
  }, 60_000)
})
