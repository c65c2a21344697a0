import { type HttpApi, HttpApiBuilder, type HttpApp, HttpRouter } from "@effect/platform"
import { Cause, Effect, Exit, Layer } from "effect"
import { initialiseHttpResponses, recordHttpResponse } from "./collect.ts"
import { DocsLive } from "./openApiRoutes.ts"

/*
 * How each port is served: its HttpApi through `HttpApiBuilder` (path and query schemas decode the input,
 * response schemas encode the output, error schemas answer the failures), with the port's plain routes
 * (`POST /` with its raw body, `/health`, `/ready`, `/metrics`, the HTML pages) concatenated into the same
 * router, and `/docs` (Scalar, bundled: nothing is fetched from elsewhere) of the whole operator API.
 */

/** The plain routes, beside the API's in its router; what they need is read when the port is built. */
const plainRoutes = <E, R>(routes: HttpRouter.HttpRouter<E, R>) =>
  HttpApiBuilder.Router.use((router) =>
    Effect.flatMap(Effect.context<HttpRouter.HttpRouter.ExcludeProvided<R>>(), (context) =>
      // with their services provided, the routes need only what every request has
      router.concat(HttpRouter.use(routes, Effect.provide(context)) as unknown as HttpRouter.HttpRouter<never, HttpRouter.HttpRouter.DefaultServices>)))

/** One port: the API (with its handler layers provided), the plain routes and the docs. */
export const portLayer = <RA, E, RR>(api: Layer.Layer<HttpApi.Api, never, RA>, routes: HttpRouter.HttpRouter<E, RR>) =>
  Layer.mergeAll(api, plainRoutes(routes), DocsLive)

/**
 * Serves a port's layer on the HttpServer the caller provides. `HttpApiBuilder`'s router is one layer value, and
 * layers built together share it: `Layer.fresh` gives each port its own, so `all` can serve both ports (each with
 * its `/health`) from one build. `front`, when given, sees every request before the router does (a port's hot
 * route answered without the router's work); what it needs is required by the layer.
 */
export const servePort = <R, RF = never>(
  port: Layer.Layer<HttpApi.Api, never, R>,
  server?: string,
  front?: (app: HttpApp.Default) => HttpApp.Default<never, RF>
) =>
  Layer.fresh(
    HttpApiBuilder.serve((app: HttpApp.Default) => {
      const fronted = front === undefined ? app : front(app)
      return server === undefined ? fronted : countResponses(server)(fronted)
    }).pipe(
      Layer.provide(port),
      // the counted port's answers exist at 0 from the start, so its first 5xx is an increase
      Layer.merge(server === undefined ? Layer.empty : Layer.effectDiscard(initialiseHttpResponses(server)))
    )
  )

/**
 * Counts every answer of the port by status class (`riscv_runner_http_responses_total`), for the 5xx alert: the
 * app's errors are answers already, so only a defect is left, and it is answered 500.
 */
const countResponses = (server: string) => <R>(app: HttpApp.Default<never, R>): HttpApp.Default<never, R> =>
  Effect.onExit(app, (exit) =>
    Exit.isSuccess(exit)
      ? recordHttpResponse(server, exit.value.status)
      // a client that went away is no answer of ours
      : Cause.isInterruptedOnly(exit.cause) ? Effect.void : recordHttpResponse(server, 500))

/** A port's layer as one HttpApp, for calling it in process (tests, the simulation). */
export const portApp = <R>(port: Layer.Layer<HttpApi.Api, never, R>) =>
  HttpApiBuilder.httpApp.pipe(Effect.provide(Layer.mergeAll(port, HttpApiBuilder.Router.Live, HttpApiBuilder.Middleware.layer)))
