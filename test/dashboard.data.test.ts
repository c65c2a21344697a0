import { describe, expect, it } from "vitest"
import type { Job } from "../src/domain/Job.ts"
import { Schema } from "effect"
import type { BoardSlots } from "../src/domain/Board.ts"
import { clusterOfPool, DEFAULT_CLUSTER, RunnerConfig } from "../src/domain/RunnerConfig.ts"
import type { Worker } from "../src/domain/Worker.ts"
import { boardRows, groupRows, poolRows, queueHistory } from "../src/operator/dashboardData.ts"
import type { PoolCapacity } from "../src/services/Kube.ts"
import { newJob, newWorker } from "./support/dbFixtures.ts"

const T0 = Date.UTC(2026, 10, 23, 12, 0, 0)
const MIN = 60_000
const at = (m: number) => new Date(T0 + m * MIN)

const job = (id: number, created: number, over: Partial<Job> = {}): Job => ({
  ...newJob(id),
  status: "pending",
  failure_info: null,
  k8s_pod: null,
  created_at: at(created),
  updated_at: at(created),
  ...over
})
const worker = (pod: string, status: Worker["status"], over: Partial<Worker> = {}): Worker => ({
  ...newWorker(pod),
  cluster: DEFAULT_CLUSTER,
  k8s_node: null,
  status,
  failure_info: null,
  created_at: at(0),
  running_at: null,
  completed_at: null,
  updated_at: at(0),
  ...over
})

describe("dashboard data", () => {
  it("groupRows: per (entity, label set) pending, running, active workers, cap and the oldest wait", () => {
    const acme = { entity_id: 1001, entity_name: "acme", job_labels: ["ubuntu-24.04-riscv"], k8s_pool: "scw-em-rv1" }
    const rows = groupRows(
      // acme's pending jobs as two groups of the index (two repositories of a personal account add up)
      [{ ...acme, count: 1, oldestMs: at(-4).getTime() }, { ...acme, count: 1, oldestMs: at(-10).getTime() }, { entity_id: 7, entity_name: "beta", job_labels: ["a", "b"], k8s_pool: "scw-em-rv1", count: 1, oldestMs: at(-1).getTime() }],
      [job(3, -20, { status: "running" })],
      [worker("p1", "running"), worker("p2", "pending"), worker("p3", "failed")],
      (id) => (id === 7 ? 2 : null),
      T0
    )
    expect(rows).toEqual([
      { entity_id: 1001, entity_name: "acme", job_labels: ["ubuntu-24.04-riscv"], k8s_pool: "scw-em-rv1", pending_jobs: 2, running_jobs: 1, active_workers: 2, cap: null, oldest_wait_seconds: 600 },
      { entity_id: 7, entity_name: "beta", job_labels: ["a", "b"], k8s_pool: "scw-em-rv1", pending_jobs: 1, running_jobs: 0, active_workers: 0, cap: 2, oldest_wait_seconds: 60 }
    ])
  })

  it("queueHistory: the pending jobs by their creation, the ended waits by their spans", () => {
    const ended = [
      { createdMs: at(-50).getTime(), endMs: at(-40).getTime() }, // its runner ran at -40
      { createdMs: at(-20).getTime(), endMs: at(-10).getTime() } // failed at -10 without a runner
    ]
    // the still pending one by its creation time alone, as the queue's index gives it
    const points = queueHistory([at(-30).getTime()], ended, T0, 60 * MIN, 10 * MIN)
    expect(points.map((p) => [p.at, p.depth, p.oldest_wait_seconds])).toEqual([
      [at(-60).toISOString(), 0, 0],
      [at(-50).toISOString(), 1, 0],
      [at(-40).toISOString(), 0, 0],
      [at(-30).toISOString(), 1, 0],
      [at(-20).toISOString(), 2, 600],
      [at(-10).toISOString(), 1, 1200],
      [at(0).toISOString(), 1, 1800]
    ])
  })

  it("poolRows and boardRows: every board with its pool's cluster, as the runner config places the pool", () => {
    const config = Schema.decodeUnknownSync(RunnerConfig)({
      rules: [{ labels: ["a"], pool: "scw-em-rv1", image: "img" }, { labels: ["b"], pool: "jupiter", image: "img" }],
      clusters: [{ name: "lab", kubeconfig: "/k", pools: ["jupiter"] }]
    })
    const board = (name: string, pool: string, busy: number, unusable: string | null): BoardSlots => ({
      name, pool, slots: 1, busy, ready: unusable === null ? "True" : "False", readySince: null, unusable, conditions: []
    })
    const capacity: ReadonlyArray<PoolCapacity> = [
      { pool: "jupiter", total: 2, usable: 1, active: 1, available: 0, boards: [board("j-1", "jupiter", 1, null), board("j-2", "jupiter", 0, "not ready (False)")] },
      { pool: "scw-em-rv1", total: 1, usable: 1, active: 0, available: 1, boards: [board("s-1", "scw-em-rv1", 0, null)] }
    ]
    const clusterOf = (pool: string) => clusterOfPool(config, pool)
    expect(poolRows(capacity, clusterOf)).toEqual([
      { pool: "jupiter", cluster: "lab", total: 2, usable: 1, busy: 1, free: 0 },
      { pool: "scw-em-rv1", cluster: DEFAULT_CLUSTER, total: 1, usable: 1, busy: 0, free: 1 }
    ])
    expect(boardRows(capacity, clusterOf)).toEqual([
      { node: "j-1", pool: "jupiter", cluster: "lab", slots: 1, busy: 1, why_unusable: null },
      { node: "j-2", pool: "jupiter", cluster: "lab", slots: 1, busy: 0, why_unusable: "not ready (False)" },
      { node: "s-1", pool: "scw-em-rv1", cluster: DEFAULT_CLUSTER, slots: 1, busy: 0, why_unusable: null }
    ])
  })
})
