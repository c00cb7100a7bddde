# syntax=docker/dockerfile:1
#
# Tally's container images. Two targets, both static binaries on distroless (CA
# certificates, /tmp, tzdata, the "nonroot" user 65532, and nothing else — no shell):
#
#   docker build --target tally     --build-arg VERSION=$(git describe --tags --always) -t tally .
#   docker build --target dhis2-sim --build-arg VERSION=$(git describe --tags --always) -t tally-dhis2-sim .
#
# "docker build ." without --target builds tally (the last stage).
#
# There is deliberately no HEALTHCHECK: Kubernetes probes /healthz (liveness) and /readyz
# (readiness) itself (see charts/tally), and with docker compose a health check would need a
# shell or curl that the image does not have. Probe http://HOST:8080/healthz from outside.
#
# Tally runs as 65532:65532 with a read-only root filesystem in Kubernetes; the only places
# it writes are /tmp (payload spool) and /var/lib/tally (the embedded JetStream store, when
# nats.url is empty): mount volumes there.

ARG GO_VERSION=1.26

# ---- module download, shared by both binaries -------------------------------------------
FROM --platform=$BUILDPLATFORM golang:${GO_VERSION}-bookworm AS deps
WORKDIR /src
ENV CGO_ENABLED=0 GOFLAGS=-mod=readonly
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .

# ---- tally --------------------------------------------------------------------------------
FROM deps AS build-tally
ARG TARGETOS TARGETARCH
ARG VERSION=dev
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    GOOS=$TARGETOS GOARCH=$TARGETARCH CGO_ENABLED=0 \
    go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/tally ./cmd/tally \
 && mkdir -p /out/var/lib/tally /out/etc/tally

# ---- dhis2-sim ----------------------------------------------------------------------------
FROM deps AS build-dhis2-sim
ARG TARGETOS TARGETARCH
ARG VERSION=dev
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    GOOS=$TARGETOS GOARCH=$TARGETARCH CGO_ENABLED=0 \
    go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/dhis2-sim ./cmd/dhis2-sim

# ---- the DHIS2 emulator image ---------------------------------------------------------------
FROM gcr.io/distroless/static-debian12:nonroot AS dhis2-sim
ARG VERSION=dev
LABEL org.opencontainers.image.title="dhis2-sim" \
      org.opencontainers.image.description="A stand-alone DHIS2 emulator loaded with Tally's Kalima sample, for demos and manual tests" \
      org.opencontainers.image.source="https://github.com/tally-hmis/tally" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}"
COPY --from=build-dhis2-sim /out/dhis2-sim /usr/local/bin/dhis2-sim
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/dhis2-sim"]
CMD ["--addr", "0.0.0.0:8080"]

# ---- the Tally image (default target) -------------------------------------------------------
FROM gcr.io/distroless/static-debian12:nonroot AS tally
ARG VERSION=dev
LABEL org.opencontainers.image.title="tally" \
      org.opencontainers.image.description="Tally moves aggregate health data (CHT, DHIS2 data value sets, ADX) into DHIS2, durably" \
      org.opencontainers.image.source="https://github.com/tally-hmis/tally" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}"
COPY --from=build-tally /out/tally /usr/local/bin/tally
# Writable, owned by the runtime user: the embedded JetStream store lives here (mount a volume).
COPY --from=build-tally --chown=65532:65532 /out/var/lib/tally /var/lib/tally
COPY --from=build-tally /out/etc/tally /etc/tally
WORKDIR /var/lib/tally
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/tally"]
# Mount the configuration at /etc/tally/tally.yaml (set http.addr to 0.0.0.0:8080 in it).
CMD ["serve", "--config", "/etc/tally/tally.yaml"]
