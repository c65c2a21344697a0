import { FetchHttpClient, HttpServer } from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { Context, Duration, Effect, Layer, Logger, LogLevel, Redacted, Schema } from "effect"
import { createServer } from "node:http"
import { describe, expect, it } from "vitest"
import { DbMemory } from "../layers/db/memory.ts"
import { GithubMemory, GithubMemoryControl } from "../layers/github/memory.ts"
import { KubeMemory } from "../layers/kube/memory.ts"
import { SimControlServer } from "../layers/sim/controlApi.ts"
import { HttpWebhookTransport } from "../layers/sim/webhookTransport.ts"
import { SimWorldLive } from "../layers/sim/world.ts"
import { defaultRunnerConfigInput, RunnerConfig } from "../src/domain/RunnerConfig.ts"
import { SchedulerLoop } from "../src/scheduler/loop.ts"
import { SchedulerSettingsLive } from "../src/scheduler/settings.ts"
import { SchedulerServer } from "../src/operator/server.ts"
import { Db } from "../src/services/Db.ts"
import { WebhookServer } from "../src/webhook/server.ts"
import { webhookSettingsLayer } from "../src/webhook/WebhookSettings.ts"

/*
 * `--simulate` as `npm start` runs it, on the real clock and real sockets: the simulated GitHub posts signed
 * deliveries over HTTP to the webhook server, the scheduler loop provisions on the in-memory cluster, and the
 * control API takes jobs and shows the state. The world runs 60 times faster than real time.
 */

const SECRET = "whsec-sim-http-5c1d"
const config = Schema.decodeUnknownSync(RunnerConfig)(defaultRunnerConfigInput)

const portOf = (context: Context.Context<HttpServer.HttpServer>) => {
  const address = Context.get(context, HttpServer.HttpServer).address
  if (address._tag !== "TcpAddress") throw new Error("expected a TCP address")
  return address.port
}

const json = async (url: string, init?: RequestInit) => {
  const res = await fetch(url, { ...init, headers: { "content-type": "application/json" } })
  return { status: res.status, body: (await res.json()) as any }
}

/**
 * Starts the whole simulated service on free ports and runs `body` with the control API's, the webhook's and the
 * scheduler port's URLs.
 */
const withService = <A>(
  body: (control: string, webhook: string, scheduler: string) => Promise<A>,
  worldOptions: { readonly stuckBusyFor?: Duration.DurationInput } = {}
) =>
  Effect.runPromise(Effect.scoped(Effect.gen(function*() {
    const shared = yield* Layer.build(Layer.mergeAll(
      DbMemory,
      GithubMemory,
      KubeMemory({ tick: "200 millis", nodes: [1, 2, 3].map((n) => ({ name: `node-${n}`, pool: "scw-em-rv1", slots: 1 })) }),
      SchedulerSettingsLive({ runnerConfig: config, prod: false })
    ))
    const provideShared = Layer.provide(Layer.succeedContext(shared))
    const webhook = yield* Layer.build(
      WebhookServer.pipe(
        Layer.provide(Layer.mergeAll(webhookSettingsLayer({ webhookSecret: Redacted.make(SECRET), runnerConfig: config }), FetchHttpClient.layer)),
        provideShared,
        Layer.provideMerge(NodeHttpServer.layer(createServer, { port: 0 }))
      )
    )
    const webhookUrl = `http://127.0.0.1:${portOf(webhook)}/`
    yield* Layer.build(SchedulerLoop.pipe(provideShared))
    const scheduler = yield* Layer.build(
      SchedulerServer.pipe(provideShared, Layer.provideMerge(NodeHttpServer.layer(createServer, { port: 0 })))
    )
    const world = SimWorldLive({ speed: 60, runnerConfig: config, apps: config.apps, ...worldOptions }).pipe(
      Layer.provide(HttpWebhookTransport({ url: webhookUrl, secret: Redacted.make(SECRET) }).pipe(Layer.provide(FetchHttpClient.layer))),
      provideShared
    )
    const control = yield* Layer.build(
      SimControlServer.pipe(Layer.provide(world), Layer.provideMerge(NodeHttpServer.layer(createServer, { port: 0 })))
    )
    const issued = Context.get(shared, GithubMemoryControl).issuedSecrets
    const result = yield* Effect.promise(() =>
      body(`http://127.0.0.1:${portOf(control)}`, webhookUrl, `http://127.0.0.1:${portOf(scheduler)}`)
    )
    return { result, secrets: yield* issued, db: Context.get(shared, Db) }
  })).pipe(Effect.provide(Logger.minimumLogLevel(LogLevel.Warning))))

describe("--simulate over HTTP", () => {
  it("jobs posted to the control API run to completion through signed webhooks and the real scheduler loop", async () => {
    const { result, secrets } = await withService(async (control) => {
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
    const { result } = await withService(async (control) => {
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
    const { result } = await withService(async (control, _webhook, scheduler) => {
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
    }, { stuckBusyFor: Duration.hours(100) })
    const byId = new Map(result.state.jobs.map((j: any) => [j.id, j]))
    expect(byId.get(result.a)).toMatchObject({ status: "completed" })
    expect(byId.get(result.b)).toMatchObject({ status: "completed", conclusion: "success" })
    // solo/a's runner is still held busy: solo/b's job ran on a runner of its own repository
    expect(result.state.runners.some((r: any) => r.busy === true)).toBe(true)
    for (const entry of result.seen) expect(entry).toMatchObject({ entity_name: "solo", reason: "provisioning" })
    expect(result.queueAfter.jobs.map((j: any) => j.job_id)).not.toContain(result.b)
  }, 60_000)
})
