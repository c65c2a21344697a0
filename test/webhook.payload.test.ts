import { verify } from "@octokit/webhooks-methods"
import { Redacted } from "effect"
import fc from "fast-check"
import { describe, expect, it } from "vitest"
import { storableJson, storableString } from "../src/domain/jsonPayload.ts"
import { minimalWorkflowJobPayload, trimWorkflowJobPayload } from "../src/domain/workflowJobPayload.ts"
import { secretEquals, signatureMatches, signBody } from "../src/webhook/signature.ts"
import { workflowJob } from "./support/webhookPayloads.ts"

/* The pure parts of the webhook: payload trimming, storable JSON, signatures. */

describe("trimWorkflowJobPayload", () => {
  it("drops the URL noise and keeps everything else, workflow_job.html_url included", () => {
    const p = workflowJob()
    const trimmed = trimWorkflowJobPayload(p) as Record<string, any>
    for (const key of ["url", "html_url", "avatar_url", "followers_url", "received_events_url"]) {
      expect(trimmed.sender).not.toHaveProperty(key)
      expect(trimmed.repository.owner).not.toHaveProperty(key)
    }
    for (const key of ["url", "html_url", "git_url", "ssh_url", "clone_url", "issues_url", "pulls_url", "notifications_url", "license"]) {
      expect(trimmed.repository).not.toHaveProperty(key)
    }
    for (const key of ["url", "run_url", "check_run_url", "steps"]) expect(trimmed.workflow_job).not.toHaveProperty(key)
    expect(trimmed.workflow_job.html_url).toBe(p.workflow_job.html_url)
    expect(trimmed.workflow_job.labels).toEqual(p.workflow_job.labels)
    expect(trimmed.repository.full_name).toBe(p.repository.full_name)
    expect(trimmed.repository.owner.login).toBe("acme")
    expect(trimmed.sender.login).toBe(p.sender.login)
    expect(trimmed.installation).toBe(p.installation)
    expect(JSON.stringify(trimmed).length).toBeLessThan(JSON.stringify(p).length / 2)
  })

  it("trims organization, leaves non-object parts alone, and never modifies its input", () => {
    const p = { ...workflowJob(), organization: { login: "acme", url: "u", hooks_url: "h", members_url: "m", description: "d" }, sender: "x" }
    const before = JSON.stringify(p)
    const trimmed = trimWorkflowJobPayload(p) as Record<string, any>
    expect(trimmed.organization).toEqual({ login: "acme", description: "d" })
    expect(trimmed.sender).toBe("x")
    expect(JSON.stringify(p)).toBe(before)
  })

  it("the minimal payload of an ignored job: labels, link, repository and id", () => {
    expect(minimalWorkflowJobPayload(workflowJob({ labels: ["ubuntu-latest", 3] as never }))).toEqual({
      workflow_job: { id: 9001, labels: ["ubuntu-latest"], html_url: "https://github.com/acme/ci/actions/runs/1/job/9001" },
      repository: { full_name: "acme/ci" }
    })
    expect(minimalWorkflowJobPayload({})).toEqual({ workflow_job: { id: 0, labels: [], html_url: "" }, repository: { full_name: "" } })
  })
})

describe("storableJson", () => {
  it("replaces NUL and lone surrogates, keeps pairs, and keeps a __proto__ key a plain key", () => {
    expect(storableString("a\u0000b")).toBe("a\uFFFDb")
    expect(storableString("\ud83d\ude00 ok")).toBe("\ud83d\ude00 ok")
    expect(storableString("x\ud800")).toBe("x\uFFFD")
    expect(storableString("\udc00x")).toBe("\uFFFDx")
    const parsed = JSON.parse("{\"__proto__\":{\"polluted\":1},\"a\":[\"\\u0000\"]}")
    const safe = storableJson(parsed) as Record<string, unknown>
    expect(Object.keys(safe)).toEqual(["__proto__", "a"])
    expect(({} as Record<string, unknown>).polluted).toBeUndefined()
    expect(JSON.stringify(safe)).toBe("{\"__proto__\":{\"polluted\":1},\"a\":[\"\uFFFD\"]}")
  })

  it("leaves any value without such characters equal to itself", () => {
    fc.assert(fc.property(fc.jsonValue(), (v) => {
      const text = JSON.stringify(v)
      if (!/\\u0000|\\ud[89a-f]/i.test(text) && !/[\u0000\ud800-\udfff]/.test(text)) expect(storableJson(v)).toEqual(v)
    }))
  })
})

describe("signatures", () => {
  const secret = Redacted.make("s3cret")

  it("agrees with @octokit/webhooks-methods on any body", async () => {
    await fc.assert(fc.asyncProperty(fc.string({ unit: "grapheme", minLength: 1 }), async (body) => {
      const signature = signBody(secret, body)
      expect(await verify("s3cret", body, signature)).toBe(true)
      expect(signatureMatches(secret, Buffer.from(body), signature)).toBe(true)
      expect(signatureMatches(Redacted.make("other"), Buffer.from(body), signature)).toBe(false)
    }))
  })

  it("refuses malformed headers rather than throwing", () => {
    const body = Buffer.from("{}")
    const right = signBody(secret, body)
    for (const header of ["", "sha256=", right.slice(0, -2), `${right}00`, right.replace("sha256=", "sha1="), "sha256=" + "g".repeat(64)]) {
      expect(signatureMatches(secret, body, header)).toBe(false)
    }
    expect(signatureMatches(secret, body, right.toUpperCase().replace("SHA256=", "sha256="))).toBe(true)
  })

  it("compares bearer secrets of any length", () => {
    const s = Redacted.make("trace-secret")
    expect(secretEquals("trace-secret", s)).toBe(true)
    for (const given of ["", "trace-secre", "trace-secret ", "TRACE-SECRET", "x".repeat(10_000)]) expect(secretEquals(given, s)).toBe(false)
  })
})
