import { FetchHttpClient, HttpServer } from "@effect/platform"
import { NodeHttpServerWithFrontDoor } from "../layers/http/nodeFrontDoor.ts"
import { NodeHttpServer } from "@effect/platform-node"
import { Context, Effect, Layer, Logger, LogLevel, Redacted, Schema } from "effect"
import { spawnSync } from "node:child_process"
import { createHmac } from "node:crypto"
import { createServer } from "node:http"
import { describe, expect, it } from "vitest"
import { DbMemory } from "../layers/db/memory.ts"
import { GithubMemory } from "../layers/github/memory.ts"
import { KubeMemory } from "../layers/kube/memory.ts"
import { HttpWebhookTransport } from "../layers/sim/webhookTransport.ts"
import { SimWorldLive } from "../layers/sim/world.ts"
import { SimWorld } from "../layers/sim/worldApi.ts"
import { defaultRunnerConfigInput, RunnerConfig } from "../src/domain/RunnerConfig.ts"
import { SchedulerLoop } from "../src/scheduler/loop.ts"
import { SchedulerServer } from "../src/operator/server.ts"
import { SchedulerSettingsLive } from "../src/scheduler/settings.ts"
import { WebhookServer } from "../src/webhook/server.ts"
import { webhookSettingsLayer } from "../src/webhook/WebhookSettings.ts"

/*
 * `/metrics` of both programs (the webhook server and the scheduler server with its loop, on real sockets)
 * through Prometheus's own linter, `promtool check metrics`, after enough activity that every family has
 * series: signed and badly signed deliveries, provisioned runners, failed workers aside. promtool must report
 * nothing. CI installs promtool (.ci/run) and never skips; elsewhere a machine without it skips, saying so.
 */

const SECRET = "whsec-promtool-7c2d"
const config = Schema.decodeUnknownSync(RunnerConfig)(defaultRunnerConfigInput)

/** `PROMTOOL` names another binary (or a missing one, to see the CI guard fail). */
const promtool = (() => {
  const found = spawnSync("sh", ["-c", `command -v "$0"`, process.env["PROMTOOL"] ?? "promtool"], { encoding: "utf8" })
  return found.status === 0 ? found.stdout.trim() : null
})()
if (promtool === null) {
  const message = "promtool is not installed (apt-get install -y prometheus)"
  if (process.env["CI"] === "true") throw new Error(`${message}: CI must install it (.ci/run) and run test/metrics.promtool.test.ts`)
  console.warn(`${message}: skipping test/metrics.promtool.test.ts`)
}

/** promtool's findings for one exposition text: one line per problem, empty when the text is clean. */
const lint = (text: string): string => {
  const run = spawnSync(promtool!, ["check", "metrics"], { input: text, encoding: "utf8" })
  // promtool exits 1 when it finds a problem and prints the problems on stderr
  return `${run.stdout}${run.stderr}`.trim() + (run.status === 0 ? "" : `\n(exit status ${run.status})`)
}

const portOf = (context: Context.Context<HttpServer.HttpServer>) => {
  const address = Context.get(context, HttpServer.HttpServer).address
  if (address._tag !== "TcpAddress") throw new Error("expected a TCP address")
  return address.port
}

const withPrograms = <A>(body: (webhook: string, scheduler: string, sim: Context.Context<SimWorld>) => Promise<A>) =>
  Effect.runPromise(Effect.scoped(Effect.gen(function*() {
    const shared = yield* Layer.build(Layer.mergeAll(
      DbMemory,
      GithubMemory,
      KubeMemory({ tick: "100 millis", nodes: [1, 2].map((n) => ({ name: `node-${n}`, pool: "scw-em-rv1", slots: 1 })) }),
      SchedulerSettingsLive({ runnerConfig: config, prod: false })
    ))
    const provideShared = Layer.provide(Layer.succeedContext(shared))
    const webhook = yield* Layer.build(
      WebhookServer.pipe(
        Layer.provide(Layer.mergeAll(webhookSettingsLayer({ webhookSecret: Redacted.make(SECRET), runnerConfig: config }), FetchHttpClient.layer)),
        provideShared,
        Layer.provideMerge(NodeHttpServerWithFrontDoor({ port: 0 }))
      )
    )
    const scheduler = yield* Layer.build(SchedulerServer.pipe(provideShared, Layer.provideMerge(NodeHttpServer.layer(createServer, { port: 0 }))))
    yield* Layer.build(SchedulerLoop.pipe(provideShared))
    const sim = yield* Layer.build(SimWorldLive({ speed: 60, runnerConfig: config, apps: config.apps }).pipe(
      Layer.provide(HttpWebhookTransport({ url: `http://127.0.0.1:${portOf(webhook)}/`, secret: Redacted.make(SECRET) }).pipe(Layer.provide(FetchHttpClient.layer))),
      provideShared
    ))
    return yield* Effect.promise(() => body(`http://127.0.0.1:${portOf(webhook)}`, `http://127.0.0.1:${portOf(scheduler)}`, sim))
  })).pipe(Effect.provide(Logger.minimumLogLevel(LogLevel.Error))))

const deliver = (url: string, signature: string | null) => {
  const body = JSON.stringify({ zen: "Keep it logically awesome.", hook_id: 1 })
  const headers: Record<string, string> = {
    "content-type": "application/json",
    "user-agent": "GitHub-Hookshot/test",
    "x-github-event": "ping",
    "x-github-delivery": crypto.randomUUID(),
    "x-github-hook-installation-target-id": String(config.apps.orgAppId)
  }
  if (signature !== null) headers["x-hub-signature-256"] = signature
  return fetch(`${url}/`, { method: "POST", headers, body })
}

describe("promtool check metrics", () => {
  it("the checker itself reports a counter without _total (so a clean result means something)", () => {
    if (promtool === null) return
    expect(lint("# HELP bad_counter a counter\n# TYPE bad_counter counter\nbad_counter 1\n")).toMatch(/bad_counter/)
  })

  it.skipIf(promtool === null)("/metrics of the webhook and the scheduler programs, after some activity, has no problem", async () => {
    await withPrograms(async (webhook, scheduler, sim) => {
      const world = Context.get(sim, SimWorld)
      const signed = `sha256=${createHmac("sha256", SECRET).update(JSON.stringify({ zen: "Keep it logically awesome.", hook_id: 1 })).digest("hex")}`
      const ok = await deliver(webhook, signed)
      expect(ok.status, await ok.text()).toBe(200)
      expect((await deliver(webhook, "sha256=00")).status).toBe(401)
      // jobs through the whole loop: queued webhooks, runners provisioned, jobs run and completed
      await Effect.runPromise(world.submitJobs({ owner: "acme", repo: "acme/app", durationSeconds: 1, count: 3 }))
      let usage: { jobs: ReadonlyArray<unknown>; workers: ReadonlyArray<unknown> } = { jobs: [], workers: [] }
      for (const deadline = Date.now() + 30_000; Date.now() < deadline;) {
        usage = (await (await fetch(`${scheduler}/usage.json`)).json()) as typeof usage
        if (usage.workers.length > 0) break
        await new Promise((r) => setTimeout(r, 100))
      }
      expect(usage.workers.length).toBeGreaterThan(0)
      for (const [name, url] of [["webhook", webhook], ["scheduler", scheduler]] as const) {
        const res = await fetch(`${url}/metrics`)
        expect(res.status, name).toBe(200)
        const text = await res.text()
        // activity is visible: the families the programs feed have series
        expect(text, name).toContain("riscv_runner_webhook_deliveries_total{")
        if (name === "scheduler") expect(text).toContain("riscv_runner_scheduler_cycle_duration_seconds_bucket{")
        expect(lint(text), `${name} /metrics`).toBe("")
      }
    })
  }, 60_000)
})
