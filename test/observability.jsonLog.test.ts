/**
 * The buffered JSON logger writes what `Logger.json` wrote, line for line, and loses no line when the process
 * ends right after logging (its lines wait for the end of the event-loop turn).
 */
import { Cause, Effect, FiberId, HashMap, List, Logger, LogLevel, LogSpan, Redacted } from "effect"
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { formatJsonLine } from "../src/observability/jsonLog.ts"

const effectJson = (options: Logger.Logger.Options<unknown>) => Logger.jsonLogger.log(options)

const options = (over: Partial<Logger.Logger.Options<unknown>>): Logger.Logger.Options<unknown> => ({
  fiberId: FiberId.make(7, 0),
  logLevel: LogLevel.Info,
  message: "Received workflow_job",
  cause: Cause.empty,
  context: Effect.runSync(Effect.map(Effect.context<never>(), () => undefined)) as never,
  spans: List.empty(),
  annotations: HashMap.empty(),
  date: new Date(Date.UTC(2026, 11, 2, 20, 0, 0, 123)),
  ...over
})

describe("formatJsonLine", () => {
  const cases: Array<[string, Partial<Logger.Logger.Options<unknown>>]> = [
    ["a delivery's line: primitives only", {
      annotations: HashMap.make(["job_id", 41], ["entity", "acme"], ["status", 200], ["elapsed_ms", 3], ["pod", ""])
    }],
    ["no annotations", {}],
    ["an object annotation and a span", {
      annotations: HashMap.make(["fields", { a: 1, nested: { b: [1, 2] } }], ["when", new Date(0)]),
      spans: List.make(LogSpan.make("cycle", Date.UTC(2026, 11, 2, 20, 0, 0, 100)))
    }],
    ["a redacted annotation", { annotations: HashMap.make(["secret", Redacted.make("hunter2")]) }],
    ["an Error as the message, with a cause, at ERROR", {
      logLevel: LogLevel.Error,
      message: new Error("boom"),
      cause: Cause.fail(new Error("underneath"))
    }],
    ["several messages", { message: ["one", 2, { three: 3 }] }],
    ["a bigint and a symbol", { message: 10n, annotations: HashMap.make(["s", Symbol.for("x")]) }]
  ]
  for (const [name, over] of cases) {
    it(`is Logger.json's line: ${name}`, () => {
      const o = options(over)
      expect(formatJsonLine(o)).toEqual(effectJson(o))
    })
  }
})

describe("the buffered writes", () => {
  it("a line logged just before process.exit is on stdout, after the lines before it, one JSON object each", () => {
    // inside the checkout, so that the script resolves `effect` as the sources do
    const dir = fs.mkdtempSync(path.join(import.meta.dirname, ".jsonlog-"))
    const script = path.join(dir, "exit.ts")
    const logger = path.resolve(import.meta.dirname, "../src/observability/jsonLog.ts")
    fs.writeFileSync(script, [
      `import { Effect } from "effect"`,
      `import { BufferedJsonLog } from ${JSON.stringify(logger)}`,
      `Effect.runSync(Effect.forEach([1, 2, 3], (n) => Effect.logInfo("line " + n), { discard: true }).pipe(Effect.provide(BufferedJsonLog)))`,
      `Effect.runSync(Effect.logError("last words").pipe(Effect.provide(BufferedJsonLog)))`,
      `process.exit(3)`
    ].join("\n"))
    const tsx = path.resolve(import.meta.dirname, "../node_modules/.bin/tsx")
    const run = spawnSync(tsx, [script], { encoding: "utf8", cwd: path.resolve(import.meta.dirname, "..") })
    fs.rmSync(dir, { recursive: true, force: true })
    expect(run.status, run.stderr).toBe(3)
    const lines = run.stdout.split("\n").filter((l) => l !== "").map((l) => JSON.parse(l) as { message: string; logLevel: string })
    expect(lines.map((l) => l.message)).toEqual(["line 1", "line 2", "line 3", "last words"])
    expect(lines[3]!.logLevel).toBe("ERROR")
  })
})
