import { Effect, Random, Ref } from "effect"
import type { GithubOperation } from "../../src/services/Github.ts"
import type { GithubFault } from "./memoryControl.ts"
import type { State } from "./memoryState.ts"
import { errorAnswer } from "./githubHttp.ts"
import type { GithubAnswer } from "./transport.ts"

/*
 * Injected faults, as GitHub's edge would show them: before authentication, before the budget, before the
 * endpoint. Probabilities are drawn from Effect's Random, so a seeded run hits the same calls every time.
 */

/** Picks the fault (if any) that hits this call, after sitting out any latency faults. */
export const faultFor = (state: Ref.Ref<State>, operation: GithubOperation) =>
  Effect.gen(function*() {
    const faults = (yield* Ref.get(state)).faults.filter((f) => f.operation === operation && f.remaining > 0)
    let hit: GithubFault | undefined
    for (const f of faults) {
      if (f.probability < 1 && (yield* Random.next) >= f.probability) continue
      yield* Ref.update(state, (s) => ({
        ...s,
        faults: s.faults.map((x) => (x === f ? { ...x, remaining: x.remaining - 1 } : x)).filter((x) =>
          x.remaining > 0
        )
      }))
      if (f.fault._tag === "Latency") yield* Effect.sleep(f.fault.duration)
      else if (hit === undefined) hit = f.fault
    }
    return hit
  })

/** What a fault answers: an HTTP error, or (`Transport`) no answer at all, given as its message. */
export const faultAnswer = (
  fault: Exclude<GithubFault, { readonly _tag: "Latency" }>
): GithubAnswer | { readonly _tag: "NoAnswer"; readonly message: string } => {
  switch (fault._tag) {
    case "Status":
      return errorAnswer(fault.status, fault.message ?? "injected fault")
    case "Transport":
      return { _tag: "NoAnswer", message: fault.message ?? "connection reset (injected)" }
    case "RateLimited": {
      const reset = String(Math.floor(fault.resetAt.getTime() / 1000))
      return fault.retryAfterSeconds === undefined
        ? errorAnswer(403, "API rate limit exceeded (injected)", {
          "x-ratelimit-remaining": "0",
          "x-ratelimit-reset": reset
        })
        : errorAnswer(429, "You have exceeded a secondary rate limit (injected)", {
          "retry-after": String(fault.retryAfterSeconds),
          "x-ratelimit-reset": reset
        })
    }
  }
}
