import { ConfigProvider, Duration, Effect, Either, Layer, Schema } from "effect"
import { describe, expect, it } from "vitest"
import { KubeMemoryControl } from "../layers/kube/memory.ts"
import { parseCluster, SIMULATED_KUBECONFIG, withSimClusters } from "../layers/sim/cluster.ts"
import { simSettingsConfig } from "../layers/sim/settings.ts"
import { SimCluster, simulatedRunnerConfig } from "../layers/sim/simulation.ts"
import { defaultRunnerConfigInput, RunnerConfig } from "../src/domain/RunnerConfig.ts"
import { Kube } from "../src/services/Kube.ts"
import { type Harness, stepUntil, withHarness } from "../bench/support/simHarness.ts"

/*
 * SIM_NODES' clusters: `lab/lab-rv1=2,scw-em-rv1=2` is a simulated cluster `lab` beside the default one. The
 * settings and the runner config they generate; the layer `--simulate` builds from them (one in-memory cluster
 * each, behind `combineClusters`); and jobs of both clusters' pools served by the real scheduler.
 */

const withEnv = (env: Record<string, string>) => Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env))))
const LAB = ["lab", "ubuntu-24.04-riscv"]
const config = Schema.decodeUnknownSync(RunnerConfig)({
  ...defaultRunnerConfigInput,
  rules: [...defaultRunnerConfigInput.rules, { labels: LAB, pool: "lab-rv1", image: "riscv-runner:ubuntu-24.04-{channel}" }],
  entities: { "1001": { name: "acme" } }
})
const TWO = "lab/lab-rv1=2,scw-em-rv1=2"

describe("SIM_NODES with clusters", () => {
  it("a cluster/ prefix puts a pool's nodes in a named cluster; unprefixed parts stay in the default one", () => {
    expect(parseCluster("lab/lab-rv1=2x2,scw-em-rv1=1,lab/other=1,lab-rv1-1:noregister")).toEqual({
      nodes: [
        { name: "lab-rv1-1", pool: "lab-rv1", slots: 2 },
        { name: "lab-rv1-2", pool: "lab-rv1", slots: 2 },
        { name: "scw-em-rv1-1", pool: "scw-em-rv1", slots: 1 },
        { name: "other-1", pool: "other", slots: 1 }
      ],
      boardFaults: [{ node: "lab-rv1-1", kind: "noRegister" }],
      clusters: [{ name: "lab", pools: ["lab-rv1", "other"] }]
    })
    // without prefixes: one cluster, as before
    expect(parseCluster("scw-em-rv1=2")).toMatchObject({ clusters: [] })
    const settings = Effect.runSync(simSettingsConfig.pipe(withEnv({ SIM_NODES: "a/x=1,b/y=1,z=1" })))
    expect(settings.clusters).toEqual([{ name: "a", pools: ["x"] }, { name: "b", pools: ["y"] }])
    expect(settings.nodes.map((n) => n.name)).toEqual(["x-1", "y-1", "z-1"])
  })

  it("bad cluster parts are refused with a message that says what is wrong", () => {
    expect(parseCluster("Lab/x=1")).toMatch(/"Lab\/x=1": cluster names are lower-case letters, digits and -/)
    expect(parseCluster("/x=1")).toMatch(/cluster names are lower-case/)
    expect(parseCluster("default/x=1")).toMatch(/without a cluster\/ prefix are the default cluster/)
    expect(parseCluster("lab/x=1,x=1")).toMatch(/pool x is already in cluster lab; a pool lives in one cluster/)
    expect(parseCluster("lab/x=1,other/x=1")).toMatch(/already in cluster lab/)
    expect(parseCluster("lab/x=1,lab/x-1:noregister")).toMatch(/a fault names its node alone/)
    expect(parseCluster("lab/x")).toMatch(/is not \[cluster\/\]pool=count/)
    // the same pool twice in one cluster is fine until a node name repeats
    expect(parseCluster("lab/x=1,lab/x=1")).toMatch(/node x-1 is named twice/)
    const bad = Effect.runSync(Effect.either(simSettingsConfig.pipe(withEnv({ SIM_NODES: "lab/x=1,x=1" }))))
    expect(Either.isLeft(bad) && String(bad.left)).toMatch(/SIM_NODES.*already in cluster lab/)
  })

  it("the generated runner config lists the simulated clusters, checked as a real one's", () => {
    const cluster = parseCluster(TWO)
    if (typeof cluster === "string") throw new Error(cluster)
    const generated = withSimClusters(config, cluster)
    expect(typeof generated === "string" ? generated : generated.clusters).toEqual([
      { name: "lab", kubeconfig: SIMULATED_KUBECONFIG, pools: ["lab-rv1"] }
    ])
    // a real config's clusters give way to the simulated ones: their kubeconfigs mean nothing under --simulate
    const real = { ...config, clusters: [{ name: "scw", kubeconfig: "/etc/riscv-runner/scw.kubeconfig", pools: ["scw-em-rv1"] as const }] }
    expect(typeof generated === "string" ? undefined : withSimClusters(real, cluster)).toEqual(generated)
    const nowhere = parseCluster("lab/gpu-pool=1,scw-em-rv1=1")
    if (typeof nowhere === "string") throw new Error(nowhere)
    expect(withSimClusters(config, nowhere)).toBe(`SIM_NODES: pool "gpu-pool" is in no rule`)
    expect(Effect.runSync(Effect.either(simulatedRunnerConfig(config).pipe(withEnv({ SIM_NODES: "lab/gpu-pool=1" }))))).toEqual(
      Either.left(`SIM_NODES: pool "gpu-pool" is in no rule`)
    )
    const none = Effect.runSync(simulatedRunnerConfig(config).pipe(withEnv({})))
    expect(none.clusters).toEqual([])
  })

  it("--simulate's cluster layer is one in-memory cluster per name, routed by pool like the live clusters", async () => {
    const seen = await Effect.runPromise(Effect.scoped(Effect.gen(function*() {
      const context = yield* Layer.build(SimCluster)
      const kube = (yield* Effect.map(Effect.succeed(context), (c) => c.unsafeMap.get(Kube.key))) as typeof Kube.Service
      const control = (yield* Effect.map(Effect.succeed(context), (c) => c.unsafeMap.get(KubeMemoryControl.key))) as typeof KubeMemoryControl.Service
      const readings = yield* kube.capacityByCluster
      return {
        clusterOf: ["lab-rv1", "scw-em-rv1", "unknown-pool"].map(kube.clusterOf),
        capacity: readings.map((r) => [r.cluster, Either.isRight(r.result) ? [...r.result.right.keys()] : r.result.left.message]),
        nodes: (yield* control.nodes).map((n) => n.name)
      }
    })).pipe(withEnv({ SIM_NODES: TWO })))
    expect(seen.clusterOf).toEqual(["lab", "default", "default"])
    expect(seen.capacity).toEqual([["default", ["scw-em-rv1"]], ["lab", ["lab-rv1"]]])
    expect(seen.nodes).toEqual(["scw-em-rv1-1", "scw-em-rv1-2", "lab-rv1-1", "lab-rv1-2"])
  })
})

describe("two simulated clusters, through the real scheduler", () => {
  const cluster = parseCluster(TWO)
  if (typeof cluster === "string") throw new Error(cluster)
  const generated = withSimClusters(config, cluster)
  if (typeof generated === "string") throw new Error(generated)
  const run = <A>(body: (h: Harness) => Effect.Effect<A, unknown, never>) =>
    Effect.runPromise(withHarness({ nodes: cluster.nodes, clusters: cluster.clusters, runnerConfig: generated, everyJobServed: true }, body) as Effect.Effect<A>)

  it("each pool's jobs run on its own cluster's boards, and one cluster's API failing leaves the other serving", () =>
    run((h) =>
      Effect.gen(function*() {
        expect(h.clusters.map((c) => [c.name, c.pools])).toEqual([["default", []], ["lab", ["lab-rv1"]]])
        // GET /sim/state names each node's cluster: the member that holds it
        const shown = ((yield* h.world.state) as { nodes: Array<{ name: string; cluster: string }> }).nodes
        const held = yield* Effect.forEach(h.clusters, (c) => Effect.map(c.control.nodes, (ns) => ns.map((n) => [n.name, c.name])))
        expect(shown.map((n) => [n.name, n.cluster]).sort()).toEqual(held.flat().sort())
        expect(shown.map((n) => [n.name, n.cluster])).toEqual([
          ["scw-em-rv1-1", "default"], ["scw-em-rv1-2", "default"], ["lab-rv1-1", "lab"], ["lab-rv1-2", "lab"]
        ])
        const [lab, home] = [h.clusters[1]!, h.clusters[0]!]
        // lab's API refuses every listing until it is repaired: its phases are skipped, the default cluster's run
        yield* lab.control.injectFault({ operation: "listNodes", status: 503, times: 1_000 })
        yield* lab.control.injectFault({ operation: "listPods", status: 503, times: 1_000 })
        yield* h.world.submitJobs({ owner: "acme", repo: "acme/app", labels: LAB, durationSeconds: 120, count: 4 })
        yield* h.world.submitJobs({ owner: "acme", repo: "acme/app", labels: ["ubuntu-24.04-riscv"], durationSeconds: 120, count: 4 })
        const homeDone = Effect.map(h.world.jobs, (jobs) => jobs.filter((j) => j.labels.length === 1 && j.conclusion === "success").length === 4)
        expect(yield* stepUntil(h, homeDone, Duration.minutes(15))).toBe(true)
        expect((yield* lab.control.pods).length).toBe(0)
        expect((yield* h.world.jobs).filter((j) => j.labels.length === 2).map((j) => j.status)).toEqual(Array(4).fill("queued"))
        yield* lab.control.clearFaults
        expect(yield* stepUntil(h, h.settled, Duration.minutes(30))).toBe(true)
        yield* h.finalChecks

        const poolsIn = (pods: ReadonlyArray<{ readonly request: { readonly pool: string } }>) => [...new Set(pods.map((p) => p.request.pool))]
        expect(poolsIn(yield* lab.control.pods)).toEqual(["lab-rv1"])
        expect(poolsIn(yield* home.control.pods)).toEqual(["scw-em-rv1"])
        // at least one runner per job on each side (a retry adds more), and every job succeeded
        expect((yield* lab.control.pods).length).toBeGreaterThanOrEqual(4)
        expect((yield* home.control.pods).length).toBeGreaterThanOrEqual(4)
        expect((yield* h.world.jobs).map((j) => j.conclusion)).toEqual(Array(8).fill("success"))
        expect(h.logs.some((l) => l.includes("cluster lab"))).toBe(true)
        expect(h.violations).toEqual([])
      })
    ))
})
