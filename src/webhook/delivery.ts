import type { Headers } from "@effect/platform"
import { HttpServerRequest } from "@effect/platform"
import { Chunk, Clock, Effect, Option, Stream } from "effect"
import { Buffer } from "node:buffer"
import { isJsonObject, type JsonObject, mayHoldUnstorable, storableJson, storableString } from "../domain/jsonPayload.ts"
import { BadDelivery, PayloadTooLarge, SignatureRejected } from "./errors.ts"
import { signatureMatches } from "./signature.ts"
import { WebhookSettings } from "./WebhookSettings.ts"

/** A verified GitHub delivery: signed by our secret, with an event name, an app id and a JSON object body. */
export interface Delivery {
  /** `X-GitHub-Event` */
  readonly event: string
  /** `X-GitHub-Hook-Installation-Target-Id`: the app the hook belongs to. Any integer is accepted, as before. */
  readonly appId: number
  /** `X-GitHub-Delivery`, the same on every re-delivery of one event; null when absent */
  readonly deliveryId: string | null
  /** the body parsed, with the characters PostgreSQL cannot store replaced (see `storableJson`) */
  readonly payload: JsonObject
  /** the body exactly as received and signed; the staging proxy forwards these bytes */
  readonly body: Uint8Array
  readonly headers: Headers.Headers
  /** when reading the request began (Clock millis), for the access log */
  readonly startedAt: number
}

const header = (headers: Headers.Headers, name: string): string | undefined => {
  const value = headers[name]
  return value === undefined || value.trim() === "" ? undefined : value
}

/**
 * Bodies up to this size whose length is declared are read in one piece. Reading through Effect's Stream costs
 * about half a millisecond of CPU per request (measured; more than everything else the webhook does before its
 * database writes), and a declared length bounds the memory just as well: Node's parser never delivers more
 * bytes than `Content-Length` says.
 */
const READ_WHOLE_UP_TO = 256 * 1024

/**
 * The raw body, holding no more than `limit` bytes at any time. A declared `Content-Length` above the limit is
 * refused before reading; a small declared body is read whole (see `READ_WHOLE_UP_TO`); anything else (chunked,
 * or large) is read from the request stream, keeping at most `limit` bytes. A streamed body that turns out larger
 * is read to its end but not kept: stopping early would reset the connection, and the sender would never see
 * the 413. Node's request timeout bounds how long such a drain can last.
 */
export const readBody = Effect.fn("Webhook.readBody")(function*(request: HttpServerRequest.HttpServerRequest, limit: number) {
  const failedRead = () => new BadDelivery({ message: "Failed to read body" })
  const lengthHeader = request.headers["content-length"]
  const declared = lengthHeader !== undefined && /^\d+$/.test(lengthHeader) ? Number(lengthHeader) : undefined
  if (declared !== undefined && declared > limit) return yield* new PayloadTooLarge({ limitBytes: limit })
  if (declared !== undefined && declared <= READ_WHOLE_UP_TO) {
    const whole = yield* request.arrayBuffer.pipe(HttpServerRequest.withMaxBodySize(Option.some(declared)), Effect.mapError(failedRead))
    // Node's implementation hands back a Buffer already; other platforms an ArrayBuffer
    return ArrayBuffer.isView(whole) ? whole as unknown as Uint8Array : new Uint8Array(whole)
  }
  const parts: Array<Uint8Array> = []
  let total = 0
  yield* request.stream.pipe(
    Stream.runForEachChunk((chunk) =>
      Effect.sync(() => {
        for (const part of Chunk.toReadonlyArray(chunk)) {
          total += part.length
          if (total <= limit) parts.push(part)
        }
      })
    ),
    Effect.mapError(failedRead)
  )
  if (total > limit) return yield* new PayloadTooLarge({ limitBytes: limit })
  return Buffer.concat(parts, total)
})

const decoder = new TextDecoder("utf-8")

/**
 * The JSON text of the body: the body itself, or for GitHub's `application/x-www-form-urlencoded` deliveries
 * the `payload` form field.
 */
const jsonText = (headers: Headers.Headers, body: Uint8Array): string | undefined => {
  const text = decoder.decode(body)
  const contentType = (headers["content-type"] ?? "").toLowerCase()
  if (!contentType.startsWith("application/x-www-form-urlencoded")) return text
  return new URLSearchParams(text).get("payload") ?? undefined
}

const parseObject = (text: string): JsonObject | undefined => {
  try {
    const value: unknown = JSON.parse(text)
    return isJsonObject(value) ? value : undefined
  } catch {
    return undefined
  }
}

const INT64 = /^[+-]?\d+$/

/**
 * Reads and checks a delivery, in the original's order: body, event header, signature, app id, JSON. Every
 * failure here happens before anything is written.
 */
export const receiveDelivery = Effect.fn("Webhook.receiveDelivery")(function*() {
  const startedAt = yield* Clock.currentTimeMillis
  const request = yield* HttpServerRequest.HttpServerRequest
  const settings = yield* WebhookSettings
  const body = yield* readBody(request, settings.maxBodyBytes)
  const headers = request.headers

  const event = header(headers, "x-github-event")
  if (event === undefined) return yield* new BadDelivery({ message: "Missing X-Github-Event header" })

  const signature = header(headers, "x-hub-signature-256")
  if (signature === undefined) return yield* new SignatureRejected({ message: "X-Hub-Signature-256 header is missing!" })
  if (!signatureMatches(settings.webhookSecret, body, signature)) {
    return yield* new SignatureRejected({ message: "Request signatures didn't match!" })
  }

  const appIdText = header(headers, "x-github-hook-installation-target-id")
  if (appIdText === undefined) return yield* new BadDelivery({ message: "Missing X-GitHub-Hook-Installation-Target-Id header" })
  const appId = Number(appIdText.trim())
  if (!INT64.test(appIdText.trim()) || !Number.isSafeInteger(appId)) {
    return yield* new BadDelivery({ message: "Invalid X-GitHub-Hook-Installation-Target-Id header" })
  }

  const text = jsonText(headers, body)
  if (text === undefined) return yield* new BadDelivery({ message: "Missing payload field in form body" })
  const parsed = parseObject(text)
  if (parsed === undefined) return yield* new BadDelivery({ message: "Invalid JSON payload" })

  const deliveryId = header(headers, "x-github-delivery")
  return {
    event: storableString(event),
    appId,
    deliveryId: deliveryId === undefined ? null : storableString(deliveryId),
    payload: mayHoldUnstorable(text) ? storableJson(parsed) as JsonObject : parsed,
    body,
    headers,
    startedAt
  } satisfies Delivery
})
