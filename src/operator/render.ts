import type { FailureInfo } from "../domain/FailureInfo.ts"
import { escapeHtml } from "../domain/html.ts"
import type { Job } from "../domain/Job.ts"
import { encodeLabelSet } from "../domain/Labels.ts"
import type { PodEvent } from "../domain/Pod.ts"
import type { Worker } from "../domain/Worker.ts"

/**
 * The operator pages' text (reference §6); their JSON is the response schemas' (`Api.ts`). The HTML is built
 * here with real markup (coloured statuses, links to the jobs); only the data is escaped. The original escaped
 * its own markup too, so its pages showed literal `<span>` tags.
 */

// --- HTML ----------------------------------------------------------------------------------------------------

const STATUS_COLOURS: Readonly<Record<string, string>> = {
  pending: "#ccc504",
  running: "#2563eb",
  completed: "#16a34a",
  failed: "#d90606"
}

export const statusSpan = (status: string): string =>
  `<span style="color:${STATUS_COLOURS[status] ?? "#666"}">[${escapeHtml(status.padEnd(9))}]</span>`

const pad = (n: number) => String(n).padStart(2, "0")
const dateTime = (d: Date) =>
  `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}`

export const created = (d: Date | null | undefined): string => (d ? `${dateTime(d)} UTC` : "?")

export const labelList = (labels: ReadonlyArray<string>): string =>
  labels.length === 0 ? escapeHtml("<none>") : escapeHtml(`[${labels.join(", ")}]`)

/** Only web links become links: a stored URL of any other scheme is shown as text. */
const safeHref = (url: string | null): string | undefined => (url !== null && /^https?:\/\//i.test(url) ? url : undefined)

export const jobLine = (j: Job): string => {
  const ref = `${j.repo_full_name}#${j.job_id}`
  const href = safeHref(j.html_url)
  const link = href === undefined ? escapeHtml(ref) : `<a href="${escapeHtml(href)}">${escapeHtml(ref)}</a>`
  return [statusSpan(j.status), created(j.created_at), labelList(j.job_labels), escapeHtml(j.k8s_pod ?? "<unknown pod>"), link].join("  ")
}

/** Detail lines under a job: why it failed (v1 messages, which the original never showed). */
export const jobDetails = (j: Job): ReadonlyArray<string> =>
  j.status === "failed" && j.failure_info !== null ? failureLines(j.failure_info) : []

export const workerLine = (w: Worker): string =>
  [
    statusSpan(w.status),
    created(w.created_at),
    labelList(w.job_labels),
    escapeHtml(w.pod_name),
    escapeHtml(`(node: ${w.k8s_node ?? "<unknown node>"})`)
  ].join("  ")

/** The last lines of a container log are the telling ones; a whole log has no place on a list page. */
const MAX_LOG_LINES = 40

export const failureLines = (info: FailureInfo): ReadonlyArray<string> => {
  if (info.version === 1) return [`  Reason: ${escapeHtml(info.message ?? info.reason ?? "failed")}`]
  const lines = [`  Reason: ${escapeHtml(info.reason)}`]
  if (info.pod_reason !== undefined || info.pod_message !== undefined) {
    lines.push(`  Pod: ${escapeHtml(info.pod_reason || "?")}  ${escapeHtml(info.pod_message ?? "")}`)
  }
  for (const [name, c] of Object.entries(info.containers ?? {})) {
    lines.push(`  Container ${escapeHtml(name)}: exit=${c.exit_code === null ? "?" : c.exit_code}  ${escapeHtml(c.reason || "?")}  ${escapeHtml(c.message)}`)
    const log = (c.logs ?? "").replace(/\n$/, "")
    if (log !== "") {
      const all = log.split("\n")
      if (all.length > MAX_LOG_LINES) lines.push(`    | ... ${all.length - MAX_LOG_LINES} earlier lines`)
      for (const l of all.slice(-MAX_LOG_LINES)) lines.push(`    | ${escapeHtml(l)}`)
    }
  }
  for (const e of info.events ?? []) {
    lines.push(`  ${escapeHtml(e.last_seen ?? e.first_seen ?? "unknown")}  [${escapeHtml(e.type)}]  ${escapeHtml(e.reason)}: ${escapeHtml(e.message)}`)
  }
  if (info.collect_error !== undefined) lines.push(`  Collect error: ${escapeHtml(info.collect_error)}`)
  return lines
}

/** What the page says about a live pod's events: the list, or that there are none, or that reading them failed. */
export type LiveEvents = { readonly _tag: "Events"; readonly events: ReadonlyArray<PodEvent> } | { readonly _tag: "Error" } | { readonly _tag: "NotFetched" }

export const eventLines = (live: LiveEvents): ReadonlyArray<string> => {
  switch (live._tag) {
    case "NotFetched":
      return []
    case "Error":
      return ["  Events: (error fetching)"]
    case "Events":
      return live.events.length === 0
        ? ["  Events: (none)"]
        : live.events.map((e) => {
          const when = e.lastSeen ?? e.firstSeen
          return `  ${when === null ? "unknown" : dateTime(when)}  [${escapeHtml(e.type)}]  ${escapeHtml(e.reason)}: ${escapeHtml(e.message)}`
        })
  }
}

export const workerDetails = (w: Worker, live: LiveEvents): ReadonlyArray<string> =>
  w.status === "failed" && w.failure_info !== null ? failureLines(w.failure_info) : eventLines(live)

const indent = (prefix: string, lines: ReadonlyArray<string>) => lines.map((l) => prefix + l)

/** The `/usage` text: one block per (entity, label set), sorted by entity id then label set. */
export const usageText = (
  jobs: ReadonlyArray<Job>,
  workers: ReadonlyArray<Worker>,
  live: (w: Worker) => LiveEvents
): string => {
  interface Group {
    entityId: number
    entityName: string
    labels: ReadonlyArray<string>
    key: string
    pool: string
    jobs: Array<Job>
    workers: Array<Worker>
  }
  const groups = new Map<string, Group>()
  const groupOf = (x: { entity_id: number; entity_name: string; job_labels: ReadonlyArray<string>; k8s_pool: string }) => {
    const labels = encodeLabelSet(x.job_labels)
    const key = `${x.entity_id}|${labels}`
    const g = groups.get(key) ?? { entityId: x.entity_id, entityName: x.entity_name, labels: x.job_labels, key: labels, pool: x.k8s_pool, jobs: [], workers: [] }
    groups.set(key, g)
    return g
  }
  for (const j of jobs) groupOf(j).jobs.push(j)
  for (const w of workers) groupOf(w).workers.push(w)
  if (groups.size === 0) return "No active pools."
  const sorted = [...groups.values()].sort((a, b) => a.entityId - b.entityId || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
  return sorted
    .map((g) => {
      const lines = [`=== ${escapeHtml(g.entityName)} / ${escapeHtml(`[${g.labels.join(", ")}]`)} (${escapeHtml(g.pool)}) ===`]
      if (g.jobs.length === 0) lines.push("  Jobs: none")
      else {
        lines.push(`  Jobs (${g.jobs.length}):`)
        for (const j of g.jobs) lines.push(`    - ${jobLine(j)}`, ...indent("      ", jobDetails(j)))
      }
      if (g.workers.length === 0) lines.push("  Workers: none")
      else {
        lines.push(`  Workers (${g.workers.length}):`)
        for (const w of g.workers) lines.push(`    - ${workerLine(w)}`, ...indent("      ", workerDetails(w, live(w))))
      }
      return lines.join("\n")
    })
    .join("\n\n")
}

export const jobsText = (jobs: ReadonlyArray<Job>): string =>
  jobs.length === 0 ? "No jobs found." : jobs.flatMap((j) => [jobLine(j), ...jobDetails(j)]).join("\n")

export const workersText = (workers: ReadonlyArray<Worker>, live: (w: Worker) => LiveEvents): string =>
  workers.length === 0 ? "No workers found." : workers.flatMap((w) => [workerLine(w), ...workerDetails(w, live(w))]).join("\n")

export interface PageNav {
  readonly links: ReadonlyArray<{ readonly rel: string; readonly href: string }>
  readonly summary: string
}

/**
 * The page around the text: a title, links between the pages, and the text in a `<pre>`. `note` is markup of the
 * caller's own (no data in it), shown above the text.
 */
export const htmlPage = (title: string, deployment: "Prod" | "Staging", body: string, nav?: PageNav, note?: string): string => {
  const links = [["/", "Dashboard"], ["/usage", "Usage"], ["/jobs", "Jobs"], ["/workers", "Workers"], ["/stats/weekly-usage", "Weekly usage"]]
    .map(([href, text]) => `<a href="${href}">${text}</a>`)
    .join(" · ")
  const paging = nav === undefined
    ? ""
    : `<p>${escapeHtml(nav.summary)}${nav.links.map((l) => ` · <a href="${escapeHtml(l.href)}">${escapeHtml(l.rel)}</a>`).join("")}</p>\n`
  return [
    "<!doctype html>",
    `<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)} - ${deployment}</title>`,
    "<style>body{font-family:system-ui,sans-serif;margin:1.5em;color:#111;background:#fff}pre{font-family:ui-monospace,monospace;font-size:13px;line-height:1.4}a{color:#2563eb}</style>",
    "</head><body>",
    `<nav>${links}</nav>`,
    `<h1>${escapeHtml(title)} <small>(${deployment})</small></h1>`,
    `${note === undefined ? "" : `<p>${note}</p>\n`}${paging}<pre>${body}</pre>`,
    "</body></html>"
  ].join("\n")
}
