import { Schema } from "effect"

/**
 * A job's `runs-on` labels as a set: sorted ascending with duplicates removed. Demand and supply are matched on
 * this exact set, so every writer and every reader must build it the same way, through `toLabelSet`.
 */
export const LabelSet = Schema.Array(Schema.String).pipe(Schema.brand("LabelSet"))
export type LabelSet = typeof LabelSet.Type

export const toLabelSet = (labels: Iterable<string>): LabelSet =>
  LabelSet.make(Array.from(new Set(labels)).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)))

/** The canonical text form, e.g. `["a","b"]`: the key for grouping in memory and the value bound into SQL. */
export const encodeLabelSet = (labels: Iterable<string>): string => JSON.stringify(toLabelSet(labels))

export const sameLabelSet = (a: Iterable<string>, b: Iterable<string>): boolean =>
  encodeLabelSet(a) === encodeLabelSet(b)
