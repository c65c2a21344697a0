import { describe, expect, it } from "@effect/vitest"
import { Effect, Logger } from "effect"
import { DbMemory } from "../layers/db/memory.ts"
import { jobLogFields, podLogFields, workerLogFields } from "../src/observability/logFields.ts"
import { newJob } from "./support/dbFixtures.ts"
import { installBoth, makeCycle, queueJob, worldLayer } from "./support/schedulerWorld.ts"

/*
 * Structured logs: with the JSON logger (LOG_FORMAT=json), every scheduler line about a job or a worker carries
 * its job id, pod name and entity under the same keys.
 */

interface JsonLine {
  readonly message: string | ReadonlyArray<string>
  readonly annotations: Record<string, unknown>
}

const captured = (lines: Array<JsonLine>) =>
  Logger.replace(Logger.defaultLogger, Logger.map(Logger.jsonLogger, (text) => void lines.push(JSON.parse(text) as JsonLine)))
const messageOf = (l: JsonLine) => (Array.isArray(l.message) ? l.message.join(" ") : l.message)

describe("JSON log lines about jobs and workers", () => {
  it.effect("a provisioned runner: job_id, pod and entity", () => {
    const lines: Array<JsonLine> = []
    return Effect.gen(function*() {
      yield* installBoth
      yield* queueJob(newJob(41))
      yield* Effect.flatten(makeCycle)
      const line = lines.find((l) => messageOf(l) === "runner provisioned")
      expect(line?.annotations).toMatchObject({ job_id: 41, entity: "acme", entity_id: 1001, pool: "scw-em-rv1" })
      expect(String(line?.annotations["pod"])).toMatch(/^rise-riscv-runner-/)
    }).pipe(Effect.provide(worldLayer(DbMemory)), Effect.provide(captured(lines)))
  })

  it.effect("a failed provisioning (no installation): the warning names the job, the pod and the entity", () => {
    const lines: Array<JsonLine> = []
    return Effect.gen(function*() {
      yield* queueJob(newJob(42))
      yield* Effect.flatten(makeCycle)
      const failed = lines.find((l) => messageOf(l) === "runner provisioning failed")
      expect(failed?.annotations).toMatchObject({ job_id: 42, entity: "acme", entity_id: 1001 })
      expect(String(failed?.annotations["pod"])).toMatch(/^rise-riscv-runner-/)
      expect(lines.find((l) => messageOf(l) === "GitHub authentication failed")?.annotations).toMatchObject({ entity: "acme", entity_id: 1001 })
    }).pipe(Effect.provide(worldLayer(DbMemory)), Effect.provide(captured(lines)))
  })

  it("the field helpers use one set of keys", () => {
    expect(jobLogFields({ job_id: 1, k8s_pod: null, entity_name: "acme", entity_id: 7 })).toEqual({ job_id: 1, pod: "", entity: "acme", entity_id: 7 })
    expect(workerLogFields({ pod_name: "p", entity_name: "acme", entity_id: 7 })).toEqual({ pod: "p", entity: "acme", entity_id: 7 })
    expect(podLogFields({ name: "p", labels: { "riseproject.dev/entity_id": "7", "riseproject.dev/entity_name": "acme" } }))
      .toEqual({ pod: "p", entity: "acme", entity_id: 7 })
  })
})
