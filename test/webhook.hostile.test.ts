import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as net from "node:net"
import { postgresBackend, type WebhookHarness, withWebhook } from "./support/webhookHarness.ts"
import { workflowJob } from "./support/webhookPayloads.ts"

/*
 * Hostile input over a real socket, on PostgreSQL: clients that hold bodies they never sign, signed bodies built
 * to break the store, ids no GitHub object has, and names meant to blow up the metrics and the rows. Each is
 * answered with a clear status and writes nothing it should not.
 */

const backend = postgresBackend("webhook_hostile")
const KiB = 1024

interface RawAnswer {
  readonly status: number
  readonly head: string
  readonly body: string
}

/** Parses the first HTTP answer in `raw`, if it is complete. */
const parseAnswer = (raw: string): RawAnswer | undefined => {
  const end = raw.indexOf("\r\n\r\n")
  if (end === -1) return undefined
  const head = raw.slice(0, end)
  const length = Number(/content-length:\s*(\d+)/i.exec(head)?.[1] ?? "0")
  const body = raw.slice(end + 4)
  if (body.length < length) return undefined
  return { status: Number(head.split(" ")[1]), head, body: body.slice(0, length) }
}

/** A raw client: writes `head`, then whatever the case writes; `answer` resolves with the first response. */
const rawClient = (baseUrl: string) => {
  const url = new URL(baseUrl)
  const socket = net.connect(Number(url.port), url.hostname)
  socket.on("error", () => undefined)
  socket.setEncoding("latin1")
  let raw = ""
  const answer = new Promise<RawAnswer>((resolve, reject) => {
    socket.on("data", (d: string) => {
      raw += d
      const parsed = parseAnswer(raw)
      if (parsed !== undefined) resolve(parsed)
    })
    socket.on("close", () => reject(new Error(`closed without an answer; read ${JSON.stringify(raw)}`)))
  })
  answer.catch(() => undefined)
  const connected = new Promise<void>((resolve) => socket.on("connect", () => resolve()))
  return { socket, answer, connected }
}

const post = (headers: Record<string, string>) =>
  `POST / HTTP/1.1\r\nHost: webhook\r\n${Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join("")}\r\n`

const count = (table: string) =>
  Effect.promise(() => backend.sql!<{ n: string }>(`SELECT count(*)::text AS n FROM staging.${table}`)).pipe(Effect.map((r) => Number(r[0]!.n)))

const nothingWritten = Effect.gen(function*() {
  expect(yield* count("jobs")).toBe(0)
  expect(yield* count("installation_events")).toBe(0)
})

const test = (title: string, body: (h: WebhookHarness) => Effect.Effect<void, unknown>, options?: Parameters<typeof withWebhook>[2]) =>
  it.live(title, () => withWebhook(backend, body, options), 30_000)

describe("the budget for unverified bodies", () => {
  const budget = 1024 * KiB

  test("a declared body the budget cannot reserve is 503 with Retry-After before it is read, and an abort gives its share back", (h) =>
    Effect.gen(function*() {
      // a client that reserves most of the budget and then stalls
      const holder = rawClient(h.baseUrl)
      yield* Effect.promise(() => holder.connected)
      holder.socket.write(post({ "content-length": String(800 * KiB), "x-github-event": "ping" }))
      holder.socket.write(Buffer.alloc(16 * KiB, 0x20))
      yield* Effect.sleep("200 millis")

      // a second one would exceed it: refused on its headers alone, its body never sent
      const refused = rawClient(h.baseUrl)
      yield* Effect.promise(() => refused.connected)
      refused.socket.write(post({ "content-length": String(400 * KiB), "x-github-event": "ping" }))
      const answer = yield* Effect.promise(() => refused.answer)
      expect(answer.status).toBe(503)
      expect(answer.head).toMatch(/\r\nretry-after: 15\r\n/i)
      expect(answer.body).toBe("Too many request bodies awaiting verification; retry later")
      refused.socket.destroy()

      // the holder goes away mid-body: its reservation is released, and the same request now gets through
      holder.socket.destroy()
      yield* Effect.sleep("200 millis")
      const body = Buffer.alloc(400 * KiB, 0x20)
      const later = rawClient(h.baseUrl)
      yield* Effect.promise(() => later.connected)
      later.socket.write(post({ "content-length": String(body.length), "x-github-event": "ping" }))
      later.socket.write(body)
      expect((yield* Effect.promise(() => later.answer)).status).toBe(401)
      later.socket.destroy()

      // and the whole budget is free again: a body of nearly its size is read and judged (here: unsigned)
      const whole = Buffer.alloc(budget - KiB, 0x20)
      const last = rawClient(h.baseUrl)
      yield* Effect.promise(() => last.connected)
      last.socket.write(post({ "content-length": String(whole.length), "x-github-event": "ping" }))
      last.socket.write(whole)
      expect((yield* Effect.promise(() => last.answer)).status).toBe(401)
      last.socket.destroy()
      yield* nothingWritten
    }), { settings: { unverifiedBodyBudgetBytes: budget } })

  test("a chunked body that outgrows the budget is refused with 503, and a signed one within it is accepted", (h) =>
    Effect.gen(function*() {
      const chunked = rawClient(h.baseUrl)
      yield* Effect.promise(() => chunked.connected)
      chunked.socket.write(post({ "transfer-encoding": "chunked", "x-github-event": "ping" }))
      const piece = Buffer.alloc(256 * KiB, 0x20)
      for (let i = 0; i < 6; i++) chunked.socket.write(`${piece.length.toString(16)}\r\n${piece.toString("latin1")}\r\n`)
      chunked.socket.write("0\r\n\r\n")
      const answer = yield* Effect.promise(() => chunked.answer)
      expect(answer.status).toBe(503)
      expect(answer.head).toMatch(/\r\nretry-after: \d+\r\n/i)
      chunked.socket.destroy()

      // the refusal released what the chunked body had taken: a signed delivery of 900 KiB is stored
      const res = yield* h.deliver("ping", { zen: "x".repeat(900 * KiB) })
      expect([res.status, res.text]).toEqual([200, "pong"])
      expect(yield* count("installation_events")).toBe(1)
    }), { settings: { unverifiedBodyBudgetBytes: budget } })
})

/** `depth` levels of arrays: `[[...[]...]]`. */
const nested = (depth: number) => `${"[".repeat(depth)}${"]".repeat(depth)}`

/** A valid queued delivery (JSON text) whose `workflow_job.extra` takes the whole body to `depth` levels. */
const nestedJob = (jobId: number, depth: number) => {
  // the body object is level 1, workflow_job level 2, so `extra` holds depth - 2 levels
  const text = JSON.stringify(workflowJob({ jobId }))
  return text.replace(/"workflow_job":\{/, `"workflow_job":{"extra":${nested(depth - 2)},`)
}

describe("deeply nested bodies", () => {
  test("a signed body nested 5,000 deep is 400 before anything is written", (h) =>
    Effect.gen(function*() {
      const res = yield* h.deliver("workflow_job", nestedJob(7001, 5000))
      expect([res.status, res.text]).toEqual([400, "JSON payload nested deeper than 64 levels"])
      // and again, as GitHub's re-delivery would: the same answer, still nothing written
      const again = yield* h.deliver("workflow_job", nestedJob(7001, 5000))
      expect(again.status).toBe(400)
      yield* nothingWritten
      // any event: the check comes before the dispatch
      expect((yield* h.deliver("ping", `{"zen":${nested(5000)}}`)).status).toBe(400)
      yield* nothingWritten
    }))

  test("64 levels are accepted and stored; 65 are not", (h) =>
    Effect.gen(function*() {
      const deepest = yield* h.deliver("workflow_job", nestedJob(7064, 64))
      expect([deepest.status, deepest.text]).toEqual([200, "Job 7064 stored."])
      const over = yield* h.deliver("workflow_job", nestedJob(7065, 65))
      expect([over.status, over.text]).toEqual([400, "JSON payload nested deeper than 64 levels"])
      expect(yield* count("jobs")).toBe(1)
      expect(yield* count("installation_events")).toBe(1)
      // brackets inside strings are text, not nesting
      const quoted = yield* h.deliver("ping", { zen: "[".repeat(5000), quote: "\\\"[[[" })
      expect(quoted.status).toBe(200)
    }))
})

describe("ids", () => {
  type Json = Record<string, any>
  const fields: ReadonlyArray<readonly [string, (p: Json, v: unknown) => void]> = [
    ["workflow_job.id", (p, v) => (p.workflow_job.id = v)],
    ["installation.id", (p, v) => (p.installation.id = v)],
    ["repository.owner.id", (p, v) => (p.repository.owner.id = v)],
    ["repository.id", (p, v) => (p.repository.id = v)]
  ]
  const invalid: ReadonlyArray<unknown> = [-5, -1, 1.5, "123", 2 ** 53 + 2, 1e300, true, [1], { id: 1 }]

  for (const [field, set] of fields) {
    for (const action of ["queued", "in_progress", "completed"]) {
      test(`a ${action} delivery with an invalid ${field} is 400 and writes nothing`, (h) =>
        Effect.gen(function*() {
          for (const value of invalid) {
            const p = workflowJob({ action, jobId: 5 })
            set(p, value)
            const res = yield* h.deliver("workflow_job", p)
            expect([res.status, res.text, value]).toEqual([400, `invalid ${field}`, value])
          }
          yield* nothingWritten
        }))
    }
  }

  test("a missing id keeps the original's text", (h) =>
    Effect.gen(function*() {
      const texts: Record<string, string> = {
        "workflow_job.id": "Job ID is missing in payload",
        "installation.id": "Installation ID is missing in payload",
        "repository.owner.id": "Owner ID is missing in payload",
        "repository.id": "Repository ID is missing in payload"
      }
      for (const [field, set] of fields) {
        for (const missing of [undefined, null, 0]) {
          const p = workflowJob({ jobId: 6 })
          set(p, missing)
          const res = yield* h.deliver("workflow_job", p)
          expect([res.status, res.text]).toEqual([400, texts[field]])
        }
      }
      yield* nothingWritten
      // the largest safe integer is an id like any other
      const res = yield* h.deliver("workflow_job", workflowJob({ jobId: Number.MAX_SAFE_INTEGER }))
      expect([res.status, res.text]).toEqual([200, `Job ${Number.MAX_SAFE_INTEGER} stored.`])
    }))
})

describe("names from the sender", () => {
  const deliverySeries = (metrics: string) =>
    metrics.split("\n").filter((l) => l.startsWith("riscv_runner_webhook_deliveries_total{"))

  test("200 distinct event names add a bounded number of series to /metrics", (h) =>
    Effect.gen(function*() {
      const before = deliverySeries((yield* h.request("/metrics")).text)
      for (let i = 0; i < 200; i++) {
        const res = yield* h.deliver(`made_up_event_${i}`, { zen: "hi" })
        expect(res.status).toBe(200)
      }
      // unknown actions of handled events are bounded too
      for (let i = 0; i < 50; i++) {
        expect((yield* h.deliver("workflow_job", workflowJob({ action: `made_up_action_${i}`, jobId: 8000 + i }))).status).toBe(200)
      }
      const after = deliverySeries((yield* h.request("/metrics")).text)
      const added = after.filter((l) => !before.some((b) => b.split(" ")[0] === l.split(" ")[0]))
      expect(added.length).toBeLessThanOrEqual(2)
      expect(after.join("\n")).toContain(`event="other",outcome="ignored_event"`)
      expect(after.join("\n")).toContain(`event="workflow_job.other",outcome="ignored_action"`)
      expect(after.join("\n")).not.toContain("made_up")
      // the rows still say what was sent (cut to 100 characters)
      expect(yield* count("installation_events")).toBe(250)
    }))

  test("a 16 KB event name and a 16 KB action are stored cut to 100 characters", (h) =>
    Effect.gen(function*() {
      // Node refuses headers above 16 KiB in all (431) before any handler runs; just under that gets through
      const tooLong = yield* h.deliver("e".repeat(16 * KiB), { zen: "long" })
      expect(tooLong.status).toBe(431)
      const event = "e".repeat(15_500)
      const res = yield* h.deliver(event, { zen: "long" })
      expect(res.status).toBe(200)
      expect(res.text).toBe(`Ignoring ${"e".repeat(100)} event`)
      const action = "a".repeat(16_000)
      const job = yield* h.deliver("workflow_job", workflowJob({ action, jobId: 8100 }))
      expect([job.status, job.text]).toEqual([200, `Ignoring action: ${"a".repeat(100)}`])
      const rows = yield* Effect.promise(() =>
        backend.sql!<{ event: string }>("SELECT event FROM staging.installation_events ORDER BY id")
      )
      expect(rows.map((r) => r.event)).toEqual(["e".repeat(100), `workflow_job.${"a".repeat(100)}`])
    }))
})
