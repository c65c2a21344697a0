import { Context, Effect, Layer, TestClock } from "effect"
import type { KubeOperation } from "../../src/services/Kube.ts"
import { KubeMemory, KubeMemoryControl, type KubeMemoryOptions, type NodeHealthChange } from "../../layers/kube/memory.ts"

/**
 * How the Kube contract suite sets up and moves a cluster, whichever layer is under test. For the memory layer
 * its own scheduler and kubelet do the work; for the live layer the stub server's state is edited directly.
 */
export interface KubeHarnessShape {
  readonly addNode: (name: string, pool: string | null, slots: number) => Effect.Effect<void>
  /** Changes a node's readiness, cordon or taints; `Unknown` means its kubelet is gone. */
  readonly setNodeHealth: (name: string, change: NodeHealthChange) => Effect.Effect<void>
  /** Brings a Pending pod to Running on a node of its pool (a slot must be free). */
  readonly startPod: (name: string) => Effect.Effect<void>
  /** The runner exits with this code. */
  readonly finishPod: (name: string, exitCode: number) => Effect.Effect<void>
  readonly writeLog: (pod: string, container: string, text: string) => Effect.Effect<void>
  /** Lets the cluster act on what was asked of it (a kill). */
  readonly settle: Effect.Effect<void>
  /** The next call of the operation fails with this HTTP status. */
  readonly failNext: (operation: KubeOperation, status: number) => Effect.Effect<void>
}

export class KubeHarness extends Context.Tag("test/KubeHarness")<KubeHarness, KubeHarnessShape>() {}

const memoryHarness = Layer.effect(
  KubeHarness,
  Effect.map(KubeMemoryControl, (control) =>
    KubeHarness.of({
      addNode: control.addNode,
      setNodeHealth: (name, change) => Effect.asVoid(control.setNodeHealth(name, change)),
      startPod: (name) =>
        Effect.gen(function*() {
          yield* control.reconcile
          const pod = (yield* control.pods).find((p) => p.name === name)
          if (pod?.phase !== "Running") return yield* Effect.dieMessage(`memory: ${name} did not start (${pod?.phase})`)
        }),
      finishPod: (name, exitCode) => Effect.asVoid(control.finishPod(name, exitCode)),
      writeLog: control.writeLog,
      // The kubelet enforces a deadline of 1 s one second after admission at the earliest; the layer's own tick
      // runs the pass when the TestClock moves.
      settle: TestClock.adjust("2 seconds"),
      failNext: (operation, status) => control.injectFault({ operation, status })
    })
  )
)

export const memoryContractLayer = (options: KubeMemoryOptions = {}) =>
  memoryHarness.pipe(Layer.provideMerge(KubeMemory(options)))
