import { describe, expect, it } from "vitest"
import { rateLimitWaitSeconds, retryWaitMillis } from "../layers/github/octokit.ts"
import { NoAnswer } from "../layers/github/transport.ts"

/*
 * When the live layer tries a request again (it does this itself, in Effect, since it left the Octokit retry and
 * throttling plugins): GitHub's rate-limit answers are sat out when short, 5xx answers and lost connections are
 * tried again after 1, 4, 9 s, each kind at most `maxRetries` times, and every other answer stands.
 */
const limits = { maxWaitSeconds: 15, maxRetries: 2, millisPerSecond: 1000 }
const none = { limited: 0, failed: 0 }
const now = Date.UTC(2026, 11, 2, 12, 0, 0)
const answer = (status: number, headers: Record<string, string> = {}, message = "") => ({ status, headers, data: { message } })

describe("rateLimitWaitSeconds", () => {
  it.each([
    ["a secondary limit with Retry-After", answer(403, { "retry-after": "3" }, "You have exceeded a secondary rate limit"), 3],
    ["a secondary limit without Retry-After waits a minute", answer(429, {}, "You have exceeded a secondary rate limit."), 60],
    ["a spent primary budget waits until a second past its reset", answer(403, { "x-ratelimit-remaining": "0", "x-ratelimit-reset": String(now / 1000 + 10) }), 11],
    ["a 403 that is no limit (a permission)", answer(403, {}, "Resource not accessible by integration"), undefined],
    ["a 200", answer(200, { "retry-after": "3" }), undefined]
  ])("%s", (_, a, seconds) => {
    expect(rateLimitWaitSeconds(a, now)).toBe(seconds)
  })
})

describe("retryWaitMillis", () => {
  it("sits out a short limit, and answers a long one at once", () => {
    expect(retryWaitMillis(answer(429, { "retry-after": "2" }, "secondary rate limit"), none, limits, now)).toEqual({ ms: 2000, kind: "limited" })
    expect(retryWaitMillis(answer(429, { "retry-after": "3600" }, "secondary rate limit"), none, limits, now)).toBeUndefined()
  })

  it("tries a 5xx and a lost connection again after 1 s, then 4 s, then gives up", () => {
    expect(retryWaitMillis(answer(502), none, limits, now)).toEqual({ ms: 1000, kind: "failed" })
    expect(retryWaitMillis(new NoAnswer({ message: "socket hang up" }), { limited: 0, failed: 1 }, limits, now)).toEqual({ ms: 4000, kind: "failed" })
    expect(retryWaitMillis(answer(503), { limited: 0, failed: 2 }, limits, now)).toBeUndefined()
  })

  it("counts rate limits and failures apart", () => {
    expect(retryWaitMillis(answer(500), { limited: 2, failed: 0 }, limits, now)).toEqual({ ms: 1000, kind: "failed" })
    expect(retryWaitMillis(answer(429, { "retry-after": "1" }, "secondary rate limit"), { limited: 2, failed: 0 }, limits, now)).toBeUndefined()
  })

  it.each([200, 201, 204, 304, 400, 401, 404, 409, 410, 422, 451])("lets a %i stand", (status) => {
    expect(retryWaitMillis(answer(status), none, limits, now)).toBeUndefined()
  })

  it("scales the waits by millisPerSecond (tests set 1)", () => {
    expect(retryWaitMillis(answer(502), none, { ...limits, millisPerSecond: 1 }, now)).toEqual({ ms: 1, kind: "failed" })
  })
})
