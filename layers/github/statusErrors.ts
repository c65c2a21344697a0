import {
  GithubBusy,
  type GithubError,
  GithubHttpError,
  GithubNotFound,
  type GithubOperation,
  GithubRateLimited,
  GithubTransportError
} from "../../src/services/Github.ts"

/**
 * Removes anything shaped like a credential from text that may end up in an error or a log: PEM blocks, JWTs,
 * GitHub tokens. Our messages are built from GitHub's `message` field, which should hold none of these; this is
 * the second lock on the door. Long texts are cut, because an error body is not a place for a whole page.
 */
export const scrubSecrets = (text: string): string =>
  text
    .replace(/-----BEGIN [A-Z ]+-----[\s\S]*?(-----END [A-Z ]+-----|$)/g, "[private key]")
    .replace(/\beyJ[\w-]*\.[\w-]+\.[\w-]*/g, "[jwt]")
    .replace(/\b(gh[opsu]_|ghr_|github_pat_)[A-Za-z0-9_]+/g, "[token]")
    .slice(0, 300)

export type HeaderMap = Readonly<Record<string, string | undefined>>

const numberHeader = (headers: HeaderMap, name: string): number | undefined => {
  const raw = headers[name]
  if (raw === undefined || raw.trim() === "") return undefined
  const n = Number(raw)
  return Number.isFinite(n) ? n : undefined
}

/** Is this 403/429 GitHub's way of saying "slow down" (rather than "forbidden")? */
export const isRateLimitAnswer = (status: number, message: string, headers: HeaderMap): boolean =>
  (status === 403 || status === 429)
  && (headers["x-ratelimit-remaining"] === "0" || headers["retry-after"] !== undefined || /rate limit/i.test(message))

const deletes: ReadonlySet<GithubOperation> = new Set(["deleteRunnerOrg", "deleteRunnerRepo"])

/** The error for an HTTP error answer. Both layers use it, so a fault injected in memory looks like the real one. */
export const errorFromStatus = (
  operation: GithubOperation,
  status: number,
  githubMessage: string,
  headers: HeaderMap = {}
): GithubError => {
  const message = `${operation}: GitHub answered ${status}${
    githubMessage === "" ? "" : `: ${scrubSecrets(githubMessage)}`
  }`
  if (status === 404) return new GithubNotFound({ operation, message })
  if (status === 422 && deletes.has(operation)) return new GithubBusy({ operation, message })
  if (isRateLimitAnswer(status, githubMessage, headers)) {
    const reset = numberHeader(headers, "x-ratelimit-reset")
    return new GithubRateLimited({
      operation,
      status,
      message,
      resetAt: reset === undefined ? undefined : new Date(reset * 1000),
      retryAfterSeconds: numberHeader(headers, "retry-after")
    })
  }
  return new GithubHttpError({ operation, status, message })
}

export const transportError = (operation: GithubOperation, what: string): GithubTransportError =>
  new GithubTransportError({ operation, message: `${operation}: no answer from GitHub: ${scrubSecrets(what)}` })
