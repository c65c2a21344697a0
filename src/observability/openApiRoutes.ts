import { HttpServerResponse } from "@effect/platform"
import { escapeHtml } from "../domain/html.ts"
import { openApiSpec } from "./httpApi.ts"

/**
 * `GET /openapi.json` (the OpenAPI 3.1 document generated from `OperatorApi`) and `GET /docs`, a self-contained
 * page (no CDN) listing every operation with its parameters, responses and schemas, rendered from the same
 * document. Both ports serve both: the document covers the two programs' routes and says which port has which.
 */

const specText = JSON.stringify(openApiSpec)

interface Operation {
  readonly tags?: ReadonlyArray<string>
  readonly operationId?: string
  readonly description?: string
  readonly parameters?: ReadonlyArray<{ readonly name: string; readonly in: string; readonly required?: boolean; readonly schema?: unknown; readonly description?: string }>
  readonly responses?: Record<string, { readonly description?: string; readonly content?: Record<string, { readonly schema?: unknown }> }>
}

const renderDocs = (): string => {
  const spec = openApiSpec as unknown as {
    info: { title: string; version: string; description?: string }
    tags?: ReadonlyArray<{ name: string; description?: string }>
    paths: Record<string, Record<string, Operation>>
    components?: { schemas?: Record<string, unknown> }
  }
  const sections: Array<string> = []
  for (const tag of spec.tags ?? [{ name: "default" }]) {
    const ops: Array<string> = []
    for (const [path, methods] of Object.entries(spec.paths)) {
      for (const [method, op] of Object.entries(methods)) {
        if (!(op.tags ?? ["default"]).includes(tag.name)) continue
        const params = (op.parameters ?? []).map((p) =>
          `<li><code>${escapeHtml(p.name)}</code> (${escapeHtml(p.in)}${p.required === true ? ", required" : ""})${p.description === undefined ? "" : ` ${escapeHtml(p.description)}`}</li>`
        ).join("")
        const responses = Object.entries(op.responses ?? {}).map(([status, r]) => {
          const schema = Object.values(r.content ?? {})[0]?.schema
          return `<li><b>${escapeHtml(status)}</b> ${escapeHtml(r.description ?? "")}${schema === undefined ? "" : `<details><summary>schema</summary><pre>${escapeHtml(JSON.stringify(schema, null, 2))}</pre></details>`}</li>`
        }).join("")
        ops.push(
          `<section class="op" id="${escapeHtml(op.operationId ?? path)}"><h3><span class="method">${escapeHtml(method.toUpperCase())}</span> <code>${escapeHtml(path)}</code></h3>` +
            `${op.description === undefined ? "" : `<p>${escapeHtml(op.description)}</p>`}` +
            `${params === "" ? "" : `<h4>Parameters</h4><ul>${params}</ul>`}<h4>Responses</h4><ul>${responses}</ul></section>`
        )
      }
    }
    sections.push(`<h2>${escapeHtml(tag.name)}</h2>${tag.description === undefined ? "" : `<p>${escapeHtml(tag.description)}</p>`}${ops.join("")}`)
  }
  const schemas = Object.entries(spec.components?.schemas ?? {}).map(([name, schema]) =>
    `<details id="schema-${escapeHtml(name)}"><summary><code>${escapeHtml(name)}</code></summary><pre>${escapeHtml(JSON.stringify(schema, null, 2))}</pre></details>`
  ).join("")
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(spec.info.title)} ${escapeHtml(spec.info.version)}</title>
<style>body{font-family:system-ui,sans-serif;margin:1.5em;max-width:60em;color:#111}a{color:#2563eb}code,pre{font-family:ui-monospace,monospace}
pre{background:#f9fafb;padding:.6em;font-size:12px;overflow-x:auto}.op{border-top:1px solid #e5e7eb;padding:.3em 0}
.method{color:#fff;background:#15803d;border-radius:3px;padding:0 .4em;font-size:.85em}h3{margin:.5em 0 .2em}h4{margin:.4em 0 .1em}</style></head>
<body><h1>${escapeHtml(spec.info.title)} <small>${escapeHtml(spec.info.version)}</small></h1>
<p>${escapeHtml(spec.info.description ?? "")} The machine-readable document: <a href="/openapi.json">/openapi.json</a>.</p>
${sections.join("\n")}
<h2>Schemas</h2>${schemas}
</body></html>`
}

const docsHtml = renderDocs()

export const openApiJson = HttpServerResponse.text(specText, { contentType: "application/json" })
export const docsPage = HttpServerResponse.text(docsHtml, { contentType: "text/html; charset=utf-8" })
