# mailvault: a static binary (pure-Go SQLite, no cgo) on a small base.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
COPY third_party ./third_party
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -o /out/mailvault ./cmd/mailvault

FROM debian:bookworm-slim
# ca-certificates: the system roots that verify IMAP servers' certificates
# (Go reads /etc/ssl/certs/ca-certificates.crt).
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --home /data mailvault && mkdir -p /data && chown mailvault /data
COPY --from=build /out/mailvault /usr/local/bin/mailvault
USER mailvault
VOLUME /data
# The web UI and API, when the configuration's web_listen is 0.0.0.0:8080
# (docker/mailvault.yaml); the default 127.0.0.1:8080 is not reachable from
# outside the container.
EXPOSE 8080
ENV MAILVAULT_DATA=/data
ENTRYPOINT ["mailvault"]
CMD ["serve", "--config", "/etc/mailvault/mailvault.yaml"]
