"""LoadPlan: the shipped profiles applied to the real default model, explicit overrides, the model's
context limit, the memory guard's errors, and Engine.load / doctor / bench reading the same plan."""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace

import pytest

from edgellm_sdk import Engine, MemoryBudgetExceeded, ProfileError, memory
from edgellm_sdk.models import DEFAULT_MODEL, LoadPlan, model_context
from edgellm_sdk.models.plan import DEFAULT_MAX_CONTEXT, DEFAULT_PREFIX_CACHE_BYTES
from edgellm_sdk.profiles import DeviceProfile, available, default_threads

pytestmark = pytest.mark.model


@pytest.fixture(autouse=True)
def no_budget_override(monkeypatch):
    monkeypatch.delenv(memory.MAX_RSS_ENV, raising=False)


@pytest.fixture(scope="module")
def manifest(default_store):
    return default_store.resolve(DEFAULT_MODEL)


@pytest.mark.parametrize("name", available())
def test_each_shipped_profile_sets_the_plan(default_store, manifest, name):
    profile = DeviceProfile.load(name)
    plan = LoadPlan.resolve(DEFAULT_MODEL, name, store=default_store)
    assert plan.manifest.root == manifest.root and plan.profile == name
    assert plan.variant == profile.variant == "q4"
    assert plan.max_context == min(profile.max_context, 8192)
    assert (plan.threads, plan.inter_op_threads, plan.providers) == (
        profile.threads,
        profile.inter_op_threads,
        profile.providers,
    )
    assert plan.kv_dtype == "float32" and plan.prefix_cache_bytes == profile.prefix_cache_bytes
    assert plan.budget_mb == profile.memory_budget_mb
    assert plan.memory == memory.estimate(
        manifest, "q4", plan.max_context, prefix_cache_bytes=profile.prefix_cache_bytes
    )
    assert plan.check_memory() == plan.memory  # the default model fits every shipped profile
    assert str(plan).startswith(
        f"{DEFAULT_MODEL}:q4 (profile {name}): context {plan.max_context}, {profile.threads} threads on "
    )
    assert f"of a {profile.memory_budget_mb} MB budget" in str(plan)


def test_without_a_profile_the_defaults_apply(default_store, manifest):
    plan = LoadPlan.resolve(manifest)
    assert (plan.variant, plan.max_context, plan.threads) == (
        manifest.default_variant,
        DEFAULT_MAX_CONTEXT,
        default_threads(),
    )
    assert plan.providers == ("CPUExecutionProvider",) and plan.prefix_cache_bytes == DEFAULT_PREFIX_CACHE_BYTES
    assert plan.budget_mb is None and plan.profile is None and str(plan).endswith(", no memory budget")


def test_explicit_arguments_override_the_profile(default_store):
    plan = LoadPlan.resolve(
        DEFAULT_MODEL, "rpi4", variant="fp32", max_context=512, threads=1, prefix_cache=False, store=default_store
    )
    assert (plan.variant, plan.max_context, plan.threads, plan.prefix_cache_bytes) == ("fp32", 512, 1, 0)
    assert plan.memory.prefix_cache_mb == 0 and plan.budget_mb == 1024  # what was not overridden stays
    assert (
        LoadPlan.resolve(DEFAULT_MODEL, "rpi4", prefix_cache=3 << 20, store=default_store).prefix_cache_bytes == 3 << 20
    )
    ducked = LoadPlan.resolve(DEFAULT_MODEL, SimpleNamespace(threads=1), store=default_store)  # duck-typed
    assert (ducked.threads, ducked.max_context, ducked.variant, ducked.profile) == (1, DEFAULT_MAX_CONTEXT, "q4", None)


def test_the_context_is_capped_by_the_model_and_bad_values_are_refused(default_store, manifest):
    assert model_context(manifest.root) == 8192
    assert LoadPlan.resolve(manifest, "x86-64", max_context=100_000).max_context == 8192
    with pytest.raises(ValueError, match="max_context must be an int >= 2, got 1"):
        LoadPlan.resolve(manifest, max_context=1)
    with pytest.raises(ValueError, match=f"variant 'int3' is not in {DEFAULT_MODEL}; available: fp32, q4, q8"):
        LoadPlan.resolve(manifest, "rpi4", variant="int3")
    with pytest.raises(ProfileError, match="kv_dtype must be one of float32, got 'float16'"):
        LoadPlan.resolve(manifest, replace(DeviceProfile.load("rpi4"), kv_dtype="float16"))


def test_a_too_big_context_raises_the_guards_error_naming_what_fits(default_store, manifest):
    tight = replace(DeviceProfile.load("rpi4"), memory_budget_mb=500)
    plan = LoadPlan.resolve(manifest, tight, max_context=8192)  # resolving never refuses: doctor reports it
    assert plan.memory.total_mb > 500 and plan.max_context == 8192
    with pytest.raises(
        MemoryBudgetExceeded,
        match=rf"{DEFAULT_MODEL}:q4 with max_context=8192 needs about .* "
        r"more than the budget of 500 MB; try max_context=\d+",
    ):
        plan.check_memory()
    fits = LoadPlan.resolve(manifest, tight, max_context=2048)
    assert fits.check_memory().total_mb <= 500


def test_a_profile_without_a_prefix_cache_gets_none(tiny_store):
    profile = replace(DeviceProfile.load("rpi4"), threads=1, max_context=64, prefix_cache_mb=0)
    assert LoadPlan.resolve("tiny", profile, store=tiny_store).prefix_cache_bytes == 0
    with Engine.load("tiny", store=tiny_store, profile=profile) as engine:
        assert engine.prefix_cache is None


def test_engine_load_keeps_the_plan_it_loaded_with_the_draft_model_counted(tiny_store):
    profile = replace(DeviceProfile.load("rpi4"), threads=1, max_context=64, prefix_cache_mb=1)
    with Engine.load("tiny", store=tiny_store, profile=profile, variant="fp32", draft="tiny") as engine:
        plan = engine.plan
        assert plan == LoadPlan.resolve("tiny", profile, variant="fp32", draft="tiny", store=tiny_store)
        assert (engine.variant, engine.max_context, engine.prefix_cache.max_bytes) == ("fp32", 64, 1 << 20)
        assert engine.backend.session.get_session_options().intra_op_num_threads == plan.threads == 1
        assert plan.draft.name == "tiny" and plan.draft_variant == "q4"  # the draft's own default variant
        assert plan.memory.draft_mb == memory.draft_footprint_mb(plan.draft, "q4", 64) > 0
        assert f", draft tiny:q4; needs ~{plan.memory.describe()}" in str(plan)
