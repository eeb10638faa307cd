"""The ROS-free parts of edgellm_ros: the request line, goal conversion, the engine host."""

from __future__ import annotations

import sys
import threading
import time
from types import SimpleNamespace

import pytest
from ros_rig import ROS_SOURCES

sys.path.insert(0, str(ROS_SOURCES))

from edgellm_ros.engine_host import EngineHost, load_command_set
from edgellm_ros.requests import Defaults, generate_kwargs
from edgellm_ros.turns import GoalPlaces, Turn, Turns


def test_turns_run_first_come_first_served_and_refuse_beyond_max_queue():
    turns = Turns(max_queue=2)
    first, second, third = turns.take(), turns.take(), turns.take()
    assert turns.take() is None and turns.waiting == 2
    order: list[int] = []

    def run(turn, tag):
        assert turn.wait(timeout=5)
        order.append(tag)
        turn.done()

    threads = [threading.Thread(target=run, args=(t, i)) for i, t in ((3, third), (2, second))]
    for t in threads:
        t.start()
    time.sleep(0.05)
    assert order == []  # both wait for the first
    first.done()
    for t in threads:
        t.join(5)
    assert order == [2, 3] and not turns.busy and turns.take() is not None


def test_a_waiting_turn_gives_up_on_cancel():
    turns = Turns(max_queue=1)
    running, waiting = turns.take(), turns.take()
    cancel = threading.Event()
    threading.Timer(0.05, lambda: (cancel.set(), turns.wake())).start()
    t0 = time.perf_counter()
    assert waiting.wait(cancel, timeout=5) is False
    assert time.perf_counter() - t0 < 1
    waiting.done()
    running.done()
    assert not turns.busy


def test_a_held_place_keeps_its_order_and_lapses_when_never_claimed():
    turns = Turns(max_queue=1, hold_s=0.3)
    first, second = turns.hold(), turns.hold()  # two goals accepted, in this order, not handed over yet
    assert first is not None and second is not None and turns.take() is None  # held places fill the line
    assert second.claim() and turns.waiting == 1
    t0 = time.perf_counter()
    assert second.wait(timeout=5)  # the first is never claimed (its goal never ran): it lapses ...
    assert 0.2 < time.perf_counter() - t0 < 2  # ... without anyone polling, and the second runs
    assert not first.claim() and not first.in_line
    second.done()
    assert not turns.busy


def accepted(turns: Turns, goals: GoalPlaces, goal_id: bytes) -> None:
    """What the action server does: the goal callback holds a place, the accept callback keeps it."""
    request = SimpleNamespace(prompt="same request")  # goal messages compare equal by value: matched by identity
    turn = turns.hold()
    assert turn is not None
    goals.offer(request, turn)
    goals.accept(goal_id, request)


def line_with_a_waiting_goal(goal_id: bytes) -> tuple[Turns, GoalPlaces, Turn]:
    """max_queue 1: one request runs, the goal ``goal_id`` was accepted and waits (not started)."""
    turns, goals = Turns(max_queue=1, hold_s=0.2), GoalPlaces()
    running = turns.take()
    assert running is not None
    accepted(turns, goals, goal_id)
    time.sleep(0.3)  # past hold_s: an accepted goal's place does not lapse
    assert turns.waiting == 1 and turns.take() is None and len(goals) == 1
    return turns, goals, running


def test_a_goal_cancelled_before_it_starts_gives_its_place_back_at_once():
    turns, goals, running = line_with_a_waiting_goal(b"goal-a")
    goals.cancel(b"goal-a")
    assert turns.waiting == 0  # its place is free while the first request still runs
    following = turns.take()
    assert following is not None
    cancel, turn = goals.start(b"goal-a")  # the executor gets to it later: cancelled, and no place to run in
    assert cancel.is_set() and turn is None
    goals.end(b"goal-a")
    running.done()
    assert following.wait(timeout=1) and len(goals) == 0


def test_a_cancel_before_the_goal_is_accepted_still_wins():
    turns, goals = Turns(max_queue=1), GoalPlaces()
    goals.cancel(b"goal-b")  # the cancel request overtook the accept callback
    accepted(turns, goals, b"goal-b")
    assert not turns.busy  # its place went straight back
    cancel, turn = goals.start(b"goal-b")
    assert cancel.is_set() and turn is None


def test_places_are_kept_by_goal_uuid_in_order_and_end_with_the_goal():
    turns, goals = Turns(max_queue=2), GoalPlaces()
    for goal_id in (b"goal-1", b"goal-2"):
        accepted(turns, goals, goal_id)  # equal requests, each keeps its own place
    cancel_1, turn_1 = goals.start(b"goal-1")
    assert turn_1 is not None and turn_1.wait(timeout=1)  # the first accepted runs first
    goals.cancel(b"goal-2")
    assert not cancel_1.is_set() and turns.waiting == 0  # cancelling one goal leaves the other alone
    goals.end(b"goal-1")  # a started goal's place is its run's to release
    assert turns.busy and len(goals) == 1
    turn_1.done()
    goals.end(b"goal-2")
    assert not turns.busy and len(goals) == 0


def test_cancel_all_releases_waiting_goals_and_signals_running_ones():
    turns, goals, running = line_with_a_waiting_goal(b"waiting")
    cancel_running, _ = goals.start(b"running")  # stands for the run holding ``running``
    goals.cancel_all()  # the node is deactivated or shut down
    assert cancel_running.is_set() and len(goals) == 1  # the running goal ends itself
    assert turns.waiting == 0  # the waiting goal's place is free, and the goal forgotten
    running.done()
    goals.end(b"running")
    assert not turns.busy and len(goals) == 0


def goal(**fields):
    base = {
        "prompt": "",
        "messages": [],
        "system_prompt": "",
        "max_tokens": 0,
        "temperature": 0.0,
        "top_p": 1.0,
        "top_k": 0,
        "repetition_penalty": 1.0,
        "seed": -1,
        "stop": [],
        "json_schema": "",
        "deadline_s": 0.0,
    }
    return SimpleNamespace(**{**base, **fields})


def test_goal_conversion_applies_node_defaults_and_names_bad_fields():
    defaults = Defaults("Be brief.", 64, 5.0)
    messages, kwargs = generate_kwargs(goal(prompt="hi", stop=["\n"]), defaults)
    assert messages == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}]
    assert kwargs["max_tokens"] == 64 and kwargs["deadline_s"] == 5.0 and kwargs["stop"] == ["\n"]
    assert kwargs["sampling"].greedy and kwargs["schema"] is None
    chat = [SimpleNamespace(role="system", content="Own."), SimpleNamespace(role="user", content="x")]
    messages, kwargs = generate_kwargs(goal(messages=chat, max_tokens=8, seed=3, temperature=0.7), defaults)
    assert messages[0]["content"] == "Own." and len(messages) == 2  # their own system prompt wins
    assert kwargs["max_tokens"] == 8 and kwargs["sampling"].seed == 3
    for fields, reason in [
        ({}, "empty"),
        ({"prompt": "a", "top_p": 0.0}, "top_p"),
        ({"prompt": "a", "deadline_s": -1.0}, "deadline_s"),
        ({"prompt": "a", "json_schema": "[1,"}, "json_schema"),
    ]:
        with pytest.raises(ValueError, match=reason):
            generate_kwargs(goal(**fields), defaults)


def test_command_set_spec_errors_are_clear():
    assert load_command_set("edgellm_sdk.robot_demo:DEMO_COMMANDS").commands
    for spec, reason in [
        ("nocolon", "must look like"),
        ("no.such.module:X", "cannot be imported"),
        ("edgellm_sdk.robot_demo:NOPE", "cannot be imported"),
    ]:
        with pytest.raises(ValueError, match=reason):
            load_command_set(spec)
    with pytest.raises(TypeError, match="not an edgellm_sdk CommandSet"):
        load_command_set("edgellm_sdk:__version__")


def test_engine_host_streams_refuses_when_full_and_cancels_on_close(tiny_engine):
    host = EngineHost(tiny_engine, max_queue=0)
    pieces: list[tuple[str, int]] = []
    out = host.generate(
        "hello", {"max_tokens": 6}, cancel=threading.Event(), on_token=lambda d, n: pieces.append((d, n))
    )
    assert out.finish_reason in ("stop", "length") and out.text == "".join(d for d, _ in pieces)
    assert out.usage.completion_tokens == host.stats.tokens and host.stats.requests == 1

    started, results = threading.Event(), []

    def long_run():
        results.append(
            host.generate(
                "hello",
                {"max_tokens": 100, "stop": ["zzzz-never"]},
                cancel=threading.Event(),
                on_token=lambda d, n: started.set(),
            )
        )

    worker = threading.Thread(target=long_run)
    worker.start()
    assert started.wait(10)
    busy = host.generate("hi", {"max_tokens": 2}, cancel=threading.Event())
    assert busy.finish_reason == "busy" and "max_queue" in busy.error and host.stats.busy_refusals == 1
    bad = EngineHost(tiny_engine, max_queue=1)
    assert bad.parse_command("x", deadline_s=None, cancel=threading.Event()).error == "no command_set configured"
    host.cancel_all()
    worker.join(10)
    assert results[0].finish_reason == "cancelled" and results[0].usage.completion_tokens < 100
