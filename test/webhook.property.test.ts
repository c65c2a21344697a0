import { describe, expect, it } from "@effect/vitest"
import { Effect, Option, Ref } from "effect"
import fc from "fast-check"
import {
  APP_ID,
  type Backend,
  githubSignature,
  memoryBackend,
  postgresBackend,
  TEST_WEBHOOK_SECRET,
  type WebhookHarness,
  withWebhook
} from "./support/webhookHarness.ts"
import { ALICE, installation, installationRepositories, installationTargetRenamed, RISC_LABEL, workflowJob } from "./support/webhookPayloads.ts"

/*
 * Properties of POST /:
 * 1. No body, header set or signature makes it answer 5xx or drop the connection (the store is healthy here,
 *    and no staging is configured), and nothing is written unless the signature matches the bytes sent.
 * 2. Any order and repetition of a job's deliveries, sequential or concurrent, with failed audit writes
 *    re-delivered, ends in the same job state.
 */

const run = <A>(effect: Effect.Effect<A>) => Effect.runPromise(effect)

const EVENTS = ["ping", "installation", "installation_repositories", "installation_target", "workflow_job", "push", "star", "meta"]

/** Well-formed deliveries to start from; the property then damages them. */
const validPayload = fc.oneof(
  fc.record({ action: fc.constantFrom("queued", "in_progress", "completed", "waiting"), jobId: fc.integer({ min: 1, max: 2 ** 40 }) }).map((j) =>
    workflowJob({ action: j.action, jobId: j.jobId })
  ),
  fc.constantFrom("created", "deleted", "suspend").map((action) => installation({ action })),
  fc.constant(installationRepositories({ action: "added", added: ["acme/x"] })),
  fc.constant(installationTargetRenamed("old", ALICE)),
  fc.constant({ zen: "Speak like a human.", hook_id: 1 })
)

/** Replaces the value at a random path of the object with a random JSON value. */
const mutate = (value: unknown, path: ReadonlyArray<number>, replacement: unknown): unknown => {
  if (path.length === 0 || typeof value !== "object" || value === null) return replacement
  const entries = Object.entries(value)
  if (entries.length === 0) return replacement
  const [key, child] = entries[path[0]! % entries.length]!
  const copy: Record<string, unknown> = Array.isArray(value) ? [...value] as never : { ...value }
  copy[key] = mutate(child, path.slice(1), replacement)
  return copy
}

const body = fc.oneof(
  // a real shape, with one value somewhere replaced by anything JSON can hold (null, NUL characters, huge numbers)
  fc.tuple(validPayload, fc.array(fc.nat(), { maxLength: 4 }), fc.jsonValue()).map(([p, path, v]) => JSON.stringify(mutate(p, path, v))),
  // a real shape with one byte flipped
  fc.tuple(validPayload, fc.nat(), fc.integer({ min: 1, max: 255 })).map(([p, at, x]) => {
    const bytes = Buffer.from(JSON.stringify(p))
    bytes[at % bytes.length] = bytes[at % bytes.length]! ^ x
    return bytes.toString("latin1")
  }),
  fc.jsonValue().map((v) => JSON.stringify(v)),
  fc.string({ unit: "binary", maxLength: 200 }),
  validPayload.map((p) => JSON.stringify(p))
)

type SignatureMode = "right" | "missing" | "wrong-secret" | "random-hex" | "garbage" | "for-other-bytes"

const delivery = fc.record({
  event: fc.oneof(
    { arbitrary: fc.constantFrom(...EVENTS), weight: 6 },
    { arbitrary: fc.string({ minLength: 1, maxLength: 20 }), weight: 1 },
    { arbitrary: fc.constant(null), weight: 1 }
  ),
  body,
  signature: fc.constantFrom<SignatureMode>("right", "right", "right", "missing", "wrong-secret", "random-hex", "garbage", "for-other-bytes"),
  hex: fc.stringMatching(/^[0-9a-f]{64}$/),
  garbage: fc.string({ maxLength: 80 }),
  appId: fc.oneof(
    { arbitrary: fc.constant(String(APP_ID)), weight: 6 },
    { arbitrary: fc.constant(null), weight: 1 },
    { arbitrary: fc.string({ maxLength: 12 }), weight: 1 },
    { arbitrary: fc.bigInt().map(String), weight: 1 }
  ),
  contentType: fc.constantFrom("application/json", "application/json", "application/x-www-form-urlencoded", "text/plain", "")
})

const propertyNoCrash = (backend: Backend, numRuns: number) =>
  it.live(`random, damaged and forged deliveries never answer 5xx, and write nothing unless signed (${numRuns} runs)`, () =>
    withWebhook(backend, (h) =>
      Effect.promise(async () => {
        const statuses = new Map<number, number>()
        await fc.assert(
          fc.asyncProperty(delivery, async (d) => {
            const bytes = Buffer.from(d.body, "utf8")
            const signature: string | null = {
              right: githubSignature(TEST_WEBHOOK_SECRET, bytes),
              missing: null,
              "wrong-secret": githubSignature("another-secret", bytes),
              "random-hex": `sha256=${d.hex}`,
              garbage: d.garbage,
              "for-other-bytes": githubSignature(TEST_WEBHOOK_SECRET, Buffer.concat([bytes, Buffer.from(" ")]))
            }[d.signature]
            const before = (await run(h.rows)).length
            const res = await run(h.deliver(d.event, d.body, { signature, appId: d.appId, contentType: d.contentType }))
            const written = (await run(h.rows)).length - before
            statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1)
            expect(res.status).toBeGreaterThanOrEqual(200)
            expect(res.status).toBeLessThan(500)
            if (d.signature !== "right") {
              expect(written).toBe(0)
              expect([400, 401]).toContain(res.status)
            } else {
              expect(written).toBe(res.status === 200 ? 1 : 0)
            }
          }),
          { numRuns }
        )
        // the generator reaches every answer: accepted, malformed, and forged
        for (const status of [200, 400, 401]) expect(statuses.get(status) ?? 0).toBeGreaterThan(numRuns / 100)
      })), 120_000)

// --- convergence ----------------------------------------------------------------------------------------------

type Action = "queued" | "in_progress" | "completed"

const news = fc.array(
  fc.record({ action: fc.constantFrom<Action>("queued", "in_progress", "completed"), failLogFirst: fc.boolean() }),
  { minLength: 1, maxLength: 8 }
)

let jobIds = 50_000_000

/** The state in-order delivery gives: the furthest news wins, and the runner comes from the first news of one. */
const expected = (actions: ReadonlyArray<Action>, runner: string) => {
  const status = actions.includes("completed") ? "completed" : actions.includes("in_progress") ? "running" : "pending"
  return { status, k8s_pod: status === "pending" ? null : runner }
}

const converge = (h: WebhookHarness, concurrent: boolean) =>
  fc.asyncProperty(news, async (deliveries) => {
    const jobId = ++jobIds
    const runner = `rise-riscv-runner-${jobId}`
    const send = (action: Action) =>
      h.deliver("workflow_job", workflowJob({ action, jobId, owner: ALICE, labels: [RISC_LABEL], runnerName: action === "queued" ? null : runner }))
    if (concurrent) {
      const answers = await run(Effect.all(deliveries.map((d) => send(d.action)), { concurrency: "unbounded" }))
      expect(answers.map((a) => a.status)).toEqual(deliveries.map(() => 200))
    } else {
      for (const d of deliveries) {
        if (d.failLogFirst) {
          // the audit write fails: GitHub sees a 500 and re-delivers the same delivery
          await run(Ref.set(h.faults.failEventWrites, true))
          expect((await run(send(d.action))).status).toBe(500)
          await run(Ref.set(h.faults.failEventWrites, false))
        }
        expect((await run(send(d.action))).status).toBe(200)
      }
    }
    const job = Option.getOrThrow(await run(h.db.getJob(jobId).pipe(Effect.orDie)))
    expect({ status: job.status, k8s_pod: job.k8s_pod }).toEqual(expected(deliveries.map((d) => d.action), runner))
  })

const propertyConverges = (backend: Backend, numRuns: number) => {
  it.live(`any order and repetition of a job's news, with failed log writes re-delivered, converges (${numRuns} runs)`, () =>
    withWebhook(backend, (h) => Effect.promise(() => fc.assert(converge(h, false), { numRuns }))), 120_000)
  it.live(`the same news delivered all at once converges too (${numRuns} runs)`, () =>
    withWebhook(backend, (h) => Effect.promise(() => fc.assert(converge(h, true), { numRuns }))), 120_000)
}

describe("webhook properties on memory", () => {
  propertyNoCrash(memoryBackend, 400)
  propertyConverges(memoryBackend, 150)
})

const pg = postgresBackend("webhook_property")
describe("webhook properties on postgres", () => {
  propertyNoCrash(pg, 150)
  propertyConverges(pg, 60)
})
