import { describe, expect, it } from "@effect/vitest"
import { ConfigProvider, Effect, Either, LogLevel, Option, Redacted } from "effect"
import * as fs from "node:fs/promises"
import * as os from "node:os"
import * as path from "node:path"
import { loadAppEnv } from "../src/config/env.ts"
import { decodeRunnerConfig, loadRunnerConfig, withImageRegistry } from "../src/config/runnerConfig.ts"
import { CLUSTER_NAME_MAX, clusterOfPool, DEFAULT_CLUSTER, isClusterName } from "../src/domain/RunnerConfig.ts"

const withEnv = (vars: Record<string, string>) => Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(vars))))

describe("environment", () => {
  it.effect("names every missing required variable in one message", () =>
    Effect.gen(function*() {
      const result = yield* Effect.either(loadAppEnv("all", false).pipe(withEnv({ POSTGRES_URL: "postgres://x", GHAPP_WEBHOOK_SECRET: "" })))
      expect(Either.isLeft(result) && result.left.message).toBe(
        "missing required environment: GHAPP_WEBHOOK_SECRET, GHAPP_ORG_PRIVATE_KEY, GHAPP_PERSONAL_PRIVATE_KEY"
      )
    }))

  it.effect("reports missing and invalid variables together", () =>
    Effect.gen(function*() {
      const result = yield* Effect.either(loadAppEnv("webhook", false).pipe(withEnv({ PORT: "http" })))
      expect(Either.isLeft(result) && result.left.message).toMatch(/^missing required environment: POSTGRES_URL, GHAPP_WEBHOOK_SECRET; invalid environment: PORT: /)
    }))

  it.effect("needs nothing with --simulate, and keeps secrets redacted", () =>
    Effect.gen(function*() {
      const env = yield* loadAppEnv("all", true).pipe(withEnv({ TRACE_API_SECRET: "s3cret", PROD: "TRUE" }))
      expect(env.schema).toBe("prod")
      expect(env.port).toBe(8080)
      expect(env.schedulerPort).toBe(8081)
      expect(Option.map(env.traceSecret, Redacted.value)).toEqual(Option.some("s3cret"))
      expect(JSON.stringify(env)).not.toContain("s3cret")
      expect(String(Option.getOrThrow(env.traceSecret))).not.toContain("s3cret")
    }))

  it.effect("the scheduler alone listens on PORT", () =>
    Effect.gen(function*() {
      const env = yield* loadAppEnv("scheduler", true).pipe(withEnv({ PORT: "9000" }))
      expect(env.schedulerPort).toBe(9000)
      expect(env.schema).toBe("staging")
    }))
})

describe("LOG_LEVEL", () => {
  const level = (vars: Record<string, string>, simulate = false) =>
    Effect.map(loadAppEnv("all", simulate).pipe(withEnv(vars)), (env) => env.logLevel)

  it.effect("takes a level by its label or its name, in any case", () =>
    Effect.gen(function*() {
      expect(yield* level({ LOG_LEVEL: "warn" }, true)).toBe(LogLevel.Warning)
      expect(yield* level({ LOG_LEVEL: "warning" }, true)).toBe(LogLevel.Warning)
      expect(yield* level({ LOG_LEVEL: "DEBUG" }, true)).toBe(LogLevel.Debug)
      expect(yield* level({ LOG_LEVEL: "off" }, true)).toBe(LogLevel.None)
      expect(yield* level({ LOG_LEVEL: "none" }, true)).toBe(LogLevel.None)
      expect(yield* level({ LOG_LEVEL: "info" }, true)).toBe(LogLevel.Info)
    }))

  it.effect("unset or empty: info, and warnings only under --simulate so its event lines stand out", () =>
    Effect.gen(function*() {
      const live = { POSTGRES_URL: "postgres://x", GHAPP_WEBHOOK_SECRET: "s", GHAPP_ORG_PRIVATE_KEY: "k", GHAPP_PERSONAL_PRIVATE_KEY: "k" }
      expect(yield* level(live)).toBe(LogLevel.Info)
      expect(yield* level({ ...live, LOG_LEVEL: " " })).toBe(LogLevel.Info)
      expect(yield* level({}, true)).toBe(LogLevel.Warning)
      expect(yield* level({ LOG_LEVEL: "" }, true)).toBe(LogLevel.Warning)
    }))

  it.effect("anything else is a start-up error naming LOG_LEVEL and the accepted values", () =>
    Effect.gen(function*() {
      const result = yield* Effect.flip(loadAppEnv("all", true).pipe(withEnv({ LOG_LEVEL: "loud" })))
      expect(result._tag).toBe("StartupError")
      expect(result.message).toBe(
        `invalid environment: LOG_LEVEL: must be one of all, trace, debug, info, warn (warning), error, fatal, off (none), got "loud"`
      )
    }))
})

describe("runner config file", () => {
  const write = async (content: string) => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), "rr-config-"))
    const file = path.join(dir, "runner.json")
    await fs.writeFile(file, content)
    return file
  }

  it.effect("uses the built-in default without a path", () =>
    Effect.map(loadRunnerConfig(Option.none()), (c) => expect(c.rules.map((r) => r.pool)).toEqual(["cloudv10x-jupiter", "scw-em-rv1"])))

  it.effect("names the file and every bad field", () =>
    Effect.gen(function*() {
      const file = yield* Effect.promise(() => write(JSON.stringify({ rules: [{ labels: ["x"], pool: "" }], entities: { abc: {} }, policy: "random" })))
      const result = yield* Effect.either(loadRunnerConfig(Option.some(file)))
      const message = Either.isLeft(result) ? result.left.message : ""
      expect(message).toContain(`RUNNER_CONFIG ${file}:`)
      expect(message).toContain("rules.0.pool")
      expect(message).toContain("rules.0.image")
      expect(message).toContain("entities.abc")
      expect(message).toContain("policy")
      expect(message).not.toContain("\n")
    }))

  it.effect("RUNNER_IMAGE_REGISTRY replaces the config's imageRegistry; a bad value stops start-up with its name", () =>
    Effect.gen(function*() {
      const base = yield* loadRunnerConfig(Option.none())
      expect((yield* withImageRegistry(base, Option.none())).imageRegistry).toBe("rg.fr-par.scw.cloud/funcscwriseriscvrunnerappqdvknz9s")
      expect((yield* withImageRegistry(base, Option.some("ghcr.io/acme"))).imageRegistry).toBe("ghcr.io/acme")
      const bad = yield* Effect.either(withImageRegistry(base, Option.some("https://ghcr.io/acme")))
      expect(Either.isLeft(bad) && bad.left.message).toMatch(/^RUNNER_IMAGE_REGISTRY: must be a registry host/)
      const env = yield* loadAppEnv("scheduler", true).pipe(withEnv({ RUNNER_IMAGE_REGISTRY: "registry.example:5000/runners" }))
      expect(env.imageRegistry).toEqual(Option.some("registry.example:5000/runners"))
    }))

  it.effect("rejects a file that is not JSON, and a missing file", () =>
    Effect.gen(function*() {
      const file = yield* Effect.promise(() => write("{ nope"))
      const bad = yield* Effect.either(loadRunnerConfig(Option.some(file)))
      expect(Either.isLeft(bad) && bad.left.message).toMatch(/not valid JSON/)
      const missing = yield* Effect.either(loadRunnerConfig(Option.some("/nonexistent/runner.json")))
      expect(Either.isLeft(missing) && missing.left.message).toMatch(/cannot read it/)
    }))

  it.effect("accepts a valid file with its defaults filled in", () =>
    Effect.gen(function*() {
      const file = yield* Effect.promise(() => write(JSON.stringify({
        rules: [{ labels: ["ubuntu-24.04-riscv"], pool: "lab", image: "img" }],
        entities: { "42": { maxWorkers: 2, weight: 3 } },
        policy: "fifo"
      })))
      const config = yield* loadRunnerConfig(Option.some(file))
      expect(config.entities["42"]).toEqual({ maxWorkers: 2, weight: 3, staging: [], banned: false })
      expect(config.apps.orgAppId).toBe(2167633)
      expect(config.bannedSenders).toEqual([])
      expect(config.policy).toBe("fifo")
    }))
})

describe("runner config clusters", () => {
  const rules = [
    { labels: ["ubuntu-24.04-riscv"], pool: "scw-em-rv1", image: "img" },
    { labels: ["lab"], pool: "jupiter", image: "img" },
    { labels: ["other"], pool: "banana", image: "img" }
  ]
  const decode = (clusters: unknown) => Effect.either(decodeRunnerConfig({ rules, clusters }))
  const lab = { name: "lab", kubeconfig: "/etc/lab.kubeconfig", pools: ["jupiter"] }

  it.effect("without clusters every pool is in the default cluster, as before", () =>
    Effect.gen(function*() {
      const config = yield* decodeRunnerConfig({ rules })
      expect(config.clusters).toEqual([])
      expect(clusterOfPool(config, "jupiter")).toBe(DEFAULT_CLUSTER)
    }))

  it.effect("a pool named by a cluster lives there; the others stay in the default cluster", () =>
    Effect.gen(function*() {
      const config = yield* decodeRunnerConfig({
        rules,
        clusters: [{ ...lab, context: "admin", namespace: "runners" }, { name: "scw", kubeconfig: "/k", pools: ["banana"] }]
      })
      expect(config.clusters[0]).toEqual({ ...lab, context: "admin", namespace: "runners" })
      expect(clusterOfPool(config, "jupiter")).toBe("lab")
      expect(clusterOfPool(config, "banana")).toBe("scw")
      expect(clusterOfPool(config, "scw-em-rv1")).toBe(DEFAULT_CLUSTER)
    }))

  it.effect("a cluster listed twice, or named default, is refused", () =>
    Effect.gen(function*() {
      const twice = yield* decode([lab, { ...lab, pools: ["banana"] }])
      expect(Either.isLeft(twice) && twice.left).toBe(`clusters.1.name: cluster "lab" is listed twice`)
      const reserved = yield* decode([{ ...lab, name: "default" }])
      expect(Either.isLeft(reserved) && reserved.left).toMatch(/^clusters\.0\.name: "default" is the cluster of KUBECONFIG/)
    }))

  it.effect("a pool in two clusters is refused", () =>
    Effect.gen(function*() {
      const result = yield* decode([lab, { name: "other", kubeconfig: "/k", pools: ["banana", "jupiter"] }])
      expect(Either.isLeft(result) && result.left).toBe(`clusters.1.pools: pool "jupiter" is already in cluster "lab"; a pool lives in one cluster`)
    }))

  it.effect("a pool no rule routes to is refused (a misspelt pool would leave its rule's pool in the default cluster)", () =>
    Effect.gen(function*() {
      const result = yield* decode([{ ...lab, pools: ["jupitre"] }])
      expect(Either.isLeft(result) && result.left).toBe(`clusters.0.pools: pool "jupitre" is in no rule`)
    }))

  it.effect("bad fields are named by their path: a missing kubeconfig, no pools, a name that is not a DNS label", () =>
    Effect.gen(function*() {
      const result = yield* decode([{ name: "Lab Two", pools: [] }])
      const message = Either.isLeft(result) ? result.left : ""
      expect(message).toContain("clusters.0.name")
      expect(message).toContain("clusters.0.kubeconfig")
      expect(message).toContain("clusters.0.pools")
    }))

  it.effect("a cluster name is a DNS label; a bad one is refused with the name in the message", () =>
    Effect.gen(function*() {
      const good = ["lab", "scw-2", "0", "a".repeat(CLUSTER_NAME_MAX), "lab-paris-1"]
      for (const name of good) {
        expect(isClusterName(name)).toBe(true)
        const config = yield* decodeRunnerConfig({ rules, clusters: [{ ...lab, name }] })
        expect(clusterOfPool(config, "jupiter")).toBe(name)
      }
      const bad = ["Lab", "lab_2", "-lab", "lab-", "lab.eu", " lab", "", "a".repeat(CLUSTER_NAME_MAX + 1), "läb"]
      for (const name of bad) {
        expect(isClusterName(name)).toBe(false)
        const result = yield* decode([{ ...lab, name }])
        expect(Either.isLeft(result) && result.left).toBe(
          `clusters.0.name: cluster name ${JSON.stringify(name)} is not a DNS label: lower-case letters, digits and -, starting and ending with a letter or digit, at most 63 characters`
        )
      }
    }))

  it.effect("a config file with a bad cluster names the file", () =>
    Effect.gen(function*() {
      const dir = yield* Effect.promise(() => fs.mkdtemp(path.join(os.tmpdir(), "rr-config-")))
      const file = path.join(dir, "runner.json")
      yield* Effect.promise(() => fs.writeFile(file, JSON.stringify({ rules, clusters: [lab, lab] })))
      const result = yield* Effect.either(loadRunnerConfig(Option.some(file)))
      expect(Either.isLeft(result) && result.left.message).toBe(`RUNNER_CONFIG ${file}: clusters.1.name: cluster "lab" is listed twice; clusters.1.pools: pool "jupiter" is already in cluster "lab"; a pool lives in one cluster`)
    }))
})
