/**
 * The dependency rule of DESIGN.md, read off the sources: every relative import of every TypeScript file is
 * resolved and checked against the arrows that may exist. A new import that points the wrong way fails here
 * with the file, the line and the rule, instead of slowly turning the layers into one ball.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { describe, expect, it } from "vitest"

const repo = path.resolve(import.meta.dirname, "..")

type Area = "domain" | "services" | "program" | "main" | "layers" | "test" | "bench" | "scripts" | "ci"

const areaOf = (file: string): Area | undefined => {
  const rel = path.relative(repo, file).split(path.sep).join("/")
  // main.ts and its own files (its argument parser and the layer it launches)
  if (rel === "src/main.ts" || rel.startsWith("src/main/")) return "main"
  if (rel.startsWith("src/domain/")) return "domain"
  if (rel.startsWith("src/services/")) return "services"
  if (rel.startsWith("src/")) return "program"
  if (rel.startsWith("layers/")) return "layers"
  if (rel.startsWith("test/")) return "test"
  if (rel.startsWith("bench/")) return "bench"
  if (rel.startsWith("scripts/")) return "scripts"
  if (rel.startsWith(".ci/")) return "ci"
  return undefined
}

/** What each area may import of ours. Everything may import its own area. */
const allowed: Record<Area, ReadonlyArray<Area>> = {
  // pure data and logic: nothing of ours outside itself
  domain: [],
  // the tags only, over the domain's types
  services: ["domain"],
  // the programs (webhook, scheduler, observability, config, cli, embedded): never an implementation
  program: ["domain", "services"],
  // the one place in src/ that chooses implementations
  main: ["domain", "services", "program", "layers"],
  // implementations: the tags they implement and the domain's types; never the programs or their config
  layers: ["domain", "services"],
  test: ["domain", "services", "program", "main", "layers", "bench"],
  // benchmarks and scripts wire layers as main.ts does, but share nothing with the tests
  bench: ["domain", "services", "program", "layers"],
  scripts: ["domain", "services", "program", "layers", "bench"],
  ci: ["domain", "services", "program", "layers"]
}

const sourceFiles = (dir: string): Array<string> =>
  fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name)
    if (entry.isDirectory()) return entry.name === "node_modules" ? [] : sourceFiles(full)
    return /\.(ts|mts|mjs)$/.test(entry.name) ? [full] : []
  })

// static imports and re-exports (`import x from "..."`, `export { y } from "..."`, `import "..."`) and dynamic ones
const IMPORT = /(?:^|\n)\s*(?:import|export)\b[^;'"]*?from\s*["']([^"']+)["']|(?:^|\n)\s*import\s*["']([^"']+)["']|\bimport\(\s*["']([^"']+)["']\s*\)/g

interface Arrow {
  readonly from: string
  readonly line: number
  readonly to: string
  readonly fromArea: Area
  readonly toArea: Area | undefined
}

const arrows = (): Array<Arrow> =>
  ["src", "layers", "test", "bench", "scripts", ".ci"].flatMap((top) => {
    const dir = path.join(repo, top)
    if (!fs.existsSync(dir)) return []
    return sourceFiles(dir).flatMap((file) => {
      const fromArea = areaOf(file)
      if (fromArea === undefined) return []
      const text = fs.readFileSync(file, "utf8")
      return [...text.matchAll(IMPORT)].flatMap((m) => {
        const spec = m[1] ?? m[2] ?? m[3]
        if (spec === undefined || !spec.startsWith(".")) return []
        const target = path.resolve(path.dirname(file), spec)
        const line = text.slice(0, m.index).split("\n").length + (m[0].startsWith("\n") ? 1 : 0)
        return [{ from: path.relative(repo, file), line, to: path.relative(repo, target), fromArea, toArea: areaOf(target) }]
      })
    })
  })

const violations = (list: ReadonlyArray<Arrow>) =>
  list.filter((a) => a.toArea !== undefined && a.toArea !== a.fromArea && !allowed[a.fromArea].includes(a.toArea))

describe("the dependency rule", () => {
  const all = arrows()

  it("reads the imports of every area (the scan itself works)", () => {
    const areas = new Set(all.map((a) => a.fromArea))
    for (const area of ["domain", "services", "program", "main", "layers", "test", "bench", "scripts"] as const) {
      expect(areas, `no import read from ${area}`).toContain(area)
    }
    // a known arrow of each allowed kind is found, so a broken pattern cannot pass by finding nothing
    expect(all.some((a) => a.from === "src/main.ts" && a.toArea === "layers")).toBe(true)
    expect(all.some((a) => a.fromArea === "layers" && a.toArea === "services")).toBe(true)
  })

  it("every relative import resolves to a file that exists", () => {
    const missing = all.filter((a) => !fs.existsSync(path.join(repo, a.to)))
    expect(missing.map((a) => `${a.from}:${a.line} imports ${a.to}`)).toEqual([])
  })

  it("no arrow points the wrong way", () => {
    expect(
      violations(all).map((a) => `${a.from}:${a.line} (${a.fromArea}) must not import ${a.to} (${a.toArea})`)
    ).toEqual([])
  })

  it("a wrong arrow is reported (the rule can fail)", () => {
    const wrong: Array<Arrow> = [
      { from: "src/domain/Job.ts", line: 1, to: "src/services/Db.ts", fromArea: "domain", toArea: "services" },
      { from: "src/scheduler/cycle.ts", line: 1, to: "layers/db/postgres.ts", fromArea: "program", toArea: "layers" },
      { from: "layers/sim/simulation.ts", line: 1, to: "src/config/env.ts", fromArea: "layers", toArea: "program" },
      { from: "bench/x.ts", line: 1, to: "test/support/y.ts", fromArea: "bench", toArea: "test" }
    ]
    expect(violations(wrong)).toHaveLength(4)
  })
})
