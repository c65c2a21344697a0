import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import type { WebhookOutcome } from "../src/domain/WebhookOutcome.ts"
import { type Backend, memoryBackend, postgresBackend, type WebhookHarness, withWebhook } from "./support/webhookHarness.ts"
import { allExamples, RISC_LABEL } from "./support/webhookPayloads.ts"

/*
 * Every delivery in @octokit/webhooks-examples (GitHub's own payloads, all event types), signed with the test
 * secret: each answers 2xx and leaves exactly one row with the outcome its event and action call for. The
 * workflow_job examples are also sent again with our runner label, so the job outcomes are covered by real
 * shapes as well.
 */

type Json = Record<string, any>

/** What the webhook must record for a delivery of `event` with `payload`. */
const expectedOutcome = (event: string, payload: Json): WebhookOutcome => {
  switch (event) {
    case "ping":
    case "installation":
    case "installation_repositories":
    case "installation_target":
      return "ok"
    case "workflow_job": {
      const labels: Array<unknown> = payload.workflow_job.labels ?? []
      if (!["queued", "in_progress", "completed"].includes(payload.action)) return "ignored_action"
      if (labels.length !== 1 || labels[0] !== RISC_LABEL) return "ignored_no_label"
      return payload.action === "queued" ? "job_stored" : payload.action === "in_progress" ? "job_marked_running" : "job_marked_completed"
    }
    default:
      return "ignored_event"
  }
}

/**
 * A GitHub App's deliveries always name the installation; some examples were captured from repository hooks
 * and lack it, so it is added (as GitHub would) for the event the App model is about.
 */
const asAppDelivery = (event: string, payload: Json): Json =>
  event === "workflow_job" && payload.installation === undefined ? { ...payload, installation: { id: 31337, node_id: "I_x" } } : payload

let jobIds = 70_000_000

const deliveries = (): ReadonlyArray<{ readonly event: string; readonly title: string; readonly payload: Json }> =>
  allExamples.flatMap((definition) =>
    definition.examples.flatMap((raw, i) => {
      const payload = asAppDelivery(definition.name, structuredClone(raw))
      const title = `${definition.name}${payload.action === undefined ? "" : `.${payload.action}`} #${i}`
      const ours = definition.name === "workflow_job"
        ? [{
          event: definition.name,
          title: `${title} with ${RISC_LABEL}`,
          payload: { ...payload, workflow_job: { ...payload.workflow_job, id: ++jobIds, labels: [RISC_LABEL] } }
        }]
        : []
      return [{ event: definition.name, title, payload }, ...ours]
    })
  )

const sendAll = (h: WebhookHarness, form: boolean) =>
  Effect.gen(function*() {
    const all = deliveries()
    expect(new Set(all.map((d) => d.event)).size).toBeGreaterThanOrEqual(50)
    const seen = new Set<WebhookOutcome>()
    for (const d of all) {
      const before = (yield* h.rows).length
      const res = yield* h.deliver(d.event, d.payload, { form })
      const rows = yield* h.rows
      const expected = expectedOutcome(d.event, d.payload)
      expect({ title: d.title, status: res.status, text: res.text }).toMatchObject({ title: d.title, status: 200 })
      expect({ title: d.title, rows: rows.length - before, outcome: rows.at(-1)?.outcome }).toEqual({ title: d.title, rows: 1, outcome: expected })
      seen.add(expected)
    }
    // the examples do exercise every kind of outcome the webhook gives for a healthy store
    expect([...seen].sort()).toEqual(
      ["ignored_action", "ignored_event", "ignored_no_label", "job_marked_completed", "job_marked_running", "job_stored", "ok"]
    )
  })

const cases = (backend: Backend, encodings: ReadonlyArray<boolean>) => {
  for (const form of encodings) {
    it.live(`every example, ${form ? "form-encoded" : "as JSON"}: 2xx and exactly one row of the right outcome`, () =>
      withWebhook(backend, (h) => sendAll(h, form)), 120_000)
  }
}

describe("GitHub's example deliveries on memory", () => cases(memoryBackend, [false, true]))
const pg = postgresBackend("webhook_examples")
describe("GitHub's example deliveries on postgres", () => cases(pg, [false]))
