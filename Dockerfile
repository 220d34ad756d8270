# Dockerfile - the gemma-run image for Cloud Run with an NVIDIA L4.
#
# Two stages:
#   build    nvidia/cuda:${CUDA_VERSION}-devel: compiler, CUDA toolkit, -dev packages;
#            runs `make all`, the target CI builds (`make test` = `tests` = all + test
#            binaries), with nvcc present, so build/gemma-run has the CUDA backend
#            (sm_89 SASS for the L4, sm_90 + PTX; see NVFLAGS in the Makefile).
#   runtime  nvidia/cuda:${CUDA_VERSION}-runtime (cudart, cuBLAS, cuBLASLt come with
#            it) + the four libraries the binary links: libevent (+pthreads), libcurl,
#            OpenSSL, cJSON. Non-root user. No weights: the model comes from MODEL
#            (gs://bucket/prefix or a mounted directory) at start.
#
# CUDA 12.2 matches Cloud Run's L4 driver (535.x, CUDA 12.2); a newer runtime would
# rely on minor-version compatibility and the images' NVIDIA_REQUIRE_CUDA check.
#
# Expected size (estimate, not measured: Docker is not available where this was
# written): ~3 GB uncompressed / ~1.5 GB compressed, almost all of it the CUDA
# runtime base (cuBLAS + cuBLASLt alone are ~0.7 GB); the apt packages add ~10 MB
# and gemma-run itself a few MB.
#
#   docker build -t gemma-run .      (or: gcloud builds submit --config infra/cloudbuild.yaml)
ARG CUDA_VERSION=12.2.2
ARG UBUNTU=ubuntu22.04

FROM nvidia/cuda:${CUDA_VERSION}-devel-${UBUNTU} AS build
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      build-essential pkg-config libevent-dev libcjson-dev libcurl4-openssl-dev libssl-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# Fail the image build if the CUDA backend was not linked in.
RUN make -j"$(nproc)" NVCC=/usr/local/cuda/bin/nvcc BUILD=build all \
 && ldd build/gemma-run | grep -q libcublas \
 && build/gemma-run --version

FROM nvidia/cuda:${CUDA_VERSION}-runtime-${UBUNTU}
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      libevent-2.1-7 libevent-pthreads-2.1-7 libcjson1 libcurl4 libssl3 ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 gemma \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin gemma
COPY --from=build /src/build/gemma-run /usr/local/bin/gemma-run
USER 10001:10001
# Cloud Run sets PORT (8080 in service.yaml); this default serves `docker run -p 8080:8080`.
ENV PORT=8080 LOG_FORMAT=json
EXPOSE 8080
ENTRYPOINT ["gemma-run", "serve"]
