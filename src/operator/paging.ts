import { Either, ParseResult, Schema } from "effect"
import type { PageRequest } from "../services/Db.ts"

/**
 * The query parameters of the operator routes, as schemas: `/jobs`, `/history` and `/workers` (reference §6)
 * take `start` and `end` as `YYYY-MM-DD` or `-Nd` (N days ago, as a UTC date), `page` from 0, `per_page` from 1
 * (default 100); `/queue.json` takes `pool`, `offset` and `limit`. Invalid values are a 400 with the original's
 * texts, which are the schemas' messages. The HttpApi decodes them for the JSON routes, the HTML pages here.
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

/** `value` accepted when `test` holds, else a failure whose message is the parameter's 400 text. */
const checked = (test: (text: string) => boolean, message: string) => Schema.String.pipe(Schema.filter(test, { message: () => message }))

/** An integer parameter; `""` is its default, as the original read an empty value as absent. */
export const integer = (name: string, fallback: number, valid: (n: number) => boolean, message: string) =>
  Schema.transformOrFail(Schema.String, Schema.Number, {
    strict: true,
    decode: (text, _, ast) => {
      const n = text === "" ? fallback : /^\d{1,9}$/.test(text) ? Number(text) : NaN
      return valid(n) ? ParseResult.succeed(n) : ParseResult.fail(new ParseResult.Type(ast, text, message))
    },
    encode: (n) => ParseResult.succeed(String(n))
  }).annotations({ description: `${name}: ${message.replace(/^invalid parameter \S+, /, "")}` })

const day = (name: "start" | "end", description: string) =>
  checked((text) => text === "" || parseDay(text, 0) !== undefined, `invalid parameter ${name}, must be YYYY-MM-DD`).annotations({ description })

/**
 * The query of `/jobs`, `/history` and `/workers` (JSON and HTML alike). Each failure's message is the original's
 * 400 text, and the keys are checked in the original's order (the first bad one is named).
 */
export const PagingParams = Schema.Struct({
  start: Schema.optional(day("start", "YYYY-MM-DD (UTC) or -Nd (N days ago), inclusive")),
  end: Schema.optional(day("end", "YYYY-MM-DD (UTC) or -Nd (N days ago), exclusive")),
  page: Schema.optional(integer("page", 0, (n) => n >= 0, "invalid parameter page, must be >= 0").annotations({ description: "from 0 (default 0)" })),
  per_page: Schema.optional(integer("per_page", 100, (n) => n > 0, "invalid parameter per_page, must be > 0").annotations({ description: "from 1 (default 100)" }))
})
export type PagingParams = typeof PagingParams.Type

/** The decoded query as a page request: `-Nd` counts back from today (UTC) at `nowMs`. */
export const pagingQuery = (params: PagingParams, nowMs: number): PagingQuery => {
  const start = params.start === "" ? undefined : params.start
  const end = params.end === "" ? undefined : params.end
  return {
    request: {
      start: start === undefined ? undefined : parseDay(start, nowMs),
      end: end === undefined ? undefined : parseDay(end, nowMs),
      page: params.page ?? 0,
      perPage: params.per_page ?? 100
    },
    start,
    end
  }
}

/** The first value of each query key, as the original read them. */
export const firstValues = (params: URLSearchParams): Record<string, string> =>
  Object.fromEntries([...new Set(params.keys())].map((key) => [key, params.get(key) ?? ""]))

/** The message of a failed decode: the first issue's, which the parameter schemas set to the 400 text. */
export const firstIssue = (error: ParseResult.ParseError): string => ParseResult.ArrayFormatter.formatErrorSync(error)[0]?.message ?? error.message

/** The HTML pages' reading of the same query: a page request, or the 400 text. */
export const parsePaging = (params: URLSearchParams, nowMs: number): Either.Either<PagingQuery, string> =>
  Either.match(Schema.decodeUnknownEither(PagingParams)(firstValues(params)), {
    onLeft: (e) => Either.left(firstIssue(e)),
    onRight: (decoded) => Either.right(pagingQuery(decoded, nowMs))
  })

/** `limit` when none is given, and the most one page may ask for. */
export const DEFAULT_QUEUE_LIMIT = 100
export const MAX_QUEUE_LIMIT = 1_000

/** The query of `/queue.json`, checked in the original's order: `pool`, `limit`, `offset`. */
export const QueueParams = Schema.Struct({
  pool: Schema.optional(checked((text) => text.trim() !== "", "invalid parameter pool, must be a pool name").annotations({ description: "only this pool's jobs" })),
  limit: Schema.optional(
    integer("limit", NaN, (n) => n >= 1 && n <= MAX_QUEUE_LIMIT, `invalid parameter limit, must be an integer from 1 to ${MAX_QUEUE_LIMIT}`)
      .annotations({ description: `entries per page, 1 to ${MAX_QUEUE_LIMIT} (default ${DEFAULT_QUEUE_LIMIT})` })
  ),
  offset: Schema.optional(
    integer("offset", NaN, (n) => n >= 0 && n <= 999_999_999, "invalid parameter offset, must be an integer from 0 to 999999999")
      .annotations({ description: "entries to skip (default 0)" })
  )
})
export type QueueParams = typeof QueueParams.Type

export const lastPage = (total: number, perPage: number): number => (total <= 0 ? 0 : Math.floor((total - 1) / perPage))

/**
 * What a page says about where it is, to people: pages count from 1 ("page 1 of 7"), while the `page` parameter
 * (and the `Link` header built from it) counts from 0 as the original's JSON routes do. A page past the end says
 * so, and how many pages there are, rather than "page 3 of 0".
 */
export const pageSummary = (page: number, perPage: number, total: number, shown: number): string => {
  const pages = lastPage(total, perPage) + 1
  const entries = `${total} ${total === 1 ? "entry" : "entries"}`
  if (page >= pages && total > 0) {
    return `page ${page + 1} is past the end: ${entries} ${total === 1 ? "fills" : "fill"} ${pages} ${pages === 1 ? "page" : "pages"} of ${perPage}`
  }
  if (total === 0) return page === 0 ? "page 1 of 1, nothing to show" : `page ${page + 1} is past the end: there are no entries`
  return `page ${page + 1} of ${pages}, ${shown} shown of ${total}`
}

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
  // past the end, `prev` is the last page, the nearest one with entries
  if (page > 0) links.push({ rel: "first", href: href(0) }, { rel: "prev", href: href(Math.min(page - 1, last)) })
  if (page < last) links.push({ rel: "next", href: href(page + 1) }, { rel: "last", href: href(last) })
  return links
}

/** The `Link` header value, or undefined when there is only one page. */
export const linkHeader = (path: string, query: PagingQuery, total: number): string | undefined => {
  const links = pageLinks(path, query, total)
  return links.length === 0 ? undefined : links.map((l) => `<${l.href}>; rel="${l.rel}"`).join(", ")
}
