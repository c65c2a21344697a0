import { HttpApi, OpenApi } from "@effect/platform"
import { SchedulerApi } from "../operator/Api.ts"
import { TraceApi } from "../webhook/traceApi.ts"

/**
 * The JSON routes of both programs as one description: the trace API of the webhook port
 * (`src/webhook/traceApi.ts`) and the scheduler port's usage, jobs, workers, queue and dashboard data
 * (`src/operator/Api.ts`). Each port serves its own API through `HttpApiBuilder`; this union is what
 * `/openapi.json` and `/docs` show on both.
 */
export const OperatorApi = HttpApi.make("riscv-runner")
  .addHttpApi(TraceApi)
  .addHttpApi(SchedulerApi)
  .annotate(OpenApi.Title, "riscv-runner operator API")
  .annotate(OpenApi.Version, "0.1.0")
  .annotate(OpenApi.Description, "JSON routes of the webhook (trace API) and the scheduler (usage, jobs, workers, queue).")

export const openApiSpec = OpenApi.fromApi(OperatorApi)
