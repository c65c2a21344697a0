import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
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
