import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Context, Effect, Exit, Layer, Option, Redacted, Scope, TestClock } from "effect"
import { DbMemory } from "../layers/db/memory.ts"
import { DbPostgres } from "../layers/db/postgres.ts"
import { GithubMemory, GithubMemoryControl } from "../layers/github/memory.ts"
import { combineClusters } from "../layers/kube/clusters.ts"
import { KubeMemory, KubeMemoryControl, type KubeMemoryControlShape } from "../layers/kube/memory.ts"
import { DEFAULT_CLUSTER, defaultRunnerConfigInput } from "../src/domain/RunnerConfig.ts"
import type { Worker } from "../src/domain/Worker.ts"
import { schedulerApp } from "../src/operator/server.ts"
import { SchedulerSettings, SchedulerSettingsLive } from "../src/scheduler/settings.ts"
import { Db } from "../src/services/Db.ts"
import type { Github } from "../src/services/Github.ts"
import { Kube, kubeOperations } from "../src/services/Kube.ts"
import { newJob } from "./support/dbFixtures.ts"
import { getFrom } from "./support/http.ts"
import { emptyStore, freshDatabase } from "./support/postgres.ts"
import { makeCycle, ORG, queueJob, testRunnerConfig, workerRows } from "./support/schedulerWorld.ts"

/*
 * The scheduler over two clusters, on both Db implementations: two in-memory clusters combined by
 * `combineClusters` as main does it, the default one holding `scw-em-rv1` and `lab` holding `jupiter`. Each pool's
 * runners are created in their own cluster and their workers record it; while one cluster's whole API fails, the
 * other's jobs are provisioned and its phases run, and the failing cluster's workers are left as they are; when
 * the cluster answers again its workers are reconciled as usual.
 */

const LAB_LABELS: [string, ...Array<string>] = ["ubuntu-24.04-riscv", "lab"]

const runnerConfig = testRunnerConfig({
  rules: [
    { labels: LAB_LABELS, pool: "jupiter", image: "riscv-runner:ubuntu-24.04-{channel}" },
    { labels: ["ubuntu-24.04-riscv"], pool: "scw-em-rv1", image: "riscv-runner:ubuntu-24.04-{channel}" }
  ],
  clusters: [{ name: "lab", kubeconfig: "/etc/riscv-runner/lab.kubeconfig", pools: ["jupiter"] }],
  entities: {},
  apps: defaultRunnerConfigInput.apps
})

/** One cluster: its own in-memory API server and kubelet, and the control handle over it. */
const memoryCluster = (node: string, pool: string) =>
  Effect.map(Layer.build(KubeMemory({ tick: null, nodes: [{ name: node, pool, slots: 2 }] })), (context) => ({
    kube: Context.get(context, Kube),
    control: Context.get(context, KubeMemoryControl)
  }))

type ClusterWorld = Db | Github | GithubMemoryControl | Kube | SchedulerSettings

interface Clusters {
  readonly home: KubeMemoryControlShape
  readonly lab: KubeMemoryControlShape
}

type Run = (body: (clusters: Clusters) => Effect.Effect<void, unknown, ClusterWorld>) => Effect.Effect<void, unknown>

/** Every call of the cluster's API fails (HTTP 503) until `clearFaults`: the cluster is unreachable. */
const apiDown = (cluster: KubeMemoryControlShape) =>
  Effect.forEach(kubeOperations, (operation) => cluster.injectFault({ operation, status: 503, times: Infinity }), { discard: true })

/** The kubelet's pass in a cluster, then each runner that started connects and takes its queued job. */
const startRunners = (cluster: KubeMemoryControlShape) =>
  Effect.gen(function*() {
    const gh = yield* GithubMemoryControl
    yield* cluster.reconcile
    for (const pod of yield* cluster.pods) {
      if (pod.phase !== "Running") continue
      if (Option.isSome(yield* gh.registerRunnerFromJit(pod.request.jitConfig))) yield* gh.assignQueuedJob(pod.name)
    }
  })

/** The job ends on GitHub and its runner process exits 0: the pod ends Succeeded. */
const finishJob = (cluster: KubeMemoryControlShape, jobId: number, pod: string) =>
  Effect.gen(function*() {
    yield* Effect.flatMap(GithubMemoryControl, (gh) => gh.completeJob(jobId, "success"))
    expect(yield* cluster.finishPod(pod, 0)).toBe(true)
  })

const podsOf = (cluster: KubeMemoryControlShape) => Effect.map(cluster.pods, (pods) => pods.map((p) => [p.name, p.phase]))
const byJob = (rows: ReadonlyArray<Worker>, jobs: ReadonlyMap<number, string>) =>
  Object.fromEntries([...jobs].map(([id, pod]) => {
    const w = rows.find((r) => r.pod_name === pod)!
    return [id, [w.cluster, w.status]]
  }))

/** Which job each new worker serves: the worker rows are newest last, and jobs are served in order of their ids. */
const newWorkers = (before: ReadonlyArray<Worker>, after: ReadonlyArray<Worker>) =>
  after.filter((w) => !before.some((b) => b.pod_name === w.pod_name))

const scenarios = (label: string, run: Run) =>
  describe(`scheduler over two clusters: ${label}`, () => {
    it.effect("each pool's runners live in its own cluster; one cluster's API failing leaves the other working", () =>
      run(({ home, lab }) =>
        Effect.gen(function*() {
          const gh = yield* GithubMemoryControl
          yield* gh.addInstallation({ id: ORG.installation, account: { login: ORG.login, type: "Organization", id: ORG.id } })
          const cycle = yield* makeCycle
          const pods = new Map<number, string>()

          // one job per pool: each gets its runner pod in its pool's cluster, and its worker records that cluster
          yield* queueJob(newJob(1))
          yield* queueJob(newJob(2, { job_labels: LAB_LABELS, k8s_pool: "jupiter" }))
          yield* cycle
          const first = [...(yield* workerRows)].sort((a, b) => b.k8s_pool.localeCompare(a.k8s_pool))
          expect(first.map((w) => [w.k8s_pool, w.cluster, w.status])).toEqual([
            ["scw-em-rv1", DEFAULT_CLUSTER, "pending"],
            ["jupiter", "lab", "pending"]
          ])
          pods.set(1, first[0]!.pod_name).set(2, first[1]!.pod_name)
          expect(yield* podsOf(home)).toEqual([[pods.get(1), "Pending"]])
          expect(yield* podsOf(lab)).toEqual([[pods.get(2), "Pending"]])

          // the operator's JSON says where each worker and board is
          const workersJson = JSON.parse((yield* getFrom(schedulerApp, "/workers.json")).body) as Array<{ pod_name: string; cluster: string }>
          expect(Object.fromEntries(workersJson.map((w) => [w.pod_name, w.cluster]))).toEqual({ [pods.get(1)!]: DEFAULT_CLUSTER, [pods.get(2)!]: "lab" })
          const boardsJson = JSON.parse((yield* getFrom(schedulerApp, "/boards.json")).body) as { boards: Array<{ node: string; cluster: string }> }
          expect(boardsJson.boards.map((b) => [b.node, b.cluster])).toEqual([["scw-1", DEFAULT_CLUSTER], ["jup-1", "lab"]])

          // both runners start; the next cycle's phase 2 sees both pods running, each in its own cluster
          yield* TestClock.setTime(5_000)
          yield* startRunners(home)
          yield* startRunners(lab)
          yield* cycle
          expect(byJob(yield* workerRows, pods)).toEqual({ 1: [DEFAULT_CLUSTER, "running"], 2: ["lab", "running"] })

          // the lab's API goes down; meanwhile both jobs end, and a new job arrives for each pool
          yield* apiDown(lab)
          yield* finishJob(home, 1, pods.get(1)!)
          yield* finishJob(lab, 2, pods.get(2)!)
          yield* queueJob(newJob(3))
          yield* queueJob(newJob(4, { job_labels: LAB_LABELS, k8s_pool: "jupiter" }))
          const labCreatesBefore = (yield* lab.callCounts).createPod
          const beforeOutage = yield* workerRows
          // two cycles while the lab cannot be read
          for (const seconds of [60, 90]) {
            yield* TestClock.setTime(seconds * 1000)
            yield* cycle
          }
          const during = yield* workerRows
          const added = newWorkers(beforeOutage, during)
          // the default cluster's worker is reconciled (phase 2) and its new job is provisioned there
          expect(byJob(during, pods)).toEqual({ 1: [DEFAULT_CLUSTER, "completed"], 2: ["lab", "running"] })
          expect(added.map((w) => [w.k8s_pool, w.cluster, w.status])).toEqual([["scw-em-rv1", DEFAULT_CLUSTER, "pending"]])
          pods.set(3, added[0]!.pod_name)
          expect((yield* podsOf(home)).map(([name]) => name)).toContain(pods.get(3))
          // the lab's worker is left as it was (not failed as a missing pod, nor by a timeout), its pod is still
          // there and no pod was created there twice; its job waits, and no worker failed
          expect(yield* podsOf(lab)).toEqual([[pods.get(2), "Succeeded"]])
          expect((yield* lab.callCounts).createPod).toBe(labCreatesBefore)
          expect(during.filter((w) => w.status === "failed")).toEqual([])
          expect(Option.getOrThrow(yield* Effect.flatMap(Db, (db) => db.getJob(4))).status).toBe("pending")

          // the lab answers again: its worker is reconciled from its pod, and its job gets a runner in the lab
          yield* lab.clearFaults
          yield* TestClock.setTime(100_000)
          yield* cycle
          const after = yield* workerRows
          expect(byJob(after, pods)).toEqual({ 1: [DEFAULT_CLUSTER, "completed"], 2: ["lab", "completed"], 3: [DEFAULT_CLUSTER, "pending"] })
          const labAdded = newWorkers(during, after)
          expect(labAdded.map((w) => [w.k8s_pool, w.cluster, w.status])).toEqual([["jupiter", "lab", "pending"]])
          expect((yield* podsOf(lab)).map(([name]) => name)).toContain(labAdded[0]!.pod_name)
          expect((yield* podsOf(home)).map(([name]) => name)).not.toContain(labAdded[0]!.pod_name)
          expect(after.filter((w) => w.status === "failed")).toEqual([])
        })
      ))
  })

/** A fresh GitHub and two fresh clusters per case, over the given store; the Kube is the two combined. */
const runOn = (db: Effect.Effect<Layer.Layer<Db>>): Run => (body) =>
  Effect.scoped(Effect.gen(function*() {
    const home = yield* memoryCluster("scw-1", "scw-em-rv1")
    const lab = yield* memoryCluster("jup-1", "jupiter")
    const kube = combineClusters([
      { name: DEFAULT_CLUSTER, pools: [], kube: home.kube },
      { name: "lab", pools: ["jupiter"], kube: lab.kube }
    ])
    const world = Layer.mergeAll(
      yield* db,
      GithubMemory,
      Layer.succeed(Kube, kube),
      SchedulerSettingsLive({ runnerConfig, prod: false })
    )
    yield* Effect.provide(body({ home: home.control, lab: lab.control }), world)
  }))

scenarios("in memory", runOn(Effect.succeed(Layer.fresh(DbMemory))))

// One migrated database for the PostgreSQL cases; each starts from empty tables.
let url = ""
let context: Context.Context<Db>
const suiteScope = Effect.runSync(Scope.make())
beforeAll(async () => {
  const db = await Effect.runPromise(freshDatabase("scheduler-clusters").pipe(Scope.extend(suiteScope)))
  url = db.url
  context = await Effect.runPromise(Layer.buildWithScope(DbPostgres({ url: Redacted.make(url), schema: "staging", migrate: true }), suiteScope))
})
afterAll(() => Effect.runPromise(Scope.close(suiteScope, Exit.void)))
const truncate = Effect.promise(() => emptyStore(url))

scenarios("on PostgreSQL", runOn(Effect.zipRight(truncate, Effect.sync(() => Layer.succeedContext(context)))))
