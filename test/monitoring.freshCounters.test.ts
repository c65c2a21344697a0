/**
 * The counters the alerts take `increase()` or `rate()` of, as a freshly started process exports them: the bundled
 * entrypoint as `all --simulate` (both programs, their real exposition on both ports), scraped before anything has
 * happened. Each series of a known label set must already be there at 0: a series that appears only at its first
 * event is born at 1, and neither function counts that first step (deploy/monitoring/alerts.test.yml holds the
 * rules' tests on series of this shape).
 */
import { describe, expect, it } from "vitest"
import { FailureReason } from "../src/domain/FailureInfo.ts"
import { processSuite, startSimulated } from "./support/processSuite.ts"

const suite = processSuite()

/** Every sample of an exposition text: `name{labels}` (labels as rendered) -> value. */
const samples = (text: string) =>
  new Map(text.split("\n").filter((l) => l !== "" && !l.startsWith("#")).map((l) => {
    const cut = l.lastIndexOf(" ")
    return [l.slice(0, cut), Number(l.slice(cut + 1))] as const
  }))

describe("a fresh process's /metrics", () => {
  it("has every alerting counter of a known label set at 0, on both ports", async () => {
    const { child, webhook, scheduler } = await startSimulated(suite, "monitoring_fresh", { SIM_SPEED: "100" })

    const expected = [
      ...["webhook", "scheduler"].flatMap((server) =>
        ["1xx", "2xx", "3xx", "4xx", "5xx"].map((code) => `riscv_runner_http_responses_total{code="${code}",server="${server}"}`)),
      "riscv_runner_webhook_signature_failures_total",
      ...["org", "personal"].flatMap((app) =>
        ["failed", "requested"].map((result) => `riscv_runner_redeliveries_total{app="${app}",result="${result}"}`)),
      `riscv_runner_orphan_pods_deleted_total{reason="no_row"}`,
      `riscv_runner_orphan_pods_deleted_total{reason="row_finished"}`,
      "riscv_runner_jobs_discovered_total",
      ...[...FailureReason.literals, "other"].map((reason) => `riscv_runner_worker_failures_total{reason="${reason}"}`)
    ]
    // the first scrape of each port: nothing has happened but start-up (whose health checks are 2xx answers)
    for (const url of [`${webhook}/metrics`, `${scheduler}/metrics`]) {
      const response = await fetch(url)
      expect(response.status).toBe(200)
      const exported = samples(await response.text())
      for (const series of expected) {
        if (series.includes(`code="2xx"`)) expect(exported.has(series), `${url}: ${series}`).toBe(true)
        else expect(exported.get(series), `${url}: ${series}`).toBe(0)
      }
    }
    expect(await child.stop()).toBe(0)
  }, 120_000)
})
