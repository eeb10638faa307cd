"""The EdgeLLM nodes on a robot: llm_node, and optionally speech_node wired to it (a voice
assistant over ROS topics) and sensor_narrator_node.

    ros2 launch edgellm_ros edgellm.launch.py board:=rpi speech:=true narrator:=false

board picks config/<board>.yaml (rpi or jetson). speech_node's transcripts become llm_node
prompts and llm_node's responses are spoken (remapped topics). edgellm.launch.xml is the same
description in XML.
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

PACKAGE = "edgellm_ros"


def generate_launch_description():
    config = PathJoinSubstitution([FindPackageShare(PACKAGE), "config", [LaunchConfiguration("board"), ".yaml"]])
    return LaunchDescription(
        [
            DeclareLaunchArgument(
                "board", default_value="rpi", choices=["rpi", "jetson"], description="device: picks config/<board>.yaml"
            ),
            DeclareLaunchArgument("speech", default_value="true", description="start speech_node (mic, speaker)"),
            DeclareLaunchArgument("narrator", default_value="false", description="start sensor_narrator_node"),
            Node(package=PACKAGE, executable="llm_node", name="llm_node", parameters=[config], output="screen"),
            Node(
                package=PACKAGE,
                executable="speech_node",
                name="speech_node",
                parameters=[config],
                output="screen",
                remappings=[("~/transcript", "/llm_node/prompt"), ("~/say", "/llm_node/response")],
                condition=IfCondition(LaunchConfiguration("speech")),
            ),
            Node(
                package=PACKAGE,
                executable="sensor_narrator_node",
                name="sensor_narrator_node",
                parameters=[config],
                output="screen",
                condition=IfCondition(LaunchConfiguration("narrator")),
            ),
        ]
    )
