import { describe, expect, it } from "@effect/vitest"
import { ConfigProvider, Effect, Exit, Option, TestClock } from "effect"
import { loadAppEnv } from "../src/config/env.ts"
import { clientAddress } from "../src/webhook/clientAddress.ts"
import { makeLookupCache } from "../src/webhook/lookupCache.ts"
import { makeRateLimiter, type RateLimit, take } from "../src/webhook/rateLimiter.ts"

/* The setup pages' guards on their own: the token bucket's decisions, the limiter's memory bound, the cache's
 * bound and expiry, and who counts as the client. */

describe("rate limiter: the decision", () => {
  const limit: RateLimit = { perMinute: 10, burst: 10, maxKeys: 100 }
  /** runs requests at the given times (ms) from one key, and returns allowed/Retry-After per request */
  const run = (l: RateLimit, times: ReadonlyArray<number>) => {
    let state: number | undefined
    return times.map((t) => {
      const r = take(l, state, t)
      state = r.state
      return r.decision._tag === "Allowed" ? "ok" : r.decision.retryAfterSeconds
    })
  }

  it("a burst of 10, then one request per 6 s", () => {
    expect(run(limit, Array(11).fill(0))).toEqual([...Array(10).fill("ok"), 6])
    expect(run(limit, [...Array(10).fill(0), 5_999, 6_000, 6_000])).toEqual([...Array(10).fill("ok"), 1, "ok", 6])
  })

  it.each([
    { name: "a quiet minute refills the whole burst", l: limit, times: [...Array(10).fill(0), ...Array(11).fill(60_000)], last: 6 },
    { name: "refused requests do not push the wait further", l: { ...limit, burst: 1, perMinute: 1 }, times: [0, 1, 30_000, 59_000, 60_000], last: "ok" },
    { name: "Retry-After is whole seconds, at least 1", l: { ...limit, burst: 1, perMinute: 7 }, times: [0, 8_571], last: 1 }
  ])("$name", ({ l, last, times }) => {
    expect(run(l, times).at(-1)).toBe(last)
  })
})

describe("rate limiter: memory", () => {
  it.effect("keeps at most maxKeys keys, forgetting the least recently seen first", () =>
    Effect.gen(function*() {
      const limiter = makeRateLimiter({ perMinute: 1, burst: 1, maxKeys: 3 })
      for (const key of ["a", "b", "c"]) expect((yield* limiter.take(key))._tag).toBe("Allowed")
      expect((yield* limiter.take("a"))._tag).toBe("Limited") // a is now the most recently seen
      for (const key of ["d", "e"]) expect((yield* limiter.take(key))._tag).toBe("Allowed") // b, c forgotten
      expect(yield* limiter.size).toBe(3)
      expect((yield* limiter.take("a"))._tag).toBe("Limited")
      expect((yield* limiter.take("b"))._tag).toBe("Allowed")
      for (let i = 0; i < 1000; i++) yield* limiter.take(`flood-${i}`)
      expect(yield* limiter.size).toBe(3)
    }))

  it.effect("reads the time from Effect's Clock", () =>
    Effect.gen(function*() {
      const limiter = makeRateLimiter({ perMinute: 1, burst: 1, maxKeys: 3 })
      yield* limiter.take("a")
      expect(yield* limiter.take("a")).toEqual({ _tag: "Limited", retryAfterSeconds: 60 })
      yield* TestClock.adjust("60 seconds")
      expect((yield* limiter.take("a"))._tag).toBe("Allowed")
    }))
})

describe("look-up cache", () => {
  it.effect("remembers kept answers for the ttl, and at most maxEntries of them", () =>
    Effect.gen(function*() {
      const cache = makeLookupCache<number, string>({ ttl: "1 minute", maxEntries: 2 })
      let calls = 0
      const lookup = (n: number) => Effect.sync(() => ++calls).pipe(Effect.as(n))
      const keepAll = () => true
      expect(yield* cache.get("a", lookup(1), keepAll)).toBe(1)
      expect(yield* cache.get("a", lookup(99), keepAll)).toBe(1)
      expect(calls).toBe(1)
      yield* cache.get("b", lookup(2), keepAll)
      yield* cache.get("c", lookup(3), keepAll) // a, the oldest, goes
      expect(yield* cache.size).toBe(2)
      expect(yield* cache.get("a", lookup(4), keepAll)).toBe(4)
      expect(calls).toBe(4)
      yield* TestClock.adjust("1 minute")
      expect(yield* cache.get("a", lookup(5), keepAll)).toBe(5)
    }))

  it.effect("a failure is remembered only when keep says so", () =>
    Effect.gen(function*() {
      const cache = makeLookupCache<number, string>({ ttl: "1 minute", maxEntries: 10 })
      let calls = 0
      const failing = (e: string) => Effect.suspend(() => (++calls, Effect.fail(e)))
      const keepNotFound = (exit: Exit.Exit<number, string>) => Exit.isFailure(exit) && exit.cause._tag === "Fail" && exit.cause.error === "404"
      for (let i = 0; i < 3; i++) expect(yield* Effect.flip(cache.get("x", failing("404"), keepNotFound))).toBe("404")
      for (let i = 0; i < 3; i++) expect(yield* Effect.flip(cache.get("y", failing("503"), keepNotFound))).toBe("503")
      expect(calls).toBe(4)
    }))
})

describe("client address", () => {
  const req = (peer: string | undefined, xff?: string) => ({
    remoteAddress: Option.fromNullable(peer),
    headers: (xff === undefined ? {} : { "x-forwarded-for": xff }) as never
  })
  it.each([
    { name: "the socket's peer", r: req("10.0.0.5"), hops: 0, want: "10.0.0.5" },
    { name: "an IPv4-mapped peer as IPv4", r: req("::ffff:10.0.0.5"), hops: 0, want: "10.0.0.5" },
    { name: "an IPv6 peer as is", r: req("2001:db8::1"), hops: 0, want: "2001:db8::1" },
    { name: "X-Forwarded-For ignored without trusted proxies", r: req("10.0.0.5", "1.2.3.4"), hops: 0, want: "10.0.0.5" },
    { name: "one proxy: the rightmost entry", r: req("10.0.0.5", "6.6.6.6, 1.2.3.4"), hops: 1, want: "1.2.3.4" },
    { name: "two proxies: the second from the right", r: req("10.0.0.5", "6.6.6.6, 1.2.3.4, 10.0.0.9"), hops: 2, want: "1.2.3.4" },
    { name: "fewer entries than proxies: the leftmost", r: req("10.0.0.5", "1.2.3.4"), hops: 2, want: "1.2.3.4" },
    { name: "no header behind a proxy: the peer", r: req("10.0.0.5"), hops: 1, want: "10.0.0.5" },
    { name: "an empty header: the peer", r: req("10.0.0.5", " , "), hops: 1, want: "10.0.0.5" },
    { name: "no peer at all", r: req(undefined), hops: 0, want: "unknown" }
  ])("$name", ({ hops, r, want }) => {
    expect(clientAddress(r, hops)).toBe(want)
  })
})

describe("environment", () => {
  const load = (vars: Record<string, string>) =>
    loadAppEnv("webhook", true).pipe(Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(vars)))))

  it.effect("defaults: no trusted proxy, 10 requests a minute with a burst of 10", () =>
    Effect.gen(function*() {
      const env = yield* load({})
      expect([env.trustedProxyHops, env.setupRateLimit, env.setupRateBurst]).toEqual([0, 10, 10])
    }))

  it.effect("TRUSTED_PROXY_HOPS, SETUP_RATE_LIMIT and SETUP_RATE_BURST are read, and a bad value is named", () =>
    Effect.gen(function*() {
      const env = yield* load({ TRUSTED_PROXY_HOPS: "1", SETUP_RATE_LIMIT: "0", SETUP_RATE_BURST: "30" })
      expect([env.trustedProxyHops, env.setupRateLimit, env.setupRateBurst]).toEqual([1, 0, 30])
      const bad = yield* Effect.flip(load({ SETUP_RATE_LIMIT: "-3", TRUSTED_PROXY_HOPS: "yes" }))
      expect(bad.message).toContain("SETUP_RATE_LIMIT")
      expect(bad.message).toContain("TRUSTED_PROXY_HOPS")
    }))
})
