/**
 * Every metric that deploy/monitoring's alerting rules and Grafana dashboard name must exist in a real `/metrics`
 * scrape: the webhook and scheduler programs on real sockets, with enough activity (deliveries good and badly
 * signed, jobs provisioned and run, a runner pod that fails on its board) that the families they feed have series.
 * A name in a rule that no program exports would be an alert that can never fire.
 */
import { FetchHttpClient, HttpServer } from "@effect/platform"
import { NodeHttpServerWithFrontDoor } from "../layers/http/nodeFrontDoor.ts"
import { NodeHttpServer } from "@effect/platform-node"
import { Context, Effect, Layer, Logger, LogLevel, Redacted, Schema } from "effect"
import * as fs from "node:fs"
import { createServer } from "node:http"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { DbMemory } from "../layers/db/memory.ts"
import { GithubMemory } from "../layers/github/memory.ts"
import { KubeMemory, KubeMemoryControl } from "../layers/kube/memory.ts"
import { HttpWebhookTransport } from "../layers/sim/webhookTransport.ts"
import { SimWorldLive } from "../layers/sim/world.ts"
import { SimWorld } from "../layers/sim/worldApi.ts"
import { defaultRunnerConfigInput, RunnerConfig } from "../src/domain/RunnerConfig.ts"
import { MeteredDb } from "../src/observability/meteredDb.ts"
import { Db } from "../src/services/Db.ts"
import { SchedulerLoop } from "../src/scheduler/loop.ts"
import { SchedulerServer } from "../src/operator/server.ts"
import { SchedulerSettingsLive } from "../src/scheduler/settings.ts"
import { WebhookServer } from "../src/webhook/server.ts"
import { webhookSettingsLayer } from "../src/webhook/WebhookSettings.ts"

const SECRET = "whsec-monitoring-91af"
const config = Schema.decodeUnknownSync(RunnerConfig)(defaultRunnerConfigInput)
const dir = path.resolve(import.meta.dirname, "..", "deploy", "monitoring")

/** The metric names an expression text mentions. */
const namesIn = (text: string) => new Set([...text.matchAll(/\briscv_runner_[a-z0-9_]+/g)].map((m) => m[0]))

const portOf = (context: Context.Context<HttpServer.HttpServer>) => {
  const address = Context.get(context, HttpServer.HttpServer).address
  if (address._tag !== "TcpAddress") throw new Error("expected a TCP address")
  return address.port
}

/** The sample names of an exposition text (histograms as their _bucket, _sum and _count). */
const exposed = (text: string) =>
  new Set(text.split("\n").filter((l) => l !== "" && !l.startsWith("#")).map((l) => l.split(/[{ ]/)[0]!))

describe("deploy/monitoring names only exported metrics", () => {
  it("every riscv_runner_ metric of alerts.yml and grafana-dashboard.json is in a scrape of the two programs", async () => {
    const rules = fs.readFileSync(path.join(dir, "alerts.yml"), "utf8")
    const dashboard = JSON.parse(fs.readFileSync(path.join(dir, "grafana-dashboard.json"), "utf8")) as {
      panels: Array<{ title: string; targets: Array<{ expr: string }> }>
    }
    const wanted = new Set([...namesIn(rules), ...dashboard.panels.flatMap((p) => p.targets.flatMap((t) => [...namesIn(t.expr)]))])
    expect(wanted.size).toBeGreaterThan(10)
    // what the dashboard must show (issue 15)
    const titles = dashboard.panels.map((p) => p.title).join(" | ")
    for (const topic of ["Queue depth", "Oldest wait", "Wait p95", "Boards", "Worker failures", "GitHub budget", "cycle duration", "Webhook outcomes", "status class", "Clusters answering"]) {
      expect(titles).toContain(topic)
    }

    const scraped = await Effect.runPromise(Effect.scoped(Effect.gen(function*() {
      const shared = yield* Layer.build(Layer.mergeAll(
        MeteredDb.pipe(Layer.provide(DbMemory)),
        GithubMemory,
        KubeMemory({ tick: "100 millis", nodes: [1, 2].map((n) => ({ name: `board-${n}`, pool: "scw-em-rv1", slots: 1 })) }),
        SchedulerSettingsLive({ runnerConfig: config, prod: false })
      ))
      const provideShared = Layer.provide(Layer.succeedContext(shared))
      const webhook = yield* Layer.build(WebhookServer.pipe(
        Layer.provide(Layer.mergeAll(webhookSettingsLayer({ webhookSecret: Redacted.make(SECRET), runnerConfig: config }), FetchHttpClient.layer)),
        provideShared,
        Layer.provideMerge(NodeHttpServerWithFrontDoor({ port: 0 }))
      ))
      const scheduler = yield* Layer.build(SchedulerServer.pipe(provideShared, Layer.provideMerge(NodeHttpServer.layer(createServer, { port: 0 }))))
      yield* Layer.build(SchedulerLoop.pipe(provideShared))
      const webhookUrl = `http://127.0.0.1:${portOf(webhook)}`
      const schedulerUrl = `http://127.0.0.1:${portOf(scheduler)}`
      const sim = yield* Layer.build(SimWorldLive({ speed: 60, runnerConfig: config, apps: config.apps }).pipe(
        Layer.provide(HttpWebhookTransport({ url: `${webhookUrl}/`, secret: Redacted.make(SECRET) }).pipe(Layer.provide(FetchHttpClient.layer))),
        provideShared
      ))
      const world = Context.get(sim, SimWorld)
      const cluster = Context.get(shared, KubeMemoryControl)
      const db = Context.get(shared, Db)
      return yield* Effect.promise(async () => {
        // a badly signed delivery
        const bad = await fetch(`${webhookUrl}/`, {
          method: "POST",
          headers: { "content-type": "application/json", "x-github-event": "ping", "x-github-delivery": "d-1", "x-hub-signature-256": "sha256=00" },
          body: "{}"
        })
        expect(bad.status).toBe(401)
        // long jobs: more than the two boards, so one waits in the queue
        await Effect.runPromise(world.submitJobs({ owner: "acme", repo: "acme/app", durationSeconds: 36_000, count: 3 }))
        let running: ReadonlyArray<{ name: string; phase: string }> = []
        for (const deadline = Date.now() + 30_000; Date.now() < deadline;) {
          running = (await Effect.runPromise(cluster.pods)).filter((p) => p.phase === "Running")
          if (running.length > 0) break
          await new Promise((r) => setTimeout(r, 100))
        }
        expect(running.length).toBeGreaterThan(0)
        // a runner pod fails on its board: the next cycle fails its worker
        await Effect.runPromise(cluster.finishPod(running[0]!.name, 1))
        let text = ""
        for (const deadline = Date.now() + 30_000; Date.now() < deadline;) {
          text = await (await fetch(`${schedulerUrl}/metrics`)).text()
          if (text.includes("riscv_runner_node_worker_failures_total{")) break
          await new Promise((r) => setTimeout(r, 200))
        }
        // an operator-visible quarantine of the other board: the next full cycle's board review exports its standing
        await Effect.runPromise(db.recordBoardTransition(
          { node: "board-2", pool: "scw-em-rv1", state: "quarantined", since: new Date(), until: new Date(Date.now() + 3_600_000), probation_seconds: 3600 },
          { node: "board-2", pool: "scw-em-rv1", kind: "quarantined", at: new Date(), probation_seconds: 3600, evidence: [] }
        ))
        for (const deadline = Date.now() + 30_000; Date.now() < deadline;) {
          text = await (await fetch(`${schedulerUrl}/metrics`)).text()
          if (text.includes("riscv_runner_board_quarantined{")) break
          await new Promise((r) => setTimeout(r, 200))
        }
        // a 404 on the scheduler port, for the answers by status class
        await fetch(`${schedulerUrl}/no-such-page`)
        return {
          webhook: await (await fetch(`${webhookUrl}/metrics`)).text(),
          scheduler: await (await fetch(`${schedulerUrl}/metrics`)).text()
        }
      })
    })).pipe(Effect.provide(Logger.minimumLogLevel(LogLevel.Error))))

    const names = new Set([...exposed(scraped.webhook), ...exposed(scraped.scheduler)])
    const missing = [...wanted].filter((n) => !names.has(n)).sort()
    expect(missing).toEqual([])
    // both ports answer /metrics with the process registry
    expect(exposed(scraped.webhook).has("riscv_runner_webhook_signature_failures_total")).toBe(true)
    expect(scraped.scheduler).toMatch(/riscv_runner_http_responses_total\{[^}]*code="4xx"/)
    // one cluster (KUBECONFIG's, named "default"), which answered the scheduler's last reading
    expect(scraped.scheduler).toContain(`riscv_runner_cluster_up{cluster="default"} 1\n`)
  }, 90_000)
})
