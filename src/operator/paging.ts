import { Either } from "effect"
import type { PageRequest } from "../services/Db.ts"

/**
 * The paging parameters of `/jobs`, `/history` and `/workers` (reference §6): `start` and `end` as `YYYY-MM-DD`
 * or `-Nd` (N days ago, as a UTC date), `page` from 0, `per_page` from 1 (default 100). Invalid values are a 400
 * with the original's texts.
 */
export interface PagingQuery {
  readonly request: PageRequest
  /** the raw `start`/`end` values, carried into the Link header as given */
  readonly start: string | undefined
  readonly end: string | undefined
}

const DAY_MS = 86_400_000

/** A calendar date or `-Nd`, as the UTC midnight it names; undefined when it is neither. */
export const parseDay = (value: string, nowMs: number): Date | undefined => {
  const relative = /^-(\d{1,5})d$/.exec(value)
  if (relative !== null) {
    const today = Math.floor(nowMs / DAY_MS) * DAY_MS
    return new Date(today - Number(relative[1]) * DAY_MS)
  }
  const absolute = /^(\d{4})-(\d{2})-(\d{2})$/.exec(value)
  if (absolute === null) return undefined
  const [y, m, d] = [Number(absolute[1]), Number(absolute[2]), Number(absolute[3])]
  const date = new Date(Date.UTC(y, m - 1, d))
  // Date.UTC rolls 2026-02-31 over into March; a date that does not round-trip does not exist.
  return date.getUTCFullYear() === y && date.getUTCMonth() === m - 1 && date.getUTCDate() === d ? date : undefined
}

export const parsePaging = (params: URLSearchParams, nowMs: number): Either.Either<PagingQuery, string> => {
  const start = params.get("start") ?? undefined
  const end = params.get("end") ?? undefined
  const startDate = start === undefined || start === "" ? undefined : parseDay(start, nowMs)
  if (start !== undefined && start !== "" && startDate === undefined) return Either.left("invalid parameter start, must be YYYY-MM-DD")
  const endDate = end === undefined || end === "" ? undefined : parseDay(end, nowMs)
  if (end !== undefined && end !== "" && endDate === undefined) return Either.left("invalid parameter end, must be YYYY-MM-DD")
  const pageText = params.get("page")
  const page = pageText === null || pageText === "" ? 0 : /^\d{1,9}$/.test(pageText) ? Number(pageText) : -1
  if (page < 0) return Either.left("invalid parameter page, must be >= 0")
  const perPageText = params.get("per_page")
  const perPage = perPageText === null || perPageText === "" ? 100 : /^\d{1,9}$/.test(perPageText) ? Number(perPageText) : 0
  if (perPage <= 0) return Either.left("invalid parameter per_page, must be > 0")
  return Either.right({
    request: { start: startDate, end: endDate, page, perPage },
    start: start === "" ? undefined : start,
    end: end === "" ? undefined : end
  })
}

export const lastPage = (total: number, perPage: number): number => (total <= 0 ? 0 : Math.floor((total - 1) / perPage))

/** The page links: `first` and `prev` after page 0, `next` and `last` before the last page. */
export const pageLinks = (path: string, query: PagingQuery, total: number): ReadonlyArray<{ readonly rel: string; readonly href: string }> => {
  const { page, perPage } = query.request
  const last = lastPage(total, perPage)
  const href = (p: number) => {
    const q = new URLSearchParams({ page: String(p), per_page: String(perPage) })
    if (query.start !== undefined) q.set("start", query.start)
    if (query.end !== undefined) q.set("end", query.end)
    return `${path}?${q.toString()}`
  }
  const links: Array<{ rel: string; href: string }> = []
  if (page > 0) links.push({ rel: "first", href: href(0) }, { rel: "prev", href: href(page - 1) })
  if (page < last) links.push({ rel: "next", href: href(page + 1) }, { rel: "last", href: href(last) })
  return links
}

/** The `Link` header value, or undefined when there is only one page. */
export const linkHeader = (path: string, query: PagingQuery, total: number): string | undefined => {
  const links = pageLinks(path, query, total)
  return links.length === 0 ? undefined : links.map((l) => `<${l.href}>; rel="${l.rel}"`).join(", ")
}
