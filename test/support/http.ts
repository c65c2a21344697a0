/** In-process HTTP for route tests: requests handed to the app as a web handler, with no socket and no port. */

import { HttpApp, HttpServer } from "@effect/platform"
import { Effect } from "effect"

/** What the route tests read of an answer. */
export interface RouterResponse {
  readonly status: number
  readonly type: string | null
  readonly link: string | null
  readonly body: string
}

/**
 * Calls a port's app (e.g. `schedulerApp`: its HttpApi and plain routes) like a browser would (`GET path`), in
 * process and in the test's own context: the services it provides and its TestClock. The app is built for each
 * request, from the services in context at that moment. No socket, no port.
 */
export const getFrom = <E, R, RB>(app: Effect.Effect<HttpApp.Default<E, R>, never, RB>, path: string) =>
  Effect.gen(function*() {
    const handler = yield* app
    const runtime = yield* Effect.runtime<R>()
    const response = yield* Effect.promise(() => HttpApp.toWebHandlerRuntime(runtime)(handler)(new Request(`http://localhost${path}`)))
    return {
      status: response.status,
      type: response.headers.get("content-type"),
      link: response.headers.get("link"),
      retryAfter: response.headers.get("retry-after"),
      body: yield* Effect.promise(() => response.text())
    }
  }).pipe(Effect.provide(HttpServer.layerContext))
