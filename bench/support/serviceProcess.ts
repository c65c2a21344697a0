/**
 * The whole service (`all`: the webhook and the scheduler) as the image runs it, for benchmarks: the bundled
 * entrypoint in a child process of its own, under `NODE_ENV=production` and `LOG_FORMAT=json`, against whatever
 * GitHub, cluster and PostgreSQL the environment names. The benchmark's own work (the load, the simulated world,
 * the API stubs) stays in the parent, so the service's figures are not shared with it on one event loop, and the
 * service's CPU can be read on its own.
 */
import { Effect, type Scope } from "effect"
import { type ChildProcess, execFileSync, spawn } from "node:child_process"
import { closeSync, openSync } from "node:fs"
import * as fs from "node:fs/promises"
import { freePort } from "../../src/embedded/embeddedPostgres.ts"
import type { AppBundle } from "./bundle.ts"

export interface ServiceProcess {
  readonly webhookPort: number
  readonly schedulerPort: number
  /** CPU seconds the service has used so far (user + system), from /proc; NaN where there is none */
  readonly cpuSeconds: () => Promise<number>
  /** the scheduler's cycles so far and their summed duration, from its own `/metrics` */
  readonly cycles: () => Promise<{ readonly count: number; readonly seconds: number }>
  /** what the service wrote to stderr, for a failure's message */
  readonly stderr: () => string
}

/** The `SCHEDULER_*`, `DB_*` and `LOG_LEVEL` settings of this process, handed to the service unchanged. */
const passedThrough = (): Record<string, string> =>
  Object.fromEntries(
    Object.entries(process.env).filter((e): e is [string, string] => e[1] !== undefined && /^(SCHEDULER_|DB_|LOG_LEVEL$)/.test(e[0]))
  )

/** `BENCH_SERVICE_PROFILE=<dir>`: the service writes a V8 CPU profile there when it exits (after the SIGTERM). */
const profileFlags = (): Array<string> => {
  const dir = process.env.BENCH_SERVICE_PROFILE
  return dir === undefined || dir === "" ? [] : ["--cpu-prof", `--cpu-prof-dir=${dir}`]
}

const cpuOf = async (pid: number): Promise<number> => {
  try {
    const fields = (await fs.readFile(`/proc/${pid}/stat`, "utf8")).split(") ")[1]!.split(" ")
    // utime and stime, in clock ticks (100 a second on Linux)
    return (Number(fields[11]) + Number(fields[12])) / 100
  } catch {
    return Number.NaN
  }
}

const cycleSeries = (text: string, suffix: string): number => {
  let total = 0
  for (const line of text.split("\n")) {
    if (line.startsWith(`riscv_runner_scheduler_cycle_duration_seconds_${suffix}`)) total += Number(line.slice(line.lastIndexOf(" ") + 1))
  }
  return total
}

/**
 * Migrates the database with the bundle's `migrate`, starts `all` with `env` added to the image's environment,
 * and waits for both ports' `/health`. The scope's end stops it with SIGTERM (as Kubernetes does) and waits for it.
 */
export const startServiceProcess = (
  bundle: AppBundle,
  env: Record<string, string>
): Effect.Effect<ServiceProcess, Error, Scope.Scope> =>
  Effect.gen(function*() {
    const webhookPort = yield* Effect.promise(freePort)
    const schedulerPort = yield* Effect.promise(freePort)
    const fullEnv: Record<string, string> = {
      PATH: process.env.PATH ?? "",
      HOME: process.env.HOME ?? "",
      NODE_ENV: "production",
      LOG_FORMAT: "json",
      ...passedThrough(),
      ...env,
      PORT: String(webhookPort),
      SCHEDULER_PORT: String(schedulerPort)
    }
    yield* Effect.try({
      try: () => execFileSync(process.execPath, [bundle.entry, "migrate"], { cwd: bundle.appDir, env: fullEnv, stdio: "pipe" }),
      catch: (e) => new Error(`the service's migrate failed: ${(e as { stderr?: Buffer }).stderr?.toString() ?? String(e)}`)
    })
    let errors = ""
    const child = yield* Effect.acquireRelease(
      Effect.sync(() => {
        // the log is read and dropped (writing it is part of what the service costs), or written straight to the
        // file `BENCH_SERVICE_LOG` names (appended to: one service per run), to see what the service said
        const keep = process.env.BENCH_SERVICE_LOG
        const stdout = keep !== undefined && keep !== "" ? openSync(keep, "a") : "pipe"
        const c: ChildProcess = spawn(process.execPath, [...profileFlags(), bundle.entry, "all"], { cwd: bundle.appDir, env: fullEnv, stdio: ["ignore", stdout, "pipe"] })
        if (typeof stdout === "number") closeSync(stdout)
        else c.stdout!.resume()
        c.stderr!.on("data", (chunk: Buffer) => void (errors = (errors + chunk.toString()).slice(-4000)))
        return c
      }),
      (c) =>
        Effect.promise(() =>
          new Promise<void>((resolve) => {
            if (c.exitCode !== null || c.signalCode !== null) return resolve()
            c.once("exit", () => resolve())
            c.kill("SIGTERM")
          })
        )
    )
    const up = (port: number) => fetch(`http://127.0.0.1:${port}/health`).then((r) => r.ok, () => false)
    const deadline = Date.now() + 60_000
    for (;;) {
      if ((yield* Effect.promise(() => up(webhookPort))) && (yield* Effect.promise(() => up(schedulerPort)))) break
      if (child.exitCode !== null || Date.now() > deadline) {
        return yield* Effect.fail(new Error(`the service did not start (exit ${child.exitCode}): ${errors}`))
      }
      yield* Effect.sleep("100 millis")
    }
    return {
      webhookPort,
      schedulerPort,
      cpuSeconds: () => cpuOf(child.pid!),
      cycles: async () => {
        const text = await fetch(`http://127.0.0.1:${schedulerPort}/metrics`).then((r) => r.text(), () => "")
        return { count: cycleSeries(text, "count"), seconds: cycleSeries(text, "sum") }
      },
      stderr: () => errors
    } satisfies ServiceProcess
  })
