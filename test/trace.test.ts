import { describe, expect, it } from "@effect/vitest"
import { Effect, Option } from "effect"
import { type Backend, memoryBackend, postgresBackend, TEST_TRACE_SECRET, type WebhookHarness, withWebhook } from "./support/webhookHarness.ts"
import { ACME, ALICE, installation, installationRepositories, installationTargetRenamed, workflowJob } from "./support/webhookPayloads.ts"

/* The trace API through the HTTP server, on both stores. */

const auth = { authorization: `Bearer ${TEST_TRACE_SECRET}` }
const get = (h: WebhookHarness, path: string, headers: Record<string, string> = auth) => h.request(path, { headers })
const json = (text: string): any => JSON.parse(text)

const cases = (backend: Backend) => {
  const test = (title: string, body: (h: WebhookHarness) => Effect.Effect<void, unknown>) => it.live(title, () => withWebhook(backend, body))

  it.live("without TRACE_API_SECRET every trace route answers 503, whatever the token", () =>
    withWebhook(backend, (h) =>
      Effect.gen(function*() {
        for (const path of ["/trace/entity/1", "/trace/entity/1/state", "/trace/installation/1", "/trace/job/1", "/trace/payload/1"]) {
          expect((yield* get(h, path)).status).toBe(503)
          expect((yield* get(h, path, { authorization: "Bearer " })).status).toBe(503)
        }
      }), { settings: { traceSecret: Option.none() } }))

  test("anything but exactly `Bearer <secret>` is 401", (h) =>
    Effect.gen(function*() {
      for (
        const headers of [
          {} as Record<string, string>,
          { authorization: TEST_TRACE_SECRET },
          { authorization: `bearer ${TEST_TRACE_SECRET}` },
          { authorization: `Bearer  ${TEST_TRACE_SECRET}` },
          { authorization: `Bearer ${TEST_TRACE_SECRET}x` },
          { authorization: `Bearer ${TEST_TRACE_SECRET.slice(0, -1)}` },
          { authorization: "Bearer " }
        ]
      ) {
        for (const path of ["/trace/entity/1", "/trace/entity/1/state", "/trace/installation/1", "/trace/job/1", "/trace/payload/1"]) {
          const res = yield* get(h, path, headers)
          expect([res.status, res.text]).toEqual([401, "Unauthorized"])
        }
      }
    }))

  test("a path id that is not an integer is 400, named as the original named it", (h) =>
    Effect.gen(function*() {
      const cases = [
        ["/trace/entity/abc", "Invalid entity_id"],
        ["/trace/entity/1.5/state", "Invalid entity_id"],
        ["/trace/installation/x1", "Invalid installation_id"],
        ["/trace/job/99999999999999999999", "Invalid job_id"],
        ["/trace/payload/%20", "Invalid event_id"]
      ]
      for (const [path, text] of cases) {
        const res = yield* get(h, path!)
        expect([res.status, res.text]).toEqual([400, text])
      }
    }))

  test("an entity without rows is {\"events\":[]}, never null", (h) =>
    Effect.gen(function*() {
      const res = yield* get(h, "/trace/entity/123")
      expect(res.status).toBe(200)
      expect(res.headers.get("content-type")).toContain("application/json")
      expect(res.text).toBe("{\"events\":[]}")
    }))

  test("the entity timeline: oldest first, no payloads, job id and repository on workflow_job rows", (h) =>
    Effect.gen(function*() {
      yield* h.deliver("installation", installation({ action: "created", installationId: 777, repositories: ["acme/ci"] }), { deliveryId: "d-1" })
      yield* h.deliver("workflow_job", workflowJob({ jobId: 9001 }), { deliveryId: "d-2" })
      yield* h.deliver("workflow_job", workflowJob({ jobId: 9002, labels: ["ubuntu-latest"] }), { deliveryId: "d-3" })
      yield* h.deliver("workflow_job", workflowJob({ jobId: 9003, owner: ALICE }), { deliveryId: "d-4" })
      const res = yield* get(h, `/trace/entity/${ACME.id}`)
      expect(res.status).toBe(200)
      const events: Array<Record<string, unknown>> = json(res.text).events
      expect(events.map((e) => [e.event, e.outcome, e.delivery_id, e.job_id, e.repo_full_name])).toEqual([
        ["installation.created", "ok", "d-1", undefined, undefined],
        ["workflow_job.queued", "job_stored", "d-2", "9001", "acme/ci"],
        ["workflow_job.queued", "ignored_no_label", "d-3", "9002", "acme/ci"]
      ])
      expect(events[0]).toMatchObject({ source: "webhook", installation_id: 777, app_id: 2167633, entity_type: "Organization", entity_id: ACME.id, entity_name: "acme" })
      expect(typeof events[0]!.id).toBe("number")
      expect(new Date(events[0]!.received_at as string).getTime()).toBeGreaterThan(0)
      for (const e of events) expect(e).not.toHaveProperty("payload")
    }))

  test("installation and job ids resolve to their entity; unknown ones are 404", (h) =>
    Effect.gen(function*() {
      yield* h.deliver("installation", installation({ action: "created", installationId: 777 }))
      yield* h.deliver("workflow_job", workflowJob({ jobId: 9001, installationId: 778 }))
      const byInstallation = yield* get(h, "/trace/installation/777")
      expect(json(byInstallation.text).events).toHaveLength(2)
      const byJob = yield* get(h, "/trace/job/9001")
      expect(byJob.text).toBe(byInstallation.text)
      expect(json((yield* get(h, "/trace/installation/778")).text).events).toHaveLength(2)
      for (const path of ["/trace/installation/1", "/trace/job/1"]) {
        const res = yield* get(h, path)
        expect([res.status, res.text]).toEqual([404, "Entity not found"])
      }
    }))

  test("an installation known only from a job resolves through the jobs table", (h) =>
    Effect.gen(function*() {
      yield* h.db.addJob({
        job_id: 1,
        provider: "github",
        entity_id: ALICE.id,
        entity_name: "alice",
        entity_type: "User",
        repo_full_name: "alice/x",
        installation_id: 4040,
        job_labels: ["ubuntu-24.04-riscv"],
        k8s_pool: "scw-em-rv1",
        k8s_image: "img",
        html_url: null
      })
      const res = yield* get(h, "/trace/installation/4040")
      expect([res.status, res.text]).toEqual([200, "{\"events\":[]}"])
    }))

  test("a payload by row id: the stored body; an unknown id is 404", (h) =>
    Effect.gen(function*() {
      yield* h.deliver("ping", { zen: "Design for failure.", hook: { id: 5 } })
      const [row] = yield* h.rows
      const res = yield* get(h, `/trace/payload/${row!.id}`)
      expect(res.status).toBe(200)
      expect(json(res.text)).toEqual({ payload: { zen: "Design for failure.", hook: { id: 5 } } })
      const missing = yield* get(h, "/trace/payload/987654")
      expect([missing.status, missing.text]).toEqual([404, "Payload not found"])
    }))

  test("/state folds the history and names every cause it supports", (h) =>
    Effect.gen(function*() {
      yield* h.deliver("installation", installation({ action: "created", repositories: ["acme/ci", "acme/web"], selection: "selected" }))
      yield* h.deliver("workflow_job", workflowJob({ repo: "web" }))
      yield* h.deliver("installation_repositories", installationRepositories({ action: "removed", removed: ["acme/web"] }))
      yield* h.deliver("installation", installation({ action: "suspend", selection: "selected" }))
      yield* h.deliver("installation_target", installationTargetRenamed("acme", { ...ACME, login: "acme-corp" }))
      // what the scheduler writes when the token request for the job's installation answers 404
      yield* h.db.addInstallationEvent({
        source: "scheduler",
        event: "auth_attempt.404",
        outcome: "auth_404",
        installation_id: 777,
        app_id: 3131217,
        entity_type: "Organization",
        entity_id: ACME.id,
        entity_name: "acme-corp",
        payload: {
          installation_id: 777,
          app_id: 3131217,
          entity_type: "Organization",
          entity_id: ACME.id,
          entity_name: "acme-corp",
          repository: { full_name: "acme/web" },
          workflow_job: { id: 9001 },
          http_status: 404,
          error_message: "Not Found"
        },
        delivery_id: null
      })
      const res = yield* get(h, `/trace/entity/${ACME.id}/state?repo=acme/elsewhere`)
      expect(res.status).toBe(200)
      const body = json(res.text)
      expect(body.entity_id).toBe(ACME.id)
      expect(body.events).toBe(6)
      expect(body.state).toMatchObject({
        installed: true,
        installation_id: 777,
        app_id: 2167633,
        entity_name: "acme-corp",
        repository_selection: "selected",
        repos: ["acme/ci"],
        suspended: true,
        auth_404_count: 1,
        last_auth_failure: { not_found: true, app_id: 3131217, repo: "acme/web", job_id: 9001, http_status: 404 }
      })
      expect(body.diagnoses.map((d: { code: string }) => d.code)).toEqual([
        "suspended",
        "repo_not_selected",
        "repo_removed",
        "renamed",
        "app_id_mismatch",
        "auth_failures"
      ])
      for (const d of body.diagnoses) {
        expect(d.message.length).toBeGreaterThan(20)
        expect(d.event_ids.length).toBeGreaterThan(0)
      }
    }))

  test("/state of an entity with no rows is an empty state, not an error", (h) =>
    Effect.gen(function*() {
      const res = yield* get(h, "/trace/entity/5/state")
      expect(res.status).toBe(200)
      expect(json(res.text)).toMatchObject({ entity_id: 5, events: 0, state: { installed: null, repos: [] }, diagnoses: [] })
    }))
}

describe("trace API on memory", () => cases(memoryBackend))
const pg = postgresBackend("trace")
describe("trace API on postgres", () => cases(pg))
