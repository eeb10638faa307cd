#!/usr/bin/env bash
# make check-aarch64: install edgellm-sdk on 64-bit Arm and run its core test subset there,
# emulated on this x86-64 machine: Debian arm64 rootfs (debootstrap) + qemu-user-static via binfmt_misc,
# a venv inside it with PyPI's aarch64 wheels, then pytest on the tiny generated model.
#
# Everything is cached under .cache/aarch64 (git-ignored): the rootfs, the venv and pip's cache
# live in the rootfs. A second run only re-copies the checkout, reinstalls the package and tests.
# Needs root (debootstrap, chroot, mount). Mounts are made in a private mount namespace
# (unshare), so nothing stays mounted under the checkout, even when a step is killed.
#
# Knobs: AARCH64_CACHE (default .cache/aarch64), DEBIAN_MIRROR, AARCH64_SUITE (bookworm),
#        AARCH64_CPU (cortex-a72 = Raspberry Pi 4, default; cortex-a76 = Raspberry Pi 5),
#        AARCH64_PYTEST_ARGS (extra pytest arguments), AARCH64_REBUILD=1 (start from scratch).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HERE=$REPO/devices/aarch64
CACHE=${AARCH64_CACHE:-$REPO/.cache/aarch64}
ROOTFS=$CACHE/rootfs
SUITE=${AARCH64_SUITE:-bookworm}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
VENV=/opt/edgellm-venv                       # inside the rootfs
QEMU=/usr/bin/qemu-aarch64-static
CPU=${AARCH64_CPU:-cortex-a72}
export QEMU_CPU=$CPU                          # read by qemu-user from the guest's environment
HOST_PACKAGES=(qemu-user-static debootstrap binfmt-support)
# The core subset: engine, sampling, GGUF->ONNX conversion, model store, prefix/response caches,
# constrained decoding, tools, commands, CLI, sensors' pure logic. Audio, ROS 2, MQTT and the
# real-model files are left out; aarch64_subset.py also deselects any test needing the real model.
TEST_FILES=(test_import.py test_sampling.py test_convert.py test_engine.py test_prefix_cache.py test_models.py
            test_response_cache.py test_constrain.py test_tools.py test_commands.py test_cli.py
            test_sensor_facts.py test_sensor_push.py)
# what those tests import beyond the package's own dependencies (bounds as in pyproject.toml)
EXTRAS="tools,structured"
TEST_DEPS=("pytest>=8" "hypothesis>=6" "pydantic>=2")

T0=$(date +%s)
say()  { printf '\n==> [%4ss] %s\n' "$(( $(date +%s) - T0 ))" "$*"; }
die()  { printf '\ncheck-aarch64: FAILED: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "needs root (debootstrap, chroot and mount); run it as root"
NATIVE=0; [ "$(uname -m)" = aarch64 ] && NATIVE=1 && say "note: the host is aarch64 itself; no emulation involved"

# one run at a time (another checkout session may start one); the lock lives beside the cache
mkdir -p "$(dirname "$CACHE")"
exec 9>"$CACHE.lock"
flock -n 9 || { say "another check-aarch64 is running; waiting for it (at most 1 h)"; flock -w 3600 9; } \
  || die "another check-aarch64 still holds $CACHE.lock"

# --- 1. host tools --------------------------------------------------------------------------------
missing=()
for p in "${HOST_PACKAGES[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  say "installing host packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  timeout 600 apt-get install -y -qq "${missing[@]}" >/dev/null \
    || { timeout 300 apt-get update -qq && timeout 600 apt-get install -y -qq "${missing[@]}" >/dev/null; } \
    || die "could not apt-get install ${missing[*]}"
fi

# --- 2. binfmt_misc: let the kernel run aarch64 ELF files through qemu-aarch64-static ---------------
# systemd-binfmt does not run in a container, so register by hand. The F flag (Debian's default)
# makes the kernel open the interpreter now, so it need not exist inside the chroot.
BINFMT=/proc/sys/fs/binfmt_misc
interp=
setup_binfmt() {
  if [ ! -e "$BINFMT/status" ]; then
    say "mounting binfmt_misc"
    mount -t binfmt_misc binfmt_misc "$BINFMT" \
      || die "binfmt_misc is not mounted and cannot be (a container without CAP_SYS_ADMIN?): aarch64 programs cannot run here"
  fi
  if ! grep -qx enabled "$BINFMT/qemu-aarch64" 2>/dev/null; then
    say "registering qemu-aarch64 with binfmt_misc"
    update-binfmts --enable qemu-aarch64 2>/dev/null || update-binfmts --import qemu-aarch64 2>/dev/null || true
  fi
  if ! grep -qx enabled "$BINFMT/qemu-aarch64" 2>/dev/null; then
    # what update-binfmts would write, straight to the kernel (which decodes the \x escapes)
    printf '%s' ':qemu-aarch64:M::\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00:\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff:'"$QEMU"':F' \
      > "$BINFMT/register" 2>/dev/null || true
  fi
  grep -qx enabled "$BINFMT/qemu-aarch64" 2>/dev/null \
    || die "could not register qemu-aarch64 in $BINFMT (binfmt_misc read-only or not namespaced for this container)"
  interp=$(sed -n 's/^interpreter //p' "$BINFMT/qemu-aarch64")
  flags=$(sed -n 's/^flags: //p' "$BINFMT/qemu-aarch64")
  say "binfmt: aarch64 ELF -> $interp (flags $flags)"
  arch-test arm64 >/dev/null 2>&1 || die "arch-test arm64 fails: the kernel still cannot run aarch64 programs"
}
[ $NATIVE = 1 ] || setup_binfmt

# --- helpers --------------------------------------------------------------------------------------
# The emulated CPU. qemu-user 7.2 (bookworm) shows the guest the host's x86 /proc/cpuinfo, and
# onnxruntime's cpuinfo library then finds no Arm core and dereferences NULL at `import onnxruntime`
# ("qemu: uncaught target signal 11"). So the guest gets the /proc/cpuinfo of the Arm core that
# QEMU_CPU emulates (its HWCAPs come from qemu and agree): Cortex-A72 = Raspberry Pi 4 (default),
# Cortex-A76 = Raspberry Pi 5.
case $CPU in
  cortex-a72) CPU_PART=0xd08 CPU_FEATURES="fp asimd evtstrm crc32 cpuid" ;;
  cortex-a76) CPU_PART=0xd0b CPU_FEATURES="fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp" ;;
  *) die "AARCH64_CPU=$CPU: use cortex-a72 (Raspberry Pi 4) or cortex-a76 (Raspberry Pi 5)" ;;
esac
CPUINFO=$CACHE/cpuinfo-$CPU
write_cpuinfo() {
  mkdir -p "$CACHE"
  local i n; n=$(nproc --all)
  for ((i = 0; i < n; i++)); do
    printf 'processor\t: %s\nBogoMIPS\t: 108.00\nFeatures\t: %s\nCPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x0\nCPU part\t: %s\nCPU revision\t: 3\n\n' \
      "$i" "$CPU_FEATURES" "$CPU_PART"
  done > "$CPUINFO"
}

# in_rootfs SECONDS CMD...: run CMD inside the rootfs, killed after SECONDS. Private mount + pid
# namespace: its mounts and any stray process vanish with it (bash is the namespace's init, and
# --kill-child SIGKILLs it when unshare dies). Fresh /proc and /sys, the Arm /proc/cpuinfo, a tmpfs
# /dev with the host's basic nodes bound in. CMD must not be the init itself: qemu-user dies of a
# guest crash by re-raising the signal on itself, which a pid namespace's init ignores, so it hangs.
# shellcheck disable=SC2016  # the inner script expands its own variables
in_rootfs() {
  local limit=$1; shift
  timeout -k 5 "$limit" unshare --mount --propagation private --pid --fork --kill-child -- bash -euo pipefail -c '
    r=$1; cpuinfo=$2; shift 2
    ulimit -c 0
    mount -t proc proc "$r/proc"
    mount --bind "$cpuinfo" "$r/proc/cpuinfo"
    mount -t sysfs sysfs "$r/sys" 2>/dev/null || true
    mount -t tmpfs -o mode=755,size=64k dev "$r/dev"
    for n in null zero full random urandom tty; do touch "$r/dev/$n"; mount --bind "/dev/$n" "$r/dev/$n"; done
    mkdir -p "$r/dev/shm" "$r/dev/pts"; mount -t tmpfs -o mode=1777 shm "$r/dev/shm"
    ln -s /proc/self/fd "$r/dev/fd"; ln -s fd/0 "$r/dev/stdin"; ln -s fd/1 "$r/dev/stdout"; ln -s fd/2 "$r/dev/stderr"
    chroot "$r" /usr/bin/env -i HOME=/root LANG=C.UTF-8 TERM="${TERM:-dumb}" QEMU_CPU="$QEMU_CPU" \
      PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin \
      SSL_CERT_FILE=/etc/ssl/host-ca.crt PIP_CERT=/etc/ssl/host-ca.crt REQUESTS_CA_BUNDLE=/etc/ssl/host-ca.crt \
      PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_DEFAULT_TIMEOUT="${PIP_DEFAULT_TIMEOUT:-120}" PIP_NO_INPUT=1 \
      ${PIP_INDEX_URL:+PIP_INDEX_URL=$PIP_INDEX_URL} "$@"
  ' in_rootfs "$ROOTFS" "$CPUINFO" "$@"
}

# Without the F flag the kernel looks the interpreter up inside the chroot: keep a copy there.
qemu_into_rootfs() {
  [ -n "$interp" ] || return 0
  mkdir -p "$ROOTFS$(dirname "$interp")"
  cmp -s "$QEMU" "$ROOTFS$interp" || cp -L "$QEMU" "$ROOTFS$interp"
}

mounted_under() { awk -v d="$1" 'index($2, d) == 1 {print $2}' /proc/mounts; }

# --- 3. the Debian arm64 rootfs ---------------------------------------------------------------------
[ "${AARCH64_REBUILD:-0}" = 1 ] && { say "AARCH64_REBUILD=1: removing $CACHE"; rm -rf --one-file-system "$CACHE"; }
if [ ! -e "$ROOTFS/.edgellm-rootfs-ok" ]; then
  [ -z "$(mounted_under "$ROOTFS")" ] || die "something is mounted under $ROOTFS; unmount it first: $(mounted_under "$ROOTFS")"
  rm -rf --one-file-system "$ROOTFS"; mkdir -p "$ROOTFS"
  say "debootstrap stage 1: Debian $SUITE arm64 (minbase + python3) from $MIRROR"
  # debootstrap bind-mounts /dev when it thinks it is in docker: keep that in a private namespace
  timeout -k 5 1800 unshare --mount --propagation private -- \
    debootstrap --foreign --arch=arm64 --variant=minbase --include=python3,python3-venv \
      "$SUITE" "$ROOTFS" "$MIRROR" > "$CACHE/debootstrap-1.log" 2>&1 \
    || die "debootstrap stage 1 failed; see $CACHE/debootstrap-1.log"
  qemu_into_rootfs
  say "debootstrap stage 2 (inside the chroot, emulated)"
  timeout -k 5 3600 unshare --mount --propagation private -- \
    chroot "$ROOTFS" /debootstrap/debootstrap --second-stage > "$CACHE/debootstrap-2.log" 2>&1 \
    || die "debootstrap stage 2 failed; see $CACHE/debootstrap-2.log and $ROOTFS/debootstrap/debootstrap.log"
  printf 'deb %s %s main\n' "$MIRROR" "$SUITE" > "$ROOTFS/etc/apt/sources.list"
  touch "$ROOTFS/.edgellm-rootfs-ok"
else
  say "rootfs cached: $ROOTFS"
  qemu_into_rootfs
fi
# the host's CA bundle (pip may sit behind a TLS-intercepting proxy that the host trusts)
cp -L "${PIP_CERT:-/etc/ssl/certs/ca-certificates.crt}" "$ROOTFS/etc/ssl/host-ca.crt" 2>/dev/null \
  || { mkdir -p "$ROOTFS/etc/ssl" && cp -L /etc/ssl/certs/ca-certificates.crt "$ROOTFS/etc/ssl/host-ca.crt"; }

write_cpuinfo
say "inside the rootfs (QEMU_CPU=$CPU):"
# shellcheck disable=SC2016
in_rootfs 120 /bin/sh -c 'printf "  uname -m: %s\n  kernel:   %s\n  os:       %s\n" "$(uname -m)" "$(uname -r)" "$(. /etc/os-release; echo "$PRETTY_NAME")"'
[ "$(in_rootfs 120 uname -m)" = aarch64 ] || die "uname -m inside the rootfs is not aarch64"
in_rootfs 120 grep -m2 -E "^Features|^CPU part" /proc/cpuinfo | sed "s/^/  cpuinfo:  /"

# --- 4. the checkout, copied in (not bind-mounted: a `make clean` elsewhere must never reach it) ---
say "copying the checkout to /src and the tests to /check"
rm -rf --one-file-system "$ROOTFS/src" "$ROOTFS/check"
mkdir -p "$ROOTFS/src" "$ROOTFS/check"
if git -C "$REPO" rev-parse --git-dir >/dev/null 2>&1; then
  (cd "$REPO" && git ls-files -z --cached --others --exclude-standard | xargs -0 -r ls -d 2>/dev/null \
     | tar -cf - --no-recursion -T -) | tar -xf - -C "$ROOTFS/src"
else
  tar -C "$REPO" --exclude=./.venv --exclude=./.cache --exclude=./.git --exclude='*.egg-info' -cf - . | tar -xf - -C "$ROOTFS/src"
fi
# tests run from /check, which has no edgellm_sdk/: the import can only come from the installed wheel
cp -r "$ROOTFS/src/tests" "$ROOTFS/src/pyproject.toml" "$ROOTFS/check/"
cp "$HERE/aarch64_subset.py" "$ROOTFS/check/"

# --- 5. venv with the dependencies (cached; redone when pyproject.toml or this list changes) -------
deps_key=$(cat "$REPO/pyproject.toml" <(printf '%s\n' "$EXTRAS" "${TEST_DEPS[@]}") | sha256sum | cut -c1-16)
if [ "$(cat "$ROOTFS$VENV/.deps-key" 2>/dev/null)" != "$deps_key" ]; then
  say "venv + dependencies from PyPI (aarch64 wheels)"
  [ -x "$ROOTFS$VENV/bin/python" ] || in_rootfs 600 python3 -m venv "$VENV" || die "python3 -m venv failed"
  in_rootfs 600 "$VENV/bin/pip" install -q --upgrade pip "setuptools>=77" wheel \
    || die "pip could not upgrade pip/setuptools inside the rootfs"
  # the package's own dependencies + the test imports, resolved from /src's metadata
  in_rootfs 2400 "$VENV/bin/pip" install -q --only-binary=:all: --no-build-isolation \
      "/src[$EXTRAS]" "${TEST_DEPS[@]}" \
    || die "pip install of the dependencies failed (an aarch64 wheel missing on PyPI? see above)"
  echo "$deps_key" > "$ROOTFS$VENV/.deps-key"
else
  say "venv cached: $VENV (dependencies unchanged)"
fi

# --- 6. the package itself, always reinstalled from the fresh copy --------------------------------
say "pip install /src (non-editable wheel build) inside the rootfs"
in_rootfs 900 "$VENV/bin/pip" install -q --no-deps --no-build-isolation --force-reinstall /src \
  || die "pip install /src failed inside the rootfs"

say "what runs (inside the rootfs):"
in_rootfs 300 /bin/sh -c "cd /check && $VENV/bin/python -" <<'EOF' || die "the import probe failed inside the rootfs"
import platform, struct, sys
with open(sys.executable, "rb") as f:
    head = f.read(20)
e_machine = struct.unpack("<H", head[18:20])[0]
import numpy, onnxruntime, tokenizers, edgellm_sdk
print(f"  platform.machine(): {platform.machine()}")
print(f"  python:             {sys.version.split()[0]} at {sys.executable} (ELF e_machine 0x{e_machine:x}{' = AArch64' if e_machine == 0xb7 else ''})")
print(f"  onnxruntime:        {onnxruntime.__version__} providers={onnxruntime.get_available_providers()}")
print(f"  numpy / tokenizers: {numpy.__version__} / {tokenizers.__version__}")
print(f"  edgellm_sdk:        {edgellm_sdk.__file__}")
assert platform.machine() == "aarch64" and e_machine == 0xB7, "not running as aarch64"
assert "site-packages" in edgellm_sdk.__file__, "edgellm_sdk not imported from the installed wheel"
EOF

# --- 7. the core test subset ------------------------------------------------------------------------
say "pytest (core subset, tiny generated model, emulated aarch64): ${TEST_FILES[*]}"
files=(); for f in "${TEST_FILES[@]}"; do [ -e "$ROOTFS/check/tests/$f" ] && files+=("tests/$f") || echo "  (missing, skipped: tests/$f)"; done
set +e
# shellcheck disable=SC2086
in_rootfs 3600 /bin/sh -c "cd /check && exec $VENV/bin/python -m pytest -q -p aarch64_subset -p no:cacheprovider \
  --durations=5 ${files[*]} ${AARCH64_PYTEST_ARGS:-}"
rc=$?
set -e
case $rc in 124|137) die "pytest did not finish within 3600 s (killed)" ;; esac
[ $rc = 0 ] || die "pytest exited with $rc inside the aarch64 rootfs"
say "check-aarch64: OK (total $(( $(date +%s) - T0 )) s)"
