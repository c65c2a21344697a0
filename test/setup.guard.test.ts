import { describe, expect, it } from "@effect/vitest"
import { Context, Effect, Layer, TestClock } from "effect"
import { request as httpRequest } from "node:http"
import { GithubMemory, GithubMemoryControl, type GithubMemoryControlShape } from "../layers/github/memory.ts"
import { totalCalls } from "../src/services/Github.ts"
import type { WebhookSettingsInput } from "../src/webhook/WebhookSettings.ts"
import { memoryBackend, type Response, type WebhookHarness, withWebhook } from "./support/webhookHarness.ts"

/*
 * The setup pages are public and every look-up spends the app's GitHub budget, so: ids that cannot be
 * installations never reach GitHub, answers are remembered per (app, id) for a minute, and each client address
 * has a token bucket. Every case runs over a real socket (the harness's server on a free port), counts the calls
 * the in-memory GitHub received, and moves time with TestClock.
 */

interface Setup {
  readonly h: WebhookHarness
  readonly github: GithubMemoryControlShape
  /** GitHub calls so far, of every kind */
  readonly calls: Effect.Effect<number>
}

const withSetup = (body: (s: Setup) => Effect.Effect<void, unknown>, settings: Partial<WebhookSettingsInput> = {}) =>
  Effect.scoped(Effect.gen(function*() {
    const context = yield* Layer.build(GithubMemory)
    const github = Context.get(context, GithubMemoryControl)
    const calls = Effect.map(github.callCounts, (counts) => totalCalls(counts))
    yield* withWebhook(memoryBackend, (h) => body({ h, github, calls }), { services: Layer.succeedContext(context), settings })
  }))

const account = (login: string, type: string, id = 4242) => ({ login, type, id })

/** A GET from a chosen local address (127.0.0.0/8 is all loopback on Linux), so the server sees another peer. */
const requestFrom = (baseUrl: string, path: string, localAddress: string, headers: Record<string, string> = {}) =>
  Effect.async<Response>((resume) => {
    const req = httpRequest(`${baseUrl}${path}`, { localAddress, headers }, (res) => {
      const chunks: Array<Buffer> = []
      res.on("data", (c: Buffer) => chunks.push(c))
      res.on("end", () => {
        const out = new Headers()
        for (const [k, v] of Object.entries(res.headers)) if (typeof v === "string") out.set(k, v)
        resume(Effect.succeed({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString("utf8"), headers: out }))
      })
    })
    req.on("error", (e) => resume(Effect.die(e)))
    req.end()
  })

describe("setup pages: ids that cannot be installations", () => {
  const bad = ["0", "-1", "00", "1.5", "abc", "12ab", "+5", "1e3", "0x10", " 7", "99999999999999999999", "9007199254740993"]

  it.effect("each answers 400 saying the id is invalid, and GitHub is never called", () =>
    withSetup(({ calls, github, h }) =>
      Effect.gen(function*() {
        yield* github.addInstallation({ id: 10, account: account("acme", "Organization") })
        for (const route of ["org", "personal"]) {
          for (const id of bad) {
            const res = yield* h.request(`/setup/${route}?installation_id=${encodeURIComponent(id)}`)
            expect(res.status, `${route} ${id}`).toBe(400)
            expect(res.headers.get("content-type")).toBe("text/html; charset=utf-8")
            expect(res.text).toContain("Invalid installation id")
            expect(res.text).toContain("positive whole number")
          }
        }
        expect(yield* calls).toBe(0)
        // they cost nothing, so they do not count against the client's rate limit either
        expect((yield* h.request("/setup/org?installation_id=10")).status).toBe(200)
      })))

  it.effect("a missing or empty id keeps the original's 'Missing installation id' page, without GitHub", () =>
    withSetup(({ calls, h }) =>
      Effect.gen(function*() {
        for (const path of ["/setup/org", "/setup/personal", "/setup/org?installation_id=", "/setup/org?setup_action=install"]) {
          const res = yield* h.request(path)
          expect(res.status, path).toBe(400)
          expect(res.text).toContain("Missing installation id")
        }
        expect(yield* calls).toBe(0)
      })))

  it.effect("the refused id is echoed escaped and shortened", () =>
    withSetup(({ h }) =>
      Effect.gen(function*() {
        const res = yield* h.request(`/setup/org?installation_id=${encodeURIComponent("<b>" + "9".repeat(200))}`)
        expect(res.status).toBe(400)
        expect(res.text).toContain("&lt;b&gt;")
        expect(res.text).not.toContain("9".repeat(50))
      })))
})

describe("setup pages: look-ups are remembered for a minute per (app, installation)", () => {
  it.effect("five hits on one id make one GitHub call; the first hit after the minute makes the second", () =>
    withSetup(({ calls, github, h }) =>
      Effect.gen(function*() {
        yield* github.addInstallation({ id: 10, account: account("acme", "Organization") })
        for (let i = 0; i < 5; i++) {
          const res = yield* h.request("/setup/org?installation_id=10")
          expect(res.status).toBe(200)
          expect(res.text).toContain("All set, acme!")
        }
        expect(yield* calls).toBe(1)
        yield* TestClock.adjust("59 seconds")
        expect((yield* h.request("/setup/org?installation_id=10")).status).toBe(200)
        expect(yield* calls).toBe(1)
        yield* TestClock.adjust("1 second")
        expect((yield* h.request("/setup/org?installation_id=10")).status).toBe(200)
        expect(yield* calls).toBe(2)
      })))

  it.effect("the other app's look-up of the same id is its own entry", () =>
    withSetup(({ calls, github, h }) =>
      Effect.gen(function*() {
        yield* github.addInstallation({ id: 10, account: account("acme", "Organization") })
        expect((yield* h.request("/setup/org?installation_id=10")).status).toBe(200)
        expect((yield* h.request("/setup/personal?installation_id=10")).status).toBe(404)
        expect((yield* h.request("/setup/personal?installation_id=10")).status).toBe(404)
        expect(yield* calls).toBe(2)
      })))

  it.effect("a 404 is remembered too", () =>
    withSetup(({ calls, h }) =>
      Effect.gen(function*() {
        for (let i = 0; i < 4; i++) {
          const res = yield* h.request("/setup/org?installation_id=999")
          expect(res.status).toBe(404)
          expect(res.text).toContain("<code>999</code>")
        }
        expect(yield* calls).toBe(1)
        yield* TestClock.adjust("61 seconds")
        expect((yield* h.request("/setup/org?installation_id=999")).status).toBe(404)
        expect(yield* calls).toBe(2)
      })))

  it.effect("a 5xx or no answer at all is not remembered: the next hit asks GitHub again", () =>
    withSetup(({ calls, github, h }) =>
      Effect.gen(function*() {
        yield* github.addInstallation({ id: 40, account: account("acme", "Organization") })
        yield* github.injectFault("getInstallation", { _tag: "Status", status: 503, message: "unavailable" }, { times: 1 })
        const failed = yield* h.request("/setup/org?installation_id=40")
        expect(failed.status).toBe(502)
        expect(failed.text).toContain("<code>503</code>")
        yield* github.injectFault("getInstallation", { _tag: "Transport" }, { times: 1 })
        expect((yield* h.request("/setup/org?installation_id=40")).status).toBe(502)
        const ok = yield* h.request("/setup/org?installation_id=40")
        expect(ok.status).toBe(200)
        expect(ok.text).toContain("All set, acme!")
        expect(yield* calls).toBe(3)
        expect((yield* h.request("/setup/org?installation_id=40")).status).toBe(200)
        expect(yield* calls).toBe(3)
      })))
})

describe("setup pages: a rate limit per client address", () => {
  const limits = { setupPages: { ratePerMinute: 3, rateBurst: 3 } }

  it.effect("beyond the burst: 429 with Retry-After and no GitHub call; another address is unaffected; the bucket refills", () =>
    withSetup(({ calls, github, h }) =>
      Effect.gen(function*() {
        yield* github.addInstallation({ id: 10, account: account("acme", "Organization") })
        yield* github.addInstallation({ id: 11, account: account("bravo", "Organization") })
        for (let i = 0; i < 3; i++) expect((yield* requestFrom(h.baseUrl, "/setup/org?installation_id=10", "127.0.0.1")).status).toBe(200)
        expect(yield* calls).toBe(1)
        // an id nobody looked up yet: refused before the cache and before GitHub
        const limited = yield* requestFrom(h.baseUrl, "/setup/org?installation_id=11", "127.0.0.1")
        expect(limited.status).toBe(429)
        expect(limited.headers.get("retry-after")).toBe("20")
        expect(limited.text).toContain("Too many requests")
        // the other app's page shares the address's bucket
        expect((yield* requestFrom(h.baseUrl, "/setup/personal?installation_id=11", "127.0.0.1")).status).toBe(429)
        expect(yield* calls).toBe(1)

        const other = yield* requestFrom(h.baseUrl, "/setup/org?installation_id=11", "127.0.0.2")
        expect(other.status).toBe(200)
        expect(other.text).toContain("All set, bravo!")
        expect(yield* calls).toBe(2)

        yield* TestClock.adjust("19 seconds")
        const stillLimited = yield* requestFrom(h.baseUrl, "/setup/org?installation_id=10", "127.0.0.1")
        expect(stillLimited.status).toBe(429)
        expect(stillLimited.headers.get("retry-after")).toBe("1")
        yield* TestClock.adjust("1 second")
        expect((yield* requestFrom(h.baseUrl, "/setup/org?installation_id=10", "127.0.0.1")).status).toBe(200)
        expect((yield* requestFrom(h.baseUrl, "/setup/org?installation_id=10", "127.0.0.1")).status).toBe(429)
      }), limits))

  it.effect("X-Forwarded-For is ignored by default: a client cannot pick a fresh address per request", () =>
    withSetup(({ calls, github, h }) =>
      Effect.gen(function*() {
        yield* github.addInstallation({ id: 10, account: account("acme", "Organization") })
        const statuses: Array<number> = []
        for (let i = 0; i < 5; i++) {
          const res = yield* requestFrom(h.baseUrl, "/setup/org?installation_id=10", "127.0.0.1", { "x-forwarded-for": `198.51.100.${i}` })
          statuses.push(res.status)
        }
        expect(statuses).toEqual([200, 200, 200, 429, 429])
        expect(yield* calls).toBe(1)
      }), limits))

  it.effect("behind one trusted proxy the client is the entry the proxy appended, not what the client wrote", () =>
    withSetup(({ github, h }) =>
      Effect.gen(function*() {
        yield* github.addInstallation({ id: 10, account: account("acme", "Organization") })
        const via = (xff: string) => requestFrom(h.baseUrl, "/setup/org?installation_id=10", "127.0.0.1", { "x-forwarded-for": xff })
        // one client behind the proxy, forging a different leftmost entry each time: one bucket
        const forged: Array<number> = []
        for (let i = 0; i < 4; i++) forged.push((yield* via(`198.51.100.${i}, 203.0.113.7`)).status)
        expect(forged).toEqual([200, 200, 200, 429])
        // the proxy's own socket address is not the client: others behind the same proxy still get through
        expect((yield* via("203.0.113.8")).status).toBe(200)
        // a request that did not come through the proxy's header falls back to the socket's peer
        expect((yield* requestFrom(h.baseUrl, "/setup/org?installation_id=10", "127.0.0.1")).status).toBe(200)
      }), { ...limits, trustedProxyHops: 1 }))

  it.effect("SETUP_RATE_LIMIT=0 turns the limit off", () =>
    withSetup(({ calls, github, h }) =>
      Effect.gen(function*() {
        yield* github.addInstallation({ id: 10, account: account("acme", "Organization") })
        for (let i = 0; i < 30; i++) expect((yield* h.request("/setup/org?installation_id=10")).status).toBe(200)
        expect(yield* calls).toBe(1)
      }), { setupPages: { ratePerMinute: 0 } }))
})
