import { HttpClient, HttpClientRequest, HttpServerRequest, type HttpServerResponse } from "@effect/platform"
import { Cause, Context, Duration, Effect, Layer, Redacted, type Scope } from "effect"
import { createHmac } from "node:crypto"

/**
 * How the simulated GitHub reaches our webhook endpoint. `npm start` posts over real HTTP to our own port; the
 * deterministic simulation tests hand the same signed bytes to the webhook router in-process (see
 * `bench/support/simHarness.ts`), so TestClock governs every step. Either way the delivery is signed with the
 * webhook secret and goes through signature verification like any other.
 */
export interface Delivery {
  /** `X-GitHub-Event` */
  readonly event: string
  /** `X-GitHub-Delivery` */
  readonly deliveryId: string
  /** `X-GitHub-Hook-Installation-Target-Id`: the app the hook belongs to */
  readonly appId: number
  /** the exact bytes that are signed and sent */
  readonly body: Uint8Array
}

/** What came back: the HTTP status (0 when nothing answered) and the body text, for the event lines. */
export interface DeliveryResult {
  readonly status: number
  readonly body: string
}

export interface WebhookTransportShape {
  readonly send: (delivery: Delivery) => Effect.Effect<DeliveryResult>
}

export class WebhookTransport extends Context.Tag("riscv-runner/sim/WebhookTransport")<WebhookTransport, WebhookTransportShape>() {}

/** `sha256=` + hex(HMAC-SHA256(secret, body)), what GitHub puts in `X-Hub-Signature-256`. */
export const signDelivery = (secret: Redacted.Redacted<string>, body: Uint8Array): string =>
  `sha256=${createHmac("sha256", Redacted.value(secret)).update(body).digest("hex")}`

/** The headers GitHub sends with a delivery. */
export const deliveryHeaders = (delivery: Delivery, secret: Redacted.Redacted<string>): Record<string, string> => ({
  "content-type": "application/json",
  "user-agent": "GitHub-Hookshot/simulated",
  "x-github-event": delivery.event,
  "x-github-delivery": delivery.deliveryId,
  "x-github-hook-installation-target-id": String(delivery.appId),
  "x-github-hook-installation-target-type": "integration",
  "x-hub-signature-256": signDelivery(secret, delivery.body)
})

/** Over HTTP to `url` (our own webhook endpoint), with a per-delivery timeout like GitHub's 10 s. */
export const HttpWebhookTransport = (options: { readonly url: string; readonly secret: Redacted.Redacted<string> }) =>
  Layer.effect(
    WebhookTransport,
    Effect.gen(function*() {
      const client = yield* HttpClient.HttpClient
      return {
        send: (delivery) =>
          client.execute(
            HttpClientRequest.post(options.url).pipe(
              HttpClientRequest.setHeaders(deliveryHeaders(delivery, options.secret)),
              HttpClientRequest.bodyUint8Array(delivery.body, "application/json")
            )
          ).pipe(
            Effect.flatMap((response) => Effect.map(response.text, (body) => ({ status: response.status, body }))),
            Effect.scoped,
            Effect.timeout(Duration.seconds(10)),
            Effect.orElseSucceed((): DeliveryResult => ({ status: 0, body: "no answer" }))
          )
      }
    })
  )

const decoder = new TextDecoder()

/**
 * In-process: the delivery, signed exactly as over HTTP, is handed to `app` (the webhook program's router) as a
 * server request, in the caller's fiber. The deterministic simulation uses it so that TestClock and the seeded
 * Random govern the whole loop, with no sockets in between.
 */
export const InProcessWebhookTransport = <E, R>(options: {
  readonly app: Effect.Effect<HttpServerResponse.HttpServerResponse, E, R>
  readonly secret: Redacted.Redacted<string>
}): Layer.Layer<WebhookTransport, never, Exclude<R, HttpServerRequest.HttpServerRequest | Scope.Scope>> =>
  Layer.effect(
    WebhookTransport,
    Effect.gen(function*() {
      const context = yield* Effect.context<Exclude<R, HttpServerRequest.HttpServerRequest | Scope.Scope>>()
      return {
        send: (delivery) =>
          Effect.gen(function*() {
            const request = HttpServerRequest.fromWeb(
              new Request("http://webhook.sim/", {
                method: "POST",
                headers: deliveryHeaders(delivery, options.secret),
                body: delivery.body
              })
            )
            const response = yield* options.app.pipe(
              Effect.provideService(HttpServerRequest.HttpServerRequest, request),
              Effect.scoped,
              Effect.provide(context)
            ) as Effect.Effect<HttpServerResponse.HttpServerResponse, E>
            const body = response.body._tag === "Uint8Array" ? decoder.decode(response.body.body) : ""
            return { status: response.status, body }
          }).pipe(
            Effect.catchAllCause((cause) =>
              Effect.succeed<DeliveryResult>({ status: Cause.isInterruptedOnly(cause) ? 0 : 500, body: "the webhook program failed" })
            )
          )
      }
    })
  )
