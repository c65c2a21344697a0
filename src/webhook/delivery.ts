import type { Headers } from "@effect/platform"
import { HttpServerRequest } from "@effect/platform"
import { Chunk, Clock, Duration, Effect, Option, type Redacted, Stream } from "effect"
import { Buffer } from "node:buffer"
import {
  isJsonObject,
  type JsonObject,
  MAX_JSON_DEPTH,
  mayHoldUnstorable,
  nestingExceeds,
  storableJson,
  storableName,
  storableString,
  stringAt
} from "../domain/jsonPayload.ts"
import { BadDelivery, BodyBudgetExhausted, PayloadTooLarge, SignatureRejected } from "./errors.ts"
import type { BudgetLease } from "./requestLimits.ts"
import { signatureMatches } from "./signature.ts"
import { WebhookSettings } from "./WebhookSettings.ts"

/** A verified GitHub delivery: signed by our secret, with an event name, an app id and a JSON object body. */
export interface Delivery {
  /** `X-GitHub-Event`, cut to `MAX_NAME_LENGTH` characters */
  readonly event: string
  /** the payload's `action` (a string, else ""), cut to `MAX_NAME_LENGTH` characters: what rows store */
  readonly action: string
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

export interface BodyLimits {
  /** a larger body answers 413 */
  readonly maxBodyBytes: number
  /** what this request may hold of the process's budget for unverified bodies; released by the caller's scope */
  readonly lease: BudgetLease
  /** the `Retry-After` of a refusal for want of budget */
  readonly retryAfterSeconds: number
}

/**
 * The raw body, holding no more than `maxBodyBytes` at any time, and only what the budget for unverified bodies
 * grants. A declared `Content-Length` above the limit is refused (413) before reading, and so is one the budget
 * cannot reserve (503). A declared body is read into one buffer of that size; a chunked one reserves each chunk
 * as it arrives. A streamed body that turns out too large, or outgrows the budget, is read to its end but not
 * kept: stopping early would reset the connection, and the sender would never see the answer. The request
 * deadline (`WEBHOOK_REQUEST_TIMEOUT`) bounds how long such a drain can last.
 */
// Untraced (as `receiveDelivery`): every delivery runs it, and `Webhook.receive` is the request's span.
export const readBody = Effect.fnUntraced(function*(request: HttpServerRequest.HttpServerRequest, limits: BodyLimits) {
  const failedRead = () => new BadDelivery({ message: "Failed to read body" })
  const refused = () => new BodyBudgetExhausted({ retryAfterSeconds: limits.retryAfterSeconds })
  const { lease, maxBodyBytes } = limits
  const lengthHeader = request.headers["content-length"]
  const declared = lengthHeader !== undefined && /^\d+$/.test(lengthHeader) ? Number(lengthHeader) : undefined
  if (declared !== undefined && declared > maxBodyBytes) return yield* new PayloadTooLarge({ limitBytes: maxBodyBytes })
  if (declared !== undefined && !lease.grow(declared)) return yield* refused()
  if (declared !== undefined && declared <= READ_WHOLE_UP_TO) {
    const whole = yield* request.arrayBuffer.pipe(HttpServerRequest.withMaxBodySize(Option.some(declared)), Effect.mapError(failedRead))
    // Node's implementation hands back a Buffer already; other platforms an ArrayBuffer
    return ArrayBuffer.isView(whole) ? whole as unknown as Uint8Array : new Uint8Array(whole)
  }
  if (declared !== undefined) {
    // one buffer of the declared size, filled as the chunks arrive: no list of chunks and no second copy
    const whole = Buffer.allocUnsafe(declared)
    let filled = 0
    yield* request.stream.pipe(
      Stream.runForEachChunk((chunk) =>
        Effect.sync(() => {
          for (const part of Chunk.toReadonlyArray(chunk)) {
            whole.set(part.subarray(0, declared - filled), filled)
            filled += Math.min(part.length, declared - filled)
          }
        })
      ),
      Effect.mapError(failedRead)
    )
    if (filled !== declared) return yield* failedRead()
    return whole
  }
  let parts: Array<Uint8Array> = []
  let total = 0
  let overBudget = false
  yield* request.stream.pipe(
    Stream.runForEachChunk((chunk) =>
      Effect.sync(() => {
        for (const part of Chunk.toReadonlyArray(chunk)) {
          total += part.length
          if (total > maxBodyBytes || overBudget) continue
          if (lease.grow(part.length)) {
            parts.push(part)
          } else {
            // drop what is held, give it back, and drain the rest
            overBudget = true
            parts = []
            lease.release()
          }
        }
      })
    ),
    Effect.mapError(failedRead)
  )
  if (total > maxBodyBytes) return yield* new PayloadTooLarge({ limitBytes: maxBodyBytes })
  if (overBudget) return yield* refused()
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
 * Checks a body already read, in the original's order after the body: event header, signature, app id, JSON.
 * Plain code, without Effect: both ways a delivery arrives (`receiveDelivery` on the router, and the served
 * port's `deliveryFront.ts`) run it. An error is returned, not thrown; nothing here writes anything.
 */
export const checkDelivery = (
  settings: { readonly webhookSecret: Redacted.Redacted<string> },
  headers: Headers.Headers,
  body: Uint8Array,
  startedAt: number
): Delivery | BadDelivery | SignatureRejected => {
  const event = header(headers, "x-github-event")
  if (event === undefined) return new BadDelivery({ message: "Missing X-Github-Event header" })

  const signature = header(headers, "x-hub-signature-256")
  if (signature === undefined) return new SignatureRejected({ message: "X-Hub-Signature-256 header is missing!" })
  if (!signatureMatches(settings.webhookSecret, body, signature)) {
    return new SignatureRejected({ message: "Request signatures didn't match!" })
  }

  const appIdText = header(headers, "x-github-hook-installation-target-id")
  if (appIdText === undefined) return new BadDelivery({ message: "Missing X-GitHub-Hook-Installation-Target-Id header" })
  const appId = Number(appIdText.trim())
  if (!INT64.test(appIdText.trim()) || !Number.isSafeInteger(appId)) {
    return new BadDelivery({ message: "Invalid X-GitHub-Hook-Installation-Target-Id header" })
  }

  const text = jsonText(headers, body)
  if (text === undefined) return new BadDelivery({ message: "Missing payload field in form body" })
  // A signed body nested thousands deep parses, but storing it would fail on every re-delivery, forever.
  if (nestingExceeds(text, MAX_JSON_DEPTH)) {
    return new BadDelivery({ message: `JSON payload nested deeper than ${MAX_JSON_DEPTH} levels` })
  }
  const parsed = parseObject(text)
  if (parsed === undefined) return new BadDelivery({ message: "Invalid JSON payload" })
  const payload = mayHoldUnstorable(text) ? storableJson(parsed) as JsonObject : parsed

  const deliveryId = header(headers, "x-github-delivery")
  return {
    event: storableName(event),
    action: storableName(stringAt(payload, "action")),
    appId,
    deliveryId: deliveryId === undefined ? null : storableString(deliveryId),
    payload,
    body,
    headers,
    startedAt
  }
}

/** The retry-after of a refusal for want of budget: the request deadline, in whole seconds (at least 1). */
export const budgetRetryAfterSeconds = (requestTimeout: Duration.Duration): number =>
  Math.max(1, Math.ceil(Duration.toSeconds(requestTimeout)))

/**
 * Reads and checks a delivery on the router (in process, or a port without `deliveryFront.ts`): the body through
 * the platform's request, then `checkDelivery`. The body holds its share of the budget for unverified bodies
 * until its signature has been checked, and gives it back on every path (refusal, abort, deadline).
 */
export const receiveDelivery = Effect.fnUntraced(function*() {
  const startedAt = yield* Clock.currentTimeMillis
  const request = yield* HttpServerRequest.HttpServerRequest
  const settings = yield* WebhookSettings

  // The lease holds nothing until `readBody` grows it, and `ensuring` gives it back on every exit; cheaper than a
  // Scope per request, which is what `acquireRelease` would make.
  const lease = settings.unverifiedBodyBudget.lease()
  const checked = yield* Effect.ensuring(
    Effect.map(
      readBody(request, { maxBodyBytes: settings.maxBodyBytes, lease, retryAfterSeconds: budgetRetryAfterSeconds(settings.requestTimeout) }),
      (body) => checkDelivery(settings, request.headers, body, startedAt)
    ),
    Effect.sync(lease.release)
  )
  return "_tag" in checked ? yield* checked : checked
})
