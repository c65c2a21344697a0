import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Layer, Option, Ref, Tracer } from "effect"
import { memoryBackend, postgresBackend, type Backend, type WebhookHarness, withWebhook } from "./support/webhookHarness.ts"
import { workflowJob } from "./support/webhookPayloads.ts"

/*
 * A `queued` job to store is answered at the served port's front door by plain code with one fiber step for the
 * store (`deliveryFront.ts`, `respondQueued`). These cases hold it, over a real socket, to what the handler's path
 * gives every other delivery: the two spans (the server's continuing the sender's `traceparent`, and
 * `Webhook.receive` under it with the job's ids), the access line on the receive span, the counters, the
 * answers, and a failed store answered 500 through the usual error path.
 */

interface Recorded {
  readonly name: string
  readonly spanId: string
  readonly traceId: string
  readonly parentSpanId: string | undefined
  readonly kind: Tracer.SpanKind
  readonly attributes: Map<string, unknown>
  readonly events: Array<{ readonly name: string; readonly attributes: Record<string, unknown> | undefined }>
  ended: Exit.Exit<unknown, unknown> | undefined
}

/** A tracer that keeps every span it made, with its parent, attributes, events and exit. */
const recordingTracer = (spans: Array<Recorded>) => {
  let next = 0
  return Tracer.make({
    span: (name, parent, context, links, startTime, kind) => {
      const id = (++next).toString(16).padStart(16, "0")
      const traceId = Option.match(parent, { onNone: () => id.padStart(32, "0"), onSome: (p) => p.traceId })
      const recorded: Recorded = {
        name,
        spanId: id,
        traceId,
        parentSpanId: Option.getOrUndefined(Option.map(parent, (p) => p.spanId)),
        kind,
        attributes: new Map(),
        events: [],
        ended: undefined
      }
      spans.push(recorded)
      let status: Tracer.SpanStatus = { _tag: "Started", startTime }
      const span: Tracer.Span = {
        _tag: "Span",
        name,
        spanId: id,
        traceId,
        parent,
        context,
        get status() {
          return status
        },
        attributes: recorded.attributes,
        links,
        sampled: true,
        kind,
        end: (endTime, exit) => {
          status = { _tag: "Ended", startTime, endTime, exit }
          recorded.ended = exit
        },
        attribute: (key, value) => void recorded.attributes.set(key, value),
        event: (eventName, _at, attributes) => void recorded.events.push({ name: eventName, attributes }),
        addLinks: () => {}
      }
      return span
    },
    context: (f) => f()
  })
}

const TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
const SENDER_SPAN = "00f067aa0ba902b7"

/** The counter's value on the server's `/metrics`, 0 when the series is absent. */
const counter = (h: WebhookHarness, name: string, labels: Record<string, string>) =>
  Effect.map(h.request("/metrics"), (res) => {
    const line = res.text.split("\n").find((l) =>
      l.startsWith(`${name}{`) && Object.entries(labels).every(([k, v]) => l.includes(`${k}="${v}"`))
    )
    return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(" ") + 1))
  })

const cases = (backend: Backend) => {
  const spans: Array<Recorded> = []
  const withTracedWebhook = <A, E>(body: (h: WebhookHarness) => Effect.Effect<A, E>) =>
    Effect.suspend(() => {
      spans.length = 0
      // the harness takes services by what they add; a tracer adds none and changes the runtime instead
      return withWebhook(backend, body, { services: Layer.setTracer(recordingTracer(spans)) as unknown as Layer.Layer<unknown> })
    })
  const ended = (name: string) => spans.filter((s) => s.name === name && s.ended !== undefined)

  it.live("a stored job: both spans, the sender's trace continued, the job's ids, the access line on the receive span", () =>
    withTracedWebhook((h) =>
      Effect.gen(function*() {
        const storedBefore = yield* counter(h, "riscv_runner_webhook_deliveries_total", { outcome: "job_stored" })
        const okBefore = yield* counter(h, "riscv_runner_http_responses_total", { server: "webhook", code: "2xx" })
        const res = yield* h.deliver("workflow_job", workflowJob({ jobId: 4242 }), {
          deliveryId: "d-plain-1",
          headers: { traceparent: `00-${TRACE_ID}-${SENDER_SPAN}-01` }
        })
        expect([res.status, res.text]).toEqual([200, "Job 4242 stored."])
        expect(res.headers.get("content-type")).toBe("text/plain; charset=utf-8")

        const [server] = ended("http.server POST")
        const [receive] = ended("Webhook.receive")
        expect(server, "the server span").toBeDefined()
        expect(receive, "the receive span").toBeDefined()
        expect([server!.traceId, server!.parentSpanId, server!.kind]).toEqual([TRACE_ID, SENDER_SPAN, "server"])
        expect(Object.fromEntries(server!.attributes)).toMatchObject({
          "http.request.method": "POST",
          "url.path": "/",
          "url.scheme": "http",
          "user_agent.original": "GitHub-Hookshot/test",
          "http.response.status_code": 200
        })
        expect(server!.attributes.has("client.address")).toBe(true)
        // no header becomes an attribute: the signature stays out of the trace
        expect([...server!.attributes.keys()].some((k) => k.includes("signature"))).toBe(false)
        expect([receive!.traceId, receive!.parentSpanId, receive!.kind]).toEqual([TRACE_ID, server!.spanId, "internal"])
        expect(Object.fromEntries(receive!.attributes)).toEqual({
          "job.id": 4242,
          "job.action": "queued",
          "entity.id": 424242,
          "github.delivery_id": "d-plain-1"
        })
        expect(Exit.isSuccess(server!.ended!) && Exit.isSuccess(receive!.ended!)).toBe(true)
        // the access line, as the tracer's logger puts it on the current span: the receive span
        const line = receive!.events.find((e) => e.name === "Received workflow_job")
        expect(line?.attributes).toMatchObject({ job_id: 4242, entity: "acme", status: 200, action: "queued", repo: "acme/ci" })
        expect(server!.events).toEqual([])

        const logs = (yield* h.logs).filter((l) => l.includes("Received workflow_job"))
        expect(logs).toHaveLength(1)
        for (const field of [/ job_id=4242 /, / status=200 /, / elapsed_ms=\d+ /, / entity=acme /, / repo=acme\/ci /]) expect(logs[0]).toMatch(field)
        // the same fields in the same order as the handler's line for a queued delivery it refuses after the pool matched
        yield* h.deliver("workflow_job", workflowJob({ jobId: 4240, htmlUrl: "" }))
        const refusedLine = (yield* h.logs).filter((l) => l.includes("Received workflow_job") && l.includes("job_id=4240"))
        const keys = (l: string) => [...l.matchAll(/ ([a-z_]+)=/g)].map((m) => m[1])
        expect(refusedLine).toHaveLength(1)
        expect(keys(logs[0]!)).toEqual(keys(refusedLine[0]!))
        expect(refusedLine[0]).toMatch(/ status=400 /)

        // a re-delivery finds the job: its own outcome, answer and count
        const again = yield* h.deliver("workflow_job", workflowJob({ jobId: 4242 }), { deliveryId: "d-plain-1" })
        expect([again.status, again.text]).toEqual([200, "Job 4242 already exists."])
        expect(yield* Effect.map(h.rows, (rows) => rows.map((r) => [r.outcome, r.delivery_id]))).toEqual([
          ["job_stored", "d-plain-1"],
          ["job_already_exists", "d-plain-1"]
        ])
        expect(yield* counter(h, "riscv_runner_webhook_deliveries_total", { outcome: "job_stored" })).toBe(storedBefore + 1)
        expect(yield* counter(h, "riscv_runner_webhook_deliveries_total", { outcome: "job_already_exists" })).toBeGreaterThanOrEqual(1)
        // two deliveries and the first scrape were answered 2xx
        expect(yield* counter(h, "riscv_runner_http_responses_total", { server: "webhook", code: "2xx" })).toBeGreaterThanOrEqual(okBefore + 2)
        // a delivery without a traceparent starts a trace of its own
        yield* h.deliver("workflow_job", workflowJob({ jobId: 4243 }))
        const fresh = ended("http.server POST").find((s) => s.attributes.get("http.response.status_code") === 200 && s.parentSpanId === undefined)!
        expect([fresh.parentSpanId, fresh.traceId === TRACE_ID]).toEqual([undefined, false])
      })))

  it.live("a failed store is a 500 through the usual path: the line with its status, the ERROR on the server span, nothing written", () =>
    withTracedWebhook((h) =>
      Effect.gen(function*() {
        yield* Ref.set(h.faults.failJobWrites, true)
        const res = yield* h.deliver("workflow_job", workflowJob({ jobId: 5151 }))
        expect([res.status, res.text]).toEqual([500, "internal error"])
        expect(yield* h.rows).toEqual([])
        const [server] = ended("http.server POST")
        const [receive] = ended("Webhook.receive")
        expect(server!.attributes.get("http.response.status_code")).toBe(500)
        expect(Exit.isFailure(receive!.ended!)).toBe(true)
        expect(receive!.events.find((e) => e.name === "Received workflow_job")?.attributes).toMatchObject({ job_id: 5151, status: 500 })
        expect(server!.events.map((e) => e.name)).toHaveLength(1)
        const logs = yield* h.logs
        expect(logs.filter((l) => l.includes("level=ERROR"))).toHaveLength(1)
        expect(logs.filter((l) => l.includes("Received workflow_job") && l.includes("status=500"))).toHaveLength(1)

        // and once the store is back, the same delivery is stored
        yield* Ref.set(h.faults.failJobWrites, false)
        const again = yield* h.deliver("workflow_job", workflowJob({ jobId: 5151 }))
        expect([again.status, again.text]).toEqual([200, "Job 5151 stored."])
      })))

  it.live("a throw in the plain path's own code is a logged 500 with its access line, and the port goes on serving", () =>
    withTracedWebhook((h) =>
      Effect.gen(function*() {
        yield* Ref.set(h.faults.garbleStoreAnswer, true)
        const res = yield* h.deliver("workflow_job", workflowJob({ jobId: 5252 }))
        expect([res.status, res.text]).toEqual([500, "internal error"])
        const [server] = ended("http.server POST")
        const [receive] = ended("Webhook.receive")
        expect(server!.attributes.get("http.response.status_code")).toBe(500)
        expect(Exit.isFailure(receive!.ended!)).toBe(true)
        const logs = yield* h.logs
        expect(logs.filter((l) => l.includes("level=ERROR") && l.includes("unexpected failure"))).toHaveLength(1)
        expect(logs.filter((l) => l.includes("Received workflow_job") && l.includes("job_id=5252") && l.includes("status=500"))).toHaveLength(1)
        yield* Ref.set(h.faults.garbleStoreAnswer, false)
        const again = yield* h.deliver("workflow_job", workflowJob({ jobId: 5253 }))
        expect([again.status, again.text]).toEqual([200, "Job 5253 stored."])
      })))

  it.live("a queued delivery the checks refuse, or that matches no pool, still takes the handler's path with its spans", () =>
    withTracedWebhook((h) =>
      Effect.gen(function*() {
        const noHtml = yield* h.deliver("workflow_job", workflowJob({ jobId: 6161, htmlUrl: "" }))
        expect([noHtml.status, noHtml.text]).toEqual([400, "HTML URL is missing in payload"])
        const noLabel = yield* h.deliver("workflow_job", workflowJob({ jobId: 6162, labels: ["ubuntu-latest"] }))
        expect([noLabel.status, noLabel.text]).toEqual([200, "Ignoring job: missing required platform label"])
        const receives = ended("Webhook.receive")
        expect(receives.map((s) => s.attributes.get("job.id"))).toEqual([6161, 6162])
        expect(ended("http.server POST").map((s) => s.attributes.get("http.response.status_code"))).toEqual([400, 200])
        expect(yield* Effect.map(h.rows, (rows) => rows.map((r) => r.outcome))).toEqual(["ignored_no_label"])
      })))
}

describe("the plain queued path on memory", () => cases(memoryBackend))
describe("the plain queued path on postgres", () => cases(postgresBackend("queued_path")))
