import { Context, Duration, Effect, Layer } from "effect"
import { Kube } from "../../src/services/Kube.ts"
import { assembleKube } from "./assembleKube.ts"
import { memoryOperations } from "./memoryApi.ts"
import { KubeMemoryControl, memoryControl } from "./memoryControl.ts"
import { reconcile as reconcilePass } from "./memoryKubelet.ts"
import type { KubeMemoryOptions } from "./memoryModel.ts"
import { makeClusterState } from "./memoryState.ts"

/**
 * An in-memory cluster: labelled nodes with device-plugin slots, and a simulated scheduler plus kubelet that
 * move runner pods through their phases on Effect's Clock, recording the events a real cluster records. It is
 * the `Kube` of tests and of `--simulate`, so it must behave like the real thing where the scheduler can tell:
 * capacity, phases, reasons, events, and the ways a cluster goes wrong.
 *
 * The parts live beside it: the model it shows (`memoryModel.ts`), its state (`memoryState.ts`), the simulated
 * scheduler and kubelet (`memoryKubelet.ts`), the API surface (`memoryApi.ts`) and the control handle
 * (`memoryControl.ts`). Everything is re-exported here, so importers name only this file.
 */

export { KubeMemoryControl, type KubeMemoryControlShape } from "./memoryControl.ts"
export type {
  Fault,
  KubeMemoryOptions,
  MemoryNode,
  MemoryPod,
  NodeHealthChange,
  NodeLoss,
  PodChange,
  PodTarget
} from "./memoryModel.ts"

export const KubeMemory = (options: KubeMemoryOptions = {}): Layer.Layer<Kube | KubeMemoryControl> =>
  Layer.scopedContext(
    Effect.gen(function*() {
      const state = yield* makeClusterState(options)
      const operations = memoryOperations(state)
      const reconcile = reconcilePass(state)
      const control = memoryControl(state, reconcile)

      const tick = options.tick === undefined ? Duration.seconds(1) : options.tick
      if (tick !== null) {
        yield* Effect.forkScoped(Effect.forever(Effect.sleep(tick).pipe(Effect.zipRight(reconcile))))
      }

      const kube = assembleKube(operations, state.counts)
      return Context.make(Kube, kube).pipe(Context.add(KubeMemoryControl, control))
    })
  )
