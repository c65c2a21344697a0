import { Effect } from "effect"

const ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"
export const SUFFIX_LENGTH = 9
/** The largest multiple of 36 below 256: bytes from here up are redrawn, so every character is equally likely. */
const UNBIASED_LIMIT = 252

/**
 * 9 characters of `[a-z0-9]` from the platform's cryptographic generator (Web Crypto, present in Node and Deno).
 * Runner names are guessable otherwise, and a guessed name lets someone race our JIT registration.
 */
export const cryptoRunnerSuffix: Effect.Effect<string> = Effect.sync(() => {
  let out = ""
  const bytes = new Uint8Array(32)
  while (out.length < SUFFIX_LENGTH) {
    globalThis.crypto.getRandomValues(bytes)
    for (const b of bytes) {
      if (b >= UNBIASED_LIMIT) continue
      out += ALPHABET[b % 36]
      if (out.length === SUFFIX_LENGTH) break
    }
  }
  return out
})

export const isRunnerSuffix = (s: string): boolean => /^[a-z0-9]{9}$/.test(s)
