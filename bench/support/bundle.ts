/**
 * The service as its image runs it, for benchmarks: `src/main.ts` bundled with the Dockerfile's own esbuild
 * command, from this checkout or from any git revision of it (exported into a temporary directory), laid out like
 * the image's `/app` (dist/src/main.mjs, migrations/, node_modules/) and started as `node dist/src/main.mjs`.
 * Measuring the bundle measures what production runs: no tsx, no TypeScript loading.
 */
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"

export const repoRoot = path.resolve(import.meta.dirname, "../..")

export interface AppBundle {
  /** what was bundled: "this tree" or the revision asked for, as `git rev-parse --short` names it */
  readonly label: string
  readonly appDir: string
  readonly entry: string
  readonly remove: () => void
}

/** The Dockerfile's `RUN node_modules/.bin/esbuild ...` arguments, with the output put at `outFile`. */
const bundleArgs = (sourceDir: string, outFile: string): Array<string> => {
  const line = fs.readFileSync(path.join(sourceDir, "Dockerfile"), "utf8").split("\n").find((l) => l.startsWith("RUN node_modules/.bin/esbuild "))
  if (line === undefined) throw new Error(`${sourceDir}/Dockerfile has no esbuild bundle step`)
  return line.replace(/^RUN /, "").trim().split(/\s+/).slice(1).map((w) => (w.startsWith("--outfile=") ? `--outfile=${outFile}` : w))
}

const bundleFrom = (sourceDir: string, label: string, cleanUp: Array<string>): AppBundle => {
  const appDir = fs.mkdtempSync(path.join(os.tmpdir(), "bench-bundle-"))
  fs.chmodSync(appDir, 0o755)
  const entry = path.join(appDir, "dist", "src", "main.mjs")
  execFileSync(path.join(repoRoot, "node_modules", ".bin", "esbuild"), bundleArgs(sourceDir, entry), { cwd: sourceDir, stdio: "pipe" })
  fs.symlinkSync(path.join(sourceDir, "migrations"), path.join(appDir, "migrations"))
  fs.symlinkSync(path.join(repoRoot, "node_modules"), path.join(appDir, "node_modules"))
  fs.copyFileSync(path.join(sourceDir, "package.json"), path.join(appDir, "package.json"))
  return { label, appDir, entry, remove: () => [appDir, ...cleanUp].forEach((d) => fs.rmSync(d, { recursive: true, force: true })) }
}

/** This checkout's bundle (its working tree, committed or not). */
export const bundleThisTree = (): AppBundle => bundleFrom(repoRoot, "this tree", [])

/** `revision`'s bundle: the commit exported with `git archive` (the repository itself is not touched). */
export const bundleRevision = (revision: string): AppBundle => {
  const short = execFileSync("git", ["rev-parse", "--short", `${revision}^{commit}`], { cwd: repoRoot, encoding: "utf8" }).trim()
  const sourceDir = fs.mkdtempSync(path.join(os.tmpdir(), "bench-source-"))
  execFileSync("sh", ["-c", "git archive \"$1\" | tar -x -C \"$2\"", "sh", short, sourceDir], { cwd: repoRoot, stdio: "pipe" })
  return bundleFrom(sourceDir, short, [sourceDir])
}
