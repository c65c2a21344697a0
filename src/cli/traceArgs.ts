/**
 * The trace CLI's arguments: exactly one target and the output flags.
 *
 *   trace --entity-id N | --installation-id N | --job-id N [--repo OWNER/NAME] | --entity-name LOGIN | --repo OWNER/NAME
 *         [--json] [--verbose]
 *
 * `--repo` names the entity by a repository (its owner); beside `--job-id` it is where to look when the job
 * itself was never stored.
 */

export type TraceTarget =
  | { readonly kind: "entity"; readonly id: number }
  | { readonly kind: "installation"; readonly id: number }
  | { readonly kind: "job"; readonly id: number }
  | { readonly kind: "name"; readonly login: string }
  | { readonly kind: "repo"; readonly repo: string }

export interface TraceArgs {
  readonly target: TraceTarget
  readonly json: boolean
  readonly verbose: boolean
  /** `--repo` beside `--job-id`: the job's repository, whose owner's trace is shown when the job is unknown */
  readonly repo?: string | undefined
}

export const TRACE_USAGE =
  "usage: trace (--entity-id N | --installation-id N | --job-id N [--repo OWNER/NAME] | --entity-name LOGIN | --repo OWNER/NAME)\n" +
  "             [--json] [--verbose]\n" +
  "  TRACE_URL (the webhook's base URL) and TRACE_API_SECRET are read from the environment;\n" +
  "  --entity-name and --repo ask GITHUB_API_URL (default https://api.github.com), with GITHUB_TOKEN when set;\n" +
  "  --repo beside --job-id is the job's repository, traced when the job was never stored."

export class TraceUsageError extends Error {}

const ID_FLAGS = { "--entity-id": "entity", "--installation-id": "installation", "--job-id": "job" } as const

export const parseTraceArgs = (argv: ReadonlyArray<string>): TraceArgs => {
  const targets: Array<TraceTarget> = []
  let json = false
  let verbose = false
  let repo: string | undefined
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!
    const [flag, inline] = arg.includes("=") ? [arg.slice(0, arg.indexOf("=")), arg.slice(arg.indexOf("=") + 1)] : [arg, undefined]
    if (flag === "--json") json = true
    else if (flag === "--verbose" || flag === "-v") verbose = true
    else if (flag === "--help" || flag === "-h") throw new TraceUsageError(TRACE_USAGE)
    else if (flag === "--repo") {
      const value = inline ?? argv[++i]
      if (value === undefined || value === "") throw new TraceUsageError(`${flag} needs a value\n${TRACE_USAGE}`)
      if (!/^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})\/[A-Za-z0-9._-]{1,100}$/.test(value)) {
        throw new TraceUsageError(`--repo: "${value}" is not an owner/name repository`)
      }
      if (repo !== undefined) throw new TraceUsageError(`give --repo once\n${TRACE_USAGE}`)
      repo = value
    } else if (flag in ID_FLAGS || flag === "--entity-name") {
      const value = inline ?? argv[++i]
      if (value === undefined || value === "") throw new TraceUsageError(`${flag} needs a value\n${TRACE_USAGE}`)
      if (flag === "--entity-name") {
        if (!/^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})$/.test(value)) throw new TraceUsageError(`--entity-name: "${value}" is not a GitHub login`)
        targets.push({ kind: "name", login: value })
      } else {
        const n = Number(value)
        if (!/^\d+$/.test(value) || !Number.isSafeInteger(n)) throw new TraceUsageError(`${flag}: "${value}" is not a positive integer`)
        targets.push({ kind: ID_FLAGS[flag as keyof typeof ID_FLAGS], id: n })
      }
    } else throw new TraceUsageError(`unknown argument ${arg}\n${TRACE_USAGE}`)
  }
  // --repo alone is the target; beside --job-id it is the fallback; beside any other target it is a mistake.
  if (repo !== undefined && targets.length === 0) return { target: { kind: "repo", repo }, json, verbose }
  if (targets.length !== 1) throw new TraceUsageError(`give exactly one target\n${TRACE_USAGE}`)
  if (repo !== undefined && targets[0]!.kind !== "job") throw new TraceUsageError(`--repo goes alone or with --job-id\n${TRACE_USAGE}`)
  return repo === undefined ? { target: targets[0]!, json, verbose } : { target: targets[0]!, json, verbose, repo }
}
