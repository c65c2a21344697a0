import { describe, expect, it } from "@effect/vitest"
import { Context, Effect, Layer } from "effect"
import { GithubMemory, GithubMemoryControl, type GithubMemoryControlShape } from "../layers/github/memory.ts"
import { memoryBackend, type WebhookHarness, withWebhook } from "./support/webhookHarness.ts"

/*
 * The post-install setup pages, against the in-memory GitHub: it knows which app each installation belongs to,
 * and answers the lookup with 404 for the other app's installations, as GitHub does.
 */

const ORG_INSTALL = "https://github.com/apps/rise-risc-v-runners/installations/new"
const PERSONAL_INSTALL = "https://github.com/apps/rise-risc-v-runners-personal/installations/new"

const withSetup = (body: (h: WebhookHarness, github: GithubMemoryControlShape) => Effect.Effect<void, unknown>) =>
  Effect.scoped(Effect.gen(function*() {
    const context = yield* Layer.build(GithubMemory)
    yield* withWebhook(memoryBackend, (h) => body(h, Context.get(context, GithubMemoryControl)), { services: Layer.succeedContext(context) })
  }))

const account = (login: string, type: string, id = 4242) => ({ login, type, id })

describe("setup pages", () => {
  it.live("no installation id: 400 with both install links", () =>
    withSetup((h) =>
      Effect.gen(function*() {
        for (const path of ["/setup/org", "/setup/personal", "/setup/org?installation_id="]) {
          const res = yield* h.request(path)
          expect(res.status).toBe(400)
          expect(res.headers.get("content-type")).toBe("text/html; charset=utf-8")
          expect(res.text).toContain("Missing installation id")
          expect(res.text).toContain(ORG_INSTALL)
          expect(res.text).toContain(PERSONAL_INSTALL)
        }
      })))

  it.live("an id that is not a positive integer: 400 saying so, with both install links", () =>
    withSetup((h) =>
      Effect.gen(function*() {
        for (const path of ["/setup/org?installation_id=12ab", "/setup/personal?installation_id=1.5", "/setup/org?installation_id=0", "/setup/personal?installation_id=-1"]) {
          const res = yield* h.request(path)
          expect(res.status).toBe(400)
          expect(res.headers.get("content-type")).toBe("text/html; charset=utf-8")
          expect(res.text).toContain("Invalid installation id")
          expect(res.text).toContain(ORG_INSTALL)
          expect(res.text).toContain(PERSONAL_INSTALL)
        }
      })))

  it.live("an installation of the right app on the right account type: 200, all set", () =>
    withSetup((h, github) =>
      Effect.gen(function*() {
        yield* github.addInstallation({ id: 10, account: account("acme", "Organization") })
        yield* github.addInstallation({ id: 11, account: account("alice", "User") })
        const org = yield* h.request("/setup/org?installation_id=10&setup_action=install")
        expect(org.status).toBe(200)
        expect(org.text).toContain("All set, acme!")
        expect(org.text).toContain("organization")
        expect(org.text).toContain("ubuntu-24.04-riscv")
        const personal = yield* h.request("/setup/personal?installation_id=11")
        expect(personal.status).toBe(200)
        expect(personal.text).toContain("All set, alice!")
        expect(personal.text).toContain("personal account")
      })))

  it.live("an installation this app does not have: 404, echoing the id and linking to the other app", () =>
    withSetup((h, github) =>
      Effect.gen(function*() {
        // installed through the personal app, so the org app cannot see it
        yield* github.addInstallation({ id: 20, account: account("alice", "User") })
        const org = yield* h.request("/setup/org?installation_id=20")
        expect(org.status).toBe(404)
        expect(org.text).toContain("Installation not found for this app")
        expect(org.text).toContain("<code>20</code>")
        expect(org.text).toContain(PERSONAL_INSTALL)
        expect(org.text).not.toContain(ORG_INSTALL)
        const personal = yield* h.request("/setup/personal?installation_id=999")
        expect(personal.status).toBe(404)
        expect(personal.text).toContain("<code>999</code>")
        expect(personal.text).toContain(ORG_INSTALL)
      })))

  it.live("an app installed on the wrong account type: 400 with the right app's link", () =>
    withSetup((h, github) =>
      Effect.gen(function*() {
        yield* github.addInstallation({ id: 30, account: account("alice", "User") }, { app: "Organization" })
        yield* github.addInstallation({ id: 31, account: account("acme", "Organization") }, { app: "User" })
        const org = yield* h.request("/setup/org?installation_id=30")
        expect(org.status).toBe(400)
        expect(org.text).toContain("You installed the organization app on a personal account")
        expect(org.text).toContain(PERSONAL_INSTALL)
        const personal = yield* h.request("/setup/personal?installation_id=31")
        expect(personal.status).toBe(400)
        expect(personal.text).toContain("You installed the personal app on an organization")
        expect(personal.text).toContain(ORG_INSTALL)
      })))

  it.live("GitHub failing the lookup: 502 with the upstream status (0 without an answer)", () =>
    withSetup((h, github) =>
      Effect.gen(function*() {
        yield* github.addInstallation({ id: 40, account: account("acme", "Organization") })
        yield* github.injectFault("getInstallation", { _tag: "Status", status: 503, message: "unavailable" })
        const res = yield* h.request("/setup/org?installation_id=40")
        expect(res.status).toBe(502)
        expect(res.text).toContain("Something went wrong")
        expect(res.text).toContain("<code>503</code>")
        yield* github.clearFaults
        yield* github.injectFault("getInstallation", { _tag: "Transport" })
        const none = yield* h.request("/setup/org?installation_id=40")
        expect(none.status).toBe(502)
        expect(none.text).toContain("<code>0</code>")
      })))

  it.live("logins are HTML-escaped", () =>
    withSetup((h, github) =>
      Effect.gen(function*() {
        yield* github.addInstallation({ id: 50, account: account("<script>alert('x')</script>&", "Organization") })
        yield* github.addInstallation({ id: 51, account: account("<img src=x onerror=alert(1)>", "User") }, { app: "Organization" })
        const ok = yield* h.request("/setup/org?installation_id=50")
        expect(ok.status).toBe(200)
        expect(ok.text).not.toContain("<script>")
        expect(ok.text).toContain("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;")
        const wrong = yield* h.request("/setup/org?installation_id=51")
        expect(wrong.status).toBe(400)
        expect(wrong.text).not.toContain("<img")
        expect(wrong.text).toContain("&lt;img src=x onerror=alert(1)&gt;")
      })))

  it.live("without a GitHub client the lookup cannot happen: 502", () =>
    withWebhook(memoryBackend, (h) =>
      Effect.gen(function*() {
        const res = yield* h.request("/setup/personal?installation_id=7")
        expect(res.status).toBe(502)
        expect(res.text).toContain("Something went wrong")
      })))
})
