import { readFileSync } from "node:fs"
import { createRequire } from "node:module"

/*
 * GitHub's published REST description (from @octokit/openapi), used by the stub server to check that every
 * request the live layer sends names a real operation, with declared parameters and a body that fits the
 * operation's JSON schema. Only the parts of JSON Schema that GitHub's request bodies use are understood.
 */

type Json = null | boolean | number | string | ReadonlyArray<Json> | { readonly [k: string]: Json }
type JsonObject = { readonly [k: string]: Json }

interface Route {
  readonly template: string
  readonly pattern: RegExp
  readonly literals: number
  readonly names: ReadonlyArray<string>
  readonly item: JsonObject
}

export interface SpecMatch {
  readonly template: string
  readonly operationId: string
  readonly pathParams: Readonly<Record<string, string>>
  readonly operation: JsonObject
  readonly item: JsonObject
}

let loaded: { readonly spec: JsonObject; readonly routes: ReadonlyArray<Route> } | undefined

const spec = () => {
  if (loaded !== undefined) return loaded
  const file = createRequire(import.meta.url).resolve("@octokit/openapi/generated/api.github.com.json")
  const json = JSON.parse(readFileSync(file, "utf8")) as JsonObject
  const paths = json["paths"] as JsonObject
  const routes = Object.keys(paths).map((template): Route => {
    const names: Array<string> = []
    const segments = template.split("/").slice(1)
    const pattern = new RegExp(
      "^"
        + segments
          .map((seg) =>
            "/"
            + seg.replace(/\{([^}]+)\}|[^{}]+/g, (m, name: string | undefined) => {
              if (name !== undefined) {
                names.push(name)
                return "([^/]+)"
              }
              return m.replace(/[.*+?^$()|[\]\\]/g, "\\$&")
            })
          )
          .join("")
        + "$"
    )
    return {
      template,
      pattern,
      literals: segments.filter((s) => !s.includes("{")).length,
      names,
      item: paths[template] as JsonObject
    }
  })
  loaded = { spec: json, routes }
  return loaded
}

/** Follows a local `$ref` (`#/components/...`). */
const deref = (node: Json | undefined): Json | undefined => {
  let current = node
  for (let i = 0; i < 20 && current !== null && typeof current === "object" && !Array.isArray(current); i++) {
    const ref = (current as JsonObject)["$ref"]
    if (typeof ref !== "string") return current
    current = ref
      .slice(2)
      .split("/")
      .reduce<Json | undefined>(
        (
          at,
          key
        ) => (at !== null && typeof at === "object" && !Array.isArray(at) ? (at as JsonObject)[key] : undefined),
        spec().spec
      )
  }
  return current
}

/** The operation GitHub documents for this method and path (literal segments win over templates), if any. */
export const matchOperation = (method: string, pathname: string): SpecMatch | undefined => {
  const candidates = spec()
    .routes.map((route) => ({ route, m: route.pattern.exec(pathname) }))
    .filter((c) => c.m !== null && c.route.item[method.toLowerCase()] !== undefined)
    .sort((a, b) => b.route.literals - a.route.literals)
  const best = candidates[0]
  if (best === undefined || best.m === null) return undefined
  const operation = best.route.item[method.toLowerCase()] as JsonObject
  const pathParams: Record<string, string> = {}
  best.route.names.forEach((name, i) => (pathParams[name] = decodeURIComponent(best.m![i + 1] ?? "")))
  return {
    template: best.route.template,
    operationId: String(operation["operationId"]),
    pathParams,
    operation,
    item: best.route.item
  }
}

const parametersOf = (match: SpecMatch): ReadonlyArray<JsonObject> =>
  [
    ...((match.item["parameters"] as ReadonlyArray<Json> | undefined) ?? []),
    ...((match.operation["parameters"] as ReadonlyArray<Json> | undefined) ?? [])
  ]
    .map((p) => deref(p) as JsonObject)

/** Problems with the path and query parameters: undeclared query names, values of the wrong type. */
export const checkParameters = (match: SpecMatch, query: URLSearchParams): Array<string> => {
  const problems: Array<string> = []
  const params = parametersOf(match)
  for (const [name, value] of Object.entries(match.pathParams)) {
    const p = params.find((x) => x["in"] === "path" && x["name"] === name)
    if (p === undefined) problems.push(`path parameter ${name} is not declared`)
    else problems.push(...checkValue(deref(p["schema"]), coerce(deref(p["schema"]), value), `path ${name}`))
  }
  for (const [name, value] of query) {
    const p = params.find((x) => x["in"] === "query" && x["name"] === name)
    if (p === undefined) problems.push(`query parameter ${name} is not declared for ${match.operationId}`)
    else problems.push(...checkValue(deref(p["schema"]), coerce(deref(p["schema"]), value), `query ${name}`))
  }
  for (const p of params) {
    if (p["in"] === "query" && p["required"] === true && !query.has(String(p["name"]))) {
      problems.push(`query parameter ${String(p["name"])} is required`)
    }
  }
  return problems
}

const coerce = (schema: Json | undefined, raw: string): Json => {
  const type = schema !== null && typeof schema === "object" && !Array.isArray(schema)
    ? (schema as JsonObject)["type"]
    : undefined
  if ((type === "integer" || type === "number") && /^-?\d+(\.\d+)?$/.test(raw)) return Number(raw)
  if (type === "boolean" && (raw === "true" || raw === "false")) return raw === "true"
  return raw
}

/** Problems with the JSON body (`undefined` when none was sent). */
export const checkBody = (match: SpecMatch, body: Json | undefined): Array<string> => {
  const requestBody = deref(match.operation["requestBody"]) as JsonObject | undefined
  if (requestBody === undefined) return body === undefined ? [] : [`${match.operationId} takes no body`]
  if (body === undefined) return requestBody["required"] === true ? [`${match.operationId} requires a body`] : []
  const content = requestBody["content"] as JsonObject
  const media = content["application/json"] as JsonObject | undefined
  if (media === undefined) return [`${match.operationId} does not take JSON`]
  return checkValue(deref(media["schema"]), body, "body")
}

const typeOf = (v: Json): string =>
  v === null
    ? "null"
    : Array.isArray(v)
    ? "array"
    : typeof v === "number"
    ? (Number.isInteger(v) ? "integer" : "number")
    : typeof v

/**
 * A small JSON Schema check. Stricter than JSON Schema in one way: a property the schema does not declare is a
 * problem even without `additionalProperties: false`, because GitHub either ignores it (our intent is lost) or
 * rejects it.
 */
export const checkValue = (schemaNode: Json | undefined, value: Json, at: string): Array<string> => {
  const schema = deref(schemaNode)
  if (schema === undefined || schema === null || typeof schema !== "object" || Array.isArray(schema)) return []
  const s = schema as JsonObject
  const problems: Array<string> = []
  for (const key of ["oneOf", "anyOf"] as const) {
    const options = s[key] as ReadonlyArray<Json> | undefined
    if (options !== undefined && !options.some((o) => checkValue(o, value, at).length === 0)) {
      problems.push(`${at}: matches none of ${key}`)
    }
  }
  for (const part of (s["allOf"] as ReadonlyArray<Json> | undefined) ?? []) {
    problems.push(...checkValue(part, value, at))
  }
  const declared = s["type"]
  const types = declared === undefined
    ? []
    : Array.isArray(declared)
    ? (declared as ReadonlyArray<string>)
    : [declared as string]
  const actual = typeOf(value)
  if (types.length > 0) {
    const nullable = s["nullable"] === true && value === null
    const fits = types.includes(actual) || (actual === "integer" && types.includes("number"))
    if (!fits && !nullable) return [...problems, `${at}: expected ${types.join("|")}, got ${actual}`]
  }
  const allowed = s["enum"] as ReadonlyArray<Json> | undefined
  if (allowed !== undefined && !allowed.includes(value)) {
    problems.push(`${at}: ${JSON.stringify(value)} is not one of ${JSON.stringify(allowed)}`)
  }
  if (typeof value === "string") {
    if (typeof s["minLength"] === "number" && value.length < s["minLength"]) {
      problems.push(`${at}: shorter than ${s["minLength"]}`)
    }
    if (typeof s["maxLength"] === "number" && value.length > s["maxLength"]) {
      problems.push(`${at}: longer than ${s["maxLength"]}`)
    }
  }
  if (typeof value === "number") {
    if (typeof s["minimum"] === "number" && value < s["minimum"]) problems.push(`${at}: below ${s["minimum"]}`)
    if (typeof s["maximum"] === "number" && value > s["maximum"]) problems.push(`${at}: above ${s["maximum"]}`)
  }
  if (Array.isArray(value)) {
    if (typeof s["minItems"] === "number" && value.length < s["minItems"]) {
      problems.push(`${at}: fewer than ${s["minItems"]} items`)
    }
    if (typeof s["maxItems"] === "number" && value.length > s["maxItems"]) {
      problems.push(`${at}: more than ${s["maxItems"]} items`)
    }
    value.forEach((item, i) => problems.push(...checkValue(s["items"], item, `${at}[${i}]`)))
  }
  if (actual === "object") {
    const obj = value as JsonObject
    const properties = (s["properties"] as JsonObject | undefined) ?? {}
    for (const name of (s["required"] as ReadonlyArray<string> | undefined) ?? []) {
      if (!(name in obj)) problems.push(`${at}: missing required ${name}`)
    }
    const extra = s["additionalProperties"]
    for (const [name, v] of Object.entries(obj)) {
      if (name in properties) problems.push(...checkValue(properties[name], v, `${at}.${name}`))
      else if (extra !== undefined && extra !== false && extra !== null && typeof extra === "object") {
        problems.push(...checkValue(extra, v, `${at}.${name}`))
      } else if (extra !== true) problems.push(`${at}: ${name} is not a declared property`)
    }
  }
  return problems
}
