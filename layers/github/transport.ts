import { Data, type Effect, type Redacted } from "effect"
import type { EntityType } from "../../src/domain/Entity.ts"
import type { GithubOperation, WriteWait } from "../../src/services/Github.ts"
import type { HeaderMap } from "./statusErrors.ts"

/*
 * The one seam between the GitHub client (`client.ts`, all of the service's logic) and what carries its requests:
 * Octokit over HTTPS (`octokit.ts`) or the in-memory GitHub server (`memoryServer.ts`). A transport sends one
 * request and returns GitHub's answer whatever its status (304, 404 and 429 are answers too); it fails only when
 * there is no answer at all. It counts every attempt it makes under the request's operation.
 */

/** Who signs the request: the app (a JWT of the app serving `app`), or an installation (its token). */
export type TransportAuth =
  | { readonly _tag: "app"; readonly app: EntityType }
  | {
    readonly _tag: "installation"
    readonly installationId: number
    readonly token: Redacted.Redacted<string>
  }

export interface GithubRequest {
  /** what the call is for; transports count attempts under it (GitHub never sees it) */
  readonly operation: GithubOperation
  readonly method: "GET" | "POST" | "DELETE"
  /**
   * A path below the API root with its parameters filled in (`/orgs/rise-org/actions/runner-groups`), or an
   * address GitHub handed out itself (a Link header's `rel="next"`), which may be absolute and carry a query.
   */
  readonly path: string
  readonly auth: TransportAuth
  /** query parameters, added to whatever query `path` already has */
  readonly query?: Readonly<Record<string, string | number>> | undefined
  /** the JSON body of a POST */
  readonly body?: Readonly<Record<string, unknown>> | undefined
  /** sent as `If-None-Match`: GitHub answers 304 (free) when the resource still has this ETag */
  readonly etag?: string | undefined
}

/** GitHub's answer: status, lower-cased headers, and the decoded JSON body (undefined when there is none). */
export interface GithubAnswer {
  readonly status: number
  readonly headers: HeaderMap
  readonly data: unknown
}

/** No answer: refused, reset, timed out, or a request that could not even be signed. */
export class NoAnswer extends Data.TaggedError("NoAnswer")<{ readonly message: string }> {}

export interface GithubTransport {
  readonly request: (request: GithubRequest) => Effect.Effect<GithubAnswer, NoAnswer>
  /**
   * How long the installation's next write would wait in the transport's spacing (`writeSpacing.ts`), without
   * starting one. A transport that does not space writes leaves it out: its writes never wait.
   */
  readonly writeWait?: ((installationId: number) => Effect.Effect<WriteWait>) | undefined
}
