import { Schema } from "effect"

/**
 * A job's `runs-on` labels as a set: sorted ascending with duplicates removed. Demand and supply are matched on
 * this exact set, so every writer and every reader must build it the same way, through `toLabelSet`.
 */
export const LabelSet = Schema.Array(Schema.String).pipe(Schema.brand("LabelSet"))
export type LabelSet = typeof LabelSet.Type

export const toLabelSet = (labels: Iterable<string>): LabelSet => {
  const set = Array.from(new Set(labels)).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
  // Every matching group's key is built here (thousands a burst), and the brand's validation is a Schema parse:
  // an array of strings is what it would accept, so only anything else goes through it (and is refused as before).
  return set.every((l) => typeof l === "string") ? (set as unknown as LabelSet) : LabelSet.make(set)
}

/** The canonical text form, e.g. `["a","b"]`: the key for grouping in memory and the value bound into SQL. */
export const encodeLabelSet = (labels: Iterable<string>): string => JSON.stringify(toLabelSet(labels))

export const sameLabelSet = (a: Iterable<string>, b: Iterable<string>): boolean =>
  encodeLabelSet(a) === encodeLabelSet(b)
