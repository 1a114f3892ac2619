# The operator image: one static `haven` binary (operator, gateway and every CLI subcommand)
# on an empty base, run as UID 65532. Build with any OCI builder:
#   docker build -t ghcr.io/haven-spe/haven:0.1.0 .
# images/build.sh writes the same image without a container engine (see README, Images).
FROM rust:1.89-bookworm AS build
WORKDIR /src
COPY . .
# glibc linked in statically: the binary needs nothing from the image. The build stage runs
# on the target platform (emulated for a multi-arch build), so the target is the native one.
ARG TARGETARCH
RUN case "$TARGETARCH" in \
      amd64) target=x86_64-unknown-linux-gnu ;; \
      arm64) target=aarch64-unknown-linux-gnu ;; \
      *) echo "unsupported architecture: $TARGETARCH" >&2; exit 1 ;; \
    esac \
 && RUSTFLAGS="-C target-feature=+crt-static" cargo build --release --locked --target "$target" -p haven \
 && install -D -m 0755 "target/$target/release/haven" /out/haven \
 && install -d -m 1777 /out/tmp

FROM scratch
COPY --from=build /out/ /
USER 65532:65532
ENTRYPOINT ["/haven"]
LABEL org.opencontainers.image.source="https://github.com/haven-spe/haven" \
      org.opencontainers.image.licenses="Apache-2.0"
