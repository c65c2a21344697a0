import { Context, Effect, Either, Layer, Schedule, Stream } from "effect"
import { DEFAULT_CLUSTER } from "../../src/domain/RunnerConfig.ts"
import {
  type ClusterReading,
  Kube,
  KubeError,
  type KubeOperation,
  kubeOperations,
  type KubeShape,
  type PoolCapacity
} from "../../src/services/Kube.ts"
import { collectFailureInfoWith } from "./failureInfo.ts"

/** One cluster of a `Kube` over several: its name, the pools it holds, and its own `Kube`. */
export interface ClusterMember {
  readonly name: string
  /** empty for the default cluster, which holds every pool no other member names */
  readonly pools: ReadonlyArray<string>
  readonly kube: KubeShape
}

/** How soon a cluster's pod watch is opened again after it failed: 1 s, doubling, at most 30 s. */
const WATCH_RETRY = Schedule.exponential("1 second").pipe(Schedule.union(Schedule.spaced("30 seconds")))

/** A cluster's error with the cluster named, so a log line says which API failed. */
const inCluster = (cluster: string, e: KubeError) => new KubeError({ ...e, message: `cluster ${cluster}: ${e.message}` })

/**
 * One `Kube` over several clusters (`members`, one of them `DEFAULT_CLUSTER`), routed by pool: a pod is created
 * in its pool's cluster, and a pod named by the later calls (kill, delete, events, logs) goes to the cluster it
 * was last seen in (created, listed, watched), or to every cluster when it was never seen (each counts a missing
 * pod as done). Reads of every cluster run concurrently. The per-cluster readings keep each cluster's failure
 * apart; the merged `listRunnerPods` and `listBoards` fail when any cluster fails, never passing off a missing
 * cluster as one without pods or boards. The pod watch merges every cluster's; a cluster's watch that fails is
 * logged and opened again on its own, so the others keep running.
 */
export const combineClusters = (members: ReadonlyArray<ClusterMember>): KubeShape => {
  const byName = new Map(members.map((m) => [m.name, m]))
  const poolOwner = new Map(members.flatMap((m) => m.pools.map((pool) => [pool, m.name] as const)))
  const clusterOf = (pool: string) => poolOwner.get(pool) ?? DEFAULT_CLUSTER
  const memberOf = (pool: string): ClusterMember => byName.get(clusterOf(pool)) ?? members[0]!
  // pod name -> cluster, from every creation, listing and watch event; a pod's name never changes its cluster
  const seenIn = new Map<string, string>()
  const targets = (podName: string): ReadonlyArray<ClusterMember> => {
    const known = seenIn.get(podName)
    const member = known === undefined ? undefined : byName.get(known)
    return member === undefined ? members : [member]
  }

  const readAll = <A>(read: (kube: KubeShape) => Effect.Effect<A, KubeError>): Effect.Effect<ReadonlyArray<ClusterReading<A>>> =>
    Effect.forEach(
      members,
      (m) => Effect.map(Effect.either(Effect.mapError(read(m.kube), (e) => inCluster(m.name, e))), (result) => ({ cluster: m.name, result })),
      { concurrency: "unbounded" }
    )
  /** Every cluster's value, or the first cluster's error (the merge a caller without per-cluster handling needs). */
  const allOrFail = <A>(readings: ReadonlyArray<ClusterReading<A>>): Effect.Effect<ReadonlyArray<A>, KubeError> => {
    const failed = readings.find((r) => Either.isLeft(r.result))
    return failed !== undefined && Either.isLeft(failed.result)
      ? Effect.fail(failed.result.left)
      : Effect.succeed(readings.flatMap((r) => (Either.isRight(r.result) ? [r.result.right] : [])))
  }
  const onPod = (podName: string, call: (kube: KubeShape) => Effect.Effect<void, KubeError>) =>
    Effect.forEach(targets(podName), (m) => Effect.mapError(call(m.kube), (e) => inCluster(m.name, e)), {
      concurrency: "unbounded",
      discard: true
    })

  const runnerPodsByCluster = Effect.tap(readAll((k) => k.listRunnerPods), (readings) =>
    Effect.sync(() => {
      for (const r of readings) if (Either.isRight(r.result)) for (const pod of r.result.right) seenIn.set(pod.name, r.cluster)
    }))
  const capacityByCluster = readAll((k) => k.capacity)

  const podEvents: KubeShape["podEvents"] = (podName) =>
    Effect.map(
      Effect.forEach(targets(podName), (m) => Effect.mapError(m.kube.podEvents(podName), (e) => inCluster(m.name, e)), { concurrency: "unbounded" }),
      (lists) => lists.flat()
    )
  const containerLogs: KubeShape["containerLogs"] = (podName, container) =>
    Effect.firstSuccessOf(targets(podName).map((m) => Effect.mapError(m.kube.containerLogs(podName, container), (e) => inCluster(m.name, e))))

  return Kube.of({
    clusterOf,
    capacityByCluster,
    runnerPodsByCluster,
    capacity: Effect.flatMap(capacityByCluster, (readings) => {
      const answered = readings.flatMap((r) => (Either.isRight(r.result) ? [r.result.right] : []))
      const first = readings.find((r) => Either.isLeft(r.result))
      if (answered.length === 0 && first !== undefined && Either.isLeft(first.result)) return Effect.fail(first.result.left)
      return Effect.succeed(new Map<string, PoolCapacity>(answered.flatMap((m) => [...m])))
    }),
    createRunnerPod: (request) => {
      const member = memberOf(request.pool)
      seenIn.set(request.name, member.name)
      return member.kube.createRunnerPod(request).pipe(
        Effect.mapError((e) => (e._tag === "KubeError" ? inCluster(member.name, e) : e))
      )
    },
    listRunnerPods: Effect.map(Effect.flatMap(runnerPodsByCluster, allOrFail), (lists) => lists.flat()),
    killPod: (podName) => onPod(podName, (k) => k.killPod(podName)),
    deletePod: (podName, options) => onPod(podName, (k) => k.deletePod(podName, options)),
    listBoards: Effect.map(Effect.flatMap(readAll((k) => k.listBoards), allOrFail), (lists) => lists.flat()),
    podEvents,
    containerLogs,
    collectFailureInfo: collectFailureInfoWith({ podEvents, containerLogs }),
    watchRunnerPods: Stream.mergeAll(
      members.map((m) =>
        m.kube.watchRunnerPods.pipe(
          Stream.tap((change) => Effect.sync(() => void (change._tag === "Listed" ? undefined : seenIn.set(change.pod.name, m.name)))),
          Stream.tapError((e) =>
            Effect.logError("runner pod watch failed; opened again").pipe(Effect.annotateLogs({ cluster: m.name, error: e.message }))
          ),
          Stream.retry(WATCH_RETRY)
        )
      ),
      { concurrency: "unbounded" }
    ),
    callCounts: Effect.map(Effect.forEach(members, (m) => m.kube.callCounts), (all) => {
      const sum = Object.fromEntries(kubeOperations.map((op) => [op, 0])) as Record<KubeOperation, number>
      for (const counts of all) for (const op of kubeOperations) sum[op] += counts[op]
      return sum
    })
  })
}

/** A cluster as `KubeClusters` builds it: its name, its pools, and the layer of its own `Kube`. */
export interface ClusterLayer<E> {
  readonly name: string
  readonly pools: ReadonlyArray<string>
  readonly layer: Layer.Layer<Kube, E>
}

/** `Kube` over several clusters: each member's layer built, then `combineClusters`. */
export const KubeClusters = <E>(members: ReadonlyArray<ClusterLayer<E>>): Layer.Layer<Kube, E> =>
  Layer.scoped(
    Kube,
    Effect.map(
      Effect.forEach(members, (m) =>
        Effect.map(Layer.build(m.layer), (context): ClusterMember => ({ name: m.name, pools: m.pools, kube: Context.get(context, Kube) }))),
      combineClusters
    )
  )
