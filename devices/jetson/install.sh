#!/usr/bin/env bash
# Install EdgeLLM on an NVIDIA Jetson (Orin Nano / Orin NX on JetPack 6; see README.md for older
# JetPacks): apt packages, the edgellm user, a venv in /opt/edgellm with
# edgellm-sdk[speech,serial,mqtt,structured,tools], the JetPack-matched onnxruntime-gpu in place of
# the CPU onnxruntime, the default model, systemd units with MemoryMax from the device profile,
# udev rules for USB serial sensors. Idempotent. See devices/jetson/README.md.
#
# onnxruntime-gpu for Jetson is not on PyPI: it has to be built against JetPack's CUDA, cuDNN and
# TensorRT. NVIDIA's Jetson AI Lab publishes such wheels as a pip index per JetPack / CUDA version;
# give the one for your JetPack (the script prints the likely one):
#
#   sudo devices/jetson/install.sh --ort-index https://pypi.jetson-ai-lab.io/jp6/cu126
#   sudo devices/jetson/install.sh --ort-wheel ./onnxruntime_gpu-<ver>-cp310-cp310-linux_aarch64.whl
#   devices/jetson/install.sh --dry-run --ort-index URL     # print the plan, change nothing
#
# (env EDGELLM_ORT_INDEX / EDGELLM_ORT_WHEEL do the same). onnxruntime and onnxruntime-gpu install
# the same Python package and conflict: the CPU wheel (an edgellm-sdk dependency) is uninstalled
# first. EDGELLM_DT_MODEL and EDGELLM_NV_TEGRA_RELEASE (default /proc/device-tree/model,
# /etc/nv_tegra_release) exist for tests.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=../common/install-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../common/install-lib.sh"

BOARD_NAME="NVIDIA Jetson"
BOARD_A="an NVIDIA Jetson"
BOARD_PROFILE_GLOB="jetson*"
BOARD_DEFAULT_PROFILE=jetson-orin-nano
# the GPU device nodes (/dev/nvhost-*, /dev/nvmap, /dev/dri/renderD*) belong to video / render
BOARD_GROUPS=(video render)
ORT_INDEX=${EDGELLM_ORT_INDEX:-}
ORT_WHEEL=${EDGELLM_ORT_WHEEL:-}
ORT_VERSION=${EDGELLM_ORT_VERSION:-}
TEGRA_RELEASE=${EDGELLM_NV_TEGRA_RELEASE:-/etc/nv_tegra_release}

board_usage() {
    cat <<EOF

Jetson options (one of --ort-index / --ort-wheel is required):
  --ort-index URL    pip index with JetPack-matched onnxruntime-gpu wheels, e.g. NVIDIA's Jetson AI
                     Lab index for JetPack 6.1/6.2: https://pypi.jetson-ai-lab.io/jp6/cu126
                     (env EDGELLM_ORT_INDEX)
  --ort-wheel FILE   an onnxruntime-gpu wheel file or URL built for this JetPack (env EDGELLM_ORT_WHEEL)
  --ort-version SPEC version constraint with --ort-index, e.g. '==1.20.0' (env EDGELLM_ORT_VERSION)
EOF
}

board_option() {
    case $1 in
        --ort-index|--ort-wheel|--ort-version)
            [[ -n ${2:-} ]] || die "$1 needs a value"
            case $1 in
                --ort-index) ORT_INDEX=$2 ;;
                --ort-wheel) ORT_WHEEL=$2 ;;
                --ort-version) ORT_VERSION=$2 ;;
            esac
            BOARD_SHIFT=2 ;;
    esac
}

board_detect() {  # prints the device-tree model; fails when it is not a Jetson
    local file=${EDGELLM_DT_MODEL:-/proc/device-tree/model} model=""
    [[ -r $file ]] && model=$(tr -d '\0' < "$file")
    printf '%s\n' "$model"
    [[ $model == *Jetson* || -f $TEGRA_RELEASE ]]
}

l4t_release() {  # "36.4.3" from "# R36 (release), REVISION: 4.3, ..." in /etc/nv_tegra_release
    [[ -r $TEGRA_RELEASE ]] || return 1
    local line
    line=$(head -n1 "$TEGRA_RELEASE")
    [[ $line =~ R([0-9]+)[^,]*,[[:space:]]*REVISION:[[:space:]]*([0-9]+(\.[0-9]+)*) ]] || return 1
    printf '%s.%s\n' "${BASH_REMATCH[1]}" "${BASH_REMATCH[2]}"
}

jetpack_hint() {  # L4T release -> "JetPack ...; where its onnxruntime-gpu comes from"
    case $1 in
        36.4.*) echo "JetPack 6.1/6.2 (CUDA 12.6): NVIDIA Jetson AI Lab index https://pypi.jetson-ai-lab.io/jp6/cu126" ;;
        36.*) echo "JetPack 6.0 (CUDA 12.2): the Jetson AI Lab index for CUDA 12.2 (https://pypi.jetson-ai-lab.io/jp6/cu122, check it lists onnxruntime-gpu) or upgrade to JetPack 6.2" ;;
        35.*) echo "JetPack 5.1 (CUDA 11.4, Ubuntu 20.04, Python 3.8): NVIDIA's Jetson Zoo wheels (https://elinux.org/Jetson_Zoo#ONNX_Runtime) are for Python 3.8, below the SDK's 3.10: build onnxruntime-gpu for your Python 3.10+ (--python, --ort-wheel) or upgrade to JetPack 6" ;;
        32.*) echo "JetPack 4 (Ubuntu 18.04, Python 3.6): not supported by this installer (edgellm-sdk needs Python >= 3.10 and a matching onnxruntime-gpu; neither ships for JetPack 4)" ;;
        *) echo "unknown JetPack: see https://pypi.jetson-ai-lab.io for an index matching your CUDA version" ;;
    esac
}

board_precheck() {
    local l4t hint
    if l4t=$(l4t_release); then
        hint=$(jetpack_hint "$l4t")
        log "L4T R$l4t: $hint"
    else
        l4t=""
        hint="JetPack unknown (no L4T release in $TEGRA_RELEASE): pick the index for your JetPack at https://pypi.jetson-ai-lab.io"
        warn "$hint"
    fi
    if [[ $(uname -m) != aarch64 ]] && (( ! FORCE )); then
        die "$(uname -m): Jetson wheels are aarch64 only"
    fi
    if [[ -n $ORT_INDEX && -n $ORT_WHEEL ]]; then
        die "give --ort-index or --ort-wheel, not both"
    fi
    if [[ -z $ORT_INDEX && -z $ORT_WHEEL ]]; then
        die "onnxruntime-gpu: no source given. On a Jetson it must match JetPack's CUDA / cuDNN / TensorRT, so it is not taken from PyPI; it replaces the CPU onnxruntime (the two conflict). ${l4t:+Detected L4T R$l4t, }${hint}. Pass the NVIDIA Jetson AI Lab pip index for your JetPack, e.g. --ort-index https://pypi.jetson-ai-lab.io/jp6/cu126 (JetPack 6.1/6.2), or a wheel with --ort-wheel FILE (env EDGELLM_ORT_INDEX / EDGELLM_ORT_WHEEL)."
    fi
    if [[ -n $ORT_WHEEL && $ORT_WHEEL != *://* ]]; then
        [[ -f $ORT_WHEEL ]] || die "--ort-wheel $ORT_WHEEL: no such file"
        ORT_WHEEL=$(cd "$(dirname "$ORT_WHEEL")" && pwd)/$(basename "$ORT_WHEEL")
    fi
    log "onnxruntime-gpu from: ${ORT_WHEEL:-index $ORT_INDEX}${ORT_VERSION:+ (version $ORT_VERSION)}"
}

board_after_sdk() {
    step "onnxruntime-gpu (replaces the CPU onnxruntime)"
    local py=$PREFIX/bin/python pip_opts=(--disable-pip-version-check)
    # onnxruntime (CPU, pulled in by edgellm-sdk) and onnxruntime-gpu both install the package
    # 'onnxruntime': remove both, then install the GPU wheel alone, so no file is left half-overwritten
    if (( DRY_RUN )) || "$py" -m pip show onnxruntime > /dev/null 2>&1; then
        run "$py" -m pip uninstall "${pip_opts[@]}" -y onnxruntime onnxruntime-gpu
    fi
    if [[ -n $ORT_WHEEL ]]; then
        run "$py" -m pip install "${pip_opts[@]}" "$ORT_WHEEL"
    else
        run "$py" -m pip install "${pip_opts[@]}" --index-url "$ORT_INDEX" "onnxruntime-gpu$ORT_VERSION"
    fi
    run "$py" -c 'import onnxruntime as ort, sys; p = ort.get_available_providers(); print(ort.__version__, p); sys.exit("CUDAExecutionProvider" not in p)' ||
        die "the installed onnxruntime has no CUDAExecutionProvider: the wheel does not match this JetPack (or is the CPU build)"
}

board_dropins() {  # SupplementaryGroups for the GPU, for the groups that exist here
    local g groups=() unit
    for g in "${BOARD_GROUPS[@]}"; do
        if getent group "$g" > /dev/null; then groups+=("$g"); fi
    done
    (( ${#groups[@]} )) || return 0
    for unit in edgellm-voice.service edgellm-ros.service edgellm-sensors@.service; do
        printf '%s\t%s\t%s\n' "$unit" 10-jetson-gpu.conf \
            "# installed by devices/jetson/install.sh: GPU device nodes for onnxruntime-gpu\n[Service]\nSupplementaryGroups=${groups[*]}"
    done
}

install_main "$@"
