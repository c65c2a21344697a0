import type { Role } from "../config/env.ts"
import { Data, Either } from "effect"

export interface MainArgs {
  readonly role: Role
  /** replace GitHub and the cluster with in-memory ones (closed loop); the database may be embedded */
  readonly simulate: boolean
  /** with --simulate: generate a steady mixed load by itself */
  readonly demo: boolean
}

const ROLES: ReadonlyArray<Role> = ["webhook", "scheduler", "all", "migrate"]

export const USAGE = "usage: main.ts <webhook|scheduler|all|migrate> [--simulate] [--demo]"

/** Arguments `main.ts` cannot run: printed as one line, then the process exits with status 2. */
export class ArgumentError extends Data.TaggedError("ArgumentError")<{ readonly message: string }> {}

const isRole = (s: string | undefined): s is Role => ROLES.some((r) => r === s)
const fail = (message: string) => Either.left(new ArgumentError({ message }))

/** Parses `main.ts`'s `<role> [flags]`; anything unknown is an `ArgumentError`, not a silent default. */
export const parseMainArgs = (argv: ReadonlyArray<string>): Either.Either<MainArgs, ArgumentError> => {
  const positional = argv.filter((a) => !a.startsWith("--"))
  const flags = argv.filter((a) => a.startsWith("--"))
  const unknownFlags = flags.filter((f) => f !== "--simulate" && f !== "--demo")
  if (unknownFlags.length > 0) return fail(`unknown flag ${unknownFlags.join(", ")}; ${USAGE}`)
  if (positional.length !== 1) return fail(USAGE)
  const role = positional[0]
  if (!isRole(role)) return fail(`unknown role "${positional[0]}"; ${USAGE}`)
  const simulate = flags.includes("--simulate")
  const demo = flags.includes("--demo")
  if (demo && !simulate) return fail("--demo needs --simulate")
  if (simulate && role === "migrate") return fail("--simulate does not apply to migrate")
  return Either.right({ role, simulate, demo })
}
