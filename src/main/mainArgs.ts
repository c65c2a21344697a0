import type { Role } from "../config/env.ts"
import { StartupError } from "../config/env.ts"

export interface CliArgs {
  readonly role: Role
  /** replace GitHub and the cluster with in-memory ones (closed loop); the database may be embedded */
  readonly simulate: boolean
  /** with --simulate: generate a steady mixed load by itself */
  readonly demo: boolean
}

const ROLES: ReadonlyArray<Role> = ["webhook", "scheduler", "all", "migrate"]

export const USAGE = "usage: main.ts <webhook|scheduler|all|migrate> [--simulate] [--demo]"

/** Parses `<role> [flags]`; anything unknown is a start-up error, not a silent default. */
export const parseArgs = (argv: ReadonlyArray<string>): CliArgs => {
  const positional = argv.filter((a) => !a.startsWith("--"))
  const flags = argv.filter((a) => a.startsWith("--"))
  const unknownFlags = flags.filter((f) => f !== "--simulate" && f !== "--demo")
  if (unknownFlags.length > 0) throw new StartupError(`unknown flag ${unknownFlags.join(", ")}; ${USAGE}`)
  if (positional.length !== 1) throw new StartupError(USAGE)
  const role = positional[0] as Role
  if (!ROLES.includes(role)) throw new StartupError(`unknown role "${positional[0]}"; ${USAGE}`)
  const simulate = flags.includes("--simulate")
  const demo = flags.includes("--demo")
  if (demo && !simulate) throw new StartupError("--demo needs --simulate")
  if (simulate && role === "migrate") throw new StartupError("--simulate does not apply to migrate")
  return { role, simulate, demo }
}
