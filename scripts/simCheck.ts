/**
 * `npm run sim:check -- [--seeds N] [--from S] [--seed S] [--jobs J] [--no-faults] [--world two-clusters] [--parallel P] [--verbose]`
 *
 * The deterministic simulation at any size: N seeds (S, S+1, ...; default 1..100) of J jobs each (default 100),
 * faults injected from each seed. Prints one line per failing seed with its replay command, then the counts of
 * seeds, jobs and faults injected, and last `violations: N`; exits 1 when N > 0. `--seed S --verbose` replays one
 * seed and prints what happened. `--parallel P` spreads the seeds over P processes (default: the CPU count).
 */
import { Effect } from "effect"
import { spawn } from "node:child_process"
import { availableParallelism } from "node:os"
import { fileURLToPath } from "node:url"
import { describeFailure, type DstResult, runDst } from "../bench/support/simScenario.ts"

interface Args {
  readonly from: number
  readonly seeds: number
  readonly jobs: number
  readonly faults: boolean
  readonly verbose: boolean
  /** the two-cluster world (`DstOptions.world`) instead of the usual one */
  readonly world: "two-clusters" | undefined
  readonly parallel: number
  /** internal: this process is a worker that prints one JSON line per seed */
  readonly worker: boolean
}

const usage = "usage: sim:check -- [--seeds N] [--from S] [--seed S] [--jobs J] [--no-faults] [--world two-clusters] [--parallel P] [--verbose]"

const parse = (argv: ReadonlyArray<string>): Args => {
  const args: { -readonly [K in keyof Args]: Args[K] } = {
    from: 1,
    seeds: 100,
    jobs: 100,
    faults: true,
    verbose: false,
    world: undefined,
    parallel: availableParallelism(),
    worker: false
  }
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!
    const value = () => {
      const v = Number(argv[++i])
      if (!Number.isInteger(v) || v < 0) throw new Error(`${flag} needs a whole number; ${usage}`)
      return v
    }
    switch (flag) {
      case "--seeds":
        args.seeds = value()
        break
      case "--from":
        args.from = value()
        break
      case "--seed":
        args.from = value()
        args.seeds = 1
        break
      case "--jobs":
        args.jobs = value()
        break
      case "--parallel":
        args.parallel = Math.max(1, value())
        break
      case "--no-faults":
        args.faults = false
        break
      case "--verbose":
        args.verbose = true
        break
      case "--world":
        if (argv[i + 1] !== "two-clusters") throw new Error(`--world takes two-clusters; ${usage}`)
        args.world = "two-clusters"
        i += 1
        break
      case "--worker":
        args.worker = true
        break
      default:
        throw new Error(`unknown argument ${flag}; ${usage}`)
    }
  }
  return args
}

const runSeed = (args: Args, seed: number) =>
  Effect.runPromise(runDst({ seed, jobs: args.jobs, faults: args.faults, verbose: args.verbose, debugLogs: args.verbose, ...(args.world === undefined ? {} : { world: args.world }) }))

/** Runs seeds [from, from + count) here, one after the other. */
const runHere = async (args: Args, onResult: (r: DstResult) => void) => {
  for (let seed = args.from; seed < args.from + args.seeds; seed++) onResult(await runSeed(args, seed))
}

/** Splits the seeds over child processes running this script with `--worker`; each prints JSON lines. */
const runInChildren = (args: Args, onResult: (r: DstResult) => void) => {
  const self = fileURLToPath(import.meta.url)
  const per = Math.ceil(args.seeds / args.parallel)
  const children: Array<Promise<void>> = []
  for (let from = args.from; from < args.from + args.seeds; from += per) {
    const count = Math.min(per, args.from + args.seeds - from)
    const argv = [...process.execArgv, self, "--worker", "--from", String(from), "--seeds", String(count), "--jobs", String(args.jobs)]
    if (!args.faults) argv.push("--no-faults")
    if (args.world !== undefined) argv.push("--world", args.world)
    children.push(new Promise((resolve, reject) => {
      const child = spawn(process.execPath, argv, { stdio: ["ignore", "pipe", "inherit"] })
      let buffer = ""
      child.stdout.setEncoding("utf8")
      child.stdout.on("data", (chunk: string) => {
        buffer += chunk
        let nl: number
        while ((nl = buffer.indexOf("\n")) >= 0) {
          const line = buffer.slice(0, nl)
          buffer = buffer.slice(nl + 1)
          if (line.startsWith("{")) onResult(JSON.parse(line) as DstResult)
        }
      })
      child.on("error", reject)
      child.on("exit", (code) => (code === 0 ? resolve() : reject(new Error(`a worker exited with ${code}`))))
    }))
  }
  return Promise.all(children)
}

const main = async () => {
  const args = parse(process.argv.slice(2))
  if (args.worker) {
    await runHere(args, (r) => process.stdout.write(`${JSON.stringify(r)}\n`))
    return
  }
  const started = performance.now()
  const results: Array<DstResult> = []
  const onResult = (r: DstResult) => {
    results.push(r)
    if (r.violations.length > 0) console.log(describeFailure({ seed: r.seed, jobs: args.jobs, faults: args.faults, ...(args.world === undefined ? {} : { world: args.world }) }, r))
    if (args.verbose && r.transcript !== undefined) console.log(r.transcript.join("\n"))
    if (args.verbose || args.seeds <= 20) {
      console.log(`seed ${r.seed}: ${r.jobs} jobs, ${r.simulatedMinutes} simulated min, ${r.violations.length} violations, fingerprint ${r.fingerprint}`)
    } else if (results.length % 50 === 0) {
      console.log(`${results.length}/${args.seeds} seeds done`)
    }
  }
  if (args.parallel > 1 && args.seeds > 1 && !args.verbose) await runInChildren(args, onResult)
  else await runHere(args, onResult)

  const faults: Record<string, number> = {}
  for (const r of results) for (const [k, v] of Object.entries(r.faults)) faults[k] = (faults[k] ?? 0) + v
  const violations = results.reduce((n, r) => n + r.violations.length, 0)
  const failing = results.filter((r) => r.violations.length > 0).map((r) => r.seed).sort((a, b) => a - b)
  const simulatedHours = results.reduce((n, r) => n + r.simulatedMinutes, 0) / 60
  console.log(`seeds: ${results.length} (${args.from}..${args.from + args.seeds - 1})${failing.length > 0 ? `, failing: ${failing.join(", ")}` : ""}`)
  console.log(`jobs: ${results.reduce((n, r) => n + r.jobs, 0)} over ${simulatedHours.toFixed(1)} simulated hours, in ${((performance.now() - started) / 1000).toFixed(1)} s`)
  console.log(`faults injected: ${Object.values(faults).reduce((a, b) => a + b, 0)} (${Object.entries(faults).map(([k, v]) => `${k} ${v}`).join(", ")})`)
  const boards: Record<string, number> = {}
  for (const r of results) for (const [k, v] of Object.entries(r.boards)) boards[k] = (boards[k] ?? 0) + v
  console.log(`board checks: ${Object.entries(boards).map(([k, v]) => `${k} ${v}`).join(", ")}`)
  console.log(`violations: ${violations}`)
  process.exitCode = violations > 0 ? 1 : 0
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.message : e)
  process.exitCode = 2
})
