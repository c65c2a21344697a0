import { Buffer } from "node:buffer"
import { createHash, createHmac, timingSafeEqual } from "node:crypto"
import { Redacted } from "effect"

/** `sha256=` + hex(HMAC-SHA256(secret, body)): what GitHub sends in `X-Hub-Signature-256`. */
export const signBody = (secret: Redacted.Redacted<string> | string, body: Uint8Array | string): string =>
  `sha256=${createHmac("sha256", typeof secret === "string" ? secret : Redacted.value(secret)).update(body).digest("hex")}`

const SIGNATURE = /^sha256=([0-9a-fA-F]{64})$/

/**
 * Does `header` sign exactly these bytes? The digests are compared with `timingSafeEqual`, so the time taken
 * says nothing about how much of a forged signature was right. A header of the wrong shape is simply false.
 */
export const signatureMatches = (secret: Redacted.Redacted<string>, body: Uint8Array, header: string): boolean => {
  const given = SIGNATURE.exec(header.trim())
  if (given === null) return false
  const expected = createHmac("sha256", Redacted.value(secret)).update(body).digest()
  return timingSafeEqual(expected, Buffer.from(given[1]!, "hex"))
}

/**
 * Constant-time equality of two strings of any lengths: both are hashed first, so neither the content nor the
 * length of the secret leaks through timing. Used for the trace API's bearer token.
 */
export const secretEquals = (given: string, secret: Redacted.Redacted<string>): boolean =>
  timingSafeEqual(
    createHash("sha256").update(given).digest(),
    createHash("sha256").update(Redacted.value(secret)).digest()
  )
