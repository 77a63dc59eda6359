# A tiny S3-compatible server for compose (s3s-fs, from crates.io). No
# published image ships it. 0.15+ needs rustc >= 1.96.
ARG RUST_IMAGE=rust:1.95-slim-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

FROM ${RUST_IMAGE} AS build
ARG S3S_FS_VERSION=0.14.1
RUN cargo install s3s-fs --version "=${S3S_FS_VERSION}" --features binary --locked --root /out

FROM ${RUNTIME_IMAGE}
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10002 --home-dir /data --create-home s3 \
    && install -d -o 10002 -g 10002 /data
COPY --from=build /out/bin/s3s-fs /usr/local/bin/s3s-fs
USER 10002
EXPOSE 9000
ENTRYPOINT ["s3s-fs", "--host", "0.0.0.0", "--port", "9000"]
CMD ["/data"]
