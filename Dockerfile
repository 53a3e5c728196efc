# syntax=docker/dockerfile:1
# Latchkey in a container. The same layout as the systemd service: code read-only and owned
# by root, state in one volume owned by the unprivileged user that runs the daemon.
#
#   docker build -t latchkey .
#   docker run -d --name latchkey --env-file latchkey.env -p 127.0.0.1:3000:3000 \
#     -v latchkey-data:/data latchkey
#
# Settings come only from the environment at run time (--env-file): no secret is baked in.
ARG NODE_VERSION=24

# ---- build: compile TypeScript with the dev dependencies --------------------------------
FROM node:${NODE_VERSION}-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json tsconfig.json tsconfig.build.json ./
COPY src ./src
# npm ci runs the "prepare" script, which compiles src/ into dist/.
RUN npm ci --no-audit --no-fund

# ---- runtime: production dependencies and compiled output only ---------------------------
FROM node:${NODE_VERSION}-bookworm-slim
LABEL org.opencontainers.image.title="Latchkey" \
      org.opencontainers.image.description="OAuth 2.1 authorization server for MCP connectors" \
      org.opencontainers.image.licenses="MIT"
# HOST=0.0.0.0: inside the container the port is only reachable as published; publish it on
# 127.0.0.1 of the host (see above) when cloudflared runs on the host.
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=3000 \
    OAUTH_DATA_DIR=/data
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: "prepare" needs TypeScript, a dev dependency; dist/ comes from the build stage.
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist
COPY views ./views
COPY public ./public
# `latchkey doctor|backup|stats|hash-pin` inside the container: docker exec latchkey latchkey doctor
RUN printf '#!/bin/sh\nexec node /app/dist/cli.js "$@"\n' > /usr/local/bin/latchkey \
 && chmod 0755 /usr/local/bin/latchkey \
 && mkdir -p /data && chown node:node /data && chmod 0700 /data
# The "node" user of the official image (uid 1000); the code above stays root-owned and read-only.
USER node
VOLUME ["/data"]
EXPOSE 3000
# /healthz answers 200 only while the store can write to /data.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||3000)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# The daemon drains on SIGTERM (finishes requests in flight, flushes the store, exits 0) and
# gives up after 10 s: give `docker stop` more than that, e.g. docker stop -t 15.
STOPSIGNAL SIGTERM
# A 32 MiB young generation: fewer garbage collections per request (see docs/benchmarks.md).
CMD ["node", "--max-semi-space-size=32", "dist/index.js"]
