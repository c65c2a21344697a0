import { Clock, Effect, HashMap, Option, Redacted, Ref } from "effect"
import type { CallCounter } from "./callCounter.ts"
import type { RedeliveryRequest } from "./memoryControl.ts"
import { matchEndpoint } from "./endpoints.ts"
import { budgetHeaders, errorAnswer, notFoundAnswer } from "./githubHttp.ts"
import { faultAnswer, faultFor } from "./memoryFaults.ts"
import { routes } from "./memoryRoutes.ts"
import { type Budget, budgetWindow, type State } from "./memoryState.ts"
import { type GithubAnswer, type GithubRequest, type GithubTransport, NoAnswer } from "./transport.ts"

/*
 * The in-memory GitHub server's front door, in the order GitHub's edge works: injected faults, then the
 * credentials (an app's JWT is always good here; an installation token must be known, unexpired and of a live
 * installation), then the installation's budget, then the endpoint. Installation answers carry the budget in
 * `x-ratelimit-*` headers, and every one but a 304 spends from it. Every attempt that gets an answer is counted
 * with its status, and one that gets none with 0, as the live layer's fetch counts them.
 */

/** Where a Link header's addresses point; any absolute base would do, as the client only follows them. */
const apiRoot = "https://api.github.com"

/** The request's address, with its extra query parameters added. */
const urlOf = (request: GithubRequest): URL => {
  const url = new URL(request.path, apiRoot)
  for (const [k, v] of Object.entries(request.query ?? {})) url.searchParams.set(k, String(v))
  return url
}

const answerFor = (
  s: State,
  request: GithubRequest,
  now: number,
  defaultLimit: number
): readonly [GithubAnswer, State] => {
  const url = urlOf(request)
  const route = matchEndpoint(request.method, url.pathname)
  if (route === undefined) return [notFoundAnswer, s]
  const base = {
    now,
    params: route.params,
    url,
    body: request.body ?? {},
    ifNoneMatch: request.etag
  }
  const handler = routes[route.operation]
  if (request.auth._tag === "app") {
    return handler(s, { ...base, app: request.auth.app, installation: undefined })
  }
  const token = Option.getOrUndefined(HashMap.get(s.tokens, Redacted.value(request.auth.token)))
  const installation = token && token.expiresAt > now
    ? Option.getOrUndefined(HashMap.get(s.installations, token.installationId))
    : undefined
  if (token === undefined || installation === undefined) return [errorAnswer(401, "Bad credentials"), s]
  const id = token.installationId
  let budget = Option.getOrElse(
    HashMap.get(s.budgets, id),
    (): Budget => ({ limit: defaultLimit, remaining: defaultLimit, resetAt: now + budgetWindow })
  )
  if (budget.resetAt <= now) budget = { limit: budget.limit, remaining: budget.limit, resetAt: now + budgetWindow }
  if (budget.remaining <= 0) {
    return [
      errorAnswer(403, `API rate limit exceeded for installation ID ${id}.`, budgetHeaders(budget)),
      { ...s, budgets: HashMap.set(s.budgets, id, budget) }
    ]
  }
  const [answer, next] = handler(s, { ...base, app: undefined, installation })
  if (answer.status !== 304) budget = { ...budget, remaining: budget.remaining - 1 }
  return [
    { ...answer, headers: { ...budgetHeaders(budget), ...answer.headers } },
    { ...next, budgets: HashMap.set(next.budgets, id, budget) }
  ]
}

/** A redelivery GitHub accepted: whoever sends deliveries (the simulated world) makes the new attempt. */
const tellRedelivery = (
  state: Ref.Ref<State>,
  request: GithubRequest,
  listeners: Ref.Ref<ReadonlyArray<(request: RedeliveryRequest) => Effect.Effect<void>>>
) =>
  Effect.gen(function*() {
    const attemptId = Number(matchEndpoint(request.method, urlOf(request).pathname)?.params["delivery_id"])
    const attempt = (yield* Ref.get(state)).deliveries.find((d) => d.id === attemptId)
    if (attempt === undefined) return
    for (const listener of yield* Ref.get(listeners)) {
      yield* listener({ app: attempt.app, attemptId, guid: attempt.guid })
    }
  })

/** The in-memory GitHub as a transport for the client. */
export const makeMemoryServer = (
  state: Ref.Ref<State>,
  counter: CallCounter,
  defaultLimit: number,
  redeliveryListeners?: Ref.Ref<ReadonlyArray<(request: RedeliveryRequest) => Effect.Effect<void>>>
): GithubTransport => ({
  request: (request) =>
    Effect.gen(function*() {
      const fault = yield* faultFor(state, request.operation)
      if (fault !== undefined && fault._tag !== "Latency") {
        const faulty = faultAnswer(fault)
        if ("_tag" in faulty) {
          yield* counter.record(request.operation, 0)
          return yield* new NoAnswer({ message: faulty.message })
        }
        yield* counter.record(request.operation, faulty.status)
        return faulty
      }
      const now = yield* Clock.currentTimeMillis
      const answer = yield* Ref.modify(state, (s) => answerFor(s, request, now, defaultLimit))
      yield* counter.record(request.operation, answer.status)
      if (request.operation === "redeliverHookDelivery" && answer.status === 202 && redeliveryListeners !== undefined) {
        yield* tellRedelivery(state, request, redeliveryListeners)
      }
      return answer
    })
})
