import { describe, expect, it } from "@effect/vitest"
import { NodeHttpServerWithFrontDoor } from "../layers/http/nodeFrontDoor.ts"
import { FetchHttpClient } from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { Effect, Layer, Redacted, Schema } from "effect"
import { createServer } from "node:http"
import { SchedulerServer } from "../src/operator/server.ts"
import { WebhookServer } from "../src/webhook/server.ts"
import { webhookSettingsLayer } from "../src/webhook/WebhookSettings.ts"
import { DbMemory } from "../layers/db/memory.ts"
import { KubeMemory } from "../layers/kube/memory.ts"
import { BoardsJson } from "../src/operator/BoardsApi.ts"
import { DashboardJson, JobJson, QueuePageJson, WeeklyUsageJson, WorkerJson } from "../src/operator/Api.ts"
import { schedulerApp } from "../src/operator/server.ts"
import { SchedulerSettingsLive } from "../src/scheduler/settings.ts"
import { Db } from "../src/services/Db.ts"
import { newJob, newWorker } from "./support/dbFixtures.ts"
import { getFrom } from "./support/http.ts"
import { testRunnerConfig } from "./support/schedulerWorld.ts"
import { memoryBackend, withWebhook } from "./support/webhookHarness.ts"

/*
 * The OpenAPI description (Effect's HttpApi) against the routes: every scheduler path it lists answers, and what
 * the routes answer decodes with the schemas it publishes. /docs is one self-contained page.
 */

const world = Layer.mergeAll(DbMemory, KubeMemory({ tick: null }), SchedulerSettingsLive({ runnerConfig: testRunnerConfig(), prod: false }))
const get = (path: string) => getFrom(schedulerApp, path)

describe("OpenAPI", () => {
  it.effect("/openapi.json lists the JSON routes; each scheduler path answers and decodes with its schema", () =>
    Effect.gen(function*() {
      const db = yield* Db
      yield* db.addJob(newJob(1))
      yield* db.addWorker(newWorker("rise-riscv-runner-staging-oa1"))
      const res = yield* get("/openapi.json")
      expect(res.status).toBe(200)
      expect(res.type).toContain("application/json")
      const spec = JSON.parse(res.body)
      expect(spec.openapi).toMatch(/^3\./)
      expect(Object.keys(spec.paths).sort()).toEqual([
        "/boards.json",
        "/boards/{node}/release",
        "/dashboard.json",
        "/history.json",
        "/jobs.json",
        "/queue.json",
        "/stats/weekly-usage.json",
        "/trace/entity/{entity_id}",
        "/trace/entity/{entity_id}/state",
        "/trace/installation/{installation_id}",
        "/trace/job/{job_id}",
        "/trace/payload/{event_id}",
        "/usage.json",
        "/workers.json"
      ])
      const decode = <A, I>(schema: Schema.Schema<A, I>, body: string) => Schema.decodeUnknownSync(schema, { onExcessProperty: "error" })(JSON.parse(body))
      for (const path of Object.keys(spec.paths).filter((p) => !p.startsWith("/trace/") && !p.endsWith("/release"))) {
        expect((yield* get(path)).status, path).toBe(200)
      }
      decode(Schema.Struct({ jobs: Schema.Array(JobJson), workers: Schema.Array(WorkerJson) }), (yield* get("/usage.json")).body)
      decode(Schema.Array(JobJson), (yield* get("/jobs.json")).body)
      decode(Schema.Array(WorkerJson), (yield* get("/workers.json")).body)
      expect(decode(QueuePageJson, (yield* get("/queue.json")).body).jobs).toHaveLength(1)
      decode(DashboardJson, (yield* get("/dashboard.json")).body)
      decode(WeeklyUsageJson, (yield* get("/stats/weekly-usage.json")).body)
      decode(BoardsJson, (yield* get("/boards.json")).body)
    }).pipe(Effect.provide(world)))

  it.effect("/docs: Scalar's page for the whole document, self-contained (its script inlined, no fonts from elsewhere)", () =>
    Effect.gen(function*() {
      const res = yield* get("/docs")
      expect(res.status).toBe(200)
      expect(res.type).toContain("text/html")
      // the document it renders is embedded, with every operation
      const embedded = /<script id="api-reference" type="application\/json">([\s\S]*?)<\/script>/.exec(res.body)
      const spec = JSON.parse(embedded![1]!)
      for (const path of ["/queue.json", "/trace/job/{job_id}", "/usage.json"]) expect(spec.paths).toHaveProperty([path])
      // nothing is loaded from elsewhere: no script with a src, no stylesheet or image link, Scalar's fonts off
      const tags = res.body.match(/<(script|link|img|iframe)\b[^>]*>/g) ?? []
      for (const tag of tags) expect(tag).not.toMatch(/\b(src|href)=/)
      expect(res.body).toContain(`"withDefaultFonts":false`)
    }).pipe(Effect.provide(world)))

  it.live("the webhook port serves the same document", () =>
    withWebhook(memoryBackend, (h) =>
      Effect.gen(function*() {
        const res = yield* h.request("/openapi.json")
        expect(res.status).toBe(200)
        expect(JSON.parse(res.text).info.title).toBe("riscv-runner operator API")
        expect((yield* h.request("/docs")).status).toBe(200)
      })))
})

describe("both ports from one build (the `all` role)", () => {
  it.live("each port gets its own router, so both build with their own /health", () =>
    Effect.scoped(Effect.gen(function*() {
      const http = () => NodeHttpServer.layer(createServer, { port: 0 })
      const settings = webhookSettingsLayer({ webhookSecret: Redacted.make("whsec-both-ports"), runnerConfig: testRunnerConfig() })
      // before each port had its own, the second port's /health collided with the first's in one shared router
      const built = yield* Effect.exit(Layer.build(Layer.mergeAll(
        WebhookServer.pipe(Layer.provide(Layer.mergeAll(settings, FetchHttpClient.layer, NodeHttpServerWithFrontDoor({ port: 0 })))),
        SchedulerServer.pipe(Layer.provide(http()))
      ).pipe(Layer.provide(world))))
      expect(built._tag).toBe("Success")
    })))
})
