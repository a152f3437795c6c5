#!/usr/bin/env bash
# The viewer's frame times on a lent GPU machine (the `device` tool), in one call.
#
#   scripts/gpu_viewer_bench.sh prepare   # here: build, strip and pack bench_viewer into .devrun/,
#                                         # and fetch the Vulkan/GL loader packages into .gl/
#   device run: command "bash scripts/gpu_viewer_bench.sh run", carry [".devrun", ".gl"]
#
# libtorch (1.2 GB) cannot travel with the call. bench_viewer never calls torch, but the linker kept a
# few libtorch symbols (static initialisers of the C++ wrapper), so `prepare` builds stand-in
# libtorch_cpu.so/libc10.so that define exactly those symbols and abort if one is ever called.
# Results: $OUT/viewer.jsonl (one JSON object per bench_viewer run), $OUT/gpu.txt, $OUT/stderr.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
case "${1:-}" in
prepare)
  target="${CARGO_TARGET_DIR:-target}"
  cargo build --release --example bench_viewer
  mkdir -p .devrun .gl
  exclude="$(git rev-parse --git-dir)/info/exclude"
  for d in /.devrun/ /.gl/; do grep -qx "$d" "$exclude" 2>/dev/null || echo "$d" >>"$exclude"; done
  strip -o .devrun/bench_viewer "$target/release/examples/bench_viewer"
  {
    echo '#include <stdlib.h>'
    i=0
    for s in $(nm -D --undefined-only .devrun/bench_viewer | awk '{print $2}' | grep -v '@' | grep -E '^_ZN?K?(3c10|5torch|2at)'); do
      i=$((i + 1))
      if [[ "$s" == *_singletonE ]]; then # a data symbol (c10::UndefinedTensorImpl::_singleton)
        echo "char d$i[256] __asm__(\"$s\");"
      else
        echo "void f$i(void) __asm__(\"$s\"); void f$i(void) { abort(); }"
      fi
    done
  } >.devrun/torch_stub.c
  gcc -shared -fPIC -o .devrun/libtorch_cpu.so .devrun/torch_stub.c
  gcc -shared -fPIC -o .devrun/libc10.so -x c /dev/null
  xz -f -T2 .devrun/bench_viewer
  mkdir -p /tmp/amd64/partial
  o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64'
  # shellcheck disable=SC2086
  apt-get $o update >/dev/null && (cd .gl && apt-get $o download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2)
  du -sh .devrun .gl
  ;;
run)
  for f in .gl/*.deb; do dpkg -x "$f" /; done
  ldconfig
  nvidia-smi --query-gpu=name,driver_version --format=csv | tee "$OUT/gpu.txt"
  icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
  if [ -f "$icd" ]; then
    export VK_DRIVER_FILES="$icd" __EGL_VENDOR_LIBRARY_FILENAMES=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
  fi
  xz -dc .devrun/bench_viewer.xz >/tmp/bench_viewer && chmod +x /tmp/bench_viewer
  export LD_LIBRARY_PATH="$PWD/.devrun" WGPU_BACKEND=vulkan
  b() { echo "== $*"; timeout 150 /tmp/bench_viewer "$@" 2>>"$OUT/stderr.txt" | tee -a "$OUT/viewer.jsonl" || echo "failed: $*"; }
  b --frames 5 --live-frames 240 --cells 5,11,23 --size 1280x800
  b --frames 3 --live-frames 240 --cells 23 --size 1920x1080
  b --frames 3 --live-frames 240 --cells 23 --size 1280x800 --no-bonds
  b --frames 2 --live-frames 120 --cells 30 --size 1920x1080
  ;;
*)
  echo "usage: $0 prepare|run" >&2
  exit 2
  ;;
esac
