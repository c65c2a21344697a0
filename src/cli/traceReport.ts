import type { EntityType } from "../domain/Entity.ts"
import { type Diagnosis, diagnoseInstallation } from "../domain/installationDiagnoses.ts"
import { foldInstallationHistory, type HistoryRow, type InstallationState } from "../domain/installationHistory.ts"
import type { TimelineEvent } from "./traceClient.ts"

/**
 * What the trace CLI prints: the timeline as a chronological table, the installation state folded from it, and
 * the diagnoses, all decided by the domain's fold (the same one the trace API's `/state` uses).
 */

export interface TraceReport {
  readonly entity_id: number | null
  readonly events: ReadonlyArray<TimelineEvent>
  readonly state: InstallationState
  readonly diagnoses: ReadonlyArray<Diagnosis>
  /** auth-failure payloads by event id (shown with --verbose) */
  readonly auth_payloads: Readonly<Record<string, unknown>>
}

export const buildReport = (
  entityId: number | null,
  events: ReadonlyArray<TimelineEvent>,
  payloads: ReadonlyMap<number, unknown>,
  apps: { readonly orgAppId: number; readonly personalAppId: number }
): TraceReport => {
  const rows: Array<HistoryRow> = events.map((e) => ({
    id: e.id,
    event: e.event,
    received_at: new Date(e.received_at),
    installation_id: e.installation_id ?? null,
    app_id: e.app_id ?? null,
    entity_type: (e.entity_type ?? null) as EntityType | null,
    entity_name: e.entity_name ?? null,
    payload: payloads.get(e.id)
  }))
  const history = foldInstallationHistory(rows)
  const ordered = [...events].sort((a, b) => Date.parse(a.received_at) - Date.parse(b.received_at) || a.id - b.id)
  const authPayloads: Record<string, unknown> = {}
  for (const e of ordered) if (e.event.startsWith("auth_attempt.") && payloads.has(e.id)) authPayloads[String(e.id)] = payloads.get(e.id)
  return { entity_id: entityId, events: ordered, state: history.state, diagnoses: diagnoseInstallation(history, { apps }), auth_payloads: authPayloads }
}

const table = (header: ReadonlyArray<string>, rows: ReadonlyArray<ReadonlyArray<string>>): string => {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)))
  const line = (cells: ReadonlyArray<string>) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join("  ").trimEnd()
  return [line(header), line(widths.map((w) => "-".repeat(w))), ...rows.map(line)].join("\n")
}

const show = (v: unknown): string =>
  v === null || v === undefined ? "-" : v instanceof Date ? v.toISOString() : Array.isArray(v) ? (v.length === 0 ? "[]" : v.join(", ")) : typeof v === "object" ? JSON.stringify(v) : String(v)

export const renderReport = (report: TraceReport, verbose: boolean): string => {
  const out: Array<string> = []
  out.push(`Entity ${report.entity_id ?? "?"}${report.state.entity_name === null ? "" : ` (${report.state.entity_name})`}: ${report.events.length} event(s)`, "")
  if (report.events.length === 0) out.push("No events recorded for this entity.")
  else {
    out.push(table(
      ["time (UTC)", "id", "source", "event", "outcome", "installation", "app", "detail"],
      report.events.map((e) => [
        e.received_at.replace(/\.\d{3}Z$/, "Z"),
        String(e.id),
        e.source,
        e.event,
        e.outcome,
        show(e.installation_id),
        show(e.app_id),
        [e.repo_full_name, e.job_id === undefined ? undefined : `job ${e.job_id}`, e.entity_name].filter((x) => x !== undefined).join(" ")
      ])
    ))
  }
  out.push("", "State:")
  const s = report.state
  const { last_auth_failure, ...plain } = s
  for (const [k, v] of Object.entries(plain)) out.push(`  ${k.padEnd(22)} ${show(v)}`)
  out.push(`  ${"last_auth_failure".padEnd(22)} ${last_auth_failure === null ? "-" : `${last_auth_failure.at.toISOString()} event ${last_auth_failure.event_id}${last_auth_failure.not_found ? " (404)" : ""}${last_auth_failure.repo === null ? "" : ` ${last_auth_failure.repo}`}`}`)
  out.push("", "Diagnoses:")
  if (report.diagnoses.length === 0) out.push("  none: nothing in the log explains a stop")
  for (const d of report.diagnoses) out.push(`  [${d.code}] ${d.message} (events ${d.event_ids.join(", ") || "-"})`)
  if (verbose) {
    out.push("", "Auth-failure payloads:")
    const entries = Object.entries(report.auth_payloads)
    if (entries.length === 0) out.push("  none")
    for (const [id, payload] of entries) out.push(`  event ${id}: ${JSON.stringify(payload)}`)
  }
  return out.join("\n") + "\n"
}

/** `--json`: the report as one JSON document (auth payloads only with --verbose). */
export const reportJson = (report: TraceReport, verbose: boolean): string =>
  JSON.stringify(verbose ? report : { ...report, auth_payloads: undefined }, null, 2) + "\n"
