import { Effect, Option, ParseResult, Schema } from "effect"
import * as fs from "node:fs/promises"
import { clusterProblems, defaultRunnerConfig, ImageRegistry, RunnerConfig } from "../domain/RunnerConfig.ts"
import { StartupError } from "./StartupError.ts"

/**
 * The runner config file (`RUNNER_CONFIG`), decoded by Schema; without a path, the built-in default (the
 * original's table). Any problem names the file and every bad field.
 */
export const loadRunnerConfig = (path: Option.Option<string>) =>
  Option.match(path, {
    onNone: () => Effect.succeed(defaultRunnerConfig),
    onSome: (file) =>
      Effect.gen(function*() {
        const text = yield* Effect.tryPromise({
          try: () => fs.readFile(file, "utf8"),
          catch: (e) => new StartupError({ message: `RUNNER_CONFIG ${file}: cannot read it (${(e as Error).message})` })
        })
        const json = yield* Effect.try({
          try: (): unknown => JSON.parse(text),
          catch: (e) => new StartupError({ message: `RUNNER_CONFIG ${file}: not valid JSON (${(e as Error).message})` })
        })
        return yield* decodeRunnerConfig(json).pipe(
          Effect.mapError((msg) => new StartupError({ message: `RUNNER_CONFIG ${file}: ${msg}` }))
        )
      })
  })

/**
 * Decodes a config object; the error lists every bad field by its path, on one line, then what is wrong with the
 * `clusters` as a whole (`clusterProblems`).
 */
export const decodeRunnerConfig = (input: unknown) =>
  Schema.decodeUnknown(RunnerConfig, { errors: "all", onExcessProperty: "error" })(input).pipe(
    Effect.mapError((e) =>
      ParseResult.ArrayFormatter.formatErrorSync(e)
        .map((issue) => `${issue.path.length > 0 ? issue.path.join(".") : "(root)"}: ${issue.message.replace(/\s+/g, " ")}`)
        .join("; ")
    ),
    Effect.filterOrFail((config) => clusterProblems(config).length === 0, (config) => clusterProblems(config).join("; "))
  )

/**
 * `RUNNER_IMAGE_REGISTRY`, when set, replaces the config's `imageRegistry` (the deploy sets one variable rather
 * than write a config file). A bad value stops start-up like a bad config field.
 */
export const withImageRegistry = (config: RunnerConfig, registry: Option.Option<string>) =>
  Option.match(registry, {
    onNone: () => Effect.succeed(config),
    onSome: (value) =>
      Schema.decodeUnknown(ImageRegistry)(value.trim()).pipe(
        Effect.map((imageRegistry): RunnerConfig => ({ ...config, imageRegistry })),
        Effect.mapError(() =>
          new StartupError({
            message: `RUNNER_IMAGE_REGISTRY: must be a registry host with an optional port and path, like ghcr.io/acme (no https://, no trailing /)`
          })
        )
      )
  })
