/**
 * The in-memory GitHub (`layers/github/memoryServer.ts`) behind a real HTTP socket, so a benchmark can drive the
 * live Octokit layer (its plugins, its fetch, the write spacing) against a GitHub that answers at once. The front
 * only translates: the method, path, query, body, `If-None-Match` and credentials of each request go to the
 * in-memory server, whose status, headers and JSON come back. An app JWT is told apart by its `iss` claim.
 */
import { createServer, type IncomingMessage } from "node:http"
import type { AddressInfo } from "node:net"
import { Effect, Redacted, Ref, type Scope } from "effect"
import type { EntityType } from "../../src/domain/Entity.ts"
import type { GithubOperation } from "../../src/services/Github.ts"
import { makeCallCounter } from "../../layers/github/callCounter.ts"
import { matchEndpoint } from "../../layers/github/endpoints.ts"
import type { RedeliveryRequest } from "../../layers/github/memoryControl.ts"
import { makeControlHandle } from "../../layers/github/memoryControlHandle.ts"
import { makeMemoryServer } from "../../layers/github/memoryServer.ts"
import { emptyState } from "../../layers/github/memoryState.ts"
import type { TransportAuth } from "../../layers/github/transport.ts"

const readBody = (req: IncomingMessage) =>
  new Promise<string>((resolve, reject) => {
    let text = ""
    req.setEncoding("utf8")
    req.on("data", (d) => (text += d))
    req.on("end", () => resolve(text))
    req.on("error", reject)
  })

/** Starts the front on a free port; `apps` says which app id serves which account type. */
export const startGithubFront = (apps: Readonly<Record<number, EntityType>>) =>
  Effect.gen(function*() {
    const state = yield* Ref.make(emptyState)
    const counter = yield* makeCallCounter
    // the front never redelivers: nobody listens for redelivery requests
    const listeners = yield* Ref.make<ReadonlyArray<(request: RedeliveryRequest) => Effect.Effect<void>>>([])
    const server = makeMemoryServer(state, counter, 1_000_000, listeners)
    const control = makeControlHandle(state, counter, 1_000_000, listeners)

    const authOf = (header: string | undefined): TransportAuth | undefined => {
      const [scheme, credential] = (header ?? "").split(" ")
      if (credential === undefined) return undefined
      if (scheme?.toLowerCase() === "token") return { _tag: "installation", installationId: 0, token: Redacted.make(credential) }
      const claims = JSON.parse(Buffer.from(credential.split(".")[1] ?? "", "base64url").toString("utf8")) as { iss?: unknown }
      const app = apps[Number(claims.iss)]
      return app === undefined ? undefined : { _tag: "app", app }
    }

    const http = createServer((req, res) => {
      void (async () => {
        const url = new URL(req.url ?? "/", "http://front")
        const auth = authOf(req.headers.authorization)
        const route = matchEndpoint(req.method ?? "GET", url.pathname)
        if (auth === undefined || route === undefined) {
          res.writeHead(auth === undefined ? 401 : 404, { "content-type": "application/json" }).end("{\"message\":\"no\"}")
          return
        }
        const text = await readBody(req)
        const query = Object.fromEntries(url.searchParams)
        const answer = await Effect.runPromise(server.request({
          operation: route.operation as GithubOperation,
          method: req.method as "GET" | "POST" | "DELETE",
          path: url.pathname,
          auth,
          query,
          body: text === "" ? undefined : JSON.parse(text),
          etag: req.headers["if-none-match"]
        }))
        const headers: Record<string, string> = { ...(answer.headers as Record<string, string>) }
        if (answer.data === undefined || answer.status === 304 || answer.status === 204) {
          res.writeHead(answer.status, headers).end()
        } else {
          res.writeHead(answer.status, { ...headers, "content-type": "application/json" }).end(JSON.stringify(answer.data))
        }
      })().catch(() => res.writeHead(500).end())
    })
    yield* Effect.acquireRelease(
      Effect.async<void>((resume) => void http.listen(0, "127.0.0.1", () => resume(Effect.void))),
      () => Effect.sync(() => http.close())
    )
    http.keepAliveTimeout = 60_000
    const port = (http.address() as AddressInfo).port
    return { url: `http://127.0.0.1:${port}`, control } as const
  }) satisfies Effect.Effect<unknown, never, Scope.Scope>
