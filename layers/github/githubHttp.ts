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
