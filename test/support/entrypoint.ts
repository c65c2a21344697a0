/**
 * The service as its container runs it: `src/main.ts` bundled with the Dockerfile's own esbuild command, started
 * as a child process with `node dist/src/main.mjs <role>`, its real stdout and stderr read line by line. Tests of
 * what only the process shows (log lines, exit codes, memory, signals) go through this, never through the layers
 * in-process, so that a logger that formats but never prints, or a crash before the first line, is noticed.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"

const repo = path.resolve(import.meta.dirname, "../..")

/**
 * The bundle command exactly as the Dockerfile's build stage runs it, with only the output moved into `outDir`.
 * Reading it from the Dockerfile keeps the two from drifting apart.
 */
const dockerfileBundleArgs = (outFile: string): Array<string> => {
  const dockerfile = fs.readFileSync(path.join(repo, "Dockerfile"), "utf8")
  const line = dockerfile.split("\n").find((l) => l.startsWith("RUN node_modules/.bin/esbuild "))
  if (line === undefined) throw new Error("the Dockerfile has no `RUN node_modules/.bin/esbuild` bundle step")
  const words = line.replace(/^RUN /, "").trim().split(/\s+/)
  return words.slice(1).map((w) => (w.startsWith("--outfile=") ? `--outfile=${outFile}` : w))
}

export interface Bundle {
  /** the directory laid out like the image's /app: dist/src/main.mjs, migrations/, node_modules/ */
  readonly appDir: string
  readonly entry: string
  readonly remove: () => void
}

/**
 * Builds the bundle into a fresh directory shaped like the image's `/app`, so the bundle's relative path to
 * `migrations/` and its external packages resolve as they do in the container.
 */
export const buildBundle = (): Bundle => {
  const appDir = fs.mkdtempSync(path.join(os.tmpdir(), "riscv-runner-bundle-"))
  fs.chmodSync(appDir, 0o755)
  const entry = path.join(appDir, "dist", "src", "main.mjs")
  execFileSync(path.join(repo, "node_modules", ".bin", "esbuild"), dockerfileBundleArgs(entry), { cwd: repo, stdio: "pipe" })
  fs.symlinkSync(path.join(repo, "migrations"), path.join(appDir, "migrations"))
  fs.symlinkSync(path.join(repo, "node_modules"), path.join(appDir, "node_modules"))
  fs.copyFileSync(path.join(repo, "package.json"), path.join(appDir, "package.json"))
  return { appDir, entry, remove: () => fs.rmSync(appDir, { recursive: true, force: true }) }
}

export interface Running {
  readonly child: ChildProcess
  /** every complete line the child has written to stdout so far */
  readonly stdout: Array<string>
  readonly stderr: Array<string>
  /** resolves with the first stdout line (already written or still to come) that satisfies `test` */
  readonly waitForLine: (test: (line: string) => boolean, timeoutMs?: number, stream?: "stdout" | "stderr") => Promise<string>
  /** resolves with the exit status (or the signal's name) */
  readonly exited: Promise<number | string>
  /** SIGTERM, as Kubernetes sends it; SIGKILL after `graceMs` */
  readonly stop: (graceMs?: number) => Promise<number | string>
}

const lineReader = (stream: NodeJS.ReadableStream, lines: Array<string>, onLine: () => void) => {
  let rest = ""
  stream.setEncoding("utf8")
  stream.on("data", (chunk: string) => {
    const parts = (rest + chunk).split("\n")
    rest = parts.pop() ?? ""
    lines.push(...parts)
    onLine()
  })
  stream.on("end", () => {
    if (rest !== "") lines.push(rest)
    rest = ""
    onLine()
  })
}

/**
 * Starts `node dist/src/main.mjs ...args` from the bundle's directory, as the image's ENTRYPOINT does, with
 * `NODE_ENV=production` and `LOG_FORMAT=json` as the image sets them unless `env` says otherwise.
 */
export const startEntrypoint = (bundle: Bundle, args: ReadonlyArray<string>, env: Record<string, string | undefined>): Running => {
  const childEnv: Record<string, string> = {}
  for (const [k, v] of Object.entries({ PATH: process.env.PATH, HOME: process.env.HOME, NODE_ENV: "production", LOG_FORMAT: "json", ...env })) {
    if (v !== undefined) childEnv[k] = v
  }
  const child = spawn(process.execPath, [path.relative(bundle.appDir, bundle.entry), ...args], {
    cwd: bundle.appDir,
    env: childEnv,
    stdio: ["ignore", "pipe", "pipe"]
  })
  const stdout: Array<string> = []
  const stderr: Array<string> = []
  const waiters = new Set<() => void>()
  const notify = () => {
    for (const w of [...waiters]) w()
  }
  lineReader(child.stdout!, stdout, notify)
  lineReader(child.stderr!, stderr, notify)
  const exited = new Promise<number | string>((resolve) => {
    child.on("exit", (code, signal) => {
      resolve(code ?? signal ?? -1)
      setImmediate(notify)
    })
  })
  let exitStatus: number | string | undefined
  void exited.then((s) => {
    exitStatus = s
  })
  const waitForLine = (test: (line: string) => boolean, timeoutMs = 20_000, stream: "stdout" | "stderr" = "stdout") =>
    new Promise<string>((resolve, reject) => {
      const lines = stream === "stdout" ? stdout : stderr
      let checked = 0
      const check = () => {
        for (; checked < lines.length; checked++) {
          if (test(lines[checked]!)) {
            done()
            return resolve(lines[checked]!)
          }
        }
        if (exitStatus !== undefined) {
          done()
          reject(new Error(`the process exited (${exitStatus}) without the line; stdout:\n${stdout.join("\n")}\nstderr:\n${stderr.join("\n")}`))
        }
      }
      const timer = setTimeout(() => {
        done()
        reject(new Error(`no such line within ${timeoutMs} ms; stdout:\n${stdout.join("\n")}\nstderr:\n${stderr.join("\n")}`))
      }, timeoutMs)
      const done = () => {
        clearTimeout(timer)
        waiters.delete(check)
      }
      waiters.add(check)
      check()
    })
  const stop = async (graceMs = 10_000) => {
    if (exitStatus !== undefined) return exitStatus
    child.kill("SIGTERM")
    const timer = setTimeout(() => child.kill("SIGKILL"), graceMs)
    const status = await exited
    clearTimeout(timer)
    return status
  }
  return { child, stdout, stderr, waitForLine, exited, stop }
}

/** Polls `url` until it answers 200 (or the deadline passes). */
export const waitForHttp = async (url: string, timeoutMs = 30_000): Promise<void> => {
  const deadline = Date.now() + timeoutMs
  let last: unknown
  while (Date.now() < deadline) {
    try {
      const response = await fetch(url)
      if (response.ok) return
      last = response.status
    } catch (e) {
      last = e
    }
    await new Promise((r) => setTimeout(r, 100))
  }
  throw new Error(`${url} did not answer 200 within ${timeoutMs} ms (last: ${String(last)})`)
}

/** A TCP port nobody listens on right now: the one the embedded PostgreSQL takes its port with. */
export { freePort } from "../../src/embedded/embeddedPostgres.ts"
