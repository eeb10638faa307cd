#!/usr/bin/env bash
# Install EdgeLLM on a Raspberry Pi 4 / 5 (Raspberry Pi OS 64-bit bookworm, or Ubuntu arm64):
# apt packages, the edgellm user, a venv in /opt/edgellm with edgellm-sdk[speech,serial,mqtt,structured,tools],
# the default model, systemd units with MemoryMax from the device profile, udev rules for USB serial
# sensors. Idempotent. See devices/rpi/README.md.
#
#   sudo devices/rpi/install.sh                 # from a checkout of this repository
#   sudo devices/rpi/install.sh --sdk "$PWD"    # install the SDK from this checkout, not PyPI
#   devices/rpi/install.sh --dry-run            # print the plan, change nothing
#
# EDGELLM_DT_MODEL (default /proc/device-tree/model) exists for tests.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=../common/install-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../common/install-lib.sh"

BOARD_NAME="Raspberry Pi"
BOARD_A="a Raspberry Pi"
BOARD_PROFILE_GLOB="rpi*"
BOARD_DEFAULT_PROFILE=rpi4
# gpio group: sensors on the Pi's own UART / GPIO (exists on Raspberry Pi OS)
BOARD_GROUPS=(gpio)

board_detect() {  # prints the device-tree model; fails when it is not a Raspberry Pi
    local file=${EDGELLM_DT_MODEL:-/proc/device-tree/model} model=""
    [[ -r $file ]] && model=$(tr -d '\0' < "$file")
    printf '%s\n' "$model"
    [[ $model == *"Raspberry Pi"* ]]
}

board_precheck() {
    # a 32-bit Raspberry Pi OS runs a 64-bit kernel (uname -m says aarch64): ask for the userland's width
    if { [[ $(uname -m) != aarch64 ]] || [[ $(getconf LONG_BIT) != 64 ]]; } && (( ! FORCE )); then
        die "$(uname -m) kernel with a $(getconf LONG_BIT)-bit userland: onnxruntime ships Linux wheels for aarch64 (a 64-bit OS) only, not for 32-bit armhf. Install Raspberry Pi OS (64-bit)."
    fi
}

install_main "$@"
