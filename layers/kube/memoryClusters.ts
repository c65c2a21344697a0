import { Context, Effect, Layer } from "effect"
import { DEFAULT_CLUSTER } from "../../src/domain/RunnerConfig.ts"
import { Kube, type KubeOperation, kubeOperations, type KubeShape } from "../../src/services/Kube.ts"
import { combineClusters } from "./clusters.ts"
import { KubeMemory, KubeMemoryControl, type KubeMemoryControlShape, type KubeMemoryOptions } from "./memory.ts"
import { makePhaseChangeFeed } from "./memoryPhaseFeed.ts"

/*
 * Several in-memory clusters behind one `Kube`, for the simulation: each member is a `KubeMemory` of its own, and
 * the scheduler sees them through `combineClusters`, exactly the routing main.ts puts over one `KubeLive` per real
 * cluster. The world and the tests drive them through one `KubeMemoryControl` that sends each call to the member
 * holding the node, pod or pool it names, so the simulated GitHub and kubelet need not know there are several.
 */

/** One simulated cluster: its name, the pools it holds (empty for the default cluster), its cluster's options. */
export interface MemoryClusterSpec {
  readonly name: string
  readonly pools: ReadonlyArray<string>
  readonly options: KubeMemoryOptions
}

/** A member as built: its own `Kube` and control handle. */
export interface MemoryClusterMember {
  readonly name: string
  readonly pools: ReadonlyArray<string>
  readonly kube: KubeShape
  readonly control: KubeMemoryControlShape
}

/**
 * One control handle over several members. A call that names a node or a pod reaches the member that has it (the others have nothing to do); one
 * that names a pool to the pool's cluster; `reconcile`, `injectFault` and `clearFaults` to every member (a fault
 * injected so fails the operation once in each cluster). Phase changes of every member are published on one feed,
 * and the handlers run inline, as a single cluster runs them.
 */
export const combineMemoryControls = (members: ReadonlyArray<MemoryClusterMember>) =>
  Effect.gen(function*() {
    const poolOwner = new Map(members.flatMap((m) => m.pools.map((pool) => [pool, m] as const)))
    const fallback = members.find((m) => m.name === DEFAULT_CLUSTER) ?? members[0]!
    const ofPool = (pool: string | null) => (pool === null ? undefined : poolOwner.get(pool)) ?? fallback
    const withNode = (name: string) =>
      Effect.map(Effect.forEach(members, (m) => Effect.map(m.control.nodes, (nodes) => nodes.some((n) => n.name === name) ? [m] : [])), (found) => found.flat()[0])
    /** the first member for which `call` answers true (a member without the node or pod answers false) */
    const firstTrue = (call: (m: MemoryClusterMember) => Effect.Effect<boolean>) =>
      Effect.reduce(members, false, (done, m) => (done ? Effect.succeed(true) : call(m)))

    const feed = yield* makePhaseChangeFeed
    for (const m of members) yield* m.control.onPhaseChange((change) => feed.announce([change]))

    return KubeMemoryControl.of({
      addNode: (name, pool, slots) =>
        Effect.flatMap(withNode(name), (m) =>
          // a node that moves to another pool's cluster leaves the one it was in
          Effect.zipRight(m === undefined || m === ofPool(pool) ? Effect.void : m.control.removeNode(name), ofPool(pool).control.addNode(name, pool, slots))),
      // a member without the node leaves it alone
      removeNode: (name, podsBecome) => Effect.forEach(members, (m) => m.control.removeNode(name, podsBecome), { discard: true }),
      nodes: Effect.map(Effect.forEach(members, (m) => m.control.nodes), (lists) => lists.flat()),
      setNodeHealth: (name, change) => firstTrue((m) => m.control.setNodeHealth(name, change)),
      reconcile: Effect.forEach(members, (m) => m.control.reconcile, { discard: true }),
      finishPod: (name, exitCode) => firstTrue((m) => m.control.finishPod(name, exitCode)),
      // a member without the pod writes nothing
      writeLog: (podName, container, text) => Effect.forEach(members, (m) => m.control.writeLog(podName, container, text), { discard: true }),
      failImagePull: (target, failing) =>
        "pool" in target
          ? ofPool(target.pool).control.failImagePull(target, failing)
          : Effect.forEach(members, (m) => m.control.failImagePull(target, failing), { discard: true }),
      holdPending: (target, held) =>
        "pool" in target
          ? ofPool(target.pool).control.holdPending(target, held)
          : Effect.forEach(members, (m) => m.control.holdPending(target, held), { discard: true }),
      injectFault: (fault) => Effect.forEach(members, (m) => m.control.injectFault(fault), { discard: true }),
      clearFaults: Effect.forEach(members, (m) => m.control.clearFaults, { discard: true }),
      pods: Effect.map(Effect.forEach(members, (m) => m.control.pods), (lists) => lists.flat().sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))),
      callCounts: Effect.map(Effect.forEach(members, (m) => m.control.callCounts), (all) => {
        const sum = Object.fromEntries(kubeOperations.map((op) => [op, 0])) as Record<KubeOperation, number>
        for (const counts of all) for (const op of kubeOperations) sum[op] += counts[op]
        return sum
      }),
      changes: feed.changes,
      subscribe: feed.subscribe,
      onPhaseChange: feed.onPhaseChange
    })
  })

/** Builds every member in the current scope: its `KubeMemory`, then `Kube` and control handle over them all. */
export const makeMemoryClusters = (specs: ReadonlyArray<MemoryClusterSpec>) =>
  Effect.gen(function*() {
    const members = yield* Effect.forEach(specs, (spec) =>
      Effect.map(Layer.build(KubeMemory(spec.options)), (context): MemoryClusterMember => ({
        name: spec.name,
        pools: spec.pools,
        kube: Context.get(context, Kube),
        control: Context.get(context, KubeMemoryControl)
      })))
    const kube = combineClusters(members)
    const control = yield* combineMemoryControls(members)
    return { kube, control, members }
  })

/**
 * `Kube` and `KubeMemoryControl` over several simulated clusters (one of them `DEFAULT_CLUSTER`); a single spec is
 * that cluster's `KubeMemory` alone, as it was before clusters.
 */
export const KubeMemoryClusters = (specs: ReadonlyArray<MemoryClusterSpec>): Layer.Layer<Kube | KubeMemoryControl> =>
  specs.length === 1
    ? KubeMemory(specs[0]!.options)
    : Layer.scopedContext(
      Effect.map(makeMemoryClusters(specs), ({ control, kube }) => Context.make(Kube, kube).pipe(Context.add(KubeMemoryControl, control)))
    )
