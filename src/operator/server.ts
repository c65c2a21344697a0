import { HttpServer } from "@effect/platform"
import { schedulerRouter } from "./routes.ts"

/** Serves the scheduler's operator routes on the HttpServer the caller provides. */
export const SchedulerServer = HttpServer.serve(schedulerRouter)
