# shellcheck shell=bash
# Shared steps of devices/rpi/install.sh and devices/jetson/install.sh. Sourced, not run.
#
# The board script sets BOARD_NAME, BOARD_A ("a Raspberry Pi"), BOARD_PROFILE_GLOB, BOARD_DEFAULT_PROFILE and defines
#   board_detect        prints the device's model string, returns 1 when this is not the board
#   board_option OPT VAL  (optional) parses board options; sets BOARD_SHIFT to 1 or 2 when it took OPT
#   board_usage         (optional) prints its options
#   board_precheck      (optional) checks before anything changes (e.g. the onnxruntime-gpu source)
#   board_after_sdk     (optional) runs after the SDK is pip-installed (e.g. the onnxruntime swap)
#   board_dropins       (optional) prints "UNIT<TAB>FILE<TAB>CONTENT" lines: systemd drop-ins to install
# and then calls `install_main "$@"`.
#
# Every step that changes the system goes through `run` (or `write_file`), which only prints
# the command under --dry-run; what is only read (dpkg-query, id, getent, the device tree) is read
# in both modes, so a dry run shows the plan for this machine.

DEVICES_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
REPO_DIR=$(cd "$DEVICES_DIR/.." && pwd)
# shellcheck source-path=SCRIPTDIR source=profile-lib.sh
source "$DEVICES_DIR/common/profile-lib.sh"

PREFIX=/opt/edgellm                 # the venv; the units run $PREFIX/bin/edgellm
EDGELLM_USER=edgellm
STATE_DIR=/var/lib/edgellm          # EDGELLM_HOME of the services (StateDirectory=edgellm)
SYSTEMD_DIR=/etc/systemd/system
UDEV_RULES_DIR=/etc/udev/rules.d
DEFAULT_FILE=/etc/default/edgellm
SENSORS_CONF_DIR=/etc/edgellm/sensors
ROS_WS=$PREFIX/ros2_ws
ROS_ROOT=${EDGELLM_ROS_ROOT:-/opt/ros}   # where ROS 2 distributions live (env for tests)
# every Python dependency has an aarch64 wheel on PyPI (no compiler needed); libportaudio2 is for
# sounddevice, espeak-ng the light TTS, alsa-utils gives arecord/aplay to find audio devices
APT_PACKAGES=(python3 python3-venv python3-pip espeak-ng libportaudio2 alsa-utils ca-certificates)

DRY_RUN=0
FORCE=0
PROFILE=""
SDK_SPEC=${EDGELLM_SDK:-edgellm-sdk}
# tools (onnx, gguf) is what `edgellm pull` needs to convert the model's GGUF file
EXTRAS=${EDGELLM_EXTRAS:-speech,serial,mqtt,structured,tools}
MODEL=smollm2-135m
PULL=1
WITH_ROS=0
ENABLE=()
# the system Python: on a ROS 2 machine the nodes run with it, and the venv must match it
PYTHON=${EDGELLM_PYTHON:-/usr/bin/python3}
STEP=0
WORK=""
BOARD_APT_PACKAGES=()   # set by the board script
BOARD_GROUPS=()         # supplementary groups the board needs, when they exist (e.g. video on Jetson)

log() { printf '%s\n' "$*"; }
warn() { printf 'warning: %s\n' "$*" >&2; }
die() { printf '%s: error: %s\n' "$(basename "$0")" "$*" >&2; exit 1; }
step() { STEP=$((STEP + 1)); printf '\n==> [%d] %s\n' "$STEP" "$*"; }

quote_cmd() {  # a command line a user can paste
    local a out=()
    for a in "$@"; do
        if [[ $a =~ ^[A-Za-z0-9_./:=@%+,-]+$ ]]; then out+=("$a"); else out+=("'${a//\'/\'\\\'\'}'"); fi
    done
    local IFS=' '
    printf '%s' "${out[*]}"
}

run() {  # run a command that changes the system (only print it under --dry-run)
    if (( DRY_RUN )); then
        printf '[dry-run] %s\n' "$(quote_cmd "$@")"
    else
        printf '+ %s\n' "$(quote_cmd "$@")"
        "$@"
    fi
}

write_file() {  # DEST MODE CONTENT: install a small generated file
    local dest=$1 mode=$2 content=$3
    if (( DRY_RUN )); then
        printf '[dry-run] write %s (mode %s):\n' "$dest" "$mode"
        local line
        while IFS= read -r line; do printf '    | %s\n' "$line"; done <<< "$content"
        return 0
    fi
    printf '%s\n' "$content" > "$WORK/file.tmp"
    run install -D -m "$mode" "$WORK/file.tmp" "$dest"
}

usage() {
    cat <<EOF
Install EdgeLLM on $BOARD_A: apt packages, the '$EDGELLM_USER' user, a venv in $PREFIX with
edgellm-sdk, the default model, systemd units (MemoryMax from the device profile), udev rules.
Idempotent: run it again after an update.

usage: sudo $0 [options]

  --dry-run          print what would be done; change nothing (no root needed)
  --force            install even if this is not $BOARD_A
  --profile NAME     device profile: a name in devices/profiles/ ($(profile_known)) or a TOML path
                     (default: detected from the device tree)
  --sdk SPEC         what to pip-install: a requirement (default: edgellm-sdk), a local checkout
                     directory or a wheel file; [extras] are added (env EDGELLM_SDK)
  --extras LIST      pip extras (default: $EXTRAS; env EDGELLM_EXTRAS)
  --python PATH      the Python (>= 3.10) for the venv (default: /usr/bin/python3; env EDGELLM_PYTHON)
  --model NAME       model to pull (default: $MODEL)
  --no-pull          do not pull a model (e.g. offline)
  --ros              also build ros2_pkg/ into $ROS_WS for edgellm-ros.service (needs ROS 2
                     in /opt/ros and colcon)
  --enable UNIT      systemctl enable --now UNIT after installing (repeatable): voice, ros,
                     sensors@NAME (needs $SENSORS_CONF_DIR/NAME.env)
EOF
    if declare -F board_usage > /dev/null; then board_usage; fi
}

parse_args() {
    while (( $# )); do
        case $1 in
            --dry-run) DRY_RUN=1 ;;
            --force) FORCE=1 ;;
            --no-pull) PULL=0 ;;
            --ros) WITH_ROS=1 ;;
            --profile|--sdk|--extras|--python|--model|--enable)
                (( $# >= 2 )) || die "$1 needs a value"
                case $1 in
                    --profile) PROFILE=$2 ;;
                    --sdk) SDK_SPEC=$2 ;;
                    --extras) EXTRAS=$2 ;;
                    --python) PYTHON=$2 ;;
                    --model) MODEL=$2 ;;
                    --enable) ENABLE+=("$2") ;;
                esac
                shift ;;
            -h|--help) usage; exit 0 ;;
            *)
                BOARD_SHIFT=0
                if declare -F board_option > /dev/null; then board_option "$1" "${2-}"; fi
                (( BOARD_SHIFT > 0 )) || die "unknown option $1 (see --help)"
                shift $((BOARD_SHIFT - 1)) ;;
        esac
        shift
    done
}

systemd_running() { [[ -d /run/systemd/system ]]; }

sdk_requirement() {  # the pip argument for SDK_SPEC with EXTRAS added
    local spec=$SDK_SPEC
    if [[ -d $spec || $spec == *.whl || $spec == */* ]]; then
        [[ -e $spec ]] || die "--sdk $spec: no such file or directory"
        spec=$(cd "$(dirname "$spec")" && pwd)/$(basename "$spec")
        printf '%s[%s]\n' "$spec" "$EXTRAS"
    elif [[ $spec =~ ^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^]]*\])?(.*)$ ]]; then
        printf '%s[%s]%s\n' "${BASH_REMATCH[1]}" "$EXTRAS" "${BASH_REMATCH[3]}"
    else
        die "--sdk '$spec' is neither a requirement (name[==version]) nor a path"
    fi
}

check_board() {
    step "Board check"
    local model
    if model=$(board_detect); then
        log "board: $BOARD_NAME (${model:-model unknown})"
    elif (( FORCE )); then
        warn "this does not look like $BOARD_A (${model:-no device-tree model}); going on because of --force"
    else
        die "this machine is not $BOARD_A (device-tree model: '${model:-none}', $(uname -m)). This script sets up $BOARD_A; use the other devices/*/install.sh for another board, or --force to install anyway (pick the profile with --profile)."
    fi
    if [[ -z $PROFILE ]]; then
        if PROFILE=$(profile_detect "$model" "$BOARD_PROFILE_GLOB"); then
            log "profile: $PROFILE (matched '$model')"
        elif (( FORCE )); then
            PROFILE=$BOARD_DEFAULT_PROFILE
            warn "no profile matches '${model:-this machine}'; using $PROFILE (--profile chooses another)"
        else
            die "no device profile matches '$model'; pick the closest with --profile (known: $(profile_known))"
        fi
    fi
    PROFILE_FILE=$(profile_path "$PROFILE") || die "bad --profile"
    PROFILE_NAME=$(basename "$PROFILE_FILE" .toml)
    BUDGET_MB=$(profile_budget_mb "$PROFILE_FILE") || die "bad profile $PROFILE_FILE"
    log "profile $PROFILE_NAME ($PROFILE_FILE): memory budget $BUDGET_MB MB"
}

check_python() {
    if ! command -v "$PYTHON" > /dev/null; then
        [[ $PYTHON == /usr/bin/python3 ]] || die "--python $PYTHON not found"
        log "python3 is not installed yet: it comes with the apt packages"
        return 0
    fi
    if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))'; then
        die "$("$PYTHON" -V 2>&1) is too old: edgellm-sdk needs Python >= 3.10. Install a newer Python and pass --python /path/to/python3.X"
    fi
    log "$("$PYTHON" -V 2>&1) ($(command -v "$PYTHON"))"
}

preflight() {
    step "Checks"
    if (( ! DRY_RUN )) && (( EUID != 0 )); then
        die "run as root (sudo $0 ...), or with --dry-run to see the plan"
    fi
    check_python
    SDK_REQ=$(sdk_requirement)
    log "SDK: pip install '$SDK_REQ' into $PREFIX"
    [[ -d $DEVICES_DIR/systemd && -f $DEVICES_DIR/udev/99-edgellm-sensors.rules ]] ||
        die "$DEVICES_DIR is incomplete: run this script from an edgellm checkout"
    if (( WITH_ROS )); then
        [[ -d $REPO_DIR/ros2_pkg/edgellm_ros ]] || die "--ros: $REPO_DIR/ros2_pkg not found"
        ros_distro > /dev/null || die "--ros: no ROS 2 in $ROS_ROOT (install ROS 2 first; with several distributions set ROS_DISTRO)"
        # colcon comes from the ROS apt repository (or Ubuntu universe)
        command -v colcon > /dev/null || BOARD_APT_PACKAGES+=(python3-colcon-common-extensions)
    fi
    local unit
    for unit in "${ENABLE[@]}"; do
        case $unit in
            voice|ros|sensors@?*) ;;
            *) die "--enable $unit: expected voice, ros or sensors@NAME" ;;
        esac
    done
    if declare -F board_precheck > /dev/null; then board_precheck; fi
}

ros_distro() {
    if [[ -n ${ROS_DISTRO:-} ]]; then
        [[ -f $ROS_ROOT/$ROS_DISTRO/setup.bash ]] && printf '%s\n' "$ROS_DISTRO"
        return
    fi
    local setups=("$ROS_ROOT"/*/setup.bash)
    [[ -f ${setups[0]} && ${#setups[@]} -eq 1 ]] || return 1
    basename "$(dirname "${setups[0]}")"
}

install_apt() {
    step "apt packages"
    local p missing=()
    for p in "${APT_PACKAGES[@]}" "${BOARD_APT_PACKAGES[@]}"; do
        if [[ $(dpkg-query -W -f='${db:Status-Status}' "$p" 2> /dev/null) != installed ]]; then missing+=("$p"); fi
    done
    if (( ${#missing[@]} == 0 )); then
        log "all installed: ${APT_PACKAGES[*]}${BOARD_APT_PACKAGES[*]:+ ${BOARD_APT_PACKAGES[*]}}"
        return 0
    fi
    run apt-get update
    run env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
    if (( ! DRY_RUN )) && [[ $PYTHON == /usr/bin/python3 ]]; then check_python; fi
}

join_by() { local IFS=$1; shift; printf '%s' "$*"; }

install_user() {
    step "user '$EDGELLM_USER' and groups"
    local g have=()
    for g in audio dialout; do
        getent group "$g" > /dev/null || run groupadd --system "$g"
        have+=("$g")
    done
    for g in "${BOARD_GROUPS[@]}"; do  # only the board's groups that exist here
        if getent group "$g" > /dev/null; then have+=("$g"); fi
    done
    if ! id -u "$EDGELLM_USER" > /dev/null 2>&1; then
        run useradd --system --user-group --home-dir "$STATE_DIR" --no-create-home \
            --shell /usr/sbin/nologin --comment "EdgeLLM services" --groups "$(join_by , "${have[@]}")" "$EDGELLM_USER"
    else
        local missing=() current
        current=" $(id -nG "$EDGELLM_USER") "
        for g in "${have[@]}"; do
            [[ $current == *" $g "* ]] || missing+=("$g")
        done
        if (( ${#missing[@]} )); then
            run usermod --append --groups "$(join_by , "${missing[@]}")" "$EDGELLM_USER"
        else
            log "user $EDGELLM_USER exists, in groups ${have[*]}"
        fi
    fi
    run install -d -o "$EDGELLM_USER" -g "$EDGELLM_USER" -m 0750 "$STATE_DIR"
}

install_venv() {
    step "Python venv $PREFIX and edgellm-sdk"
    if [[ ! -x $PREFIX/bin/python ]]; then
        run "$PYTHON" -m venv "$PREFIX"
        run "$PREFIX/bin/python" -m pip install --disable-pip-version-check --upgrade pip
    else
        log "venv exists: $PREFIX"
    fi
    run "$PREFIX/bin/python" -m pip install --disable-pip-version-check "$SDK_REQ"
    if (( WITH_ROS )); then
        # ROS 2's rosidl C extensions (Humble, Jazzy, Kilted from apt) are built against NumPy 1.x;
        # the nodes import the venv's packages, so its NumPy must be 1.x too
        run "$PREFIX/bin/python" -m pip install --disable-pip-version-check 'numpy<2'
    fi
    if declare -F board_after_sdk > /dev/null; then board_after_sdk; fi
}

as_service_user() {  # run a command as the service user, with the services' environment
    run runuser -u "$EDGELLM_USER" -- env HOME="$STATE_DIR" EDGELLM_HOME="$STATE_DIR" "$@"
}

pull_model() {
    step "model"
    if (( ! PULL )); then
        log "skipped (--no-pull): later run  sudo runuser -u $EDGELLM_USER -- env EDGELLM_HOME=$STATE_DIR $PREFIX/bin/edgellm pull $MODEL"
        return 0
    fi
    as_service_user "$PREFIX/bin/edgellm" pull "$MODEL"
    if [[ ,$EXTRAS, == *,speech,* ]]; then
        # the live voice assistant's VAD model, fetched once (from PyPI) so the service needs no network
        as_service_user "$PREFIX/bin/python" -c \
            'from edgellm_sdk.speech.vad import ensure_silero_vad; print(ensure_silero_vad())'
    fi
}

install_units() {
    step "systemd units (profile $PROFILE_NAME)"
    mkdir -p "$WORK/units"
    "$DEVICES_DIR/systemd/render-units.sh" "$PROFILE_FILE" "$WORK/units"
    local f
    for f in "$WORK/units"/*; do
        run install -m 0644 "$f" "$SYSTEMD_DIR/$(basename "$f")"
    done
    run install -D -m 0755 "$DEVICES_DIR/systemd/edgellm-ros-launch" "$PREFIX/libexec/edgellm-ros-launch"
    if [[ -e $DEFAULT_FILE ]]; then
        log "$DEFAULT_FILE exists: kept (the example is $DEVICES_DIR/systemd/edgellm.default)"
    else
        run install -m 0644 "$DEVICES_DIR/systemd/edgellm.default" "$DEFAULT_FILE"
    fi
    run install -d -m 0755 "$SENSORS_CONF_DIR"
    run install -m 0644 "$DEVICES_DIR/systemd/sensors-example.env" "$SENSORS_CONF_DIR/example.env.sample"
    if declare -F board_dropins > /dev/null; then
        local unit name content
        while IFS=$'\t' read -r unit name content; do
            write_file "$SYSTEMD_DIR/$unit.d/$name" 0644 "$(printf '%b' "$content")"
        done < <(board_dropins)
    fi
}

install_udev() {
    step "udev rules for USB serial sensors"
    run install -m 0644 "$DEVICES_DIR/udev/99-edgellm-sensors.rules" "$UDEV_RULES_DIR/99-edgellm-sensors.rules"
    if [[ -S /run/udev/control ]] || (( DRY_RUN )); then
        [[ -S /run/udev/control ]] || log "(udev is not running here: the reload below would be skipped)"
        run udevadm control --reload-rules
        run udevadm trigger --subsystem-match=tty --action=add
    else
        warn "udev is not running: the rules apply from the next boot"
    fi
}

build_ros() {
    (( WITH_ROS )) || return 0
    local distro
    distro=$(ros_distro)
    step "ROS 2 workspace $ROS_WS (ROS 2 $distro)"
    run install -d -m 0755 "$ROS_WS/src"
    run rm -rf "$ROS_WS/src/edgellm_ros" "$ROS_WS/src/edgellm_interfaces"
    run cp -r "$REPO_DIR/ros2_pkg/edgellm_ros" "$REPO_DIR/ros2_pkg/edgellm_interfaces" "$ROS_WS/src/"
    if command -v rosdep > /dev/null; then
        run bash -c "source '$ROS_ROOT/$distro/setup.bash' && rosdep install --from-paths '$ROS_WS/src' --ignore-src -y" ||
            warn "rosdep failed (run 'rosdep init' / 'rosdep update' once); continuing"
    fi
    run bash -c "source '$ROS_ROOT/$distro/setup.bash' && cd '$ROS_WS' && colcon build"
}

reload_systemd() {
    step "systemd"
    if ! systemd_running && (( ! DRY_RUN )); then
        warn "systemd is not running (a container?): run 'systemctl daemon-reload' on the device"
        return 0
    fi
    systemd_running || log "(systemd is not running here: the commands below would be skipped)"
    run systemctl daemon-reload
    # units already running pick up the new code / unit files (stopped ones stay stopped)
    run systemctl try-restart edgellm-voice.service edgellm-ros.service 'edgellm-sensors@*.service'
    local unit
    for unit in "${ENABLE[@]}"; do
        run systemctl enable --now "edgellm-$unit.service"
    done
}

check_install() {
    step "edgellm doctor, as the service user"
    local profile_arg=$PROFILE_NAME
    if [[ $PROFILE == */* || $PROFILE == *.toml ]]; then profile_arg=$PROFILE_FILE; fi
    # read-only checks: profile, memory, execution providers, audio, serial permissions, ROS 2, models
    as_service_user "$PREFIX/bin/edgellm" doctor --profile "$profile_arg" ||
        warn "edgellm doctor reported a FAIL (above): fix it before starting the services"
}

summary() {
    local done_note=""
    (( ! DRY_RUN )) || done_note=" (dry run: nothing was changed)"
    cat <<EOF

Done$done_note.
  profile:   $PROFILE_NAME, memory budget $BUDGET_MB MB (MemoryMax in $SYSTEMD_DIR/edgellm-*.service)
  venv:      $PREFIX (edgellm: $PREFIX/bin/edgellm)   models: $STATE_DIR/models
  options:   $DEFAULT_FILE   sensors: $SENSORS_CONF_DIR/NAME.env
Start a service:
  sudo systemctl enable --now edgellm-voice                # the voice assistant
  sudo systemctl enable --now edgellm-ros                  # ROS 2 nodes (after install.sh --ros)
  sudo cp $SENSORS_CONF_DIR/example.env.sample $SENSORS_CONF_DIR/greenhouse.env   # edit it, then
  sudo systemctl enable --now edgellm-sensors@greenhouse
Check:
  systemctl status edgellm-voice;  journalctl -u edgellm-voice -f;  ls -l /dev/edgellm/
EOF
}

install_main() {
    parse_args "$@"
    WORK=$(mktemp -d)
    trap 'rm -rf "$WORK"' EXIT
    (( DRY_RUN )) && log "DRY RUN: printing the plan; nothing on this system is changed."
    check_board
    preflight
    install_apt
    install_user
    install_venv
    pull_model
    install_units
    install_udev
    build_ros
    reload_systemd
    check_install
    summary
}
