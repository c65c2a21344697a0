/**
 * The p-quantile of the values (p from 0 to 1) by nearest rank: the smallest value with at least a share p of the
 * values at or below it. NaN when there are none. The one percentile the simulation figures and the benchmarks use.
 */
export const percentile = (values: ReadonlyArray<number>, p: number): number => {
  if (values.length === 0) return Number.NaN
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))]!
}
