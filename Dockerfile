# mailvault: a static binary (pure-Go SQLite, no cgo) on a small base.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
COPY third_party ./third_party
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -o /out/mailvault ./cmd/mailvault

FROM debian:bookworm-slim
RUN useradd --system --home /data mailvault && mkdir -p /data && chown mailvault /data
COPY --from=build /out/mailvault /usr/local/bin/mailvault
USER mailvault
VOLUME /data
ENV MAILVAULT_DATA=/data
ENTRYPOINT ["mailvault"]
CMD ["serve", "--config", "/etc/mailvault/mailvault.yaml"]
