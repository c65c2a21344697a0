import { Context, Effect, Layer, Option, type Redacted, Ref } from "effect"
import type { EntityType } from "../../src/domain/Entity.ts"
import { totalCalls } from "../../src/services/Github.ts"
import {
  GithubMemoryControl,
  type GithubMemoryControlShape,
  type MemoryRunner,
  type MemoryRunnerGroup
} from "../../layers/github/memory.ts"

/**
 * GitHub's side of a contract scenario: what the test seeds and inspects, independent of the layer under test.
 * For the memory layer it is the control handle; for the live layer it is the stub server's state.
 */
export interface GithubWorldShape extends
  Pick<
    GithubMemoryControlShape,
    | "addInstallation"
    | "removeInstallation"
    | "addRunnerGroup"
    | "addRunner"
    | "setRunnerBusy"
    | "createJob"
    | "setJobStatus"
    | "createRun"
    | "setRunStatus"
    | "setRateLimit"
    | "recordDelivery"
  >
{
  readonly name: "memory" | "stub"
  /** the runner in a pod started with this JIT config connects; false if GitHub does not know the config */
  readonly registerRunnerFromJit: (jitConfig: Redacted.Redacted<string>) => Effect.Effect<boolean>
  /** the redeliveries GitHub accepted, in order */
  readonly redeliveryRequests: Effect.Effect<ReadonlyArray<{ readonly app: EntityType; readonly attemptId: number }>>
  /** access-token requests GitHub has received */
  readonly tokenRequests: Effect.Effect<number>
  readonly runnerGroups: (org: string) => Effect.Effect<ReadonlyArray<MemoryRunnerGroup>>
  readonly runners: Effect.Effect<ReadonlyArray<MemoryRunner>>
  /** every secret in play: private keys, issued tokens, issued JIT configs */
  readonly secrets: Effect.Effect<ReadonlyArray<string>>
  /** requests that did not fit GitHub's REST description (always none for memory) */
  readonly specViolations: Effect.Effect<ReadonlyArray<string>>
}

export class GithubWorld extends Context.Tag("test/GithubWorld")<GithubWorld, GithubWorldShape>() {}

/** The memory layer's world is its control handle. */
export const GithubWorldFromMemory: Layer.Layer<GithubWorld, never, GithubMemoryControl> = Layer.effect(
  GithubWorld,
  Effect.gen(function* () {
    const control = yield* GithubMemoryControl
    const asked = yield* Ref.make<ReadonlyArray<{ readonly app: EntityType; readonly attemptId: number }>>([])
    yield* control.onRedelivery((r) => Ref.update(asked, (all) => [...all, { app: r.app, attemptId: r.attemptId }]))
    return {
      name: "memory",
      addInstallation: control.addInstallation,
      removeInstallation: control.removeInstallation,
      addRunnerGroup: control.addRunnerGroup,
      addRunner: control.addRunner,
      registerRunnerFromJit: (jit) => control.registerRunnerFromJit(jit).pipe(Effect.map(Option.isSome)),
      setRunnerBusy: control.setRunnerBusy,
      createJob: control.createJob,
      setJobStatus: control.setJobStatus,
      createRun: control.createRun,
      setRunStatus: control.setRunStatus,
      recordDelivery: control.recordDelivery,
      redeliveryRequests: Ref.get(asked),
      setRateLimit: control.setRateLimit,
      tokenRequests: control.callCounts.pipe(Effect.map((c) => totalCalls(c, ["installationToken"]))),
      runnerGroups: (org) =>
        control.snapshot.pipe(
          Effect.map((s) => s.runnerGroups.filter((g) => g.org.toLowerCase() === org.toLowerCase()))
        ),
      runners: control.snapshot.pipe(Effect.map((s) => s.runners)),
      secrets: control.issuedSecrets,
      specViolations: Effect.succeed([])
    }
  })
)
