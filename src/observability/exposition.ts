import { Effect, Metric, MetricKeyType, type MetricPair, MetricState, Option } from "effect"

/**
 * Renders a snapshot of Effect's metric registry in the Prometheus text exposition format (version 0.0.4):
 * one `# HELP` and `# TYPE` per family, label values escaped (backslash, double quote, newline), histograms as
 * cumulative `_bucket{le=...}` series with `_sum` and `_count`. Families and series are sorted, so a scrape is
 * stable. Frequencies render as counters of their occurrences (with an `occurrence` label); summaries are
 * skipped (we define none).
 *
 * Names pass `promtool check metrics`: a counter is exported with a `_total` suffix (added when its name lacks
 * one, as Effect's own runtime counters do: `effect_fiber_started` is `effect_fiber_started_total`), and
 * `effect_fiber_active`, a counter that Effect also decrements (fibers alive now), is exported as the gauge it is.
 */

export const CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/

const safeName = (name: string): string => (NAME.test(name) ? name : name.replace(/[^a-zA-Z0-9_:]/g, "_").replace(/^([0-9])/, "_$1"))
/** Effect's runtime counters that go down as well as up: a Prometheus counter must not, so they are gauges. */
const COUNTERS_THAT_ARE_GAUGES: ReadonlySet<string> = new Set(["effect_fiber_active"])

const counterName = (name: string): string => (name.endsWith("_total") ? name : `${name}_total`)

const safeLabel = (name: string): string => (LABEL.test(name) ? name : name.replace(/[^a-zA-Z0-9_]/g, "_").replace(/^([0-9])/, "_$1"))

export const escapeLabelValue = (value: string): string => value.replace(/\\/g, "\\\\").replace(/"/g, "\\\"").replace(/\n/g, "\\n")
export const escapeHelp = (text: string): string => text.replace(/\\/g, "\\\\").replace(/\n/g, "\\n")

export const formatValue = (n: number | bigint): string => {
  if (typeof n === "bigint") return n.toString()
  if (Number.isNaN(n)) return "NaN"
  if (n === Infinity) return "+Inf"
  if (n === -Infinity) return "-Inf"
  return String(n)
}

const labelSet = (labels: ReadonlyArray<readonly [string, string]>): string =>
  labels.length === 0 ? "" : `{${labels.map(([k, v]) => `${safeLabel(k)}="${escapeLabelValue(v)}"`).join(",")}}`

interface Family {
  type: "counter" | "gauge" | "histogram"
  help: string
  lines: Array<{ readonly sortKey: string; readonly text: string }>
}

export const renderExposition = (pairs: ReadonlyArray<MetricPair.MetricPair.Untyped>): string => {
  const families = new Map<string, Family>()
  const family = (name: string, type: Family["type"], help: Option.Option<string>): Family => {
    let f = families.get(name)
    if (f === undefined) {
      f = { type, help: Option.getOrElse(help, () => name), lines: [] }
      families.set(name, f)
    }
    return f
  }
  for (const pair of pairs) {
    const key = pair.metricKey
    const name = safeName(key.name)
    const tags = [...key.tags].map((t) => [t.key, t.value] as const).sort(([a], [b]) => a.localeCompare(b))
    const sortKey = labelSet(tags)
    const state = pair.metricState
    if (MetricKeyType.isCounterKey(key.keyType) && MetricState.isCounterState(state) && COUNTERS_THAT_ARE_GAUGES.has(name)) {
      family(name, "gauge", key.description).lines.push({ sortKey, text: `${name}${labelSet(tags)} ${formatValue(state.count)}` })
    } else if (MetricKeyType.isCounterKey(key.keyType) && MetricState.isCounterState(state)) {
      const total = counterName(name)
      family(total, "counter", key.description).lines.push({ sortKey, text: `${total}${labelSet(tags)} ${formatValue(state.count)}` })
    } else if (MetricKeyType.isGaugeKey(key.keyType) && MetricState.isGaugeState(state)) {
      family(name, "gauge", key.description).lines.push({ sortKey, text: `${name}${labelSet(tags)} ${formatValue(state.value)}` })
    } else if (MetricKeyType.isHistogramKey(key.keyType) && MetricState.isHistogramState(state)) {
      const f = family(name, "histogram", key.description)
      const lines: Array<string> = []
      let sawInf = false
      for (const [bound, cumulative] of state.buckets) {
        if (bound === Infinity) sawInf = true
        lines.push(`${name}_bucket${labelSet([...tags, ["le", formatValue(bound)]])} ${cumulative}`)
      }
      if (!sawInf) lines.push(`${name}_bucket${labelSet([...tags, ["le", "+Inf"]])} ${state.count}`)
      lines.push(`${name}_sum${labelSet(tags)} ${formatValue(state.sum)}`)
      lines.push(`${name}_count${labelSet(tags)} ${state.count}`)
      f.lines.push({ sortKey, text: lines.join("\n") })
    } else if (MetricKeyType.isFrequencyKey(key.keyType) && MetricState.isFrequencyState(state)) {
      const total = counterName(name)
      const f = family(total, "counter", key.description)
      for (const [occurrence, n] of state.occurrences) {
        const labels = [...tags, ["occurrence", occurrence] as const]
        f.lines.push({ sortKey: labelSet(labels), text: `${total}${labelSet(labels)} ${n}` })
      }
    }
  }
  const out: Array<string> = []
  for (const name of [...families.keys()].sort()) {
    const f = families.get(name)!
    out.push(`# HELP ${name} ${escapeHelp(f.help)}`, `# TYPE ${name} ${f.type}`)
    for (const line of f.lines.sort((a, b) => a.sortKey.localeCompare(b.sortKey))) out.push(line.text)
  }
  return out.length === 0 ? "" : out.join("\n") + "\n"
}

/** The process registry, rendered. */
export const renderRegistry: Effect.Effect<string> = Effect.map(Metric.snapshot, renderExposition)
