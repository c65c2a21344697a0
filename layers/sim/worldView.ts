import { Effect } from "effect"
import { clusterOfPool, DEFAULT_CLUSTER } from "../../src/domain/RunnerConfig.ts"
import type { WorldCore } from "./worldCore.ts"

/*
 * The world's view for `GET /sim/state`: nodes (with their cluster and pods), pods, runners and jobs as GitHub sees
 * them, and the faults in force. Read only. A node's cluster is its pool's, as the runner config routes it: the
 * simulated clusters are built from the same SIM_NODES parts as the config's `clusters`, and a node without a pool
 * is in the default cluster, where the combined clusters put it.
 */

export const worldView = (core: WorldCore): Effect.Effect<unknown> => {
  const { github, kube, jobs, downNodes, speed } = core
  return Effect.gen(function*() {
    const [nodes, pods, gh] = [yield* kube.nodes, yield* kube.pods, yield* github.snapshot]
    return {
      speed,
      nodes: nodes.map((n) => ({
        name: n.name,
        pool: n.pool,
        cluster: n.pool === null ? DEFAULT_CLUSTER : clusterOfPool(core.options.runnerConfig, n.pool),
        slots: n.slots,
        ready: n.ready ?? "True",
        pods: pods.filter((p) => p.nodeName === n.name && (p.phase === "Pending" || p.phase === "Running")).map((p) => p.name)
      })),
      downNodes: [...downNodes],
      boardFaults: core.options.boardFaults ?? [],
      pods: pods.map((p) => ({
        name: p.name,
        phase: p.phase,
        node: p.nodeName,
        pool: p.request.pool,
        entity: p.request.entity.name,
        reason: p.reason,
        createdAt: p.creationTime.toISOString()
      })),
      runners: gh.runners.map((r) => ({
        id: r.id,
        name: r.name,
        status: r.status,
        busy: r.busy,
        labels: r.labels,
        scope: r.scope._tag === "Org" ? `org ${r.scope.org} (group ${r.scope.groupId})` : `repo ${r.scope.repo}`
      })),
      jobs: gh.jobs.map((j) => {
        const mine = jobs.get(j.id)
        return {
          id: j.id,
          repo: j.repo,
          labels: j.labels,
          status: j.status,
          conclusion: j.conclusion,
          runner: j.runner_name,
          queuedAt: mine === undefined ? null : new Date(mine.queuedAt).toISOString(),
          startedAt: mine?.startedAt == null ? null : new Date(mine.startedAt).toISOString(),
          completedAt: mine?.completedAt == null ? null : new Date(mine.completedAt).toISOString()
        }
      }),
      faults: core.faults
    }
  })
}
