import type { HeaderMap } from "./statusErrors.ts"
import type { GithubAnswer } from "./transport.ts"

/*
 * GitHub's HTTP conventions, for servers that imitate it (the in-memory GitHub, the tests' stub): error bodies,
 * the `x-ratelimit-*` headers, and paged listings with a Link header.
 */

/** An error answer with GitHub's `{ message, documentation_url }` body. */
export const errorAnswer = (status: number, message: string, headers: HeaderMap = {}): GithubAnswer => ({
  status,
  headers,
  data: { message, documentation_url: "https://docs.github.com/rest" }
})

export const notFoundAnswer: GithubAnswer = errorAnswer(404, "Not Found")

export interface BudgetWindow {
  readonly limit: number
  readonly remaining: number
  /** epoch ms */
  readonly resetAt: number
}

export const budgetHeaders = (b: BudgetWindow): Record<string, string> => ({
  "x-ratelimit-limit": String(b.limit),
  "x-ratelimit-remaining": String(b.remaining),
  "x-ratelimit-used": String(b.limit - b.remaining),
  "x-ratelimit-reset": String(Math.floor(b.resetAt / 1000)),
  "x-ratelimit-resource": "core"
})

/** One page of a listing plus its Link header, GitHub style (`page` from 1, `per_page` default 30, max 100). */
export const paged = <A>(items: ReadonlyArray<A>, url: URL) => {
  const perPage = Math.min(Number(url.searchParams.get("per_page") ?? 30) || 30, 100)
  const page = Math.max(Number(url.searchParams.get("page") ?? 1) || 1, 1)
  const last = Math.max(Math.ceil(items.length / perPage), 1)
  const link = (n: number) => {
    const u = new URL(url.toString())
    u.searchParams.set("per_page", String(perPage))
    u.searchParams.set("page", String(n))
    return u.toString()
  }
  const rels: Array<string> = []
  if (page < last) rels.push(`<${link(page + 1)}>; rel="next"`, `<${link(last)}>; rel="last"`)
  if (page > 1) rels.push(`<${link(1)}>; rel="first"`, `<${link(page - 1)}>; rel="prev"`)
  const headers: Record<string, string> = rels.length > 0 ? { link: rels.join(", ") } : {}
  return { slice: items.slice((page - 1) * perPage, page * perPage), headers }
}

/** A self-hosted runner as GitHub shows it in listings and JIT answers. */
export const runnerJson = (r: {
  readonly id: number
  readonly name: string
  readonly status: string
  readonly busy: boolean
  readonly labels: ReadonlyArray<string>
}) => ({
  id: r.id,
  name: r.name,
  os: "linux",
  status: r.status,
  busy: r.busy,
  labels: r.labels.map((name, i) => ({ id: i + 1, name, type: "custom" }))
})

/** One attempt of a webhook delivery, as GitHub's delivery log lists it (`hook-delivery-item`). */
export interface DeliveryAttempt {
  readonly id: number
  readonly guid: string
  /** epoch ms */
  readonly deliveredAt: number
  readonly redelivery: boolean
  /** our endpoint's answer; 0 when nothing answered */
  readonly statusCode: number
  readonly event: string
  readonly action: string | null
  readonly installationId: number | null
  readonly repositoryId: number | null
}

export const deliveryJson = (d: DeliveryAttempt) => ({
  id: d.id,
  guid: d.guid,
  delivered_at: new Date(d.deliveredAt).toISOString().replace(/\.\d{3}Z$/, "Z"),
  redelivery: d.redelivery,
  duration: 0.05,
  status: d.statusCode === 0 ? "failed to connect" : d.statusCode >= 200 && d.statusCode < 300 ? "OK" : `Invalid HTTP Response: ${d.statusCode}`,
  status_code: d.statusCode,
  event: d.event,
  action: d.action,
  installation_id: d.installationId,
  repository_id: d.repositoryId,
  throttled_at: null
})

/**
 * One page of the delivery log, newest first, with GitHub's cursor paging: `cursor` is the id below which the page
 * starts, and the Link header's `rel="next"` carries the cursor of the following page.
 */
export const cursorPaged = <A extends { readonly id: number }>(items: ReadonlyArray<A>, url: URL) => {
  const perPage = Math.min(Number(url.searchParams.get("per_page") ?? 30) || 30, 100)
  const cursor = url.searchParams.get("cursor")
  const below = cursor === null || cursor === "" ? Number.POSITIVE_INFINITY : Number(cursor)
  const newestFirst = items.filter((d) => d.id < below).sort((a, b) => b.id - a.id)
  const slice = newestFirst.slice(0, perPage)
  const headers: Record<string, string> = {}
  if (newestFirst.length > perPage && slice.length > 0) {
    const next = new URL(url.toString())
    next.searchParams.set("per_page", String(perPage))
    next.searchParams.set("cursor", String(slice[slice.length - 1]!.id))
    headers["link"] = `<${next.toString()}>; rel="next"`
  }
  return { slice, headers }
}

/** A workflow job as the run's job listing shows it. */
export const runJobJson = (j: {
  readonly id: number
  readonly repo: string
  readonly runId: number
  readonly status: string
  readonly conclusion: string | null
  readonly runnerName: string | null
  readonly labels: ReadonlyArray<string>
}) => ({
  id: j.id,
  run_id: j.runId,
  status: j.status,
  conclusion: j.conclusion,
  runner_name: j.runnerName,
  name: "build",
  head_sha: "0000000000000000000000000000000000000000",
  labels: [...j.labels],
  html_url: `https://github.com/${j.repo}/actions/runs/${j.runId}/job/${j.id}`
})
