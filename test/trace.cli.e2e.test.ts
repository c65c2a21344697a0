import { describe, expect, it } from "@effect/vitest"
import { Effect, Option } from "effect"
import { runTrace } from "../src/cli/trace.ts"
import { ACME, installation, installationRepositories } from "./support/webhookPayloads.ts"
import { memoryBackend, TEST_TRACE_SECRET, withWebhook } from "./support/webhookHarness.ts"

/*
 * The trace CLI against the real webhook server: signed deliveries go in through POST /, and the CLI reads them
 * back through the real trace API, so the CLI and the API cannot drift apart.
 */

describe("trace CLI against the real webhook", () => {
  it.live("suspended and a removed repository, read back through the trace API", () =>
    withWebhook(memoryBackend, (h) =>
      Effect.gen(function*() {
        yield* h.deliver("installation", installation({ action: "created", repositories: ["acme/app", "acme/lib"], selection: "selected" }))
        yield* h.deliver("installation_repositories", installationRepositories({ action: "removed", removed: ["acme/lib"] }))
        yield* h.deliver("installation", installation({ action: "suspend", selection: "selected" }))
        const env = { TRACE_URL: h.baseUrl, TRACE_API_SECRET: TEST_TRACE_SECRET }
        const json = yield* Effect.promise(() => runTrace(["--entity-id", String(ACME.id), "--json"], env))
        expect(json.code).toBe(0)
        const report = JSON.parse(json.stdout)
        expect(report.events.map((e: { event: string }) => e.event)).toEqual([
          "installation.created",
          "installation_repositories.removed",
          "installation.suspend"
        ])
        expect(report.state).toMatchObject({ installed: true, suspended: true, repos: ["acme/app"], entity_name: "acme" })
        expect(report.diagnoses.map((d: { code: string }) => d.code)).toContain("suspended")
        const text = yield* Effect.promise(() => runTrace(["--installation-id", "777"], env))
        expect(text.code).toBe(0)
        expect(text.stdout).toContain("[suspended] Installation 777 is suspended since")
        const denied = yield* Effect.promise(() => runTrace(["--entity-id", String(ACME.id)], { ...env, TRACE_API_SECRET: "wrong" }))
        expect(denied.code).toBe(1)
      })))
})

describe("trace CLI errors, decoded by HttpApiClient from the real server's answers", () => {
  it.live("an installation no entity holds is the server's 404 text", () =>
    withWebhook(memoryBackend, (h) =>
      Effect.gen(function*() {
        const run = yield* Effect.promise(() => runTrace(["--installation-id", "424242"], { TRACE_URL: h.baseUrl, TRACE_API_SECRET: TEST_TRACE_SECRET }))
        expect(run.code).toBe(1)
        expect(run.stderr).toContain("HTTP 404 Entity not found")
        const denied = yield* Effect.promise(() => runTrace(["--entity-id", "1"], { TRACE_URL: h.baseUrl, TRACE_API_SECRET: "wrong" }))
        expect(denied.stderr).toContain("401, check TRACE_API_SECRET")
        expect(denied.stderr).not.toContain("wrong")
      })))

  it.live("a server without TRACE_API_SECRET: the CLI says the trace API is disabled there", () =>
    withWebhook(memoryBackend, (h) =>
      Effect.gen(function*() {
        const run = yield* Effect.promise(() => runTrace(["--entity-id", "1"], { TRACE_URL: h.baseUrl, TRACE_API_SECRET: TEST_TRACE_SECRET }))
        expect(run).toMatchObject({ code: 1 })
        expect(run.stderr).toContain("the trace API is disabled on the server")
      }), { settings: { traceSecret: Option.none() } }))
})
