#!/usr/bin/env bash
# Fill the systemd unit templates (devices/systemd/*.in) from a device profile.
#
#   devices/systemd/render-units.sh PROFILE OUTDIR
#   devices/systemd/render-units.sh --budget PROFILE      # print [memory].budget_mb only
#
# PROFILE is a profile name (devices/profiles/<name>.toml; EDGELLM_PROFILES_DIR overrides the
# directory) or the path of a profile TOML (read by devices/common/profile-lib.sh). Each template
# declares its own margin in a comment,
#   # edgellm-render: memory-margin-mb=512
# and gets
#   @MEMORY_MAX@  [memory].budget_mb + that margin, in MiB ("1536M"): the cgroup hard limit
#   @BUDGET_MB@   [memory].budget_mb: EDGELLM_MAX_RSS_MB, the SDK's own memory guard, which refuses
#                 an oversized model/context with a clear message before the cgroup would OOM-kill
#   @PROFILE@     the profile name
#   @ROS_BOARD@   the launch file's board:= value (jetson for jetson-* profiles, rpi otherwise)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=../common/profile-lib.sh
source "$here/../common/profile-lib.sh"

die() { echo "render-units: $*" >&2; exit 1; }

margin_mb() {  # the margin a template declares
    local tpl=$1 value
    value=$(sed -n 's/^# edgellm-render: memory-margin-mb=\([0-9][0-9]*\)[[:space:]]*$/\1/p' "$tpl" | head -n1)
    [[ -n $value ]] || die "$tpl: no '# edgellm-render: memory-margin-mb=N' line"
    printf '%s\n' "$value"
}

if [[ ${1:-} == --budget ]]; then
    [[ $# -eq 2 ]] || die "usage: $0 --budget PROFILE"
    file=$(profile_path "$2") || exit 1
    profile_budget_mb "$file" || exit 1
    exit 0
fi
[[ $# -eq 2 ]] || die "usage: $0 PROFILE OUTDIR   (or: $0 --budget PROFILE)"

file=$(profile_path "$1") || exit 1
out=$2
name=$(basename "$file" .toml)
budget=$(profile_budget_mb "$file") || exit 1
case $name in
    jetson*) board=jetson ;;
    *) board=rpi ;;
esac
mkdir -p "$out"

shopt -s nullglob
templates=("$here"/*.in)
(( ${#templates[@]} > 0 )) || die "no unit templates (*.in) in $here"
for tpl in "${templates[@]}"; do
    unit=$(basename "$tpl" .in)
    margin=$(margin_mb "$tpl")
    memory_max="$((budget + margin))M"
    sed -e "s/@MEMORY_MAX@/$memory_max/g" -e "s/@BUDGET_MB@/$budget/g" \
        -e "s/@PROFILE@/$name/g" -e "s/@ROS_BOARD@/$board/g" "$tpl" > "$out/$unit.tmp"
    if grep -n '@[A-Z_]*@' "$out/$unit.tmp" >&2; then
        rm -f "$out/$unit.tmp"
        die "$tpl: unknown placeholder left (above)"
    fi
    mv "$out/$unit.tmp" "$out/$unit"
    echo "$unit: MemoryMax=$memory_max (profile $name: budget $budget MB + margin $margin MB)"
done
