import { Effect } from "effect"
import { DEFAULT_CLUSTER } from "../../src/domain/RunnerConfig.ts"
import { Kube, type KubeOperation, type KubeShape } from "../../src/services/Kube.ts"
import { collectFailureInfoWith } from "./failureInfo.ts"

/** The operations each layer implements itself; the rest of `Kube` is derived from them. */
export type KubeOperations = Omit<KubeShape, "collectFailureInfo" | "callCounts" | "clusterOf" | "capacityByCluster" | "runnerPodsByCluster">

/**
 * Completes a layer's operations into a `Kube`, shared by the live and the memory layers so both derive failure
 * collection from their own reads and report call counts the same way.
 */
export const assembleKube = (operations: KubeOperations, counts: Readonly<Record<KubeOperation, number>>) =>
  Kube.of({
    // one cluster: the default one, whatever its pools
    clusterOf: () => DEFAULT_CLUSTER,
    capacityByCluster: Effect.map(Effect.either(operations.capacity), (result) => [{ cluster: DEFAULT_CLUSTER, result }]),
    runnerPodsByCluster: Effect.map(Effect.either(operations.listRunnerPods), (result) => [{ cluster: DEFAULT_CLUSTER, result }]),
    capacity: operations.capacity,
    createRunnerPod: operations.createRunnerPod,
    listRunnerPods: operations.listRunnerPods,
    killPod: operations.killPod,
    deletePod: operations.deletePod,
    listBoards: operations.listBoards,
    podEvents: operations.podEvents,
    containerLogs: operations.containerLogs,
    watchRunnerPods: operations.watchRunnerPods,
    collectFailureInfo: collectFailureInfoWith({
      podEvents: operations.podEvents,
      containerLogs: operations.containerLogs
    }),
    callCounts: Effect.sync(() => ({ ...counts }))
  })
