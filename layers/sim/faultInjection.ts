import { Duration, Effect, Option, Random } from "effect"
import type { Deliveries } from "./deliveries.ts"
import { githubOperations } from "../../src/services/Github.ts"
import { type FaultPatch, noFaults } from "./faults.ts"
import type { WorldCore } from "./worldCore.ts"

/*
 * The faults set from outside (`setFaults`: the control API, the simulation tests) and the one kind of fault that
 * is an act rather than a share of events: a node lost, and back after its downtime. The other faults are drawn
 * where they strike (`deliveries.ts`, `runnerLifecycle.ts`).
 */

export const makeFaultInjection = (core: WorldCore, deliveries: Pick<Deliveries, "startOutage">) => {
  const { github, kube, downNodes, timings, locked, publish, spawn, simSleep, now } = core

  /** Takes a node away now (the named one, or one drawn at random); it returns after the downtime. */
  const loseNode = (name?: string) =>
    Effect.gen(function*() {
      const nodes = (yield* kube.nodes).filter((n) => n.pool !== null && !downNodes.has(n.name) && !core.faultyBoards.has(n.name))
      const node = name === undefined
        ? nodes[Math.floor((yield* Random.next) * nodes.length)]
        : nodes.find((n) => n.name === name)
      if (node === undefined) return Option.none<string>()
      downNodes.add(node.name)
      core.count("nodesLost")
      yield* kube.removeNode(node.name, "Failed")
      yield* publish({ _tag: "Fault", at: yield* now, kind: "node lost", detail: `${node.name} (${node.pool})` })
      yield* spawn(Effect.gen(function*() {
        yield* simSleep(timings.nodeDowntime)
        yield* kube.addNode(node.name, node.pool, node.slots)
        downNodes.delete(node.name)
        yield* publish({ _tag: "Fault", at: yield* now, kind: "node back", detail: node.name })
      }))
      return Option.some(node.name)
    })

  /** GitHub's faults are the in-memory GitHub's own, injected into every operation at the set shares. */
  const applyGithubFaults = Effect.gen(function*() {
    yield* github.clearFaults
    const at = yield* now
    for (const operation of githubOperations) {
      if (core.faults.githubErrors > 0) {
        yield* github.injectFault(operation, { _tag: "Status", status: 502, message: "Bad Gateway (simulated)" }, {
          probability: core.faults.githubErrors
        })
      }
      if (core.faults.githubRateLimits > 0) {
        yield* github.injectFault(operation, { _tag: "RateLimited", resetAt: new Date(at + 60_000), retryAfterSeconds: 1 }, {
          probability: core.faults.githubRateLimits
        })
      }
    }
  })

  /** Applies the patch (`off` first clears every fault; `loseNodes` takes that many nodes away at once). */
  const setFaults = (patch: FaultPatch) =>
    locked(Effect.gen(function*() {
      const { off, loseNodes, webhookOutage, ...rest } = patch
      const defined = Object.fromEntries(Object.entries(rest).filter(([, v]) => v !== undefined))
      core.faults = { ...(off === true ? noFaults : core.faults), ...defined }
      yield* applyGithubFaults
      if (webhookOutage !== undefined) yield* deliveries.startOutage(Duration.seconds(webhookOutage))
      return core.faults
    })).pipe(Effect.tap(() => Effect.forEach(Array.from({ length: patch.loseNodes ?? 0 }, (_, i) => i), () => loseNode(), { discard: true })))

  return { loseNode, setFaults }
}
