import { Effect, Ref } from "effect"
import { type GithubCallCounts, type GithubOperation, githubOperations } from "../../src/services/Github.ts"

/** API calls by operation and HTTP status, shared by both layers so their figures mean the same thing. */
export interface CallCounter {
  readonly record: (operation: GithubOperation, status: number) => Effect.Effect<void>
  readonly snapshot: Effect.Effect<GithubCallCounts>
}

const empty = (): GithubCallCounts =>
  Object.fromEntries(githubOperations.map((op) => [op, {}])) as unknown as GithubCallCounts

export const makeCallCounter: Effect.Effect<CallCounter> = Effect.gen(function* () {
  const counts = yield* Ref.make(empty())
  return {
    record: (operation, status) =>
      Ref.update(
        counts,
        (c) => ({ ...c, [operation]: { ...c[operation], [status]: (c[operation][status] ?? 0) + 1 } })
      ),
    snapshot: Ref.get(counts)
  }
})
