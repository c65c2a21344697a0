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
})

