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
