# venice-e2ee-proxy: multi-stage build, distroless runtime, non-root.
#
# Bases are pinned by digest (the bytes reviewed, not whatever a tag points at today); bump
# them deliberately, reading the new digest with
#   docker buildx imagetools inspect rust:1.95-bookworm
#   docker buildx imagetools inspect gcr.io/distroless/cc-debian12:nonroot
FROM rust:1.95-bookworm@sha256:6258907abe69656e41cd992e0b705cdcfabcbbe3db374f92ed2d47121282d4a1 AS build
RUN apt-get update && apt-get install -y --no-install-recommends cmake && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# Dependencies first, in a layer of their own, built against empty targets: a source change
# then rebuilds only the proxy, not its few hundred crates.
COPY Cargo.toml Cargo.lock ./
COPY tools/Cargo.toml tools/Cargo.toml
RUN mkdir -p src benches tools/src \
    && touch src/lib.rs tools/src/lib.rs \
    && echo 'fn main() {}' > src/main.rs \
    && echo 'fn main() {}' > benches/hot_path.rs \
    && echo 'fn main() {}' > tools/src/main.rs \
    && cargo build --release --locked -p venice-e2ee-proxy \
    && rm -rf src benches tools/src target/release/.fingerprint/venice-e2ee-proxy-* \
        target/release/deps/*venice_e2ee_proxy* target/release/venice-e2ee-proxy*
COPY src ./src
COPY benches ./benches
COPY conf ./conf
# The workspace's other member must be present for Cargo to read the workspace; only the
# product package is built, so the image's binary holds no simulator and no test PKI.
COPY tools ./tools
RUN cargo build --release --locked -p venice-e2ee-proxy && cp target/release/venice-e2ee-proxy /venice-e2ee-proxy

FROM gcr.io/distroless/cc-debian12:nonroot@sha256:9dac0a79194e45a7da0158a9c6da57b217585af0786db3845d1f0ec1a0dd182f
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="venice-e2ee-proxy" \
      org.opencontainers.image.description="Pingora sidecar that serves Venice.ai end-to-end-encrypted models as a plain OpenAI endpoint" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.base.name="gcr.io/distroless/cc-debian12:nonroot"
COPY --from=build /venice-e2ee-proxy /usr/local/bin/venice-e2ee-proxy
COPY conf/proxy.yaml conf/pingora.yaml /etc/venice-e2ee-proxy/
USER 65532:65532
# 8080: OpenAI-compatible API (listens on 127.0.0.1 unless configured otherwise); 9090: the
# admin listener (metrics, status, probes; 127.0.0.1 unless configured otherwise).
EXPOSE 8080 9090
ENTRYPOINT ["/usr/local/bin/venice-e2ee-proxy"]
CMD ["serve", "-c", "/etc/venice-e2ee-proxy/proxy.yaml", "--pingora-conf", "/etc/venice-e2ee-proxy/pingora.yaml"]
