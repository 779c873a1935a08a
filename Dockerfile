# venice-e2ee-proxy: multi-stage build, distroless runtime, non-root.
FROM rust:1.95-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends cmake && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY benches ./benches
COPY conf ./conf
# The workspace's other member must be present for Cargo to read the workspace; only the
# product package is built, so the image's binary holds no simulator and no test PKI.
COPY tools ./tools
RUN cargo build --release --locked -p venice-e2ee-proxy && cp target/release/venice-e2ee-proxy /venice-e2ee-proxy

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /venice-e2ee-proxy /usr/local/bin/venice-e2ee-proxy
COPY conf/proxy.yaml conf/pingora.yaml /etc/venice-e2ee-proxy/
USER 65532:65532
# 8080: OpenAI-compatible API (listens on 127.0.0.1 unless configured otherwise); 9090: the
# admin listener (metrics, status, probes; 127.0.0.1 unless configured otherwise).
EXPOSE 8080 9090
ENTRYPOINT ["/usr/local/bin/venice-e2ee-proxy"]
CMD ["serve", "-c", "/etc/venice-e2ee-proxy/proxy.yaml", "--pingora-conf", "/etc/venice-e2ee-proxy/pingora.yaml"]
