import { Effect, Either } from "effect"
import { defaultRunnerConfig } from "../domain/RunnerConfig.ts"
import { parseTraceArgs, TraceUsageError } from "./traceArgs.ts"
import { loadPayloads, loadTimeline, type TraceClientConfig } from "./traceClient.ts"
import { buildReport, renderReport, reportJson } from "./traceReport.ts"

/**
 * The trace CLI: "why did this account's jobs stop being picked up?" without SQL. It reads the entity's
 * installation log through the webhook's trace API, folds it with the domain's installation-history fold, and
 * prints the timeline, the state and the diagnoses (or JSON).
 *
 * Exit status: 0 when the trace was printed, 1 when the server or GitHub could not answer, 2 for bad usage or a
 * missing TRACE_API_SECRET.
 */

export interface TraceRun {
  readonly code: number
  readonly stdout: string
  readonly stderr: string
}

const appId = (text: string | undefined, fallback: number): number =>
  text !== undefined && /^\d+$/.test(text.trim()) ? Number(text.trim()) : fallback

export const runTrace = (argv: ReadonlyArray<string>, env: Readonly<Record<string, string | undefined>>): Promise<TraceRun> => {
  let args
  try {
    args = parseTraceArgs(argv)
  } catch (e) {
    if (e instanceof TraceUsageError) return Promise.resolve({ code: 2, stdout: "", stderr: e.message + "\n" })
    throw e
  }
  const secret = env["TRACE_API_SECRET"]
  if (secret === undefined || secret === "") return Promise.resolve({ code: 2, stdout: "", stderr: "trace: TRACE_API_SECRET is not set\n" })
  const config: TraceClientConfig = {
    traceUrl: env["TRACE_URL"] || "http://localhost:8080",
    traceSecret: secret,
    githubApiUrl: env["GITHUB_API_URL"] || "https://api.github.com",
    githubToken: env["GITHUB_TOKEN"] || undefined
  }
  const apps = {
    orgAppId: appId(env["GHAPP_ORG_ID"], defaultRunnerConfig.apps.orgAppId),
    personalAppId: appId(env["GHAPP_PERSONAL_ID"], defaultRunnerConfig.apps.personalAppId)
  }
  const program = Effect.gen(function*() {
    const { entityId, events, note } = yield* loadTimeline(config, args.target, args.repo)
    const payloads = yield* loadPayloads(config, events)
    return { report: buildReport(entityId, events, payloads, apps), note }
  })
  return Effect.runPromise(Effect.either(program)).then((result) =>
    Either.isLeft(result)
      ? { code: 1, stdout: "", stderr: `trace: ${result.left.message}\n` }
      : {
        code: 0,
        stdout: args.json ? reportJson(result.right.report, args.verbose) : renderReport(result.right.report, args.verbose),
        // a note (the job was unknown, its repository's owner is shown) goes to stderr, so --json stays one document
        stderr: result.right.note === undefined ? "" : `trace: ${result.right.note}\n`
      }
  )
}

/** Runs the CLI on this process's arguments and environment, prints, and sets the exit status. */
export const traceMain = async (argv: ReadonlyArray<string>): Promise<number> => {
  const run = await runTrace(argv, process.env)
  if (run.stdout !== "") process.stdout.write(run.stdout)
  if (run.stderr !== "") process.stderr.write(run.stderr)
  process.exitCode = run.code
  return run.code
}
