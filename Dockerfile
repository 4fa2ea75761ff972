# Gantry's container image: one static binary on distroless, run as a
# non-root user, state in a volume. Build: docker build -t gantry .
# deploy/RUNNING.md shows how to run one agent or a cluster from it.

FROM golang:1.26-bookworm AS build
WORKDIR /src
# Modules first, so a source change does not download them again.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
# The deploy tests build with exactly this line and check the result is static.
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/gantry .
RUN mkdir -p /out/data

# distroless/static: CA certificates and time zones, no shell, no libc;
# "nonroot" is uid and gid 65532.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/gantry /usr/local/bin/gantry
COPY --from=build --chown=65532:65532 /out/data /var/lib/gantry
USER 65532:65532
VOLUME ["/var/lib/gantry"]
# 7400: gateway /v1, admin /admin/v1, /metrics, /healthz, /readyz. 7401: Raft.
EXPOSE 7400 7401
ENTRYPOINT ["/usr/local/bin/gantry"]
# One agent serving the configuration mounted at /etc/gantry/gantry.yaml.
# A cluster member needs --raft-addr set to an address the other agents
# reach, and --join; see deploy/RUNNING.md.
CMD ["agent", "--config", "/etc/gantry/gantry.yaml", "--data-dir", "/var/lib/gantry", "--http-addr", "0.0.0.0:7400"]
