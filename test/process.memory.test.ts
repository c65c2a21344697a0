/**
 * The webhook's memory under hostile and heavy clients, measured on the process as the container runs it (the
 * bundled entrypoint as a child process, on real PostgreSQL): fifty unsigned clients that trickle their bodies
 * must be cut off at the request deadline with a 408, while one legitimate signed delivery of GitHub's largest
 * size is stored, and the child's resident memory must stay under the memory limit of the webhook's manifest.
 */
import * as fs from "node:fs"
import * as net from "node:net"
import * as path from "node:path"
import Pg from "pg"
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest"
import { type Bundle, buildBundle, freePort, type Running, startEntrypoint, waitForHttp } from "./support/entrypoint.ts"
import { databaseUrl, query } from "./support/postgres.ts"
import { githubSignature, TEST_WEBHOOK_SECRET } from "./support/webhookHarness.ts"
import { workflowJob } from "./support/webhookPayloads.ts"

const MiB = 1024 * 1024
const SLOW_CLIENTS = 50
/**
 * Each slow client declares this much and sends three quarters of it at once, then a byte every 200 ms. Fifty of
 * them reserve 37.5 MiB of the 64 MiB budget for unverified bodies, which leaves just room for the signed 25 MiB
 * delivery: the worst case of one legitimate large delivery while the budget is all but spent.
 */
const SLOW_DECLARED = 768 * 1024
/**
 * The request deadline the child runs with. The signed 25 MiB delivery must arrive within it while the slow clients
 * are cut off by it; at 3 s, a CI run at a load average of 7-9 saw the upload itself overrun the deadline (the
 * server answered 408 mid-body and the client's write failed with EPIPE), so it leaves room for a loaded machine.
 */
const DEADLINE_SECONDS = 8

/** The memory limit of the webhook container in the Kubernetes manifest, in bytes. */
const manifestLimitBytes = (): number => {
  const yaml = fs.readFileSync(path.resolve(import.meta.dirname, "../deploy/kubernetes/webhook.yaml"), "utf8")
  const match = /limits:\s*\{\s*memory:\s*(\d+)Mi\s*\}/.exec(yaml)
  if (match === null) throw new Error("webhook.yaml has no `limits: { memory: <n>Mi }`")
  return Number(match[1]) * MiB
}

/** VmRSS and VmHWM of a process, in bytes. */
const memoryOf = (pid: number): { rss: number; hwm: number } => {
  const status = fs.readFileSync(`/proc/${pid}/status`, "utf8")
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? NaN) * 1024
  return { rss: kb("VmRSS"), hwm: kb("VmHWM") }
}

interface SlowResult {
  readonly answer: string
  readonly closedAfterMs: number
}

/** A client that declares a body it never finishes sending; resolves with what the server wrote and when it closed. */
const slowClient = (port: number): Promise<SlowResult> =>
  new Promise((resolve, reject) => {
    const started = Date.now()
    const socket = net.connect(port, "127.0.0.1")
    let answer = ""
    let trickle: NodeJS.Timeout | undefined
    socket.on("connect", () => {
      socket.write(
        `POST / HTTP/1.1\r\nHost: webhook\r\nContent-Type: application/json\r\nX-GitHub-Event: workflow_job\r\n` +
          `Content-Length: ${SLOW_DECLARED}\r\n\r\n`
      )
      socket.write(Buffer.alloc((SLOW_DECLARED / 4) * 3, "a"))
      trickle = setInterval(() => {
        if (socket.writable) socket.write("a")
      }, 200)
    })
    socket.setEncoding("latin1")
    socket.on("data", (d: string) => (answer += d))
    socket.on("error", () => undefined)
    socket.on("close", () => {
      clearInterval(trickle)
      resolve({ answer, closedAfterMs: Date.now() - started })
    })
    setTimeout(() => {
      socket.destroy()
      reject(new Error(`a slow client was still connected after 40 s; it had read ${JSON.stringify(answer)}`))
    }, 40_000)
  })

/** A signed, valid `workflow_job` queued delivery padded to exactly `size` bytes with a kept field. */
const paddedDelivery = (size: number): Buffer => {
  const payload = workflowJob({ jobId: 25_000_001 })
  // one character outside Latin-1 makes the decoded text a two-byte string, the costly case
  payload.workflow_job.name = "build ✓"
  payload.workflow_job.padding = ""
  const bare = Buffer.byteLength(JSON.stringify(payload))
  payload.workflow_job.padding = "x".repeat(size - bare)
  const body = Buffer.from(JSON.stringify(payload))
  if (body.length !== size) throw new Error(`padded to ${body.length}, not ${size}`)
  return body
}

const post = async (port: number, body: Buffer, event = "workflow_job") => {
  const response = await fetch(`http://127.0.0.1:${port}/`, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      "x-github-event": event,
      "x-hub-signature-256": githubSignature(TEST_WEBHOOK_SECRET, body),
      "x-github-hook-installation-target-id": "2167633",
      "x-github-delivery": `mem-${Math.random().toString(36).slice(2)}`
    },
    body
  })
  return { status: response.status, text: await response.text() }
}

describe("the webhook process under slow clients and a 25 MiB delivery", () => {
  let bundle: Bundle
  let webhook: Running | undefined
  let port = 0
  let dbUrl = ""
  const dbName = `t_process_memory_${Math.random().toString(36).slice(2, 10)}`
  const admin = () => new Pg.Client({ connectionString: inject("postgresUrl") })

  beforeAll(async () => {
    const c = admin()
    await c.connect()
    await c.query(`CREATE DATABASE ${dbName}`)
    await c.end()
    dbUrl = databaseUrl(dbName)
    bundle = buildBundle()
    const env = { POSTGRES_URL: dbUrl, GHAPP_WEBHOOK_SECRET: TEST_WEBHOOK_SECRET, LOG_FORMAT: "json" }
    const migrate = startEntrypoint(bundle, ["migrate"], env)
    expect(await migrate.exited).toBe(0)
    port = await freePort()
    webhook = startEntrypoint(bundle, ["webhook"], {
      ...env,
      PORT: String(port),
      WEBHOOK_REQUEST_TIMEOUT: `${DEADLINE_SECONDS} seconds`,
      // e.g. `--max-old-space-size=288` to run the child with the heap limit Node picks inside the container's
      // cgroup; unset, the heap may grow lazily, which measures the higher (more cautious) resident figure
      NODE_OPTIONS: process.env.MEMORY_TEST_NODE_OPTIONS
    })
    await waitForHttp(`http://127.0.0.1:${port}/health`)
  }, 120_000)

  afterAll(async () => {
    await webhook?.stop()
    bundle?.remove()
    const c = admin()
    await c.connect()
    await c.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`)
    await c.end()
  })

  it("answers the slow clients 408 at the deadline, stores the signed one, and stays under the manifest's limit", async () => {
    const pid = webhook!.child.pid!
    const limit = manifestLimitBytes()
    // warm up the code paths (and the database pool) with one small delivery, then read the idle figure
    expect((await post(port, Buffer.from(JSON.stringify(workflowJob({ jobId: 25_000_000 }))))).status).toBe(200)
    await new Promise((r) => setTimeout(r, 500))
    const idle = memoryOf(pid)

    let peak = idle.rss
    const sampler = setInterval(() => {
      try {
        peak = Math.max(peak, memoryOf(pid).rss)
      } catch {
        // the process ended; the test fails elsewhere
      }
    }, 20)
    try {
      const slow = Array.from({ length: SLOW_CLIENTS }, () => slowClient(port))
      await new Promise((r) => setTimeout(r, 300))
      const signed = await post(port, paddedDelivery(25 * MiB))
      expect(signed).toEqual({ status: 200, text: "Job 25000001 stored." })

      const results = await Promise.all(slow)
      for (const r of results) {
        expect(r.answer).toMatch(/^HTTP\/1\.1 408 /)
        // cut off at the deadline, not before, and long before Node's default of 300 s (the server checks its
        // connections every 750 ms here; parsing and storing the 25 MiB delivery may hold the event loop for a
        // few seconds on a loaded machine)
        expect(r.closedAfterMs).toBeGreaterThanOrEqual(DEADLINE_SECONDS * 1000 - 100)
        expect(r.closedAfterMs).toBeLessThan((DEADLINE_SECONDS + 12) * 1000)
      }
    } finally {
      clearInterval(sampler)
    }
    const after = memoryOf(pid)
    const hwm = Math.max(after.hwm, peak)
    console.log(
      `webhook RSS: idle ${(idle.rss / MiB).toFixed(0)} MiB, peak ${(peak / MiB).toFixed(0)} MiB ` +
        `(VmHWM ${(after.hwm / MiB).toFixed(0)} MiB), ${((hwm - idle.rss) / MiB).toFixed(0)} MiB above idle; ` +
        `limit ${(limit / MiB).toFixed(0)} MiB; ${SLOW_CLIENTS} slow clients + one signed 25 MiB delivery`
    )
    expect(hwm).toBeLessThan(limit)
    const rows = await query<{ n: string }>(dbUrl, "SELECT count(*)::text AS n FROM staging.jobs WHERE job_id = 25000001")
    expect(rows[0]!.n).toBe("1")
  }, 120_000)
})
