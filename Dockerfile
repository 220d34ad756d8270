# Dockerfile - the gemma-run image for Cloud Run GPUs (NVIDIA L4 and RTX PRO 6000).
#
# Two stages, both Debian 12 (bookworm), the distribution CI builds and tests on, so
# what CI compiles is what ships (docs/DEPLOY.md "The image"):
#   build    debian:12 + Debian's -dev packages + NVIDIA's CUDA 12.9 apt packages
#            (nvcc, cudart, cuBLAS); runs `make all` (the target CI builds) with nvcc,
#            so build/gemma-run has the CUDA backend with SASS for sm_89 (L4), sm_90
#            and sm_120 (RTX PRO 6000 Blackwell) and PTX for sm_120 (Makefile: GR_SM).
#            The build fails if cuBLAS is not linked or an architecture is missing.
#   runtime  debian:12-slim + cudart, cuBLAS, cuBLASLt (NVIDIA's runtime packages, not
#            the CUDA runtime image) + the four libraries the binary links: libevent
#            (+pthreads), libcurl, OpenSSL, cJSON. Non-root user. No weights: the model
#            comes from MODEL (gs://bucket/prefix or a mounted directory) at start.
#
# CUDA 12.x runs on driver >= 525 by minor-version compatibility (L4 on Cloud Run: 535,
# CUDA 12.2) and on newer drivers by backward compatibility (RTX PRO 6000: 580, CUDA
# 13.0). Every GPU gets SASS, so no PTX has to be JIT-compiled by the older driver.
#
# Size (estimated from the packages' installed sizes, docs/DEPLOY.md "The image"):
# ~0.7-1.0 GB uncompressed, cuBLAS + cuBLASLt 0.6-0.9 GB of it.
#
# The lines between "# apt: debian" markers are replayed in a Debian 12 chroot by
# `make test-image` (tests/infra/image_rehearsal.sh), which then builds with CUDA=0.
#
#   docker build -t gemma-run .      (or: gcloud builds submit --config infra/cloudbuild.yaml)
ARG DEBIAN=bookworm
ARG CUDA_MAJOR=12
ARG CUDA_MINOR=9

FROM debian:${DEBIAN} AS build
ARG CUDA_MAJOR
ARG CUDA_MINOR
ENV DEBIAN_FRONTEND=noninteractive
# apt: debian build
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      build-essential pkg-config libevent-dev libcjson-dev libcurl4-openssl-dev libssl-dev \
      ca-certificates \
 && rm -rf /var/lib/apt/lists/*
# apt: end
ADD https://developer.download.nvidia.com/compute/cuda/repos/debian12/x86_64/cuda-keyring_1.1-1_all.deb /tmp/cuda-keyring.deb
RUN dpkg -i /tmp/cuda-keyring.deb \
 && apt-get update \
 && apt-get install -y --no-install-recommends \
      cuda-nvcc-${CUDA_MAJOR}-${CUDA_MINOR} cuda-cuobjdump-${CUDA_MAJOR}-${CUDA_MINOR} \
      cuda-cudart-dev-${CUDA_MAJOR}-${CUDA_MINOR} \
      libcublas-dev-${CUDA_MAJOR}-${CUDA_MINOR} \
 && rm -rf /var/lib/apt/lists/* /tmp/cuda-keyring.deb \
 && cd /usr/local/cuda-${CUDA_MAJOR}.${CUDA_MINOR} \
 && { [ -e lib64 ] || ln -s targets/x86_64-linux/lib lib64; } \
 && { [ -e include ] || ln -s targets/x86_64-linux/include include; }
WORKDIR /src
COPY . .
# Fail the image build if the CUDA backend was not linked in or lacks an architecture.
# (The Makefile links with -L$CUDA_HOME/lib64 and includes $CUDA_HOME/include: the
# symlinks above exist in NVIDIA's images; made here in case the packages lack them.)
RUN make -j"$(nproc)" NVCC=/usr/local/cuda-${CUDA_MAJOR}.${CUDA_MINOR}/bin/nvcc BUILD=build all \
 && ldd build/gemma-run | grep -q libcublas \
 && elf="$(/usr/local/cuda-${CUDA_MAJOR}.${CUDA_MINOR}/bin/cuobjdump --list-elf build/gemma-run)" \
 && for sm in sm_89 sm_90 sm_120; do echo "$elf" | grep -q "\.$sm\." || { echo "no $sm SASS" >&2; exit 1; }; done \
 && build/gemma-run --version

FROM debian:${DEBIAN}-slim
ARG CUDA_MAJOR
ARG CUDA_MINOR
ENV DEBIAN_FRONTEND=noninteractive
# apt: debian runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      libevent-2.1-7 libevent-pthreads-2.1-7 libcjson1 libcurl4 libssl3 ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 gemma \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin gemma
# apt: end
ADD https://developer.download.nvidia.com/compute/cuda/repos/debian12/x86_64/cuda-keyring_1.1-1_all.deb /tmp/cuda-keyring.deb
RUN dpkg -i /tmp/cuda-keyring.deb \
 && apt-get update \
 && apt-get install -y --no-install-recommends \
      cuda-cudart-${CUDA_MAJOR}-${CUDA_MINOR} libcublas-${CUDA_MAJOR}-${CUDA_MINOR} \
 && rm -rf /var/lib/apt/lists/* /tmp/cuda-keyring.deb \
 && echo /usr/local/cuda-${CUDA_MAJOR}.${CUDA_MINOR}/targets/x86_64-linux/lib >/etc/ld.so.conf.d/gemma-run-cuda.conf \
 && ldconfig
COPY --from=build /src/build/gemma-run /usr/local/bin/gemma-run
# Every library the binary links resolves in this stage (libcuda.so.1 is not linked:
# cudart loads it at run time from the driver the platform mounts).
RUN ! ldd /usr/local/bin/gemma-run | grep 'not found' && gemma-run --version
# The driver's libraries (libcuda.so.1, libnvidia-ml.so.1) come from the host: the
# NVIDIA container runtime injects them, on GKE-style hosts under /usr/local/nvidia
# (the nvidia/cuda images set the same LD_LIBRARY_PATH). NVIDIA_* ask a runtime that
# honours them for the compute libraries.
ENV LD_LIBRARY_PATH=/usr/local/nvidia/lib:/usr/local/nvidia/lib64 \
    NVIDIA_VISIBLE_DEVICES=all NVIDIA_DRIVER_CAPABILITIES=compute,utility
USER 10001:10001
# Cloud Run sets PORT (8080 in service.yaml); this default serves `docker run -p 8080:8080`.
ENV PORT=8080 LOG_FORMAT=json
EXPOSE 8080
ENTRYPOINT ["gemma-run", "serve"]
