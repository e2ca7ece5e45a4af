# hyflow in a container: a multi-stage build (Rust toolchain, then a slim Debian runtime).
#   docker build -t hyflow .
#   docker run --rm -v "$PWD/out:/opt/hyflow/out" hyflow                       # the replay demo
#   docker run --rm -v "$PWD/my.toml:/p.toml" hyflow run /p.toml -w 4           # a live pipeline
# Not checked on the project's machines (no Docker daemon there; see README "Install").
# The CUDA kernels are compiled into the binary as source and built by NVRTC at run time:
# for a GPU, run on an image that has libcuda (the NVIDIA container runtime mounts it) and
# libnvrtc.so.12 (e.g. FROM nvidia/cuda:12.8.1-runtime-ubuntu24.04 as the runtime stage, with
# the build stage on the same distribution). Without them hyflow runs on the CPU and says so.

FROM rust:1.88-slim-bookworm AS build
# librdkafka and OpenSSL are built from source by their crates: a C/C++ compiler, make, perl.
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential perl make \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --locked \
 && strip target/release/hyflow

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/hyflow /usr/local/bin/hyflow
COPY pipelines /opt/hyflow/pipelines
COPY fixtures /opt/hyflow/fixtures
WORKDIR /opt/hyflow
ENTRYPOINT ["hyflow"]
CMD ["replay", "pipelines/manufacturing.toml"]
