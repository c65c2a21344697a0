# One build, three targets: `webhook`, `scheduler` and `all`. Each runs `src/main.ts <role>` with tsx, the same
# command as `npm run serve -- <role>`.
FROM node:20-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev && npm cache clean --force

FROM node:20-bookworm-slim AS runtime
WORKDIR /app
ENV NODE_ENV=production LOG_FORMAT=json
COPY --from=deps /app/node_modules ./node_modules
COPY package.json tsconfig.json ./
COPY src ./src
COPY layers ./layers
COPY migrations ./migrations
USER node
HEALTHCHECK --interval=10s --timeout=3s --retries=3 \
  CMD node -e "fetch('http://127.0.0.1:'+(process.env.PORT||8080)+'/health').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"

FROM runtime AS webhook
EXPOSE 8080
ENTRYPOINT ["node_modules/.bin/tsx", "src/main.ts", "webhook"]

FROM runtime AS scheduler
EXPOSE 8080
ENTRYPOINT ["node_modules/.bin/tsx", "src/main.ts", "scheduler"]

FROM runtime AS all
EXPOSE 8080 8081
ENTRYPOINT ["node_modules/.bin/tsx", "src/main.ts", "all"]
