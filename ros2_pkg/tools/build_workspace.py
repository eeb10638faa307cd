"""Build the ROS 2 packages of ros2_pkg/ with colcon into a Python venv that has the `ros-*` wheels.

    python ros2_pkg/tools/build_workspace.py [--venv .venv] [--work .cache/ros_ws]

The PyPI `ros-*` wheels carry CMake files that name the wheel build host's Python and numpy
include directories (/opt/python/cp311-cp311/...); they are rewritten to this venv's once, then
colcon builds with AMENT_PREFIX_PATH/CMAKE_PREFIX_PATH at the venv and installs into it (merged),
so the interfaces and nodes import like any installed package. On a ROS 2 system install, use
plain `colcon build` instead (see the README).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

ROS2_PKG = Path(__file__).resolve().parents[1]
WHEEL_PYTHON = "/opt/python/cp311-cp311"


def fix_wheel_cmake_paths(venv: Path) -> int:
    """Point the wheels' baked include paths at this interpreter's; returns files changed."""
    import numpy

    replacements = {
        f"{WHEEL_PYTHON}/lib/python3.11/site-packages/numpy/_core/include": numpy.get_include(),
        f"{WHEEL_PYTHON}/include/python3.11": sysconfig.get_paths()["include"],
    }
    changed = 0
    for path in (venv / "share").glob("*/cmake/*.cmake"):
        text = path.read_text(encoding="utf-8", errors="surrogateescape")
        if WHEEL_PYTHON not in text:
            continue
        for old, new in replacements.items():
            text = text.replace(old, new)
        path.write_text(text, encoding="utf-8", errors="surrogateescape")
        changed += 1
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--venv", type=Path, default=Path(sys.prefix), help="venv holding the ros-* wheels")
    parser.add_argument("--work", type=Path, default=Path(".cache/ros_ws"), help="colcon build and log folders")
    args = parser.parse_args(argv)
    venv, work = args.venv.resolve(), args.work.resolve()
    if not (venv / "share" / "ament_cmake").is_dir():
        sys.exit(
            f"{venv} has no ament_cmake; install the build wheels first: "
            f"pip install -r {ROS2_PKG / 'requirements-build.txt'}"
        )
    print(f"patched {fix_wheel_cmake_paths(venv)} CMake files of the ros-* wheels")
    env = dict(
        os.environ,
        AMENT_PREFIX_PATH=str(venv),
        CMAKE_PREFIX_PATH=str(venv),
        PATH=f"{venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
        PYTHONNOUSERSITE="1",
    )
    cmd = [
        str(venv / "bin" / "colcon"),
        "--log-base",
        str(work / "log"),
        "build",
        "--base-paths",
        str(ROS2_PKG),
        "--build-base",
        str(work / "build"),
        "--install-base",
        str(venv),
        "--merge-install",
        "--event-handlers",
        "console_direct-",
        "--cmake-args",
        f"-DPython3_EXECUTABLE={venv / 'bin' / 'python'}",
        "-DBUILD_TESTING=OFF",
    ]
    return subprocess.call(cmd, env=env)


if __name__ == "__main__":
    sys.exit(main())
