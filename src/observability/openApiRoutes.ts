import { HttpApi, type HttpApiGroup, HttpApiScalar, HttpServerResponse } from "@effect/platform"
import { Context, Layer } from "effect"
import { OperatorApi, openApiSpec } from "./httpApi.ts"

/**
 * `GET /openapi.json` (the OpenAPI 3.1 document generated from `OperatorApi`) and `GET /docs`, Scalar's page for
 * it. Both ports serve both: the document covers the two programs' routes and says which port has which. The
 * page is self-contained: `HttpApiScalar.layer` inlines Scalar's bundled script (`layerCdn` would load it from a
 * CDN), and the default fonts, which Scalar would fetch from its own site, are turned off.
 */

export const openApiJson = HttpServerResponse.text(JSON.stringify(openApiSpec), { contentType: "application/json" })

/** `/docs` of the whole operator API on either port, whichever of its groups the port itself serves. */
export const DocsLive = HttpApiScalar.layer({ path: "/docs", scalar: { withDefaultFonts: false, hideClientButton: true } as HttpApiScalar.ScalarConfig }).pipe(
  Layer.provide(Layer.succeed(HttpApi.Api, { api: OperatorApi as unknown as HttpApi.HttpApi<string, HttpApiGroup.HttpApiGroup.AnyWithProps>, context: Context.empty() }))
)
