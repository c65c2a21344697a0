/**
 * Traces as a deployment gets them: the bundled entrypoint (`all --simulate`) as a child process exports its spans
 * over OTLP/HTTP to a real local receiver, which decodes the OTLP/JSON it is sent. One job posted to the simulation's
 * control API must give the span of its delivery and the span of the cycle that provisioned its runner, both
 * carrying the job's id, under the role's service name and the deployment's resource attributes, with no secret.
 */
import { ConfigProvider, Effect, Either, Option, Redacted } from "effect"
import { createServer, type Server } from "node:http"
import { describe, expect, it } from "vitest"
import { parseKeyValues, tracingSettings } from "../src/observability/tracing.ts"
import { processSuite, startSimulated } from "./support/processSuite.ts"

interface ReceivedSpan {
  readonly service: string
  readonly resource: Record<string, unknown>
  readonly name: string
  readonly traceId: string
  readonly spanId: string
  readonly parentSpanId: string
  readonly attributes: Record<string, unknown>
}

/** An OTLP AnyValue as a plain value: strings, numbers (int64 arrives as a string or a number), booleans, arrays. */
const plain = (v: any): unknown => {
  if (v === undefined || v === null) return null
  if ("stringValue" in v) return v.stringValue
  if ("intValue" in v) return Number(v.intValue)
  if ("doubleValue" in v) return Number(v.doubleValue)
  if ("boolValue" in v) return v.boolValue
  if ("arrayValue" in v) return (v.arrayValue.values ?? []).map(plain)
  return v
}
const attributesOf = (list: ReadonlyArray<any> | undefined) => Object.fromEntries((list ?? []).map((a) => [a.key, plain(a.value)]))

/** A real OTLP/HTTP receiver: POST /v1/traces with an ExportTraceServiceRequest in JSON. */
const startReceiver = async () => {
  const spans: Array<ReceivedSpan> = []
  const bodies: Array<string> = []
  const paths: Array<string> = []
  const server: Server = createServer((req, res) => {
    const chunks: Array<Buffer> = []
    req.on("data", (c: Buffer) => chunks.push(c))
    req.on("end", () => {
      paths.push(`${req.method} ${req.url} ${String(req.headers["content-type"]).split(";")[0]} ${req.headers["x-api-key"] ?? ""}`)
      const text = Buffer.concat(chunks).toString("utf8")
      bodies.push(text)
      try {
        const request = JSON.parse(text)
        for (const rs of request.resourceSpans ?? []) {
          const resource = attributesOf(rs.resource?.attributes)
          for (const ss of rs.scopeSpans ?? []) {
            for (const s of ss.spans ?? []) {
              spans.push({
                service: String(resource["service.name"]),
                resource,
                name: s.name,
                traceId: s.traceId,
                spanId: s.spanId,
                parentSpanId: s.parentSpanId ?? "",
                attributes: attributesOf(s.attributes)
              })
            }
          }
        }
        res.writeHead(200, { "content-type": "application/json" }).end("{}")
      } catch {
        res.writeHead(400).end()
      }
    })
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  const address = server.address()
  if (address === null || typeof address === "string") throw new Error("expected a TCP address")
  return { url: `http://127.0.0.1:${address.port}`, spans, bodies, paths, close: () => new Promise<void>((r) => server.close(() => r())) }
}

const suite = processSuite({ stopGraceMs: 20_000 })

describe("OTLP traces", () => {
  it("one job's delivery and the cycle that provisioned its runner reach a local OTLP receiver, found by the job id", async () => {
    const receiver = await startReceiver()
    try {
      const webhookSecret = "whsec-otlp-test-7d3e9a"
      const traceSecret = "trace-otlp-test-41bc02"
      const { child, control } = await startSimulated(suite, "otlp_traces", {
        GHAPP_WEBHOOK_SECRET: webhookSecret,
        TRACE_API_SECRET: traceSecret,
        OTEL_EXPORTER_OTLP_ENDPOINT: `${receiver.url}/`,
        OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
        OTEL_EXPORTER_OTLP_HEADERS: "x-api-key=otlp-key-5e8f",
        OTEL_RESOURCE_ATTRIBUTES: "k8s.cluster.name=test-cluster",
        OTEL_BSP_SCHEDULE_DELAY: "200"
      })
      const posted = await fetch(`${control}/sim/jobs`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ owner: "acme", ownerType: "Organization", repo: "acme/app", labels: ["ubuntu-24.04-riscv"], durationSeconds: 30, count: 1 })
      })
      const jobId: number = ((await posted.json()) as { jobIds: Array<number> }).jobIds[0]!

      const find = () => {
        // the webhook's hot path is untraced inside its one span per request, `Webhook.receive`, which carries the job
        const delivery = receiver.spans.find((s) => s.name === "Webhook.receive" && s.attributes["job.id"] === jobId && s.attributes["job.action"] === "queued")
        // a full cycle or the fast path for new demand, whichever provisioned it
        const cycle = receiver.spans.find((s) => (s.name === "Scheduler.cycle" || s.name === "Scheduler.demandCycle") && Array.isArray(s.attributes["job.ids"]) && (s.attributes["job.ids"] as Array<unknown>).includes(jobId))
        const provision = receiver.spans.find((s) => s.name === "Scheduler.provision" && s.attributes["job.id"] === jobId)
        return { delivery, cycle, provision }
      }
      for (const deadline = Date.now() + 60_000; Date.now() < deadline;) {
        const found = find()
        if (found.delivery !== undefined && found.cycle !== undefined && found.provision !== undefined) break
        await new Promise((r) => setTimeout(r, 200))
      }
      const { delivery, cycle, provision } = find()
      expect(delivery, "the delivery's span").toBeDefined()
      expect(cycle, "the cycle's span").toBeDefined()
      expect(provision, "the provisioning's span").toBeDefined()

      // the delivery's span sits in the request's trace, under the HTTP server's span
      expect(delivery!.parentSpanId).not.toBe("")
      // the provisioning is in the cycle's trace
      expect(provision!.traceId).toBe(cycle!.traceId)
      expect(cycle!.attributes["runners.provisioned"]).toBeGreaterThanOrEqual(1)

      // one service name per role (here `all`), the deployment's attributes and the operator's own
      for (const span of [delivery!, cycle!]) {
        expect(span.service).toBe("riscv-runner-all")
        expect(span.resource).toMatchObject({
          "service.namespace": "riscv-runner",
          "deployment.environment.name": "staging",
          "riscv_runner.role": "all",
          "riscv_runner.simulated": "true",
          "k8s.cluster.name": "test-cluster"
        })
      }
      // posted where OTLP says, with the configured header
      expect(new Set(receiver.paths)).toEqual(new Set(["POST /v1/traces application/json otlp-key-5e8f"]))
      // no secret in any span
      for (const body of receiver.bodies) {
        expect(body).not.toContain(webhookSecret)
        expect(body).not.toContain(traceSecret)
        expect(body).not.toContain("otlp-key-5e8f")
      }
      expect(await child.stop(20_000)).toBe(0)
    } finally {
      await receiver.close()
    }
  }, 180_000)

  it("reads OpenTelemetry's variables: nothing without an endpoint, /v1/traces after a base URL, bad values named", async () => {
    const read = (env: Record<string, string>) =>
      Effect.runPromise(Effect.either(tracingSettings("scheduler", { prod: true, simulate: false })).pipe(
        Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env))))
      ))
    const none = await read({})
    expect(none._tag === "Right" && Option.isNone(none.right)).toBe(true)
    const some = await read({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318", OTEL_EXPORTER_OTLP_HEADERS: "authorization=Bearer%20abc" })
    if (some._tag !== "Right" || Option.isNone(some.right)) throw new Error("expected settings")
    expect(some.right.value).toMatchObject({ url: "http://collector:4318/v1/traces", protocol: "http/protobuf", serviceName: "riscv-runner-scheduler" })
    expect(some.right.value.attributes["deployment.environment.name"]).toBe("prod")
    expect(Redacted.value(some.right.value.headers)).toEqual({ authorization: "Bearer abc" })
    expect(String(some.right.value.headers)).not.toContain("abc")
    const own = await read({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4318", OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "http://t:9999/traces", OTEL_SERVICE_NAME: "mine" })
    expect(own._tag === "Right" && Option.getOrThrow(own.right)).toMatchObject({ url: "http://t:9999/traces", serviceName: "mine" })
    const grpc = await read({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4317", OTEL_EXPORTER_OTLP_PROTOCOL: "grpc" })
    expect(grpc._tag).toBe("Left")
    const badHeaders = await read({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4318", OTEL_EXPORTER_OTLP_HEADERS: "novalue" })
    expect(badHeaders._tag === "Left" && String(badHeaders.left)).toContain("OTEL_EXPORTER_OTLP_HEADERS")
    expect(Either.getOrThrow(parseKeyValues("a=1, b = x%2Cy ,"))).toEqual({ a: "1", b: "x,y" })
    expect(Either.isLeft(parseKeyValues("a=1,=2"))).toBe(true)
  })
})
