# shellcheck shell=bash
# Reading device profiles (devices/profiles/<name>.toml) from bash, for render-units.sh and the
# install scripts, which run before any Python package is installed (and on Python 3.10, which has
# no tomllib). Only two things are read, both in the simple form the profiles use:
#   match = ["Raspberry Pi 4", ...]       top-level, one line: substrings of the device-tree model
#   [memory] budget_mb = 1024             the LLM process memory budget in MB
# tests/test_deploy_files.py checks that these readers agree with tomllib on every profile.
# Functions print errors on stderr and return 1.

EDGELLM_PROFILES_DIR=${EDGELLM_PROFILES_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/profiles}

profile_known() {  # the profile names, space-separated
    local f names=()
    for f in "$EDGELLM_PROFILES_DIR"/*.toml; do
        [[ -e $f ]] && names+=("$(basename "$f" .toml)")
    done
    local IFS=' '
    printf '%s\n' "${names[*]:-none}"
}

profile_path() {  # a profile name or a path to a profile TOML -> the path
    local p=$1
    if [[ $p == */* || $p == *.toml ]]; then
        [[ -f $p ]] || { echo "profile file $p not found" >&2; return 1; }
        printf '%s\n' "$p"
        return 0
    fi
    if [[ ! -f $EDGELLM_PROFILES_DIR/$p.toml ]]; then
        echo "no profile '$p' in $EDGELLM_PROFILES_DIR (known: $(profile_known))" >&2
        return 1
    fi
    printf '%s\n' "$EDGELLM_PROFILES_DIR/$p.toml"
}

profile_budget_mb() {  # PROFILE_TOML -> the integer [memory].budget_mb
    local file=$1 value
    value=$(awk '
        { line = $0; sub(/^[ \t]+/, "", line) }
        line ~ /^\[/ {                       # a table header, maybe with a trailing comment
            header = line; sub(/[ \t]*#.*$/, "", header); gsub(/[ \t]/, "", header)
            table = header; next
        }
        table == "[memory]" && line ~ /^budget_mb[ \t]*=/ {
            v = line; sub(/^budget_mb[ \t]*=[ \t]*/, "", v); sub(/[ \t]*#.*$/, "", v); sub(/[ \t]+$/, "", v)
            print v; exit
        }
    ' "$file")
    if [[ -z $value ]]; then
        echo "$file: no [memory] budget_mb (the LLM process memory budget in MB)" >&2
        return 1
    fi
    value=${value//_/}  # TOML allows 1_024
    if [[ ! $value =~ ^[0-9]+$ ]] || (( 10#$value == 0 )); then
        echo "$file: [memory] budget_mb must be a whole number of MB > 0, got '$value'" >&2
        return 1
    fi
    printf '%s\n' "$((10#$value))"
}

profile_matches() {  # PROFILE_TOML -> its top-level match strings, one per line
    awk '
        /^[ \t]*\[/ { exit }                 # top-level keys only
        /^[ \t]*match[ \t]*=[ \t]*\[/ {
            line = $0; sub(/^[^\[]*\[/, "", line); sub(/\][^\]]*$/, "", line)
            n = split(line, parts, "\"")
            for (i = 2; i <= n; i += 2) print parts[i]
            exit
        }
    ' "$1"
}

profile_detect() {  # MODEL_STRING NAME_GLOB -> the profile (among NAME_GLOB) whose longest match string is in MODEL
    local model=$1 glob=$2 f m best="" best_len=0
    for f in "$EDGELLM_PROFILES_DIR"/$glob.toml; do
        [[ -e $f ]] || continue
        while IFS= read -r m; do
            if [[ -n $m && $model == *"$m"* ]] && (( ${#m} > best_len )); then
                best=$(basename "$f" .toml)
                best_len=${#m}
            fi
        done < <(profile_matches "$f")
    done
    [[ -n $best ]] || return 1
    printf '%s\n' "$best"
}
