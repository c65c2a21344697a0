import { describe, expect, it } from "@effect/vitest"
import { Effect, Option, Ref, Schema } from "effect"
import { defaultRunnerConfigInput, RunnerConfig } from "../src/domain/RunnerConfig.ts"
import { request as httpRequest } from "node:http"
import {
  APP_ID,
  type Backend,
  githubSignature,
  memoryBackend,
  postgresBackend,
  TEST_TRACE_SECRET,
  TEST_WEBHOOK_SECRET,
  type WebhookHarness,
  withWebhook
} from "./support/webhookHarness.ts"
import {
  ACME,
  ALICE,
  installation,
  installationRepositories,
  installationTargetRenamed,
  RISC_LABEL,
  workflowJob
} from "./support/webhookPayloads.ts"

/*
 * The webhook program through its real HTTP server: every status code and every outcome of POST /, on the
 * in-memory Db and on PostgreSQL. The rows are observed at the Db boundary (every successful
 * addInstallationEvent), so "nothing written" means no write reached the store.
 */

const outcomes = (h: WebhookHarness) => Effect.map(h.rows, (rows) => rows.map((r) => r.outcome))

/** Sends a raw request with node:http, for headers fetch will not let a test set (a lying Content-Length). */
const rawPost = (baseUrl: string, headers: Record<string, string>, write: (req: ReturnType<typeof httpRequest>) => void) =>
  Effect.promise(() =>
    new Promise<{ status: number; text: string }>((resolve, reject) => {
      const url = new URL(baseUrl)
      const req = httpRequest({ host: url.hostname, port: url.port, method: "POST", path: "/", headers }, (res) => {
        let text = ""
        res.setEncoding("utf8")
        res.on("data", (d) => (text += d))
        res.on("end", () => resolve({ status: res.statusCode ?? 0, text }))
      })
      req.on("error", reject)
      write(req)
    })
  )

const cases = (backend: Backend) => {
  const test = (title: string, body: (h: WebhookHarness) => Effect.Effect<void, unknown>, options?: Parameters<typeof withWebhook>[2]) =>
    it.live(title, () => withWebhook(backend, body, options))

  describe("reading and verifying: a delivery that fails verification writes nothing", () => {
    test("GET /health answers ok", (h) =>
      Effect.gen(function*() {
        const res = yield* h.request("/health")
        expect([res.status, res.text]).toEqual([200, "ok"])
      }))

    test("a missing X-GitHub-Event is 400", (h) =>
      Effect.gen(function*() {
        const res = yield* h.deliver(null, { zen: "hi" })
        expect([res.status, res.text]).toEqual([400, "Missing X-Github-Event header"])
        expect(res.headers.get("content-type")).toBe("text/plain; charset=utf-8")
        expect(yield* h.rows).toEqual([])
      }))

    test("a missing signature is 401", (h) =>
      Effect.gen(function*() {
        const res = yield* h.deliver("ping", { zen: "hi" }, { signature: null })
        expect([res.status, res.text]).toEqual([401, "X-Hub-Signature-256 header is missing!"])
        expect(yield* h.rows).toEqual([])
      }))

    test("a wrong signature is 401: another secret, another body, a malformed header, sha1", (h) =>
      Effect.gen(function*() {
        const job = workflowJob()
        for (
          const options of [
            { secret: "not-the-secret" },
            { signature: "sha256=" + "0".repeat(64) },
            { signature: "sha256=zz" },
            { signature: "sha1=0123456789abcdef0123456789abcdef01234567" },
            { signature: "" }
          ]
        ) {
          const res = yield* h.deliver("workflow_job", job, options)
          expect(res.status).toBe(401)
        }
        // signed for one body, sent with another
        const { sign } = yield* Effect.promise(() => import("@octokit/webhooks-methods"))
        const signature = yield* Effect.promise(() => sign(TEST_WEBHOOK_SECRET, JSON.stringify({ other: true })))
        const res = yield* h.deliver("workflow_job", job, { signature })
        expect([res.status, res.text]).toEqual([401, "Request signatures didn't match!"])
        expect(yield* h.rows).toEqual([])
        expect(Option.isNone(yield* h.db.getJob(9001))).toBe(true)
      }))

    test("a missing or non-integer app id header is 400", (h) =>
      Effect.gen(function*() {
        expect((yield* h.deliver("ping", { zen: "hi" }, { appId: null })).status).toBe(400)
        for (const appId of ["abc", "1.5", "12x", "99999999999999999999"]) {
          const res = yield* h.deliver("ping", { zen: "hi" }, { appId })
          expect([res.status, res.text]).toEqual([400, "Invalid X-GitHub-Hook-Installation-Target-Id header"])
        }
        expect(yield* h.rows).toEqual([])
      }))

    test("invalid JSON, or JSON that is not an object, is 400", (h) =>
      Effect.gen(function*() {
        for (const body of ["{not json", "[1,2]", "null", "\"text\"", ""]) {
          const res = yield* h.deliver("ping", body)
          expect([res.status, res.text]).toEqual([400, "Invalid JSON payload"])
        }
        const form = yield* h.deliver("ping", "", { contentType: "application/x-www-form-urlencoded" })
        expect(form.status).toBe(400)
        expect(yield* h.rows).toEqual([])
      }))

    test("a body over the limit is 413, whether its length is declared or streamed", (h) =>
      Effect.gen(function*() {
        const limit = 64 * 1024
        const big = Buffer.alloc(limit + 1, 0x20)
        const declared = yield* rawPost(h.baseUrl, { "content-length": String(limit * 1000), "x-github-event": "ping" }, (req) => {
          // only a little is sent: the answer must not wait for a body it refuses by its declared length
          req.write(big.subarray(0, 1024))
          req.on("response", () => req.destroy())
        }).pipe(Effect.catchAllDefect(() => Effect.succeed({ status: -1, text: "" })))
        expect(declared.status).toBe(413)
        const streamed = yield* rawPost(h.baseUrl, { "transfer-encoding": "chunked", "x-github-event": "ping" }, (req) => {
          for (let i = 0; i < 4; i++) req.write(big.subarray(0, limit / 2))
          req.end()
        })
        expect(streamed).toEqual({ status: 413, text: `Payload too large: the limit is ${limit} bytes` })
        // just under the limit is read and judged on its merits (here: unsigned)
        const under = yield* rawPost(h.baseUrl, { "content-length": String(limit), "x-github-event": "ping" }, (req) => req.end(big.subarray(0, limit)))
        expect(under.status).toBe(401)
        expect(yield* h.rows).toEqual([])
      }), { settings: { maxBodyBytes: 64 * 1024 } })

    test("a large body within the limit is streamed and accepted, whatever its chunking", (h) =>
      Effect.gen(function*() {
        // 600 KiB: above the size read in one piece, well below GitHub's 25 MiB
        const p = { zen: "big", filler: "x".repeat(600 * 1024) }
        const res = yield* h.deliver("ping", p)
        expect([res.status, res.text]).toEqual([200, "pong"])
        expect(((yield* h.rows)[0]!.payload as { filler: string }).filler).toHaveLength(600 * 1024)
        // and a small chunked body (no declared length) is read from the stream too
        const ping = Buffer.from(JSON.stringify({ zen: "streamed" }))
        const chunked = yield* rawPost(h.baseUrl, {
          "transfer-encoding": "chunked",
          "x-github-event": "ping",
          "x-github-hook-installation-target-id": String(APP_ID),
          "x-hub-signature-256": githubSignature(TEST_WEBHOOK_SECRET, ping)
        }, (req) => {
          req.write(ping.subarray(0, 5))
          req.end(ping.subarray(5))
        })
        expect(chunked).toEqual({ status: 200, text: "pong" })
        expect((yield* h.rows)[1]?.payload).toEqual({ zen: "streamed" })
      }))
  })

  describe("events", () => {
    test("ping answers pong and writes one row with the app id and the delivery id", (h) =>
      Effect.gen(function*() {
        const res = yield* h.deliver("ping", { zen: "Keep it logically awesome.", hook_id: 1 }, { deliveryId: "d-ping-1" })
        expect([res.status, res.text]).toEqual([200, "pong"])
        const rows = yield* h.rows
        expect(rows).toHaveLength(1)
        expect(rows[0]).toMatchObject({
          source: "webhook",
          event: "ping",
          outcome: "ok",
          app_id: APP_ID,
          delivery_id: "d-ping-1",
          entity_id: null,
          entity_type: null,
          installation_id: null,
          payload: { zen: "Keep it logically awesome.", hook_id: 1 }
        })
      }))

    test("GitHub's form encoding (payload=<json>) is accepted and verified on the raw form body", (h) =>
      Effect.gen(function*() {
        const res = yield* h.deliver("ping", { zen: "form & = +" }, { form: true })
        expect([res.status, res.text]).toEqual([200, "pong"])
        expect((yield* h.rows)[0]?.payload).toEqual({ zen: "form & = +" })
      }))

    test("installation.* rows carry the account as the entity; missing parts are 400", (h) =>
      Effect.gen(function*() {
        const created = yield* h.deliver("installation", installation({ action: "created", installationId: 55, account: ALICE }))
        expect([created.status, created.text]).toEqual([200, "installation.created logged"])
        const added = yield* h.deliver("installation_repositories", installationRepositories({ action: "added", installationId: 55, account: ALICE, added: ["alice/x"] }))
        expect([added.status, added.text]).toEqual([200, "installation_repositories.added logged"])
        const noAction = installation({ action: "created" })
        delete noAction.action
        expect((yield* h.deliver("installation", noAction)).text).toBe("installation. logged")

        const noInstallation = installation({ action: "created" })
        delete noInstallation.installation
        const r1 = yield* h.deliver("installation", noInstallation)
        expect([r1.status, r1.text]).toEqual([400, "Missing installation in payload"])
        const noAccount = installation({ action: "created" })
        delete noAccount.installation.account
        const r2 = yield* h.deliver("installation_repositories", noAccount)
        expect([r2.status, r2.text]).toEqual([400, "Missing installation.account in payload"])

        const rows = yield* h.rows
        expect(rows.map((r) => r.event)).toEqual(["installation.created", "installation_repositories.added", "installation."])
        expect(rows[0]).toMatchObject({ outcome: "ok", installation_id: 55, entity_id: ALICE.id, entity_type: "User", entity_name: "alice", app_id: APP_ID })
        expect(rows[1]).toMatchObject({ installation_id: 55, entity_id: ALICE.id, entity_type: "User", entity_name: "alice" })
      }))

    test("an Enterprise account is logged with no entity type rather than failing the insert", (h) =>
      Effect.gen(function*() {
        const p = installation({ action: "created", account: { login: "bigcorp", id: 9, type: "Enterprise" } })
        const res = yield* h.deliver("installation", p)
        expect(res.status).toBe(200)
        expect((yield* h.rows)[0]).toMatchObject({ entity_type: null, entity_id: 9, entity_name: "bigcorp" })
      }))

    test("installation_target.renamed carries the new login; missing parts are 400", (h) =>
      Effect.gen(function*() {
        const res = yield* h.deliver("installation_target", installationTargetRenamed("acme-old", ACME, 777))
        expect([res.status, res.text]).toEqual([200, "installation_target.renamed logged"])
        expect((yield* h.rows)[0]).toMatchObject({
          event: "installation_target.renamed",
          outcome: "ok",
          entity_type: "Organization",
          entity_id: ACME.id,
          entity_name: "acme",
          installation_id: 777
        })
        for (const key of ["account", "installation"]) {
          const p = installationTargetRenamed("a", ACME)
          delete p[key]
          const bad = yield* h.deliver("installation_target", p)
          expect([bad.status, bad.text]).toEqual([400, "Missing account or installation in payload"])
        }
        expect(yield* h.rows).toHaveLength(1)
      }))

    test("any other event is logged as ignored_event with its full body", (h) =>
      Effect.gen(function*() {
        const res = yield* h.deliver("star", { action: "created", starred_at: "2026-01-01T00:00:00Z" })
        expect([res.status, res.text]).toEqual([200, "Ignoring star event"])
        expect((yield* h.rows)[0]).toMatchObject({ event: "star", outcome: "ignored_event", payload: { action: "created" } })
      }))
  })

  describe("workflow_job", () => {
    test("payload checks are 400 and write nothing", (h) =>
      Effect.gen(function*() {
        const cases: Array<[(p: Record<string, any>) => void, string, string?]> = [
          [(p) => delete p.repository, "Missing repository/installation/workflow_job in payload"],
          [(p) => delete p.installation, "Missing repository/installation/workflow_job in payload"],
          [(p) => (p.workflow_job = "x"), "Missing repository/installation/workflow_job in payload"],
          [(p) => delete p.repository.owner, "Missing repository.owner in payload"],
          [(p) => (p.repository.owner.id = 0), "Owner ID is missing in payload"],
          [(p) => (p.repository.owner.type = "Bot"), "unsupported entity type: \"Bot\""],
          [(p) => (p.workflow_job.id = 0), "Job ID is missing in payload"],
          [(p) => (p.repository.full_name = ""), "Repository full name is missing in payload"],
          [(p) => delete p.repository.id, "Repository ID is missing in payload"],
          [(p) => (p.installation.id = 0), "Installation ID is missing in payload"],
          [(p) => (p.repository.owner.login = ""), "Entity name is missing in payload"],
          [(p) => (p.workflow_job.html_url = ""), "HTML URL is missing in payload"]
        ]
        for (const [spoil, message] of cases) {
          const p = workflowJob()
          spoil(p)
          const res = yield* h.deliver("workflow_job", p)
          expect([res.status, res.text]).toEqual([400, message])
        }
        expect(yield* h.rows).toEqual([])
        expect(yield* h.db.getActiveJobs).toEqual([])
      }))

    test("other actions are ignored_action, with the trimmed payload", (h) =>
      Effect.gen(function*() {
        const res = yield* h.deliver("workflow_job", workflowJob({ action: "waiting" }))
        expect([res.status, res.text]).toEqual([200, "Ignoring action: waiting"])
        const [row] = yield* h.rows
        expect(row).toMatchObject({ event: "workflow_job.waiting", outcome: "ignored_action", entity_id: ACME.id, installation_id: 777 })
        expect((row!.payload as any).workflow_job.steps).toBeUndefined()
        expect((row!.payload as any).workflow_job.html_url).toContain("/job/9001")
      }))

    test("a banned entity's or sender's deliveries: 200 with a text that says so, logged ignored_banned, nothing stored", (h) =>
      Effect.gen(function*() {
        const res = yield* h.deliver("workflow_job", workflowJob({ jobId: 7001 }))
        expect([res.status, res.text]).toEqual([200, "Ignored: entity acme is banned."])
        const done = yield* h.deliver("workflow_job", workflowJob({ jobId: 7001, action: "completed" }))
        expect([done.status, done.text]).toEqual([200, "Ignored: entity acme is banned."])
        // a sender banned by login (any case) or by id, whatever the entity
        const bySender = (sender: { login: string; id: number }, jobId: number) => {
          const p = workflowJob({ owner: ALICE, jobId })
          p.sender = { ...p.sender, ...sender }
          return h.deliver("workflow_job", p)
        }
        expect((yield* bySender({ login: "Mallory", id: 5 }, 7002)).text).toBe("Ignored: sender Mallory is banned.")
        expect((yield* bySender({ login: "someone", id: 666 }, 7003)).text).toBe("Ignored: sender someone is banned.")
        // someone else, for another entity, is served as usual
        const fine = yield* bySender({ login: "friend", id: 7 }, 7004)
        expect([fine.status, fine.text]).toEqual([200, "Job 7004 stored."])
        expect((yield* h.rows).map((r) => r.outcome)).toEqual(["job_stored"])
        for (const id of [7001, 7002, 7003]) expect(Option.isNone(yield* h.db.getJob(id))).toBe(true)
        const logs = (yield* h.logs).filter((l) => l.includes("ignored_banned"))
        expect(logs).toHaveLength(4)
      }), {
      settings: {
        runnerConfig: Schema.decodeUnknownSync(RunnerConfig)({
          ...defaultRunnerConfigInput,
          entities: { ...defaultRunnerConfigInput.entities, [ACME.id]: { name: "acme", banned: true } },
          bannedSenders: ["mallory", 666]
        })
      }
    })

    test("labels no rule accepts are ignored_no_label, with the minimal payload", (h) =>
      Effect.gen(function*() {
        for (const labels of [["ubuntu-latest"], [RISC_LABEL, "self-hosted"], ["ubuntu-26.04-riscv"], [], null, [7, RISC_LABEL, "gpu"]]) {
          const res = yield* h.deliver("workflow_job", workflowJob({ labels }))
          expect([res.status, res.text]).toEqual([200, "Ignoring job: missing required platform label"])
        }
        const rows = yield* h.rows
        expect(rows.every((r) => r.outcome === "ignored_no_label")).toBe(true)
        expect(rows[0]!.payload).toEqual({
          workflow_job: { id: 9001, labels: ["ubuntu-latest"], html_url: "https://github.com/acme/ci/actions/runs/1/job/9001" },
          repository: { full_name: "acme/ci" }
        })
        expect(yield* h.db.getActiveJobs).toEqual([])
      }))

    test("non-string labels are dropped before matching", (h) =>
      Effect.gen(function*() {
        const res = yield* h.deliver("workflow_job", workflowJob({ labels: [RISC_LABEL, 7, null, { x: 1 }] }))
        expect([res.status, res.text]).toEqual([200, "Job 9001 stored."])
      }))

    test("queued stores a pending job once; the row has the trimmed payload", (h) =>
      Effect.gen(function*() {
        const first = yield* h.deliver("workflow_job", workflowJob())
        expect([first.status, first.text]).toEqual([200, "Job 9001 stored."])
        const again = yield* h.deliver("workflow_job", workflowJob())
        expect([again.status, again.text]).toEqual([200, "Job 9001 already exists."])
        expect(yield* outcomes(h)).toEqual(["job_stored", "job_already_exists"])
        const job = Option.getOrThrow(yield* h.db.getJob(9001))
        expect(job).toMatchObject({
          status: "pending",
          provider: "github",
          entity_id: ACME.id,
          entity_name: "acme",
          entity_type: "Organization",
          repo_full_name: "acme/ci",
          installation_id: 777,
          job_labels: [RISC_LABEL],
          k8s_pool: "scw-em-rv1",
          k8s_image: "riscv-runner:ubuntu-24.04-staging",
          k8s_pod: null,
          html_url: "https://github.com/acme/ci/actions/runs/1/job/9001"
        })
        const row = (yield* h.rows)[0]!
        expect(row).toMatchObject({ event: "workflow_job.queued", entity_id: ACME.id, entity_type: "Organization", entity_name: "acme", installation_id: 777 })
        const payload = row.payload as any
        expect(payload.repository.owner.avatar_url).toBeUndefined()
        expect(payload.repository.issues_url).toBeUndefined()
        expect(payload.sender.followers_url).toBeUndefined()
        expect(payload.workflow_job.run_url).toBeUndefined()
        expect(payload.workflow_job.steps).toBeUndefined()
        expect(payload.repository.full_name).toBe("acme/ci")
        expect(payload.repository.owner.login).toBe("acme")
        expect(payload.workflow_job.labels).toEqual([RISC_LABEL])
      }))

    test("personal accounts: the entity is the owner's account id, never the repository", (h) =>
      Effect.gen(function*() {
        yield* h.deliver("workflow_job", workflowJob({ owner: ALICE, repoId: 1234 }))
        const job = Option.getOrThrow(yield* h.db.getJob(9001))
        expect([job.entity_id, job.entity_type, job.entity_name]).toEqual([ALICE.id, "User", "alice"])
      }))

    test("scoped rules: ggml-org's jobs go to their own pool", (h) =>
      Effect.gen(function*() {
        yield* h.deliver("workflow_job", workflowJob({ owner: { login: "ggml-org", id: 134263123, type: "Organization" } }))
        expect(Option.getOrThrow(yield* h.db.getJob(9001)).k8s_pool).toBe("cloudv10x-jupiter")
      }))

    test("in_progress and completed move the job forward and record the runner", (h) =>
      Effect.gen(function*() {
        yield* h.deliver("workflow_job", workflowJob())
        const running = yield* h.deliver("workflow_job", workflowJob({ action: "in_progress", runnerName: "runner-a" }))
        expect([running.status, running.text]).toEqual([200, "Job 9001 marked running (was pending)."])
        const done = yield* h.deliver("workflow_job", workflowJob({ action: "completed", runnerName: "runner-a" }))
        expect([done.status, done.text]).toEqual([200, "Job 9001 completed (was running)."])
        // late and repeated news: the status does not move back, and the outcome says what it was
        const late = yield* h.deliver("workflow_job", workflowJob({ action: "in_progress", runnerName: "runner-b" }))
        expect(late.text).toBe("Job 9001 marked running (was completed).")
        const twice = yield* h.deliver("workflow_job", workflowJob({ action: "completed", runnerName: "runner-b" }))
        expect(twice.text).toBe("Job 9001 completed (was completed).")
        expect(yield* outcomes(h)).toEqual(["job_stored", "job_marked_running", "job_marked_completed", "job_marked_running", "job_marked_completed"])
        const job = Option.getOrThrow(yield* h.db.getJob(9001))
        expect([job.status, job.k8s_pod]).toEqual(["completed", "runner-a"])
      }))

    test("news of an unknown job with everything a job needs stores it and moves it in one step", (h) =>
      Effect.gen(function*() {
        const res = yield* h.deliver("workflow_job", workflowJob({ action: "in_progress", runnerName: "runner-a" }))
        expect([res.status, res.text]).toEqual([200, "Job 9001 was not stored yet; stored it and marked it running."])
        const late = yield* h.deliver("workflow_job", workflowJob())
        expect(late.text).toBe("Job 9001 already exists.")
        expect(yield* outcomes(h)).toEqual(["job_marked_running", "job_already_exists"])
        const job = Option.getOrThrow(yield* h.db.getJob(9001))
        expect([job.status, job.k8s_pod]).toEqual(["running", "runner-a"])
      }))

    test("news of an unknown job that lacks what a job row needs is job_not_found", (h) =>
      Effect.gen(function*() {
        const running = yield* h.deliver("workflow_job", workflowJob({ action: "in_progress", htmlUrl: "" }))
        expect([running.status, running.text]).toEqual([200, "Job 9001 not found."])
        const p = workflowJob({ action: "completed" })
        p.installation.id = 0
        const done = yield* h.deliver("workflow_job", p)
        expect([done.status, done.text]).toEqual([200, "Job 9001 not found."])
        expect(yield* outcomes(h)).toEqual(["job_not_found", "job_not_found"])
        expect(Option.isNone(yield* h.db.getJob(9001))).toBe(true)
      }))

    test("a failed job stays failed when late news arrives", (h) =>
      Effect.gen(function*() {
        yield* h.deliver("workflow_job", workflowJob())
        yield* h.db.markJobFailed(9001, { version: 1, message: "installation not found" })
        const res = yield* h.deliver("workflow_job", workflowJob({ action: "completed" }))
        expect(res.text).toBe("Job 9001 completed (was failed).")
        expect(Option.getOrThrow(yield* h.db.getJob(9001)).status).toBe("failed")
      }))
  })

  describe("audit-log guarantee", () => {
    test("a failed event write of a queued delivery answers 500 and stores no job either; the re-delivery stores both", (h) =>
      Effect.gen(function*() {
        yield* Ref.set(h.faults.failEventWrites, true)
        const res = yield* h.deliver("workflow_job", workflowJob(), { deliveryId: "d-1" })
        expect([res.status, res.text]).toEqual([500, "internal error"])
        expect(yield* h.rows).toEqual([])
        expect(Option.isNone(yield* h.db.getJob(9001))).toBe(true)
        yield* Ref.set(h.faults.failEventWrites, false)
        const again = yield* h.deliver("workflow_job", workflowJob(), { deliveryId: "d-1" })
        expect([again.status, again.text]).toEqual([200, "Job 9001 stored."])
        expect((yield* h.rows).map((r) => [r.outcome, r.delivery_id])).toEqual([["job_stored", "d-1"]])
        expect(Option.getOrThrow(yield* h.db.getJob(9001)).status).toBe("pending")
      }))

    test("a failed event write for any event is a 500", (h) =>
      Effect.gen(function*() {
        yield* Ref.set(h.faults.failEventWrites, true)
        for (const [event, body] of [["ping", { zen: "x" }], ["installation", installation({ action: "created" })], ["push", {}]] as const) {
          expect((yield* h.deliver(event, body)).status).toBe(500)
        }
      }))

    test("a failed job write answers 500 and writes no row", (h) =>
      Effect.gen(function*() {
        yield* Ref.set(h.faults.failJobWrites, true)
        for (const action of ["queued", "in_progress", "completed"]) {
          const res = yield* h.deliver("workflow_job", workflowJob({ action }))
          expect([res.status, res.text]).toEqual([500, "internal error"])
        }
        expect(yield* h.rows).toEqual([])
      }))
  })

  describe("secrets", () => {
    test("neither secret appears in a row, a response or a job", (h) =>
      Effect.gen(function*() {
        const bodies: Array<string> = []
        bodies.push((yield* h.deliver("workflow_job", workflowJob())).text)
        bodies.push((yield* h.deliver("ping", { zen: "x" }, { secret: "wrong" })).text)
        bodies.push((yield* h.request("/trace/entity/424242", { headers: { authorization: `Bearer ${TEST_TRACE_SECRET}` } })).text)
        bodies.push((yield* h.request("/trace/entity/424242", { headers: { authorization: "Bearer nope" } })).text)
        yield* Ref.set(h.faults.failEventWrites, true)
        bodies.push((yield* h.deliver("workflow_job", workflowJob({ action: "completed" }))).text)
        const logs = yield* h.logs
        expect(logs.some((l) => l.includes("level=ERROR"))).toBe(true)
        const everything = JSON.stringify([yield* h.rows, bodies, yield* h.db.getActiveJobs, logs])
        expect(everything).not.toContain(TEST_WEBHOOK_SECRET)
        expect(everything).not.toContain(TEST_TRACE_SECRET)
      }))
  })

  describe("logs", () => {
    test("one log line per label-matched delivery, none for the rest; rejections at WARN, failures at ERROR", (h) =>
      Effect.gen(function*() {
        yield* h.deliver("workflow_job", workflowJob())
        yield* h.deliver("workflow_job", workflowJob({ labels: ["ubuntu-latest"] }))
        yield* h.deliver("ping", { zen: "x" })
        yield* h.deliver("ping", { zen: "x" }, { signature: null })
        yield* h.request("/health")
        const logs = yield* h.logs
        // one line per label-matched delivery, written when it is answered: the job, the status and the time
        const access = logs.filter((l) => l.includes("Received workflow_job"))
        expect(access).toHaveLength(1)
        expect(access[0]).toMatch(/status=200/)
        expect(access[0]).toMatch(/elapsed_ms=\d+/)
        expect(access[0]).toMatch(/job_id=\d+/)
        expect(access[0]).toMatch(/entity=\S+/)
        expect(logs.filter((l) => l.includes("level=WARN") && l.includes("status=401"))).toHaveLength(1)
        expect(logs.filter((l) => l.includes("level=ERROR"))).toEqual([])
      }))
  })
}

describe("webhook on memory", () => cases(memoryBackend))

const pg = postgresBackend("webhook")
describe("webhook on postgres", () => {
  cases(pg)

  it.live("the audit row reaches PostgreSQL with its delivery id, and a real failed insert is a 500 that writes nothing and re-delivery heals", () =>
    withWebhook(pg, (h) =>
      Effect.gen(function*() {
        yield* h.deliver("workflow_job", workflowJob(), { deliveryId: "d-pg-1" })
        const rows = yield* Effect.promise(() => pg.sql!<{ event: string; outcome: string; delivery_id: string; entity_type: string }>(
          "SELECT event, outcome, delivery_id, entity_type::text FROM staging.installation_events"
        ))
        expect(rows).toEqual([{ event: "workflow_job.queued", outcome: "job_stored", delivery_id: "d-pg-1", entity_type: "Organization" }])

        // The log table refuses writes for a moment: the move and its row are one statement, so neither is
        // stored, and the answer is 500.
        yield* Effect.promise(() => pg.sql!("ALTER TABLE staging.installation_events RENAME TO installation_events_away"))
        const failed = yield* h.deliver("workflow_job", workflowJob({ action: "in_progress", runnerName: "r1" }), { deliveryId: "d-pg-2" })
        yield* Effect.promise(() => pg.sql!("ALTER TABLE staging.installation_events_away RENAME TO installation_events"))
        expect(failed.status).toBe(500)
        expect(Option.getOrThrow(yield* h.db.getJob(9001)).status).toBe("pending")
        const again = yield* h.deliver("workflow_job", workflowJob({ action: "in_progress", runnerName: "r1" }), { deliveryId: "d-pg-2" })
        expect([again.status, again.text]).toEqual([200, "Job 9001 marked running (was pending)."])
        const all = yield* Effect.promise(() => pg.sql!<{ outcome: string; delivery_id: string }>(
          "SELECT outcome, delivery_id FROM staging.installation_events ORDER BY id"
        ))
        expect(all).toEqual([{ outcome: "job_stored", delivery_id: "d-pg-1" }, { outcome: "job_marked_running", delivery_id: "d-pg-2" }])
      })))

  it.live("a queued delivery whose audit row PostgreSQL refuses leaves no job row: both or neither", () =>
    withWebhook(pg, (h) =>
      Effect.gen(function*() {
        yield* Effect.promise(() => pg.sql!("ALTER TABLE staging.installation_events RENAME TO installation_events_away"))
        const failed = yield* h.deliver("workflow_job", workflowJob(), { deliveryId: "d-pg-q" })
        yield* Effect.promise(() => pg.sql!("ALTER TABLE staging.installation_events_away RENAME TO installation_events"))
        expect(failed.status).toBe(500)
        expect(yield* Effect.promise(() => pg.sql!("SELECT job_id FROM staging.jobs"))).toEqual([])
        const again = yield* h.deliver("workflow_job", workflowJob(), { deliveryId: "d-pg-q" })
        expect([again.status, again.text]).toEqual([200, "Job 9001 stored."])
        const rows = yield* Effect.promise(() => pg.sql!<{ outcome: string; job_id: string }>(
          "SELECT e.outcome, j.job_id::text AS job_id FROM staging.installation_events e, staging.jobs j"
        ))
        expect(rows).toEqual([{ outcome: "job_stored", job_id: "9001" }])
      })))

  it.live("a NUL character or a lone surrogate in a signed body is stored, not refused forever", () =>
    withWebhook(pg, (h) =>
      Effect.gen(function*() {
        const body = "{\"zen\":\"a\\u0000b\\ud800c\",\"\\u0000key\":1}"
        const res = yield* h.deliver("ping", body)
        expect(res.status).toBe(200)
        const [row] = yield* Effect.promise(() => pg.sql!<{ payload: unknown }>("SELECT payload FROM staging.installation_events"))
        expect(row!.payload).toEqual({ zen: "a\uFFFDb\uFFFDc", "\uFFFDkey": 1 })
      })))
})
