"""llm_node as a real process on a private DDS domain, driven by rclpy clients in the test."""

from __future__ import annotations

import json
import threading
import time

import pytest
import ros_rig

pytestmark = pytest.mark.skipif(ros_rig.skip_reason() is not None, reason=str(ros_rig.skip_reason()))

SYSTEM = "You are a helpful assistant on a robot. Answer in one or two short sentences."


def resolved(future, timeout: float, what: str):
    """The result of an rclpy future completed by the client's executor thread."""
    done = threading.Event()
    future.add_done_callback(lambda _: done.set())
    if not done.wait(timeout):
        raise AssertionError(f"no {what} within {timeout} s")
    return future.result()


class LlmClient:
    """Action, service and lifecycle clients of one llm_node."""

    def __init__(self, ros: ros_rig.RosClient, node: str = "llm"):
        from edgellm_interfaces.action import Generate
        from edgellm_interfaces.srv import ParseCommand, Query
        from lifecycle_msgs.srv import ChangeState, GetState
        from rclpy.action import ActionClient

        n = ros.node
        self.Generate = Generate
        self.action = ActionClient(n, Generate, f"/{node}/generate")
        self.query = n.create_client(Query, f"/{node}/query")
        self.parse = n.create_client(ParseCommand, f"/{node}/parse_command")
        self.change_state = n.create_client(ChangeState, f"/{node}/change_state")
        self.get_state = n.create_client(GetState, f"/{node}/get_state")

    def goal(self, prompt: str = "", **fields):
        return self.Generate.Goal(prompt=prompt, **fields)

    def send(self, goal, feedback: list | None = None, timeout: float = 10.0):
        """Send a goal; returns its handle (accepted or not). Feedback is appended with arrival times."""
        assert self.action.wait_for_server(timeout_sec=timeout), "no Generate action server"
        on_feedback = None if feedback is None else (lambda f: feedback.append((time.perf_counter(), f.feedback)))
        return resolved(self.action.send_goal_async(goal, feedback_callback=on_feedback), timeout, "goal response")

    def run(self, goal, feedback: list | None = None, timeout: float = 60.0):
        handle = self.send(goal, feedback)
        assert handle.accepted, "goal rejected"
        return resolved(handle.get_result_async(), timeout, "result")

    def call(self, client, request, timeout: float = 60.0):
        assert client.wait_for_service(timeout_sec=10.0), f"service {client.srv_name} not available"
        return resolved(client.call_async(request), timeout, f"{client.srv_name} response")

    def transition(self, transition_id: int) -> bool:
        from lifecycle_msgs.srv import ChangeState

        request = ChangeState.Request()
        request.transition.id = transition_id
        return self.call(self.change_state, request).success

    def state(self) -> str:
        from lifecycle_msgs.srv import GetState

        return self.call(self.get_state, GetState.Request()).current_state.label


@pytest.fixture(scope="module")
def llm(tmp_path_factory):
    """One active llm_node (default model, max_queue 1) and a client, shared by this module's tests."""
    domain = ros_rig.next_domain()
    node = ros_rig.NodeProcess(
        "llm_node",
        domain,
        tmp_path_factory.mktemp("llm"),
        name="llm",
        params={"max_queue": 1, "max_tokens": 48, "command_embedder": "minilm-l6"},
    )
    with node, ros_rig.RosClient(domain) as ros:
        client = LlmClient(ros)
        assert client.action.wait_for_server(timeout_sec=30), node.log()
        yield node, ros, client


@pytest.mark.model
def test_generate_streams_the_sdk_answer_token_by_token(llm, engine):
    node, _, client = llm
    feedback: list = []
    prompt = "Name three colours of a traffic light."
    response = client.run(client.goal(prompt, max_tokens=40), feedback)
    result = response.result
    expected = engine.complete(
        [{"role": "system", "content": SYSTEM}, {"role": "user", "content": prompt}], max_tokens=40
    )
    assert response.status == 4, node.log()  # SUCCEEDED
    assert result.text == expected.text and result.finish_reason == expected.finish_reason
    assert "".join(f.delta for _, f in feedback) == result.text
    assert len(feedback) >= 10 and len(feedback) >= result.usage.completion_tokens - 2
    counts = [f.token_count for _, f in feedback]
    assert counts == sorted(counts) and counts[-1] <= result.usage.completion_tokens
    assert result.usage.prompt_tokens == len(
        engine.prompt_ids([{"role": "system", "content": SYSTEM}, {"role": "user", "content": prompt}])
    )
    assert result.usage.decode_tokens_per_s > 5


@pytest.mark.model
def test_cancel_mid_generation_returns_the_partial_text_quickly(llm):
    node, _, client = llm
    feedback: list = []
    handle = client.send(
        client.goal("Write a long story about a robot that learns to paint.", max_tokens=400, stop=["never-appears"]),
        feedback,
    )
    ros_rig.wait_for(lambda: len(feedback) >= 5, 30, "5 feedback messages", node)
    result_future = handle.get_result_async()
    t0 = time.perf_counter()
    handle.cancel_goal_async()
    response = resolved(result_future, 10, "cancelled result")
    elapsed = time.perf_counter() - t0
    assert response.status == 5, node.log()  # CANCELED
    assert response.result.finish_reason == "cancelled"
    assert response.result.text and response.result.text.startswith("".join(f.delta for _, f in feedback[:5]))
    assert response.result.usage.completion_tokens < 400
    assert elapsed < 1.0, f"cancel took {elapsed:.3f} s"


@pytest.mark.model
def test_goals_beyond_max_queue_are_rejected_and_the_others_are_not_corrupted(llm):
    node, _, client = llm
    goal = client.goal("Describe the moon in two sentences.", max_tokens=32)
    handles = [client.send(goal) for _ in range(3)]  # one runs, one waits (max_queue 1), one is refused
    assert [h.accepted for h in handles] == [True, True, False], node.log()
    results = [resolved(h.get_result_async(), 60, "result").result for h in handles[:2]]
    assert results[0].text and results[0].text == results[1].text
    assert results[1].cached  # the same deterministic request again: from the response cache
    assert client.run(goal).result.text == results[0].text  # the line is free again


def long_goal(client, prompt: str):
    """A goal that streams for many seconds unless cancelled."""
    return client.goal(prompt, max_tokens=400, stop=["never-appears"])


@pytest.mark.model
def test_a_goal_cancelled_before_it_runs_gives_its_place_back_at_once(llm, engine):
    """max_queue 1: one goal runs, a second waits its turn. Cancelled before it runs, the second ends
    at once and the next goal gets its place (a place kept by a goal that never runs blocks the line)."""
    node, _, client = llm
    feedback: list = []
    running = client.send(long_goal(client, "Write a long story about a lighthouse keeper and a seagull."), feedback)
    ros_rig.wait_for(lambda: feedback, 30, "the first goal to stream", node)
    waiting = client.send(client.goal("Say hello.", max_tokens=8))
    assert running.accepted and waiting.accepted, node.log()
    assert not client.send(client.goal("Say hi.", max_tokens=8)).accepted  # the line is full
    resolved(waiting.cancel_goal_async(), 10, "cancel response")
    cancelled = resolved(waiting.get_result_async(), 5, "the cancelled goal's result")
    assert cancelled.status == 5, node.log()  # CANCELED
    assert cancelled.result.finish_reason == "cancelled" and cancelled.result.text == ""
    first = running.get_result_async()
    assert not first.done()  # it ended without its turn: the first goal still runs

    prompt = "Name a primary colour."
    following = client.send(client.goal(prompt, max_tokens=12))
    assert following.accepted, node.log()  # the cancelled goal's place was given back
    running.cancel_goal_async()
    assert resolved(first, 10, "the first goal's result").status == 5
    done = resolved(following.get_result_async(), 60, "the following goal's result")
    expected = engine.complete(
        [{"role": "system", "content": SYSTEM}, {"role": "user", "content": prompt}], max_tokens=12
    )
    assert done.status == 4 and done.result.text == expected.text, node.log()


@pytest.mark.model
def test_deactivating_ends_the_goals_in_line_and_frees_their_places(llm):
    from diagnostic_msgs.msg import DiagnosticArray
    from lifecycle_msgs.msg import Transition

    node, ros, client = llm
    feedback: list = []
    running = client.send(long_goal(client, "Write a long story about a robot who tends a garden."), feedback)
    ros_rig.wait_for(lambda: feedback, 30, "the first goal to stream", node)
    waiting = client.send(client.goal("Count to five.", max_tokens=16))
    assert running.accepted and waiting.accepted, node.log()
    try:
        assert client.transition(Transition.TRANSITION_DEACTIVATE) and client.state() == "inactive"
    finally:
        assert client.transition(Transition.TRANSITION_ACTIVATE) and client.state() == "active"
    arrays = ros.collect(DiagnosticArray, "/diagnostics")

    def line_is_empty() -> bool:
        values = {kv.key: kv.value for kv in arrays[-1].status[0].values} if arrays else {}
        return values.get("busy") == "False" and values.get("queue_depth") == "0"

    ros_rig.wait_for(line_is_empty, 10, "an empty line after deactivation (no place left behind)", node)
    assert client.action.wait_for_server(timeout_sec=10)
    t0 = time.perf_counter()
    response = client.run(client.goal("Say hi.", max_tokens=4), timeout=30)
    assert response.status == 4 and response.result.usage.completion_tokens == 4, node.log()
    assert time.perf_counter() - t0 < 10  # nothing left in line from before


@pytest.mark.model
@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({}, "the request is empty"),
        ({"prompt": "hi", "messages": "chat"}, "not both"),
        ({"prompt": "hi", "temperature": -1.0}, "temperature"),
        ({"prompt": "hi", "json_schema": "{not json"}, "json_schema is not valid JSON"),
        ({"prompt": "hi", "max_tokens": 100000}, "context"),
        ({"messages": "bad-role"}, "role 'robot'"),
    ],
)
def test_an_invalid_goal_is_aborted_with_the_reason(llm, fields, reason):
    from edgellm_interfaces.msg import ChatMessage

    node, _, client = llm
    if fields.get("messages") == "chat":
        fields["messages"] = [ChatMessage(role="user", content="hello")]
    elif fields.get("messages") == "bad-role":
        fields["messages"] = [ChatMessage(role="robot", content="hello")]
    response = client.run(client.goal(**fields))
    assert response.status == 6, node.log()  # ABORTED
    assert response.result.finish_reason == "error" and reason in response.result.error


@pytest.mark.model
def test_json_schema_goal_yields_matching_json(llm):
    schema = {
        "type": "object",
        "properties": {"colour": {"enum": ["red", "green", "blue"]}},
        "required": ["colour"],
        "additionalProperties": False,
    }
    _, _, client = llm
    result = client.run(client.goal("What colour is the sky? Answer in JSON.", json_schema=json.dumps(schema))).result
    assert json.loads(result.text)["colour"] in ("red", "green", "blue")


@pytest.mark.model
def test_query_service_topic_bridge_and_parse_command(llm, engine):
    from edgellm_interfaces.srv import ParseCommand, Query
    from std_msgs.msg import String

    node, ros, client = llm
    answer = client.call(client.query, Query.Request(prompt="What is 2 + 3?", max_tokens=24))
    expected = engine.complete(
        [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "What is 2 + 3?"}], max_tokens=24
    )
    assert answer.success and answer.text == expected.text and answer.usage.completion_tokens > 0

    responses = ros.collect(String, "/llm/response")
    publisher = ros.node.create_publisher(String, "/llm/prompt", 10)
    ros_rig.wait_for(lambda: publisher.get_subscription_count() > 0, 10, "the ~/prompt subscriber", node)
    publisher.publish(String(data="What is 2 + 3?"))
    ros_rig.wait_for(lambda: responses, 30, "a ~/response", node)
    expected = engine.complete(
        [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "What is 2 + 3?"}], max_tokens=48
    )  # the node's max_tokens
    assert responses[0].data == expected.text

    command = client.call(client.parse, ParseCommand.Request(request="drive forward 1.5 meters"))
    assert command.accepted and command.command == "move", command.reason
    assert json.loads(command.arguments_json) == {"direction": "forward", "distance_m": 1.5}
    refused = client.call(client.parse, ParseCommand.Request(request="drive forward 50 meters"))
    assert not refused.accepted and refused.reason
    not_a_command = client.call(client.parse, ParseCommand.Request(request="open the pod bay doors"))
    assert not not_a_command.accepted and not not_a_command.needs_confirmation, not_a_command.command
    unsure = client.call(client.parse, ParseCommand.Request(request="stop the download"))
    assert not unsure.accepted and unsure.needs_confirmation and unsure.command == "stop", unsure.reason
    empty = client.call(client.parse, ParseCommand.Request(request="  "))
    assert not empty.accepted and "empty" in empty.reason


@pytest.mark.model
def test_diagnostics_report_model_queue_and_cache(llm):
    from diagnostic_msgs.msg import DiagnosticArray

    node, ros, client = llm
    client.run(client.goal("Say hello.", max_tokens=8))
    arrays = ros.collect(DiagnosticArray, "/diagnostics")
    ros_rig.wait_for(lambda: arrays, 5, "a /diagnostics message", node)
    status = arrays[-1].status[0]
    values = {kv.key: kv.value for kv in status.values}
    assert status.level == b"\x00" and status.message == "ready" and status.name.endswith("/llm")
    assert values["state"] == "active" and values["model_id"].startswith("smollm2-135m:")
    assert int(values["requests"]) >= 1 and float(values["tokens_per_s"]) > 0
    assert values["queue_depth"] == "0" and 0.0 <= float(values["cache_hit_rate"]) <= 1.0


@pytest.mark.model
def test_a_bad_parameter_value_is_refused_at_run_time(llm):
    from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
    from rcl_interfaces.srv import SetParameters

    _, ros, client = llm
    setter = ros.node.create_client(SetParameters, "/llm/set_parameters")
    bad = Parameter(name="max_tokens", value=ParameterValue(type=ParameterType.PARAMETER_INTEGER, integer_value=0))
    wrong_type = Parameter(
        name="max_queue", value=ParameterValue(type=ParameterType.PARAMETER_STRING, string_value="two")
    )
    results = client.call(setter, SetParameters.Request(parameters=[bad, wrong_type])).results
    assert not results[0].successful and "max_tokens" in results[0].reason
    assert not results[1].successful
    good = Parameter(name="max_tokens", value=ParameterValue(type=ParameterType.PARAMETER_INTEGER, integer_value=48))
    assert client.call(setter, SetParameters.Request(parameters=[good])).results[0].successful


@pytest.mark.model
def test_lifecycle_transitions_load_and_unload_the_model(tmp_path):
    from diagnostic_msgs.msg import DiagnosticArray
    from lifecycle_msgs.msg import Transition

    domain = ros_rig.next_domain()
    with (
        ros_rig.NodeProcess("llm_node", domain, tmp_path, name="llm", params={"autostart": False}) as node,
        ros_rig.RosClient(domain) as ros,
    ):
        client = LlmClient(ros)
        arrays = ros.collect(DiagnosticArray, "/diagnostics")
        assert client.state() == "unconfigured"
        ros_rig.wait_for(lambda: arrays, 10, "diagnostics", node)
        assert "not loaded" in arrays[-1].status[0].message
        assert not client.action.wait_for_server(timeout_sec=0.5)  # nothing served before activation

        assert client.transition(Transition.TRANSITION_CONFIGURE) and client.state() == "inactive"
        assert "loaded smollm2-135m" in node.log()
        assert client.transition(Transition.TRANSITION_ACTIVATE) and client.state() == "active"
        assert client.run(client.goal("Say hi.", max_tokens=4)).result.usage.completion_tokens == 4

        assert client.transition(Transition.TRANSITION_DEACTIVATE) and client.state() == "inactive"
        ros_rig.wait_for(lambda: not client.action.server_is_ready(), 5, "the action server to close", node)
        assert client.transition(Transition.TRANSITION_CLEANUP) and client.state() == "unconfigured"
        arrays.clear()
        ros_rig.wait_for(lambda: arrays and "not loaded" in arrays[-1].status[0].message, 5, "unloaded", node)


def test_configure_failure_is_reported_and_the_node_stays_up(tmp_path):
    from diagnostic_msgs.msg import DiagnosticArray

    domain = ros_rig.next_domain()
    params = {"model": str(tmp_path / "no-such-model")}
    with (
        ros_rig.NodeProcess("llm_node", domain, tmp_path, name="llm", params=params) as node,
        ros_rig.RosClient(domain) as ros,
    ):
        arrays = ros.collect(DiagnosticArray, "/diagnostics")
        ros_rig.wait_for(lambda: arrays, 15, "diagnostics", node)
        status = arrays[-1].status[0]
        assert status.level == b"\x02" and "configure failed" in status.message and "no-such-model" in status.message
        assert LlmClient(ros).state() == "unconfigured" and node.alive()


@pytest.mark.parametrize(
    ("param", "value", "reason"),
    [("max_queue", 99, "max_queue"), ("variant", 3, "variant"), ("command_set", "no_colon", "command_set")],
)
def test_a_bad_start_parameter_exits_with_code_2_and_names_it(tmp_path, param, value, reason):
    node = ros_rig.NodeProcess("llm_node", ros_rig.next_domain(), tmp_path, name="llm", params={param: value})
    with node:
        ros_rig.wait_for(lambda: not node.alive(), 20, "the node to exit")
    assert node.returncode == 2, node.log()
    assert reason in node.log()
