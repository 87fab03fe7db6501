#!/bin/bash
# Builds the host stand-in for the NVIDIA libraries (tools/cuda-standin: cuda_standin.cpp, cudnn_standin.cpp) into
# FOLDER: one shared library per real soname, linked as the real ones are (cuBLAS needs cublasLt by soname, without a
# path to it), and an nvidia-smi that says what it is. The stand-in NVRTC compiles kernels with the C++ compiler found here (its
# path is built in). Usage: tools/cuda-standin/build.sh FOLDER
set -euo pipefail
out=${1:?usage: tools/cuda-standin/build.sh FOLDER}
here=$(cd "$(dirname "$0")" && pwd)
cxx=$(command -v g++ || command -v clang++ || true)
[ -n "$cxx" ] || { echo "cuda-standin: no C++ compiler (g++ or clang++)" >&2; exit 2; }
mkdir -p "$out"
build() {  # soname, source, section, extra link arguments
  local soname=$1 source=$here/$2 section=$3
  shift 3
  "$cxx" -std=c++20 -O3 -shared -fPIC -fvisibility=hidden -D"$section" -DSTANDIN_CXX="\"$cxx\"" \
    -Wl,-soname,"$soname" -o "$out/$soname.tmp" "$source" "$@"
  mv "$out/$soname.tmp" "$out/$soname"
}
build libcudart.so.13 cuda_standin.cpp STANDIN_CUDART
build libcuda.so.1 cuda_standin.cpp STANDIN_DRIVER -ldl
build libnvrtc.so.13 cuda_standin.cpp STANDIN_NVRTC -ldl
build libnvrtc-builtins.so.13.0-standin cuda_standin.cpp STANDIN_NVRTC_BUILTINS
build libcublasLt.so.13 cuda_standin.cpp STANDIN_CUBLASLT
build libcublas.so.13 cuda_standin.cpp STANDIN_CUBLAS -L"$out" -l:libcublasLt.so.13
build libcudnn.so.9 cudnn_standin.cpp STANDIN_CUDNN
cat > "$out/nvidia-smi" <<'SMI'
#!/bin/sh
echo "name, driver_version, memory.total [MiB]"
echo "ste host stand-in (CUDA 13 API on the CPU), stand-in, 0 MiB"
SMI
chmod +x "$out/nvidia-smi"
echo "cuda-standin: $(ls "$out" | tr '\n' ' ')in $out"
