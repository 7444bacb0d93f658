#!/usr/bin/env bash
# Creates .venv/ in the repo root and installs the pinned stack (requirements/constraints.txt).
#
# mmcv 2.1.0 has no wheel with compiled ops on PyPI, so it is built from the sdist against the
# installed torch. The built wheel is cached outside the clone, in a folder keyed by the torch
# version and the build flavour (cpu, or the CUDA toolkit and GPU arch), so reinstalls and CI
# runs skip the 10-20 minute build and a wheel built against another torch is never reused.
#
# Environment: PYTHON (interpreter for the venv, default python3), PERCEPTION_MTL_CACHE (wheel
# cache, default $XDG_CACHE_HOME/perception_mtl), MMCV_CUDA=0|1 (force the mmcv flavour).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
VENV="$ROOT/.venv"
REQ="$ROOT/requirements"
CONSTRAINTS="$REQ/constraints.txt"
CACHE=${PERCEPTION_MTL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/perception_mtl}
PY="$VENV/bin/python"
SECONDS=0

log() { printf '[install %4ss] %s\n' "$SECONDS" "$*"; }
pip_install() { "$PY" -m pip install --disable-pip-version-check -q -c "$CONSTRAINTS" "$@"; }

[ -x "$PY" ] || { log "creating $VENV"; "${PYTHON:-python3}" -m venv "$VENV"; }

# 1. torch first: mmcv compiles against it. opencv-python-headless goes in before mmcv is built
#    so mmcv's setup.py records the headless build as its requirement.
log "torch, torchvision and the mmcv build toolchain"
pip_install torch torchvision numpy setuptools wheel ninja psutil opencv-python-headless

# 2. mmcv with compiled ops, from the wheel cache or built now.
mmcv_version=$(sed -n 's/^mmcv==//p' "$CONSTRAINTS")
flavour=$(MMCV_CUDA=${MMCV_CUDA:-} "$PY" - <<'EOF'
import os, re, shutil, subprocess
import torch
want = os.environ.get("MMCV_CUDA", "")
nvcc = shutil.which("nvcc") or (os.path.join(os.environ["CUDA_HOME"], "bin", "nvcc")
                                if os.environ.get("CUDA_HOME") else None)
cuda = torch.version.cuda is not None and nvcc is not None and os.path.exists(nvcc)
cuda = cuda and (torch.cuda.is_available() if want == "" else want == "1")
if not cuda:
    print(f"torch-{torch.__version__}-cpu")
else:
    out = subprocess.run([nvcc, "--version"], capture_output=True, text=True).stdout
    release = re.search(r"release (\d+\.\d+)", out).group(1)
    arch = os.environ.get("TORCH_CUDA_ARCH_LIST") or "%d.%d" % torch.cuda.get_device_capability()
    print(f"torch-{torch.__version__}-nvcc{release}-sm{arch.replace(' ', '_').replace(';', '_')}")
EOF
)
key="mmcv-$mmcv_version-$flavour"
wheel_dir="$CACHE/wheels/$key"
if [ "$(cat "$VENV/.mmcv-key" 2>/dev/null)" = "$key" ] && compgen -G "$VENV/lib/python*/site-packages/mmcv/_ext*.so" >/dev/null; then
  log "mmcv $key already installed"
else
  wheel=$(ls "$wheel_dir"/mmcv-*.whl 2>/dev/null | head -n 1 || true)
  if [ -z "$wheel" ]; then
    log "building $key from the sdist (10-20 minutes on 2 cores)"
    build=$(mktemp -d)
    trap 'rm -rf "$build"' EXIT
    # setup.py imports torch, so even the download needs --no-build-isolation.
    "$PY" -m pip download --disable-pip-version-check -q --no-deps --no-binary :all: \
      --no-build-isolation -d "$build" "mmcv==$mmcv_version"
    tar xzf "$build"/mmcv-*.tar.gz -C "$build"
    src=$(ls -d "$build"/mmcv-*/)
    # torch 2.14's headers need C++20; mmcv 2.1.0 asks for C++14/17.
    sed -i 's/-std=c++1[47]/-std=c++20/g' "$src/setup.py"
    cuda_env=()
    case "$flavour" in *-cpu) ;; *) cuda_env=(FORCE_CUDA=1 "TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-$("$PY" -c 'import torch; print("%d.%d" % torch.cuda.get_device_capability())')}");; esac
    env MMCV_WITH_OPS=1 MAX_JOBS="$(nproc)" "${cuda_env[@]}" \
      "$PY" -m pip wheel --disable-pip-version-check -q --no-deps --no-build-isolation \
      -w "$build/dist" "$src"
    mkdir -p "$wheel_dir"
    built=$(ls "$build"/dist/mmcv-*.whl)
    # Copy then rename, so an interrupted copy never looks like a cached wheel.
    cp "$built" "$wheel_dir/.partial" && mv "$wheel_dir/.partial" "$wheel_dir/$(basename "$built")"
    wheel="$wheel_dir/$(basename "$built")"
  else
    log "mmcv from cache: $wheel"
  fi
  pip_install --no-deps --force-reinstall "$wheel"
  compgen -G "$VENV/lib/python*/site-packages/mmcv/_ext*.so" >/dev/null \
    || { echo "no compiled ops (mmcv/_ext*.so) in $wheel" >&2; exit 1; }
  echo "$key" > "$VENV/.mmcv-key"
fi

# 3. Everything else. mmengine, mmdet3d and lyft_dataset_sdk without their declared dependencies
#    (opencv-python beside the headless build, open3d); runtime.txt names what they import.
log "runtime packages"
pip_install -r "$REQ/runtime.txt" -r "$REQ/dev.txt"
pip_install --no-deps mmengine mmdet3d lyft_dataset_sdk
pip_install --no-deps -e "$ROOT"

log "checking imports"
"$PY" -c "import mmcv._ext, mmcv.ops, mmdet3d.models, mmdet3d.evaluation, nuscenes, timm, onnxruntime, perception_mtl" \
  || { echo "the installed environment does not import; mmcv key: $key" >&2; exit 1; }
touch "$VENV/.installed"
log "done"
