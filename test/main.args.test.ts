import { Either } from "effect"
import { describe, expect, it } from "vitest"
import { parseMainArgs, USAGE } from "../src/main/mainArgs.ts"

/** The message of the `ArgumentError` for `argv`, or the parsed arguments' failure to fail. */
const refusal = (argv: ReadonlyArray<string>) =>
  Either.match(parseMainArgs(argv), {
    onLeft: (e) => ({ tag: e._tag, message: e.message }),
    onRight: (args) => ({ tag: "parsed", message: JSON.stringify(args) })
  })

describe("main.ts's arguments", () => {
  it("accepts every role, and --simulate and --demo where they apply, in any order", () => {
    expect(parseMainArgs(["all", "--simulate"])).toEqual(Either.right({ role: "all", simulate: true, demo: false }))
    expect(parseMainArgs(["migrate"])).toEqual(Either.right({ role: "migrate", simulate: false, demo: false }))
    expect(parseMainArgs(["webhook"])).toEqual(Either.right({ role: "webhook", simulate: false, demo: false }))
    expect(parseMainArgs(["--demo", "scheduler", "--simulate"])).toEqual(Either.right({ role: "scheduler", simulate: true, demo: true }))
  })

  it.each([
    [["web"], `unknown role "web"; ${USAGE}`],
    [["webhook", "--fast"], `unknown flag --fast; ${USAGE}`],
    [["webhook", "--fast", "--slow", "--simulate"], `unknown flag --fast, --slow; ${USAGE}`],
    [[], USAGE],
    [["webhook", "scheduler"], USAGE],
    [["all", "--demo"], "--demo needs --simulate"],
    [["migrate", "--simulate"], "--simulate does not apply to migrate"]
  ])("%j is an ArgumentError: %s", (argv, message) => {
    expect(refusal(argv)).toEqual({ tag: "ArgumentError", message })
  })
})
