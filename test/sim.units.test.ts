import { ConfigProvider, Effect, Option, Redacted } from "effect"
import { describe, expect, it } from "vitest"
import { parseCluster, parseNodes } from "../layers/sim/cluster.ts"
import { withDevSecrets } from "../layers/sim/devSecrets.ts"
import { formatEvent } from "../layers/sim/events.ts"
import { simSettingsConfig } from "../layers/sim/settings.ts"
import { signDelivery } from "../layers/sim/webhookTransport.ts"
import { signBody } from "../src/webhook/signature.ts"
import { percentile } from "../bench/support/percentile.ts"
import { jainIndex, maxMinShares } from "../bench/support/simFairness.ts"

const withEnv = (env: Record<string, string>) => Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env))))

describe("simulation settings", () => {
  it("the cluster comes from SIM_NODES: pool=count or pool=countxslots; default 4 one-slot scw-em-rv1 nodes", () => {
    expect(parseNodes("scw-em-rv1=2")).toEqual([
      { name: "scw-em-rv1-1", pool: "scw-em-rv1", slots: 1 },
      { name: "scw-em-rv1-2", pool: "scw-em-rv1", slots: 1 }
    ])
    expect(parseNodes("a=1x3, b=1")).toEqual([{ name: "a-1", pool: "a", slots: 3 }, { name: "b-1", pool: "b", slots: 1 }])
    expect(parseNodes("scw-em-rv1")).toMatch(/not \[cluster\/\]pool=count/)
    expect(parseNodes("a=0")).toMatch(/1..1000/)
    const defaults = Effect.runSync(simSettingsConfig.pipe(withEnv({})))
    expect(defaults.port).toBe(8082)
    expect(defaults.speed).toBe(10)
    expect(defaults.nodes.map((n) => [n.pool, n.slots])).toEqual([["scw-em-rv1", 1], ["scw-em-rv1", 1], ["scw-em-rv1", 1], ["scw-em-rv1", 1]])
    const bad = Effect.runSync(Effect.either(simSettingsConfig.pipe(withEnv({ SIM_NODES: "x", SIM_SPEED: "0" }))))
    expect(bad._tag).toBe("Left")
  })

  it("SIM_NODES marks faulty boards with node:fault parts, after the part that names the node", () => {
    expect(parseCluster("scw-em-rv1=3,scw-em-rv1-2:noregister,scw-em-rv1-3:notready@10m+20m")).toEqual({
      nodes: [1, 2, 3].map((i) => ({ name: `scw-em-rv1-${i}`, pool: "scw-em-rv1", slots: 1 })),
      boardFaults: [
        { node: "scw-em-rv1-2", kind: "noRegister" },
        { node: "scw-em-rv1-3", kind: "notReady", ready: "False", atMs: 600_000, forMs: 1_200_000 }
      ],
      clusters: []
    })
    const faultsOf = (text: string) => {
      const c = parseCluster(text)
      return typeof c === "string" ? c : c.boardFaults
    }
    expect(faultsOf("a=1,a-1:unknown")).toEqual([{ node: "a-1", kind: "notReady", ready: "Unknown", atMs: 0, forMs: null }])
    expect(faultsOf("a=1,a-1:notready@90")).toEqual([{ node: "a-1", kind: "notReady", ready: "False", atMs: 90_000, forMs: null }])
    expect(faultsOf("a=1,b-1:noregister")).toMatch(/no node b-1/)
    expect(faultsOf("a=1,a-1:noregister,a-1:unknown")).toMatch(/already has a fault/)
    expect(faultsOf("a=1,a-1:flaky")).toMatch(/noregister, notready/)
    expect(faultsOf("a=1,a-1:notready+0")).toMatch(/1 or more/)
    expect(faultsOf("a=1,a=1")).toMatch(/named twice/)
    // without fault parts, the nodes are what they always were
    expect(parseNodes("a=1,a-1:noregister")).toEqual([{ name: "a-1", pool: "a", slots: 1 }])
    const settings = Effect.runSync(simSettingsConfig.pipe(withEnv({ SIM_NODES: "a=2,a-2:unknown@5m" })))
    expect(settings.boardFaults).toEqual([{ node: "a-2", kind: "notReady", ready: "Unknown", atMs: 300_000, forMs: null }])
  })

  it("development secrets are generated only when unset, and only under --simulate", () => {
    const base = { webhookSecret: Option.none(), traceSecret: Option.none() }
    const generated = Effect.runSync(withDevSecrets(base, true).pipe(withEnv({})))
    expect(generated.devSecrets.map((s) => s.variable)).toEqual(["GHAPP_WEBHOOK_SECRET", "TRACE_API_SECRET"])
    expect(Option.map(generated.webhookSecret, Redacted.value)).toEqual(Option.some(Redacted.value(generated.devSecrets[0]!.value)))
    const configured = Effect.runSync(withDevSecrets({
      webhookSecret: Option.some(Redacted.make("mine")),
      traceSecret: Option.some(Redacted.make("also-mine"))
    }, true).pipe(withEnv({})))
    expect(configured.devSecrets).toEqual([])
    expect(Option.map(configured.webhookSecret, Redacted.value)).toEqual(Option.some("mine"))
    const live = Effect.runSync(withDevSecrets(base, false))
    expect(live.devSecrets).toEqual([])
    expect(Option.isNone(live.webhookSecret)).toBe(true)
  })

  it("deliveries are signed the way GitHub signs them", () => {
    const body = new TextEncoder().encode('{"action":"queued"}')
    expect(signDelivery(Redacted.make("s3cret"), body)).toBe(signBody("s3cret", body))
  })
})

describe("event lines", () => {
  it("one line per notable event, durations in simulated seconds", () => {
    const at = Date.UTC(2026, 0, 5, 9, 30, 5)
    expect(formatEvent({ _tag: "JobQueued", at, jobId: 7, owner: "acme", repo: "acme/app", labels: ["ubuntu-24.04-riscv"], durationMs: 60_000 }, 10))
      .toBe("09:30:05  queued      job 7  acme/app  [ubuntu-24.04-riscv]  runs 60 s")
    expect(formatEvent({ _tag: "JobDone", at, jobId: 7, pod: "p", owner: "acme", conclusion: "success", waitedMs: 2_000, ranMs: 6_000 }, 10))
      .toBe("09:30:05  done        job 7  success  (waited 20 s, ran 60 s)")
    expect(formatEvent({ _tag: "RunnerOnline", at, pod: "p", node: "n" }, 10)).toBeUndefined()
  })
})

describe("fairness figures", () => {
  it("max-min shares give nobody more than it asks; Jain's index is 1 for equal, 1/n for one taker", () => {
    expect(maxMinShares([10, 1, 1], 4)).toEqual([2, 1, 1])
    expect(maxMinShares([10, 10, 10], 3)).toEqual([1, 1, 1])
    expect(maxMinShares([0, 5], 4)).toEqual([0, 4])
    expect(jainIndex([5, 5, 5])).toBeCloseTo(1)
    expect(jainIndex([9, 0, 0])).toBeCloseTo(1 / 3)
  })
})

describe("percentile", () => {
  it("is the nearest rank over the values in any order, and NaN for none", () => {
    const values = [7, 1, 9, 3, 5, 2, 8, 4, 10, 6]
    expect(percentile(values, 0.5)).toBe(5)
    expect(percentile(values, 0.95)).toBe(10)
    expect(percentile(values, 0.99)).toBe(10)
    expect(percentile(values, 0.1)).toBe(1)
    expect(percentile(values, 0)).toBe(1)
    expect(percentile(values, 1)).toBe(10)
    expect(percentile([42], 0.5)).toBe(42)
    expect(percentile([], 0.5)).toBeNaN()
    // the input is left as it was
    expect(values[0]).toBe(7)
  })
})
