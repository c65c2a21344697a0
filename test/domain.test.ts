import { describe, expect, it } from "@effect/vitest"
import { Either, Schema } from "effect"
import { FailureInfo } from "../src/domain/FailureInfo.ts"
import { escapeHtml } from "../src/domain/html.ts"
import { encodeLabelSet, sameLabelSet, toLabelSet } from "../src/domain/Labels.ts"
import { banOf, defaultRunnerConfig, isEntityBanned, isStagingRepo, maxWorkersFor, resolveImage, resolvePool, RunnerConfig } from "../src/domain/RunnerConfig.ts"
import { allowedSources, canTransition, type Status } from "../src/domain/Status.ts"
import { WEBHOOK_OUTCOMES } from "../src/domain/WebhookOutcome.ts"

describe("status transitions", () => {
  const all: ReadonlyArray<Status> = ["pending", "running", "completed", "failed"]
  it("only move forward", () => {
    const allowed = all.flatMap((from) => all.filter((to) => canTransition(from, to)).map((to) => `${from}->${to}`))
    expect(allowed).toEqual(["pending->running", "pending->completed", "pending->failed", "running->completed", "running->failed"])
    expect(allowedSources("running")).toEqual(["pending"])
    expect(allowedSources("completed")).toEqual(["pending", "running"])
  })
})

describe("label sets", () => {
  it("are sorted, deduplicated and encoded the same way everywhere", () => {
    expect(toLabelSet(["b", "a", "b"])).toEqual(["a", "b"])
    expect(encodeLabelSet(["self-hosted", "linux.riscv64.xlarge"])).toBe('["linux.riscv64.xlarge","self-hosted"]')
    expect(sameLabelSet(["x", "y"], ["y", "x"])).toBe(true)
    expect(sameLabelSet(["x"], ["x", "y"])).toBe(false)
  })
})

describe("the default runner config (the original's table)", () => {
  const job = (entityId: number, repo: string, labels: Array<string>) => ({ entityId, repoFullName: repo, labels })
  it("sends exactly ubuntu-24.04-riscv to scw-em-rv1, with the channel's image", () => {
    expect(resolvePool(defaultRunnerConfig, job(1, "a/b", ["ubuntu-24.04-riscv"]), true)).toEqual({ pool: "scw-em-rv1", image: "riscv-runner:ubuntu-24.04-latest" })
    expect(resolvePool(defaultRunnerConfig, job(1, "a/b", ["ubuntu-24.04-riscv"]), false)?.image).toBe("riscv-runner:ubuntu-24.04-staging")
  })
  it("rejects extra, other or missing labels", () => {
    expect(resolvePool(defaultRunnerConfig, job(1, "a/b", ["self-hosted", "ubuntu-24.04-riscv"]), true)).toBeUndefined()
    expect(resolvePool(defaultRunnerConfig, job(1, "a/b", ["ubuntu-26.04-riscv"]), true)).toBeUndefined()
    expect(resolvePool(defaultRunnerConfig, job(1, "a/b", []), true)).toBeUndefined()
  })
  it("keeps ggml-org and the llama.cpp repos on their own boards", () => {
    expect(resolvePool(defaultRunnerConfig, job(134263123, "ggml-org/llama.cpp", ["ubuntu-24.04-riscv"]), true)?.pool).toBe("cloudv10x-jupiter")
    expect(resolvePool(defaultRunnerConfig, job(152654596, "riseproject-dev/llama.cpp", ["ubuntu-24.04-riscv"]), true)?.pool).toBe("cloudv10x-jupiter")
    expect(resolvePool(defaultRunnerConfig, job(152654596, "riseproject-dev/other", ["ubuntu-24.04-riscv"]), true)?.pool).toBe("scw-em-rv1")
    expect(resolvePool(defaultRunnerConfig, job(134263123, "ggml-org/x", ["ubuntu-26.04-riscv"]), true)).toBeUndefined()
  })
  it("caps unlisted entities at 20 and honours explicit limits", () => {
    expect(maxWorkersFor(defaultRunnerConfig, 42)).toBe(20)
    expect(maxWorkersFor(defaultRunnerConfig, 152654596)).toBeNull()
    expect(maxWorkersFor(defaultRunnerConfig, 21003710)).toBe(20)
  })
  it("lists the staging repos by name, without the owner", () => {
    expect(isStagingRepo(defaultRunnerConfig, 152654596, "riseproject-dev/riscv-runner-sample-staging")).toBe(true)
    expect(isStagingRepo(defaultRunnerConfig, 152654596, "riseproject-dev/riscv-runner-sample")).toBe(false)
    expect(isStagingRepo(defaultRunnerConfig, 1, "x/riscv-runner-sample-staging")).toBe(false)
  })
  it("pulls the rules' images from the original's registry unless a rule names its own", () => {
    expect(defaultRunnerConfig.imageRegistry).toBe("rg.fr-par.scw.cloud/funcscwriseriscvrunnerappqdvknz9s")
    const image = resolvePool(defaultRunnerConfig, job(1, "a/b", ["ubuntu-24.04-riscv"]), true)!.image
    expect(resolveImage(image, defaultRunnerConfig.imageRegistry)).toBe("rg.fr-par.scw.cloud/funcscwriseriscvrunnerappqdvknz9s/riscv-runner:ubuntu-24.04-latest")
    expect(resolveImage("ghcr.io/acme/runner:1", "registry.example/x")).toBe("ghcr.io/acme/runner:1")
    expect(resolveImage("localhost/runner:1", "registry.example/x")).toBe("localhost/runner:1")
    expect(resolveImage("host:5000/runner", "registry.example/x")).toBe("host:5000/runner")
    expect(resolveImage("acme/runner:1", "registry.example/x")).toBe("registry.example/x/acme/runner:1")
    expect(resolveImage("riscv-runner:ubuntu-24.04-latest", "")).toBe("riscv-runner:ubuntu-24.04-latest")
    const decode = Schema.decodeUnknownEither(RunnerConfig)
    expect(decode({ rules: [], imageRegistry: "" }).pipe(Either.map((c) => c.imageRegistry))).toEqual(Either.right(""))
    for (const bad of ["https://ghcr.io/acme", "ghcr.io/acme/", "ghcr.io/ACME", " "]) expect(Either.isLeft(decode({ rules: [], imageRegistry: bad }))).toBe(true)
  })
  it("bans: an entity by its config, a sender by id or by login in any case", () => {
    const config = Schema.decodeUnknownSync(RunnerConfig)({
      rules: [],
      entities: { "5": { banned: true }, "6": {} },
      bannedSenders: ["Mallory", 42]
    })
    const d = (entityId: number, senderLogin: string, senderId: number | null) => banOf(config, { entityId, entityName: `e${entityId}`, senderId, senderLogin })
    expect(d(5, "anyone", 1)).toBe("entity e5 is banned")
    expect(d(6, "MALLORY", 1)).toBe("sender MALLORY is banned")
    expect(d(6, "renamed", 42)).toBe("sender renamed is banned")
    expect(d(6, "friend", 7)).toBeUndefined()
    expect(d(6, "", null)).toBeUndefined()
    expect([isEntityBanned(config, 5), isEntityBanned(config, 6), isEntityBanned(config, 7)]).toEqual([true, false, false])
    const decode = Schema.decodeUnknownEither(RunnerConfig)
    expect(Either.isLeft(decode({ rules: [], bannedSenders: [""] }))).toBe(true)
    expect(Either.isLeft(decode({ rules: [], bannedSenders: [-1] }))).toBe(true)
  })
  it("supports contains-matching rules", () => {
    const config = Schema.decodeUnknownSync(RunnerConfig)({
      rules: [{ labels: ["linux.riscv64.xlarge"], match: "contains", pool: "p", image: "i" }]
    })
    expect(resolvePool(config, job(1, "a/b", ["self-hosted", "linux.riscv64.xlarge"]), true)?.pool).toBe("p")
    expect(config.defaultMaxWorkers).toBe(20)
    expect(config.policy).toBe("fair")
  })
})

describe("failure info", () => {
  it("decodes v1, the historical v1 shape, and v2 with every key", () => {
    const decode = Schema.decodeUnknownSync(FailureInfo)
    expect(decode({ version: 1, message: "installation not found" })).toEqual({ version: 1, message: "installation not found" })
    expect(decode({ version: 1, reason: "old shape" })).toEqual({ version: 1, reason: "old shape" })
    const v2 = {
      version: 2,
      reason: "pod_failed",
      pod_reason: "DeadlineExceeded",
      pod_message: "Pod was active on the node longer than the specified deadline",
      containers: { runner: { exit_code: 137, reason: "Error", message: "", logs: "bye" } },
      events: [{ type: "Normal", reason: "Killing", message: "Stopping container runner", count: 1, first_seen: "2026-01-01T00:00:00Z", last_seen: "2026-01-01T00:00:01Z" }],
      collect_error: "events: timeout"
    }
    expect(decode(v2)).toEqual(v2)
    expect(() => decode({ version: 2, reason: "not_a_reason" })).toThrow()
  })
  it("lists every webhook outcome", () => {
    expect(WEBHOOK_OUTCOMES).toHaveLength(13)
    expect(WEBHOOK_OUTCOMES).toContain("proxied_to_staging")
    expect(WEBHOOK_OUTCOMES).toContain("ignored_banned")
  })
})

describe("HTML escape", () => {
  it("turns the five markup characters into entities, ampersands first, and leaves the rest", () => {
    expect(escapeHtml(`<script>alert('x')</script>&`)).toBe("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;")
    expect(escapeHtml(`<a href="?a=1&b=2">`)).toBe("&lt;a href=&quot;?a=1&amp;b=2&quot;&gt;")
    expect(escapeHtml("&amp;")).toBe("&amp;amp;")
    expect(escapeHtml("plain text, ünïcode ✓")).toBe("plain text, ünïcode ✓")
  })
})
