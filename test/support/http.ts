/** In-process HTTP for route tests: requests handed to the app as a web handler, with no socket and no port. */

import { HttpApp, HttpRouter } from "@effect/platform"
import { Effect } from "effect"

/** What the route tests read of an answer. */
export interface RouterResponse {
  readonly status: number
  readonly type: string | null
  readonly link: string | null
  readonly body: string
}

/**
 * Calls the router like a browser would (`GET path`), in process and in the test's own context: the services it
 * provides and its TestClock. No socket, no port.
 */
export const getFrom = <E, R>(router: HttpRouter.HttpRouter<E, R>, path: string): Effect.Effect<RouterResponse, never, R> =>
  Effect.gen(function*() {
    const app = yield* HttpRouter.toHttpApp(router)
    const runtime = yield* Effect.runtime<R>()
    const response = yield* Effect.promise(() => HttpApp.toWebHandlerRuntime(runtime)(app)(new Request(`http://localhost${path}`)))
    return {
      status: response.status,
      type: response.headers.get("content-type"),
      link: response.headers.get("link"),
      body: yield* Effect.promise(() => response.text())
    }
  })
