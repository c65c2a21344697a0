/**
 * Readers for GitHub webhook bodies, which arrive as untyped JSON. They are lenient the way the original's
 * generic-map access was: a field that is absent or of the wrong type reads as "missing" (`undefined`, 0 or ""),
 * and the caller decides whether missing is an error. Nothing here throws.
 */

export type JsonObject = { readonly [key: string]: unknown }

export const isJsonObject = (u: unknown): u is JsonObject => typeof u === "object" && u !== null && !Array.isArray(u)

/** `o[key]` when it is an object, else undefined. */
export const objectAt = (o: JsonObject | undefined, key: string): JsonObject | undefined => {
  const v = o?.[key]
  return isJsonObject(v) ? v : undefined
}

/**
 * An id: a JSON integer that a JavaScript number holds exactly (every GitHub id does). Anything else reads as 0,
 * which every check treats as "missing", as the original did with its zero values.
 */
export const intAt = (o: JsonObject | undefined, key: string): number => {
  const v = o?.[key]
  return typeof v === "number" && Number.isSafeInteger(v) ? v : 0
}

/**
 * An id field, told apart three ways: a positive integer that a JavaScript number holds exactly; `"missing"`
 * when absent, null or 0 (how the original's zero values read); `"invalid"` for anything else (negative,
 * fractional, too large to be exact, a string, ...), which no GitHub id ever is.
 */
export const idAt = (o: JsonObject | undefined, key: string): number | "missing" | "invalid" => {
  const v = o?.[key]
  if (v === undefined || v === null || v === 0) return "missing"
  return typeof v === "number" && Number.isSafeInteger(v) && v > 0 ? v : "invalid"
}

/** A string field, or "" when absent or not a string. */
export const stringAt = (o: JsonObject | undefined, key: string): string => {
  const v = o?.[key]
  return typeof v === "string" ? v : ""
}

/** The strings of an array field, in order; other elements are skipped and a non-array reads as empty. */
export const stringsAt = (o: JsonObject | undefined, key: string): ReadonlyArray<string> => {
  const v = o?.[key]
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === "string") : []
}

/** The object elements of an array field. */
export const objectsAt = (o: JsonObject | undefined, key: string): ReadonlyArray<JsonObject> => {
  const v = o?.[key]
  return Array.isArray(v) ? v.filter(isJsonObject) : []
}

// A NUL character or a lone UTF-16 surrogate is valid in a JSON text but not in PostgreSQL: JSONB and TEXT both
// reject it. A signed delivery that carried one would then fail its insert on every re-delivery, forever.
const UNSTORABLE = /\u0000|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g

/** The string with the characters PostgreSQL cannot store replaced by U+FFFD. */
export const storableString = (s: string): string => s.replace(UNSTORABLE, "\uFFFD")

/**
 * Can the value parsed from this JSON text hold a character PostgreSQL cannot store? Only through a `\u0000` or
 * `\uD800`-`\uDFFF` escape: raw control characters are not valid JSON, and decoded UTF-8 never yields a lone
 * surrogate. Checking the text first spares the deep copy of `storableJson` for almost every delivery.
 */
export const mayHoldUnstorable = (jsonText: string): boolean => /\\u(?:0000|[dD][89a-fA-F])/.test(jsonText)

/**
 * A deep copy of a parsed JSON value in which every string (keys included) is storable in PostgreSQL. Values
 * without such characters come back equal to the input.
 */
export const storableJson = (u: unknown): unknown => {
  if (typeof u === "string") return storableString(u)
  if (Array.isArray(u)) return u.map(storableJson)
  if (isJsonObject(u)) {
    const out: Record<string, unknown> = {}
    // defineProperty, not assignment: a JSON key "__proto__" must stay a plain key, not replace the prototype
    for (const [k, v] of Object.entries(u)) {
      Object.defineProperty(out, storableString(k), { value: storableJson(v), enumerable: true, writable: true, configurable: true })
    }
    return out
  }
  return u
}

/** Event and action names are stored cut to this many characters; GitHub's longest is under 40. */
export const MAX_NAME_LENGTH = 100

/** A name from a delivery (event header, `action`) as it is stored: storable, and at most `MAX_NAME_LENGTH` long. */
export const storableName = (name: string): string =>
  // cutting may split a surrogate pair; storableString then replaces the lone half
  storableString(name.length > MAX_NAME_LENGTH ? name.slice(0, MAX_NAME_LENGTH) : name)

/** The deepest nesting of objects and arrays a delivery may have. GitHub's payloads stay under 10. */
export const MAX_JSON_DEPTH = 64

const OPEN_BRACE = 0x7b
const OPEN_BRACKET = 0x5b
const CLOSE_BRACE = 0x7d
const CLOSE_BRACKET = 0x5d
const QUOTE = 0x22
const BACKSLASH = 0x5c

/** The index of the quote that closes the string whose opening quote is at `open`, or -1. */
const closingQuote = (text: string, open: number): number => {
  let at = text.indexOf("\"", open + 1)
  while (at !== -1) {
    let backslashes = 0
    while (text.charCodeAt(at - 1 - backslashes) === BACKSLASH) backslashes++
    if (backslashes % 2 === 0) return at
    at = text.indexOf("\"", at + 1)
  }
  return -1
}

/**
 * Does this JSON text nest objects and arrays deeper than `limit`? One pass over the text, without recursion or
 * allocation, so that a hostile text costs no more than its length (strings are skipped with `indexOf`, so a
 * large string field costs little). Brackets inside strings do not count. The text need not be valid JSON: this
 * only bounds what `JSON.parse` and `JSON.stringify` would face.
 */
export const nestingExceeds = (text: string, limit: number): boolean => {
  let depth = 0
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (c === QUOTE) {
      const end = closingQuote(text, i)
      if (end === -1) return false
      i = end
    } else if (c === OPEN_BRACE || c === OPEN_BRACKET) {
      if (++depth > limit) return true
    } else if (c === CLOSE_BRACE || c === CLOSE_BRACKET) {
      depth--
    }
  }
  return false
}
