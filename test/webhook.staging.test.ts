import { describe, expect, it } from "@effect/vitest"
import { Effect, Option } from "effect"
import { createServer, type IncomingHttpHeaders, type Server } from "node:http"
import type { AddressInfo } from "node:net"
import { type Backend, githubSignature, memoryBackend, postgresBackend, TEST_WEBHOOK_SECRET, withWebhook } from "./support/webhookHarness.ts"
import { workflowJob } from "./support/webhookPayloads.ts"

/*
 * The staging proxy: prod forwards every workflow_job delivery of a configured staging repository to staging,
 * unchanged, and relays the answer. The default config lists riseproject-dev's riscv-runner-sample-staging.
 */

const RISEPROJECT = { login: "riseproject-dev", id: 152654596, type: "Organization" }
const stagingJob = (action = "queued") => workflowJob({ action, owner: RISEPROJECT, repo: "riscv-runner-sample-staging" })

interface Received {
  readonly method: string
  readonly url: string
  readonly headers: IncomingHttpHeaders
  readonly body: Buffer
}

/** A stand-in for the staging deployment: records what it gets; answers as told, or never. */
const stagingStub = (answer: "relay" | "hang") =>
  Effect.acquireRelease(
    Effect.promise(() =>
      new Promise<{ server: Server; url: string; received: Array<Received> }>((resolve) => {
        const received: Array<Received> = []
        const server = createServer((req, res) => {
          const parts: Array<Buffer> = []
          req.on("data", (d: Buffer) => parts.push(d))
          req.on("end", () => {
            received.push({ method: req.method ?? "", url: req.url ?? "", headers: req.headers, body: Buffer.concat(parts) })
            if (answer === "hang") return
            res.writeHead(202, { "content-type": "text/plain; charset=utf-8", "x-staging": "yes", connection: "close" })
            res.end("staging: Job stored.")
          })
        })
        server.listen(0, "127.0.0.1", () => {
          resolve({ server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, received })
        })
      })
    ),
    ({ server }) => Effect.promise(() => new Promise<void>((resolve) => {
      server.closeAllConnections()
      server.close(() => resolve())
    }))
  )

const cases = (backend: Backend) => {
  it.live("prod forwards the raw body and headers, relays the answer, logs proxied_to_staging and stores no job", () =>
    Effect.scoped(Effect.gen(function*() {
      const stub = yield* stagingStub("relay")
      yield* withWebhook(backend, (h) =>
        Effect.gen(function*() {
          // Not JSON.stringify's spacing: the bytes must arrive exactly as sent, whitespace and all.
          const raw = JSON.stringify(stagingJob(), null, 2)
          const res = yield* h.deliver("workflow_job", raw, { deliveryId: "d-stage-1" })
          expect([res.status, res.text, res.headers.get("x-staging")]).toEqual([202, "staging: Job stored.", "yes"])
          const got = stub.received[0]!
          expect([got.method, got.url]).toEqual(["POST", "/"])
          expect(got.body.toString("utf8")).toBe(raw)
          expect(got.headers["x-hub-signature-256"]).toBe(githubSignature(TEST_WEBHOOK_SECRET, raw))
          expect(got.headers["x-github-event"]).toBe("workflow_job")
          expect(got.headers["x-github-delivery"]).toBe("d-stage-1")
          expect(got.headers["x-github-hook-installation-target-id"]).toBe("2167633")
          expect(got.headers["user-agent"]).toBe("GitHub-Hookshot/test")
          expect(got.headers["content-type"]).toBe("application/json")
          const rows = yield* h.rows
          expect(rows.map((r) => [r.event, r.outcome, r.entity_id])).toEqual([["workflow_job.queued", "proxied_to_staging", RISEPROJECT.id]])
          expect((rows[0]!.payload as any).workflow_job.steps).toBeUndefined()
          expect(Option.isNone(yield* h.db.getJob(9001))).toBe(true)

          // every action, even one prod would ignore
          for (const action of ["in_progress", "completed", "waiting"]) {
            expect((yield* h.deliver("workflow_job", stagingJob(action))).status).toBe(202)
          }
          expect(stub.received).toHaveLength(4)
          expect((yield* h.rows).every((r) => r.outcome === "proxied_to_staging")).toBe(true)
        }), { settings: { prod: true, stagingUrl: Option.some(`${stub.url}/`) } })
    })))

  it.live("other repositories of the entity, and staging itself, are served locally", () =>
    Effect.scoped(Effect.gen(function*() {
      const stub = yield* stagingStub("relay")
      yield* withWebhook(backend, (h) =>
        Effect.gen(function*() {
          const res = yield* h.deliver("workflow_job", workflowJob({ owner: RISEPROJECT, repo: "riscv-runner-sample" }))
          expect([res.status, res.text]).toEqual([200, "Job 9001 stored."])
        }), { settings: { prod: true, stagingUrl: Option.some(stub.url) } })
      yield* withWebhook(backend, (h) =>
        Effect.gen(function*() {
          const res = yield* h.deliver("workflow_job", stagingJob())
          expect([res.status, res.text]).toEqual([200, "Job 9001 stored."])
        }), { settings: { prod: false, stagingUrl: Option.some(stub.url) } })
      expect(stub.received).toEqual([])
    })))

  it.live("no answer is a 502 after the row: connection refused, and a timeout", () =>
    Effect.scoped(Effect.gen(function*() {
      const stub = yield* stagingStub("hang")
      yield* withWebhook(backend, (h) =>
        Effect.gen(function*() {
          const res = yield* h.deliver("workflow_job", stagingJob())
          expect([res.status, res.text]).toEqual([502, "staging proxy failed"])
          expect((yield* h.rows).map((r) => r.outcome)).toEqual(["proxied_to_staging"])
          expect(Option.isNone(yield* h.db.getJob(9001))).toBe(true)
        }), { settings: { prod: true, stagingUrl: Option.some("http://127.0.0.1:1") } })
      yield* withWebhook(backend, (h) =>
        Effect.gen(function*() {
          const started = Date.now()
          const res = yield* h.deliver("workflow_job", stagingJob())
          expect([res.status, res.text]).toEqual([502, "staging proxy failed"])
          expect(Date.now() - started).toBeLessThan(5_000)
          expect(stub.received).toHaveLength(1)
          expect((yield* h.rows).map((r) => r.outcome)).toEqual(["proxied_to_staging"])
        }), { settings: { prod: true, stagingUrl: Option.some(stub.url), stagingTimeout: "300 millis" } })
    })))
}

describe("staging proxy on memory", () => cases(memoryBackend))
const pg = postgresBackend("webhook_staging")
describe("staging proxy on postgres", () => cases(pg))
