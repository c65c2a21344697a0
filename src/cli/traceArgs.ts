/**
 * The trace CLI's arguments: exactly one target and the output flags.
 *
 *   trace --entity-id N | --installation-id N | --job-id N | --entity-name LOGIN [--json] [--verbose]
 */

export type TraceTarget =
  | { readonly kind: "entity"; readonly id: number }
  | { readonly kind: "installation"; readonly id: number }
  | { readonly kind: "job"; readonly id: number }
  | { readonly kind: "name"; readonly login: string }

export interface TraceArgs {
  readonly target: TraceTarget
  readonly json: boolean
  readonly verbose: boolean
}

export const TRACE_USAGE =
  "usage: trace (--entity-id N | --installation-id N | --job-id N | --entity-name LOGIN) [--json] [--verbose]\n" +
  "  TRACE_URL (the webhook's base URL) and TRACE_API_SECRET are read from the environment;\n" +
  "  --entity-name asks GITHUB_API_URL (default https://api.github.com), with GITHUB_TOKEN when set."

export class TraceUsageError extends Error {}

const ID_FLAGS = { "--entity-id": "entity", "--installation-id": "installation", "--job-id": "job" } as const

export const parseTraceArgs = (argv: ReadonlyArray<string>): TraceArgs => {
  const targets: Array<TraceTarget> = []
  let json = false
  let verbose = false
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!
    const [flag, inline] = arg.includes("=") ? [arg.slice(0, arg.indexOf("=")), arg.slice(arg.indexOf("=") + 1)] : [arg, undefined]
    if (flag === "--json") json = true
    else if (flag === "--verbose" || flag === "-v") verbose = true
    else if (flag === "--help" || flag === "-h") throw new TraceUsageError(TRACE_USAGE)
    else if (flag in ID_FLAGS || flag === "--entity-name") {
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
  if (targets.length !== 1) throw new TraceUsageError(`give exactly one target\n${TRACE_USAGE}`)
  return { target: targets[0]!, json, verbose }
}
