import { describe, expect, it } from "@effect/vitest"
import { Context, Effect, Either, Layer, Redacted, type Scope } from "effect"
import { addStubNode, KubeStub, KubeStubLive } from "../bench/support/kubeStub.ts"
import { KubeLive } from "../layers/kube/client.ts"
import { combineClusters, type ClusterMember } from "../layers/kube/clusters.ts"
import { KubeMemory, KubeMemoryControl } from "../layers/kube/memory.ts"
import { DEFAULT_CLUSTER } from "../src/domain/RunnerConfig.ts"
import { Kube, type KubeShape, type RunnerPodRequest } from "../src/services/Kube.ts"

/*
 * A `Kube` over two clusters, on both implementations: two API stubs each with its own KubeLive, and two in-memory
 * clusters. The default cluster holds `scw-em-rv1`, the `lab` cluster `jupiter`.
 */

interface OneCluster {
  readonly kube: KubeShape
  /** the next pod listing of this cluster fails with HTTP 500 */
  readonly failNextPodListing: Effect.Effect<void>
  readonly podNames: Effect.Effect<ReadonlyArray<string>>
  /** how many delete requests this cluster's API got */
  readonly deletes: Effect.Effect<number>
}

type Build = (pool: string) => Effect.Effect<OneCluster, never, Scope.Scope>

const onStub: Build = (pool) =>
  Effect.gen(function*() {
    const stub = Context.get(yield* Layer.build(KubeStubLive), KubeStub)
    addStubNode(stub, `${pool}-node`, pool, 2)
    const kube = Context.get(yield* Effect.orDie(Layer.build(KubeLive({ kubeconfigYaml: Redacted.make(stub.kubeconfig) }))), Kube)
    return {
      kube,
      failNextPodListing: Effect.sync(() => void stub.faults.push({ operation: "listPods", status: 500 })),
      podNames: Effect.sync(() => [...stub.pods.values()].map((p) => String(p.metadata.name))),
      deletes: Effect.sync(() => stub.requests.filter((r) => r.operation === "deletePod").length)
    }
  })

const inMemory: Build = (pool) =>
  Effect.gen(function*() {
    const context = yield* Layer.build(KubeMemory({ tick: null, nodes: [{ name: `${pool}-node`, pool, slots: 2 }] }))
    const control = Context.get(context, KubeMemoryControl)
    return {
      kube: Context.get(context, Kube),
      failNextPodListing: control.injectFault({ operation: "listPods", times: 1 }),
      podNames: Effect.map(control.pods, (pods) => pods.map((p) => p.name)),
      deletes: Effect.map(control.callCounts, (c) => c.deletePod)
    }
  })

const request = (name: string, pool: string): RunnerPodRequest => ({
  name,
  jitConfig: Redacted.make("c2VjcmV0"),
  image: "registry.example/riscv-runner:ubuntu-24.04-latest",
  pool,
  entity: { type: "User", id: 660779, name: "luhenry" },
  installationId: 88
})

const twoClusters = (build: Build) =>
  Effect.gen(function*() {
    const home = yield* build("scw-em-rv1")
    const lab = yield* build("jupiter")
    const members: ReadonlyArray<ClusterMember> = [
      { name: DEFAULT_CLUSTER, pools: [], kube: home.kube },
      { name: "lab", pools: ["jupiter"], kube: lab.kube }
    ]
    return { home, lab, kube: combineClusters(members) }
  })

const suite = (label: string, build: Build) =>
  describe(`Kube over two clusters: ${label}`, () => {
    it.scoped("a pod is created in its pool's cluster, and deleted there only", () =>
      Effect.gen(function*() {
        const { home, lab, kube } = yield* twoClusters(build)
        expect(kube.clusterOf("jupiter")).toBe("lab")
        expect(kube.clusterOf("scw-em-rv1")).toBe(DEFAULT_CLUSTER)
        expect(kube.clusterOf("anything-else")).toBe(DEFAULT_CLUSTER)
        yield* kube.createRunnerPod(request("p-home", "scw-em-rv1"))
        yield* kube.createRunnerPod(request("p-lab", "jupiter"))
        expect(yield* home.podNames).toEqual(["p-home"])
        expect(yield* lab.podNames).toEqual(["p-lab"])
        expect((yield* kube.listRunnerPods).map((p) => p.name).sort()).toEqual(["p-home", "p-lab"])
        yield* kube.deletePod("p-lab", { gracePeriodSeconds: 0 })
        expect(yield* lab.podNames).toEqual([])
        expect(yield* home.podNames).toEqual(["p-home"])
        expect(yield* home.deletes).toBe(0)
        // a pod never seen (a previous process's) is deleted in every cluster, each counting a missing pod as done
        yield* kube.deletePod("p-unseen")
        expect(yield* home.deletes).toBe(1)
        expect(yield* lab.deletes).toBe(2)
      }))

    it.scoped("capacity: each cluster's pools, from its own boards", () =>
      Effect.gen(function*() {
        const { kube } = yield* twoClusters(build)
        const readings = yield* kube.capacityByCluster
        expect(readings.map((r) => [r.cluster, Either.isRight(r.result) ? [...r.result.right.keys()] : "failed"])).toEqual([
          [DEFAULT_CLUSTER, ["scw-em-rv1"]],
          ["lab", ["jupiter"]]
        ])
        expect([...(yield* kube.capacity).keys()].sort()).toEqual(["jupiter", "scw-em-rv1"])
      }))

    it.scoped("a cluster whose pod listing fails is a failed reading beside the other's pods, never an empty list", () =>
      Effect.gen(function*() {
        const { lab, kube } = yield* twoClusters(build)
        yield* kube.createRunnerPod(request("p-home", "scw-em-rv1"))
        yield* kube.createRunnerPod(request("p-lab", "jupiter"))
        yield* lab.failNextPodListing
        const readings = yield* kube.runnerPodsByCluster
        expect(readings[0]!.cluster).toBe(DEFAULT_CLUSTER)
        expect(Either.isRight(readings[0]!.result) && readings[0]!.result.right.map((p) => p.name)).toEqual(["p-home"])
        expect(readings[1]!.cluster).toBe("lab")
        expect(Either.isLeft(readings[1]!.result) && readings[1]!.result.left.message).toMatch(/^cluster lab: /)
        // the merged listing fails as a whole rather than pass off the lab's pods as gone
        yield* lab.failNextPodListing
        const merged = yield* Effect.either(kube.listRunnerPods)
        expect(Either.isLeft(merged) && merged.left.message).toMatch(/^cluster lab: /)
        // the merged capacity is the pools of the clusters that answered
        yield* lab.failNextPodListing
        expect([...(yield* kube.capacity).keys()]).toEqual(["scw-em-rv1"])
        // and the next listing, without a fault, has both again
        expect((yield* kube.listRunnerPods).map((p) => p.name).sort()).toEqual(["p-home", "p-lab"])
      }))

    it.scoped("call counts add up both clusters", () =>
      Effect.gen(function*() {
        const { kube } = yield* twoClusters(build)
        yield* kube.listRunnerPods
        expect((yield* kube.callCounts).listPods).toBe(2)
      }))
  })

suite("client-node on two API stubs", onStub)
suite("two in-memory clusters", inMemory)
