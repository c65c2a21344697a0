import { describe, expect, it } from "vitest"
import type { Job } from "../src/domain/Job.ts"
import type { Worker } from "../src/domain/Worker.ts"
import { groupRows, queueHistory } from "../src/operator/dashboardData.ts"
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
    const rows = groupRows(
      [job(1, -10), job(2, -4), job(3, -20, { status: "running" }), job(4, -1, { entity_id: 7, entity_name: "beta", job_labels: ["a", "b"] })],
      [worker("p1", "running"), worker("p2", "pending"), worker("p3", "failed")],
      (id) => (id === 7 ? 2 : null),
      T0
    )
    expect(rows).toEqual([
      { entity_id: 1001, entity_name: "acme", job_labels: ["ubuntu-24.04-riscv"], k8s_pool: "scw-em-rv1", pending_jobs: 2, running_jobs: 1, active_workers: 2, cap: null, oldest_wait_seconds: 600 },
      { entity_id: 7, entity_name: "beta", job_labels: ["a", "b"], k8s_pool: "scw-em-rv1", pending_jobs: 1, running_jobs: 0, active_workers: 0, cap: 2, oldest_wait_seconds: 60 }
    ])
  })

  it("queueHistory: a job waits from creation until its runner runs, or until it ended without one", () => {
    const jobs = [
      job(1, -50, { status: "running", k8s_pod: "p1" }), // ran at -40
      job(2, -30), // still pending
      job(3, -20, { status: "failed", updated_at: at(-10) }) // failed at -10 without a runner
    ]
    const points = queueHistory(jobs, new Map([["p1", at(-40)]]), T0, 60 * MIN, 10 * MIN)
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
})
