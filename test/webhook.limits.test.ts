import { describe, expect, it } from "@effect/vitest"
import { ConfigProvider, Duration, Effect, Either } from "effect"
import { loadAppEnv } from "../src/config/env.ts"
import { idAt, nestingExceeds } from "../src/domain/jsonPayload.ts"
import { eventLabel } from "../src/observability/eventLabels.ts"
import { UnverifiedBodyBudget, webhookServerOptions } from "../src/webhook/requestLimits.ts"

const withEnv = (vars: Record<string, string>) => Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(vars))))

describe("the webhook's request limits from the environment", () => {
  it.effect("default to a 15 s deadline and a 64 MiB budget", () =>
    Effect.gen(function*() {
      const env = yield* loadAppEnv("webhook", true).pipe(withEnv({}))
      expect(Duration.toMillis(env.webhookRequestTimeout)).toBe(15_000)
      expect(env.webhookUnverifiedBodyBudget).toBe(64 * 1024 * 1024)
    }))

  it.effect("take durations and byte counts", () =>
    Effect.gen(function*() {
      const env = yield* loadAppEnv("webhook", true).pipe(
        withEnv({ WEBHOOK_REQUEST_TIMEOUT: "3 seconds", WEBHOOK_UNVERIFIED_BODY_BUDGET: String(128 * 1024 * 1024) })
      )
      expect(Duration.toMillis(env.webhookRequestTimeout)).toBe(3000)
      expect(env.webhookUnverifiedBodyBudget).toBe(128 * 1024 * 1024)
    }))

  it.effect("refuse nonsense, naming the variable, and a budget too small for one of GitHub's largest deliveries", () =>
    Effect.gen(function*() {
      const bad = yield* Effect.either(
        loadAppEnv("webhook", true).pipe(withEnv({ WEBHOOK_REQUEST_TIMEOUT: "soon", WEBHOOK_UNVERIFIED_BODY_BUDGET: "1000" }))
      )
      expect(Either.isLeft(bad)).toBe(true)
      const message = Either.isLeft(bad) ? bad.left.message : ""
      expect(message).toContain("WEBHOOK_REQUEST_TIMEOUT")
      expect(message).toContain("WEBHOOK_UNVERIFIED_BODY_BUDGET")
    }))

  it("turn into Node server options that check the deadline several times per deadline", () => {
    expect(webhookServerOptions(Duration.seconds(15))).toEqual({ requestTimeout: 15_000, headersTimeout: 15_000, connectionsCheckingInterval: 1000 })
    expect(webhookServerOptions(Duration.seconds(3))).toEqual({ requestTimeout: 3000, headersTimeout: 3000, connectionsCheckingInterval: 750 })
  })
})

describe("the pure pieces", () => {
  it("a budget lease takes what fits, refuses what does not, and gives back once", () => {
    const budget = new UnverifiedBodyBudget(100)
    const a = budget.lease()
    const b = budget.lease()
    expect(a.grow(60)).toBe(true)
    expect(b.grow(50)).toBe(false)
    expect(b.grow(40)).toBe(true)
    expect(budget.used).toBe(100)
    a.release()
    a.release()
    expect(budget.used).toBe(40)
    expect(a.grow(1)).toBe(false)
    b.release()
    expect(budget.used).toBe(0)
  })

  it("nesting is counted in one pass, outside strings only", () => {
    expect(nestingExceeds("[".repeat(64) + "]".repeat(64), 64)).toBe(false)
    expect(nestingExceeds("[".repeat(65) + "]".repeat(65), 64)).toBe(true)
    expect(nestingExceeds(`{"a":"${"[".repeat(100)}"}`, 64)).toBe(false)
    expect(nestingExceeds(`{"a":"\\"${"[".repeat(100)}"}`, 64)).toBe(false)
    expect(nestingExceeds(`{"a":"\\\\"${",[".repeat(100)}`, 64)).toBe(true)
    expect(nestingExceeds("[".repeat(1_000_000), 64)).toBe(true)
  })

  it("ids are positive safe integers, missing, or invalid", () => {
    const cases: ReadonlyArray<readonly [unknown, number | "missing" | "invalid"]> = [
      [1, 1],
      [Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
      [undefined, "missing"],
      [null, "missing"],
      [0, "missing"],
      [-5, "invalid"],
      [1.5, "invalid"],
      [2 ** 53, "invalid"],
      ["7", "invalid"],
      [false, "invalid"]
    ]
    for (const [value, expected] of cases) expect([value, idAt({ id: value }, "id")]).toEqual([value, expected])
  })

  it("event labels are GitHub's names, or other", () => {
    expect(eventLabel("workflow_job.queued")).toBe("workflow_job.queued")
    expect(eventLabel("workflow_job.made_up")).toBe("workflow_job.other")
    expect(eventLabel("workflow_job.")).toBe("workflow_job.other")
    expect(eventLabel("installation.created")).toBe("installation.created")
    expect(eventLabel("ping")).toBe("ping")
    expect(eventLabel("push")).toBe("push")
    expect(eventLabel("push.x")).toBe("other")
    expect(eventLabel("constructor")).toBe("other")
    expect(eventLabel("__proto__.x")).toBe("other")
    expect(eventLabel("x".repeat(16_000))).toBe("other")
  })
})
