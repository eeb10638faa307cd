"""Launch files and board configs: no launch wheels exist on PyPI, so they are checked by parsing —
every node's executable is installed, every YAML parameter is one the node declares with a value
it accepts, the Python and XML descriptions agree — and the remapped wiring runs for real."""

from __future__ import annotations

import ast
import importlib
import os
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import ros_rig

pytestmark = pytest.mark.skipif(ros_rig.skip_reason() is not None, reason=str(ros_rig.skip_reason()))

PKG = ros_rig.ROS_SOURCES
LAUNCH_XML, LAUNCH_PY = PKG / "launch" / "edgellm.launch.xml", PKG / "launch" / "edgellm.launch.py"
BOARDS = ("rpi", "jetson")


def xml_nodes() -> dict[str, dict]:
    nodes = {}
    for node in ET.parse(LAUNCH_XML).getroot().iter("node"):
        nodes[node.get("name")] = {
            "pkg": node.get("pkg"),
            "exec": node.get("exec"),
            "params": [p.get("from") for p in node.iter("param")],
            "remaps": sorted((r.get("from"), r.get("to")) for r in node.iter("remap")),
        }
    return nodes


def py_nodes() -> dict[str, dict]:
    nodes = {}
    for call in ast.walk(ast.parse(LAUNCH_PY.read_text())):
        if isinstance(call, ast.Call) and getattr(call.func, "id", "") == "Node":
            kw = {k.arg: k.value for k in call.keywords}
            package = kw["package"].id if isinstance(kw["package"], ast.Name) else ast.literal_eval(kw["package"])
            remaps = ast.literal_eval(kw["remappings"]) if "remappings" in kw else []
            nodes[ast.literal_eval(kw["name"])] = {
                "pkg": package,
                "exec": ast.literal_eval(kw["executable"]),
                "remaps": sorted(remaps),
            }
    return nodes


def node_params(executable: str) -> dict:
    sys.path.insert(0, str(PKG))
    module = importlib.import_module(f"edgellm_ros.{executable}")
    return {p.name: p for p in module.PARAMS}


def test_python_and_xml_launch_files_describe_the_same_nodes():
    xml, py = xml_nodes(), py_nodes()
    assert set(xml) == set(py) == {"llm_node", "speech_node", "sensor_narrator_node"}
    py_source = LAUNCH_PY.read_text()
    assert 'PACKAGE = "edgellm_ros"' in py_source
    for name, node in xml.items():
        assert node["pkg"] == "edgellm_ros" and py[name]["exec"] == node["exec"] == name
        assert node["remaps"] == py[name]["remaps"], name
        assert node["params"] == ["$(find-pkg-share edgellm_ros)/config/$(var board).yaml"]
    for board in BOARDS:
        assert f'"{board}"' in py_source and board in ET.parse(LAUNCH_XML).getroot().find("arg").get("description")


def test_every_launched_executable_is_installed():
    venv = Path(sys.prefix)
    for node in xml_nodes().values():
        script = venv / "lib" / "edgellm_ros" / node["exec"]  # colcon puts ament_python executables here
        assert script.is_file() and os.access(script, os.X_OK), f"{script} missing: run `make ros`"
        assert f"edgellm_ros.{node['exec']}:main" in (PKG / "setup.py").read_text().replace("{PACKAGE}", "edgellm_ros")
    assert (venv / "share" / "edgellm_ros" / "launch" / LAUNCH_XML.name).is_file()
    for board in BOARDS:
        assert (venv / "share" / "edgellm_ros" / "config" / f"{board}.yaml").is_file()


@pytest.mark.parametrize("board", BOARDS)
def test_board_configs_set_only_declared_parameters_with_acceptable_values(board):
    import yaml

    config = yaml.safe_load((PKG / "config" / f"{board}.yaml").read_text())
    assert set(config) == set(xml_nodes())
    for node, section in config.items():
        declared = node_params(node)
        for key, value in section["ros__parameters"].items():
            assert key in declared, f"{board}.yaml: {node} declares no parameter {key!r}"
            param = declared[key]
            assert type(value) is type(param.default) or (param.is_float and type(value) is int), (
                f"{board}.yaml: {node}.{key} = {value!r} is not a {type(param.default).__name__}"
            )
            assert param.problem(value) is None, param.problem(value)


@pytest.mark.model
def test_installed_llm_node_runs_with_the_board_config_and_serves_the_wiring_topics(tmp_path):
    """The colcon-installed executable + config/rpi.yaml: the topics the launch files wire speech to."""
    from std_msgs.msg import String

    domain = ros_rig.next_domain()
    executable = Path(sys.prefix) / "lib" / "edgellm_ros" / "llm_node"
    with (
        ros_rig.NodeProcess(
            "llm_node", domain, tmp_path, executable=executable, params_file=PKG / "config" / "rpi.yaml"
        ) as node,
        ros_rig.RosClient(domain) as ros,
    ):
        responses = ros.collect(String, "/llm_node/response")
        prompts = ros.node.create_publisher(String, "/llm_node/prompt", 10)
        ros_rig.wait_for(lambda: prompts.get_subscription_count() > 0, 30, "llm_node's prompt subscriber", node)
        prompts.publish(String(data="Say hello to the kitchen."))
        ros_rig.wait_for(lambda: responses, 30, "a response", node)
    assert responses[0].data.strip()
    assert "loaded smollm2-135m:q4" in node.log()
