import { describe, expect, it } from "@effect/vitest"
import { Effect, Redacted, Ref } from "effect"
import { makeCallCounter } from "../layers/github/callCounter.ts"
import { endpoint } from "../layers/github/endpoints.ts"
import type { RedeliveryRequest } from "../layers/github/memoryControl.ts"
import { makeControlHandle } from "../layers/github/memoryControlHandle.ts"
import { makeMemoryServer } from "../layers/github/memoryServer.ts"
import { emptyState } from "../layers/github/memoryState.ts"
import type { GithubRequest, TransportAuth } from "../layers/github/transport.ts"
import { totalCalls } from "../src/services/Github.ts"

/*
 * The in-memory GitHub server on its own, below the client: it must answer like GitHub at the HTTP level (status
 * codes, ETags, rate-limit headers, Link paging), or the client logic the two layers share is not really
 * exercised by the memory layer.
 */

const org = { id: 11, account: { login: "rise-org", type: "Organization", id: 501 } }

const world = Effect.gen(function*() {
  const state = yield* Ref.make(emptyState)
  const counter = yield* makeCallCounter
  const listeners = yield* Ref.make<ReadonlyArray<(r: RedeliveryRequest) => Effect.Effect<void>>>([])
  const server = makeMemoryServer(state, counter, 5000, listeners)
  const control = makeControlHandle(state, counter, 5000, listeners)
  yield* control.addInstallation(org)
  const send = (request: Omit<GithubRequest, "auth">, auth: TransportAuth) => server.request({ ...request, auth })
  const tokenAnswer = yield* send(
    { operation: "installationToken", ...endpoint("installationToken", { installation_id: 11 }) },
    { _tag: "app", app: "Organization" }
  )
  const token = Redacted.make((tokenAnswer.data as { token: string }).token)
  const asOrg: TransportAuth = { _tag: "installation", installationId: 11, token }
  return { server, control, counter, send, asOrg, tokenAnswer }
})

describe("the in-memory GitHub server", () => {
  it.effect("issues tokens to the app the installation belongs to, and 401s unknown tokens", () =>
    Effect.gen(function*() {
      const { send, tokenAnswer } = yield* world
      expect(tokenAnswer.status).toBe(201)
      expect(tokenAnswer.headers["x-ratelimit-limit"]).toBeUndefined()
      const other = yield* send(
        { operation: "installationToken", ...endpoint("installationToken", { installation_id: 11 }) },
        { _tag: "app", app: "User" }
      )
      expect(other.status).toBe(404)
      expect(other.data).toMatchObject({ message: "Not Found" })
      const bogus = yield* send(
        { operation: "getJob", ...endpoint("getJob", { owner: "rise-org", repo: "app", job_id: 1 }) },
        { _tag: "installation", installationId: 11, token: Redacted.make("ghs_nope") }
      )
      expect(bogus.status).toBe(401)
    }))

  it.effect("answers a job with an ETag, a matching If-None-Match with a free 304", () =>
    Effect.gen(function*() {
      const { asOrg, control, send } = yield* world
      yield* control.createJob({ id: 7, repo: "rise-org/app", runId: 70 })
      const get = (etag?: string) =>
        send({ operation: "getJob", ...endpoint("getJob", { owner: "rise-org", repo: "app", job_id: 7 }), etag }, asOrg)
      const first = yield* get()
      expect(first.status).toBe(200)
      expect(first.data).toMatchObject({ id: 7, status: "queued", run_id: 70 })
      const etag = first.headers["etag"]!
      expect(first.headers["x-ratelimit-remaining"]).toBe("4999")
      const again = yield* get(etag)
      expect(again.status).toBe(304)
      expect(again.data).toBeUndefined()
      expect(again.headers["x-ratelimit-remaining"]).toBe("4999")
      yield* control.setJobStatus(7, { status: "in_progress" })
      const changed = yield* get(etag)
      expect(changed.status).toBe(200)
      expect(changed.headers["etag"]).not.toBe(etag)
      expect(changed.headers["x-ratelimit-remaining"]).toBe("4998")
    }))

  it.effect("pages listings with per_page and a Link header to the next page", () =>
    Effect.gen(function*() {
      const { asOrg, control, send } = yield* world
      for (let i = 0; i < 120; i++) yield* control.addRunnerGroup("rise-org", `g${i}`)
      const first = yield* send({
        operation: "listRunnerGroups",
        ...endpoint("listRunnerGroups", { org: "rise-org" }),
        query: { per_page: 100 }
      }, asOrg)
      const page1 = first.data as { total_count: number; runner_groups: ReadonlyArray<{ name: string }> }
      expect(page1.total_count).toBe(121)
      expect(page1.runner_groups.length).toBe(100)
      const next = /<([^>]+)>; rel="next"/.exec(first.headers["link"] ?? "")?.[1]
      expect(next).toMatch(/[?&]page=2/)
      const second = yield* send({ operation: "listRunnerGroups", method: "GET", path: next! }, asOrg)
      expect((second.data as { runner_groups: ReadonlyArray<unknown> }).runner_groups.length).toBe(21)
      expect(second.headers["link"]).toContain(`rel="prev"`)
      expect(second.headers["link"]).not.toContain(`rel="next"`)
    }))

  it.effect("refuses a spent budget with 403 and its headers; a dropped connection is no answer, counted 0", () =>
    Effect.gen(function*() {
      const { asOrg, control, counter, send } = yield* world
      const resetAt = new Date(3_600_000)
      yield* control.setRateLimit(11, { remaining: 0, resetAt })
      const spent = yield* send({
        operation: "listRunnersOrgGroup",
        ...endpoint("listRunnersOrgGroup", { org: "rise-org", runner_group_id: 1 })
      }, asOrg)
      expect(spent.status).toBe(403)
      expect(spent.headers).toMatchObject({ "x-ratelimit-remaining": "0", "x-ratelimit-reset": "3600" })
      yield* control.injectFault("getRun", { _tag: "Transport" }, { times: 1 })
      const dropped = yield* Effect.flip(
        send({ operation: "getRun", ...endpoint("getRun", { owner: "rise-org", repo: "app", run_id: 1 }) }, asOrg)
      )
      expect(dropped._tag).toBe("NoAnswer")
      const counts = yield* counter.snapshot
      expect(totalCalls(counts, ["getRun"], 0)).toBe(1)
      expect(totalCalls(counts, ["listRunnersOrgGroup"], 403)).toBe(1)
      const unknown = yield* send({ operation: "getRun", method: "GET", path: "/no/such/endpoint" }, asOrg)
      expect(unknown.status).toBe(404)
    }))
})
