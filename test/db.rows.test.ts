import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, Schema } from "effect"
import { rowsToJobs, toDbError } from "../layers/db/postgresRows.ts"
import { Job } from "../src/domain/Job.ts"

/*
 * `rowsToJobs` skips the Schema when every row is a plain job row: what it returns must be what the Schema returns,
 * and any other list must go through the Schema whole, decoding or failing exactly as it did.
 */

const row = (id: number, over: Record<string, unknown> = {}): Record<string, unknown> => ({
  job_id: id,
  status: "pending",
  failure_info: null,
  provider: "github",
  entity_id: 1001,
  entity_name: "acme",
  entity_type: "Organization",
  repo_full_name: "acme/app",
  installation_id: 501,
  job_labels: ["ubuntu-24.04-riscv"],
  k8s_pool: "scw-em-rv1",
  k8s_image: "riscv-runner:ubuntu-24.04",
  k8s_pod: null,
  html_url: "https://github.com/acme/app/actions/runs/1/job/1",
  created_at: new Date(1_700_000_000_000 + id),
  updated_at: new Date(1_700_000_100_000 + id),
  // a column the statement selects beside the job's own (the demand read's rank): not part of the job
  demand_rank: 1,
  ...over
})

const viaSchema = (rows: ReadonlyArray<unknown>) =>
  Schema.decodeUnknown(Schema.Array(Job))(rows).pipe(Effect.mapError(toDbError("getDemand: unexpected job row")), Effect.either)

describe("rowsToJobs", () => {
  it.effect("plain rows: the Schema's jobs, keys in the same order, extra columns left out", () =>
    Effect.gen(function*() {
      const rows = [row(1), row(2, { status: "running", k8s_pod: "rise-riscv-runner-abc", entity_type: "User", html_url: null })]
      const ours = yield* rowsToJobs("getDemand")(rows)
      const theirs = yield* Effect.flatten(viaSchema(rows))
      expect(ours).toEqual(theirs)
      expect(ours.map((j) => Object.keys(j))).toEqual(theirs.map((j) => Object.keys(j)))
      expect(yield* rowsToJobs("getDemand")([])).toEqual([])
    }))

  it.effect("a row with a stored failure_info goes through the Schema, and so does the whole list", () =>
    Effect.gen(function*() {
      const rows = [row(1), row(2, { status: "failed", failure_info: { version: 1, message: "installation 404" } })]
      expect(yield* rowsToJobs("getDemand")(rows)).toEqual(yield* Effect.flatten(viaSchema(rows)))
    }))

  it.effect("a row the Schema refuses fails with the Schema's message, as before", () =>
    Effect.gen(function*() {
      const rows = [row(1), row(2, { status: "sleeping" })]
      const ours = yield* Effect.either(rowsToJobs("getDemand")(rows))
      const theirs = yield* viaSchema(rows)
      expect(Either.isLeft(ours) && Either.isLeft(theirs)).toBe(true)
      if (Either.isLeft(ours) && Either.isLeft(theirs)) expect(ours.left.message).toBe(theirs.left.message)
    }))
})
