/**
 * deploy/monitoring's alerting rules through Prometheus's own tools: `promtool check rules` and the unit tests of
 * `promtool test rules`, which must cover every alert. Every alert links a runbook section that exists in
 * docs/operating.md. CI installs promtool (.ci/run) and never skips; elsewhere a machine without it skips, saying so.
 */
import yaml from "js-yaml"
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { describe, expect, it } from "vitest"

const dir = path.resolve(import.meta.dirname, "..", "deploy", "monitoring")
const promtool = (() => {
  const found = spawnSync("sh", ["-c", `command -v "$0"`, process.env["PROMTOOL"] ?? "promtool"], { encoding: "utf8" })
  return found.status === 0 ? found.stdout.trim() : null
})()
if (promtool === null) {
  const message = "promtool is not installed (apt-get install -y prometheus)"
  if (process.env["CI"] === "true") throw new Error(`${message}: CI must install it (.ci/run) and run test/monitoring.promtool.test.ts`)
  console.warn(`${message}: skipping test/monitoring.promtool.test.ts`)
}
const run = (...args: Array<string>) => {
  const r = spawnSync(promtool!, args, { cwd: dir, encoding: "utf8" })
  return { status: r.status, output: `${r.stdout}${r.stderr}` }
}

interface Rule { readonly alert: string; readonly expr: string; readonly annotations: Record<string, string> }
const rules = (yaml.load(fs.readFileSync(path.join(dir, "alerts.yml"), "utf8")) as { groups: Array<{ rules: Array<Rule> }> })
  .groups.flatMap((g) => g.rules)
const tests = yaml.load(fs.readFileSync(path.join(dir, "alerts.test.yml"), "utf8")) as {
  tests: Array<{
    input_series: Array<{ series: string; values: string }>
    alert_rule_test: Array<{ alertname: string; exp_alerts: Array<unknown> }>
  }>
}

/** GitHub's heading anchors: lower case, punctuation dropped, spaces to dashes. */
const anchors = (markdown: string) =>
  new Set(markdown.split("\n").filter((l) => /^#{1,6} /.test(l)).map((l) =>
    l.replace(/^#+ /, "").trim().toLowerCase().replace(/[^\w\- ]/g, "").replace(/ /g, "-")))

describe("promtool on deploy/monitoring", () => {
  it.skipIf(promtool === null)("check rules finds the rules valid", () => {
    const r = run("check", "rules", "alerts.yml")
    expect(r.output).toContain(`SUCCESS: ${rules.length} rules found`)
    expect(r.status).toBe(0)
  })

  it.skipIf(promtool === null)("test rules passes every unit test; a broken expectation fails (so passing means something)", () => {
    const r = run("test", "rules", "alerts.test.yml")
    expect(r.output).toContain("SUCCESS")
    expect(r.status).toBe(0)
    const broken = path.join(dir, ".broken.test.yml")
    fs.writeFileSync(broken, fs.readFileSync(path.join(dir, "alerts.test.yml"), "utf8").replace("severity: page", "severity: none"))
    try {
      expect(run("test", "rules", ".broken.test.yml").status).not.toBe(0)
    } finally {
      fs.rmSync(broken)
    }
    // two runs of every unit test: 18 s on a quiet machine, past 30 s at a load average of 8
  }, 120_000)

  it("every alert has a unit test where it fires and one where it does not, and a runbook section", () => {
    const cases = tests.tests.flatMap((t) => t.alert_rule_test)
    const operating = anchors(fs.readFileSync(path.resolve(import.meta.dirname, "..", "docs", "operating.md"), "utf8"))
    expect(rules.length).toBeGreaterThanOrEqual(6)
    for (const rule of rules) {
      const mine = cases.filter((c) => c.alertname === rule.alert)
      expect(mine.some((c) => c.exp_alerts.length > 0), `${rule.alert} fires in a test`).toBe(true)
      expect(mine.some((c) => c.exp_alerts.length === 0), `${rule.alert} stays quiet in a test`).toBe(true)
      const anchor = rule.annotations.runbook?.replace(/^docs\/operating\.md#/, "")
      expect(anchor, `${rule.alert} runbook`).toBe(rule.alert.toLowerCase())
      expect(operating.has(anchor!), `docs/operating.md has a section for ${rule.alert}`).toBe(true)
    }
  })

  it("every alert is tested on its metric as a fresh process exports it: absent first, then present", () => {
    for (const rule of rules) {
      const named = new Set([...rule.expr.matchAll(/\briscv_runner_[a-z0-9_]+/g)].map((m) => m[0].replace(/_(count|bucket|sum)$/, "")))
      const fresh = tests.tests.filter((t) => t.alert_rule_test.some((c) => c.alertname === rule.alert)).some((t) =>
        t.input_series.some((i) => named.has(i.series.split("{")[0]!.replace(/_(count|bucket|sum)$/, "")) && i.values.trim().startsWith("_")))
      expect(fresh, `${rule.alert} has a test whose series of ${[...named].join(", ")} starts absent`).toBe(true)
    }
  })
})
