import { HttpClient, HttpClientRequest, HttpServerResponse } from "@effect/platform"
import { Duration, Effect, Option } from "effect"
import { isStagingRepo } from "../domain/RunnerConfig.ts"
import type { Delivery } from "./delivery.ts"
import { StagingProxyFailed } from "./errors.ts"
import type { WebhookSettingsShape } from "./WebhookSettings.ts"

/*
 * Prod forwards the `workflow_job` deliveries of the config's staging repositories to the staging deployment,
 * so a staging build is exercised by real jobs of a real repository. Staging verifies the signature itself (it
 * shares the webhook secret), so the body goes unchanged and the headers go along.
 */

/** Where prod forwards this job's deliveries, if it does: prod only, with a STAGING_URL, for a listed repo. */
export const stagingTarget = (settings: WebhookSettingsShape, entityId: number, repoFullName: string): Option.Option<string> =>
  settings.prod && isStagingRepo(settings.runnerConfig, entityId, repoFullName)
    ? Option.map(settings.stagingUrl, (url) => `${url.replace(/\/+$/, "")}/`)
    : Option.none()

// Connection-level headers belong to one hop. `host` and `content-length` are set anew for the next hop, and
// `accept-encoding` is dropped so staging answers uncompressed and its body can be relayed whatever the client.
const NOT_FORWARDED = new Set([
  "host",
  "content-length",
  "connection",
  "keep-alive",
  "transfer-encoding",
  "te",
  "trailer",
  "upgrade",
  "proxy-authorization",
  "proxy-authenticate",
  "proxy-connection",
  "accept-encoding"
])

const forwardable = (headers: Readonly<Record<string, string>>): Record<string, string> =>
  Object.fromEntries(Object.entries(headers).filter(([name]) => !NOT_FORWARDED.has(name.toLowerCase())))

/**
 * POSTs the raw body to `url` with the delivery's headers and relays staging's status, headers and body. No
 * answer within the timeout, or none at all, is a 502.
 */
export const proxyToStaging = Effect.fn("Webhook.proxyToStaging")(function*(
  delivery: Delivery,
  url: string,
  timeout: WebhookSettingsShape["stagingTimeout"]
) {
  const client = yield* HttpClient.HttpClient
  const headers = forwardable(delivery.headers)
  const request = HttpClientRequest.post(url).pipe(
    HttpClientRequest.setHeaders(headers),
    HttpClientRequest.bodyUint8Array(delivery.body, delivery.headers["content-type"] ?? "application/json")
  )
  const relayed = yield* client.execute(request).pipe(
    Effect.flatMap((response) =>
      Effect.map(response.arrayBuffer, (body) => ({ status: response.status, headers: response.headers, body: new Uint8Array(body) }))
    ),
    Effect.scoped,
    Effect.timeoutFail({ duration: timeout, onTimeout: () => new StagingProxyFailed({ message: `no answer within ${Duration.format(timeout)}` }) }),
    Effect.catchTag("RequestError", "ResponseError", (e) => new StagingProxyFailed({ message: e.message }))
  )
  const { "content-type": contentType, ...rest } = forwardable(relayed.headers)
  yield* Effect.logInfo("relayed staging's answer").pipe(Effect.annotateLogs({ status: relayed.status }))
  return HttpServerResponse.uint8Array(relayed.body, { status: relayed.status, headers: rest, contentType: contentType ?? "text/plain; charset=utf-8" })
})
