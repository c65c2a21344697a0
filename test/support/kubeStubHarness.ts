import { Effect, Layer } from "effect"
import {
  addStubNode,
  finishStubPod,
  KubeStub,
  KubeStubLive,
  kubeLiveOnStub,
  setStubNodeHealth,
  startStubPod
} from "../../bench/support/kubeStub.ts"
import { KubeHarness } from "./kubeHarness.ts"

/** Dies with the stub's reason when it could not do what the harness asked. */
const orDie = (problem: string | undefined) => (problem === undefined ? Effect.void : Effect.dieMessage(`stub: ${problem}`))

/** The contract harness over the stub: the test plays scheduler and kubelet by editing the stored objects. */
export const stubHarness = Layer.effect(
  KubeHarness,
  Effect.map(KubeStub, (stub) =>
    KubeHarness.of({
      addNode: (name, pool, slots) => Effect.sync(() => addStubNode(stub, name, pool, slots)),
      setNodeHealth: (name, change) => Effect.sync(() => setStubNodeHealth(stub, name, change)),
      startPod: (name) => Effect.suspend(() => orDie(startStubPod(stub, name))),
      finishPod: (name, exitCode) => Effect.suspend(() => orDie(finishStubPod(stub, name, exitCode))),
      writeLog: (pod, container, text) =>
        Effect.sync(() => void stub.logs.set(`${pod}/${container}`, (stub.logs.get(`${pod}/${container}`) ?? "") + text)),
      settle: Effect.void,
      failNext: (operation, status) => Effect.sync(() => void stub.faults.push({ operation, status }))
    })
  )
)

/** Everything a contract test needs: the stub, KubeLive on it, and the harness. */
export const stubContractLayer = () =>
  Layer.mergeAll(kubeLiveOnStub(), stubHarness).pipe(Layer.provideMerge(KubeStubLive))
