/**
 * Two scheduler replicas as production runs them: the bundled entrypoint twice (`node dist/src/main.mjs
 * scheduler`), on one real PostgreSQL, against the local GitHub and Kubernetes stubs. The active one is killed
 * with SIGKILL in the middle of a burst of provisioning. The standby must take the scheduler lock at once, every
 * runner pod must have a worker row (or be removed) within a cycle, no board may be booked twice, and each pod's
 * row must be visible to other connections by the time the API server makes the pod.
 */
import { Context, Effect, Layer, Redacted, Scope } from "effect"
import { createServer, type IncomingHttpHeaders } from "node:http"
import type { AddressInfo } from "node:net"
import Pg from "pg"
import { describe, expect, it } from "vitest"
import { DbPostgres } from "../layers/db/postgres.ts"
import { Db } from "../src/services/Db.ts"
import { newJob } from "./support/dbFixtures.ts"
import { freePort, type Running, startEntrypoint, waitForHttp } from "./support/entrypoint.ts"
import { processSuite } from "./support/processSuite.ts"
import { githubTestKeys } from "../bench/support/githubKeys.ts"
import { startGithubStub } from "../bench/support/githubStub.ts"
import { githubWorldFromStub } from "./support/githubStubWorld.ts"
import { addStubNode, KubeStub, KubeStubLive } from "../bench/support/kubeStub.ts"
import { freshDatabase } from "./support/postgres.ts"

const ORG_APP = 2167633
const PERSONAL_APP = 3131217
const SLOTS = 16
const JOBS = 30
/** the API server answers a pod creation this much later: provisioning takes a while, and a kill lands inside it */
const CREATE_DELAY_MS = 150

const suite = processSuite({ stopGraceMs: 2000 })
const { scope, children } = suite

const inScope = <A, E>(effect: Effect.Effect<A, E, Scope.Scope>) => Effect.runPromise(Scope.extend(effect, scope))

/** An HTTP proxy in front of the kube stub that holds each POST (a pod creation) for `delayMs`. */
const delayingProxy = (target: string, delayMs: number) =>
  new Promise<{ url: string; close: () => void }>((resolve) => {
    const strip = (h: IncomingHttpHeaders) => {
      const out: Record<string, string> = {}
      for (const [k, v] of Object.entries(h)) if (v !== undefined && !["host", "connection", "content-length"].includes(k)) out[k] = String(v)
      return out
    }
    const server = createServer((req, res) => {
      const chunks: Array<Buffer> = []
      req.on("data", (c: Buffer) => chunks.push(c))
      req.on("end", () => {
        setTimeout(async () => {
          try {
            const answer = await fetch(target + (req.url ?? "/"), {
              method: req.method ?? "GET",
              headers: strip(req.headers),
              ...(req.method === "GET" || req.method === "HEAD" ? {} : { body: Buffer.concat(chunks) })
            })
            const headers: Record<string, string> = {}
            answer.headers.forEach((v, k) => {
              if (!["content-encoding", "transfer-encoding", "content-length", "connection"].includes(k)) headers[k] = v
            })
            const body = Buffer.from(await answer.arrayBuffer())
            res.writeHead(answer.status, headers)
            res.end(body)
          } catch {
            res.destroy()
          }
        }, req.method === "POST" ? delayMs : 0)
      })
    })
    server.listen(0, "127.0.0.1", () =>
      resolve({
        url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
        close: () => {
          server.closeAllConnections()
          server.close()
        }
      }))
  })

const isJsonWith = (test: (o: Record<string, unknown>) => boolean) => (line: string) => {
  try {
    const value: unknown = JSON.parse(line)
    return typeof value === "object" && value !== null && test(value as Record<string, unknown>)
  } catch {
    return false
  }
}
const provisionedLines = (r: Running) => r.stdout.filter(isJsonWith((o) => o.message === "runner provisioned")).length
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const until = async (check: () => Promise<boolean> | boolean, timeoutMs: number, what: string) => {
  const deadline = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(25)
  }
}

describe("two scheduler processes on one PostgreSQL", () => {
  it("SIGKILL of the active one mid-burst: the standby takes over, every pod has its row, no board is booked twice", async () => {
    const database = await inScope(freshDatabase("proc_schedulers"))
    const migrated = startEntrypoint(suite.bundle(), ["migrate"], { POSTGRES_URL: database.url })
    children.push(migrated)
    expect(await migrated.exited).toBe(0)

    // --- the stubs ---------------------------------------------------------------------------------------------
    const keys = githubTestKeys()
    const github = await inScope(startGithubStub([
      { appId: ORG_APP, serves: "Organization", publicKey: keys.org.publicKey },
      { appId: PERSONAL_APP, serves: "User", publicKey: keys.personal.publicKey }
    ]))
    await Effect.runPromise(
      githubWorldFromStub(github.state, []).addInstallation({ id: 5001, account: { login: "acme", type: "Organization", id: 1001 } } as never)
    )
    const kube = Context.get(await inScope(Layer.build(KubeStubLive)), KubeStub)
    addStubNode(kube, "board-1", "scw-em-rv1", SLOTS)
    const proxy = await delayingProxy(kube.url, CREATE_DELAY_MS)
    const kubeconfig = kube.kubeconfig.replace(kube.url, proxy.url)

    // --- when the API server makes a pod, is its worker row visible to another connection? ----------------------
    const observer = new Pg.Pool({ connectionString: database.url, max: 4 })
    const rowVisible = async (name: string) =>
      (await observer.query("SELECT 1 FROM staging.workers WHERE pod_name = $1", [name])).rowCount === 1
    const visibility: Array<{ pod: string; atCreation: boolean; lateMs: number }> = []
    const checks: Array<Promise<void>> = []
    const originalSet = kube.pods.set.bind(kube.pods)
    kube.pods.set = (key: string, pod: Record<string, any>) => {
      if (!kube.pods.has(key)) {
        const name = String(pod.metadata?.name ?? key)
        const createdAt = Date.now()
        checks.push((async () => {
          const atCreation = await rowVisible(name)
          let lateMs = 0
          if (!atCreation) {
            while (!(await rowVisible(name)) && Date.now() - createdAt < 10_000) await sleep(20)
            lateMs = Date.now() - createdAt
          }
          visibility.push({ pod: name, atCreation, lateMs })
        })())
      }
      return originalSet(key, pod)
    }

    // --- two replicas --------------------------------------------------------------------------------------------
    const start = async (label: string) => {
      const port = await freePort()
      const child = startEntrypoint(suite.bundle(), ["scheduler"], {
        POSTGRES_URL: database.url,
        PORT: String(port),
        GHAPP_ORG_PRIVATE_KEY: keys.org.privateKeyPem,
        GHAPP_PERSONAL_PRIVATE_KEY: keys.personal.privateKeyPem,
        GITHUB_API_URL: github.url,
        K8S_KUBECONFIG: kubeconfig,
        SCHEDULER_POLL_INTERVAL: "1 second",
        SCHEDULER_ORPHAN_POD_GRACE: "3 seconds"
      })
      children.push(child)
      await child.waitForLine(isJsonWith((o) => o.message === "scheduler loop started"), 60_000)
      await waitForHttp(`http://127.0.0.1:${port}/health`)
      return { label, child }
    }
    const replicas = [await start("a"), await start("b")]

    // --- the burst ------------------------------------------------------------------------------------------------
    const db = Context.get(await inScope(Layer.build(DbPostgres({ url: Redacted.make(database.url), schema: "staging" }))), Db)
    for (let i = 1; i <= JOBS; i++) await Effect.runPromise(db.addJob(newJob(i)))

    // the replica that provisions is the active one: kill it after a few runners, in the middle of the burst
    let victim: (typeof replicas)[number] | undefined
    await until(() => {
      victim = replicas.find((r) => provisionedLines(r.child) >= 4)
      return victim !== undefined
    }, 60_000, "a replica to provision 4 runners")
    const survivor = replicas.find((r) => r !== victim)!
    const holder = async () =>
      (await observer.query<{ pid: number }>("SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted")).rows.map((r) => r.pid)
    const holdersBefore = await holder()
    const podsAtKill = kube.pods.size
    victim!.child.child.kill("SIGKILL")
    const killedAt = Date.now()
    expect(await victim!.child.exited).toBe("SIGKILL")
    // PostgreSQL frees the dead one's lock as soon as it sees its connection close; the standby takes it at once
    // when it was waiting for it, or at its next wake-up (the burst's end below shows it did)
    await until(async () => !(await holder()).some((pid) => holdersBefore.includes(pid)), 15_000, "the dead replica's lock to be freed")
    const takeoverMs = Date.now() - killedAt
    const survivorBefore = provisionedLines(survivor.child)

    // --- the survivor finishes the burst: every slot taken, no more ------------------------------------------------
    await until(() => kube.pods.size >= SLOTS, 60_000, `${SLOTS} pods`)
    const filledMs = Date.now() - killedAt
    // one more cycle (the poll interval is 1 s) after the grace of the sweep
    await sleep(4000)
    await Promise.all(checks)

    const podNames = [...kube.pods.values()].map((p) => String(p.metadata.name))
    const rows = (await observer.query<{ pod_name: string; status: string }>("SELECT pod_name, status::text AS status FROM staging.workers")).rows
    const rowByPod = new Map(rows.map((r) => [r.pod_name, r.status]))
    const active = rows.filter((r) => r.status === "pending" || r.status === "running").map((r) => r.pod_name).sort()
    // every runner pod has a worker row, and it is an active one
    expect(podNames.filter((n) => !rowByPod.has(n))).toEqual([])
    expect(podNames.filter((n) => rowByPod.get(n) !== "pending" && rowByPod.get(n) !== "running")).toEqual([])
    // no board booked twice: no more pods than slots, and every active row has its pod
    expect(podNames.length).toBe(SLOTS)
    expect(active).toEqual([...podNames].sort())
    // every pod's row was visible to another connection when the API server made the pod (or within 1 s)
    expect(visibility.length).toBeGreaterThanOrEqual(SLOTS)
    expect(visibility.filter((v) => !v.atCreation && v.lateMs > 1000)).toEqual([])
    const late = visibility.filter((v) => !v.atCreation)
    // a pod of the dead replica whose row the survivor ended (the pod arrived after the takeover) is swept
    const ended = rows.filter((r) => r.status === "completed").length
    expect(github.state.violations).toEqual([])
    console.log(
      `two schedulers: killed ${victim!.label} after ${podsAtKill} pods; standby took the lock ${takeoverMs} ms after SIGKILL, ` +
        `provisioned ${provisionedLines(survivor.child) - survivorBefore} more, all ${SLOTS} slots filled ${filledMs} ms after the kill; ` +
        `rows visible at pod creation: ${visibility.length - late.length}/${visibility.length} (late: ${late.map((v) => `${v.lateMs} ms`).join(", ") || "none"}); ` +
        `${ended} reserved row(s) ended without a pod`
    )
    await observer.end()
    proxy.close()
  }, 180_000)
})
