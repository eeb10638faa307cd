"""The demo robot's command set (used by examples/robot_commands.py and the command benchmark)."""

from .commands import Arg, CommandSet, CommandSpec

DEMO_COMMANDS = CommandSet(
    commands=[
        CommandSpec("move", "drive straight", (Arg("direction", "enum", choices=("forward", "backward"), aliases=(
            ("forward", ("ahead", "front", "向前", "前进")), ("backward", ("back", "reverse", "后退", "向后")))),
                                               Arg("distance_m", "number", "m", 0.05, 5.0))),
        CommandSpec("turn", "turn in place", (Arg("direction", "enum", choices=("left", "right"),
                                                  aliases=(("left", ("左",)), ("right", ("右",)))),
                                              Arg("angle_deg", "number", "degrees", 1, 360))),
        CommandSpec("stop", "stop all motion"),
        CommandSpec("grip", "open or close the gripper", (Arg("action", "enum", choices=("open", "close"), aliases=(
            ("open", ("release", "let", "松开")), ("close", ("grab", "grip", "合上")))),)),
        CommandSpec("set_speed", "set the driving speed", (Arg("speed_mps", "number", "m/s", 0.1, 1.5),)),
        CommandSpec("lights", "switch room lights", (
            Arg("state", "enum", choices=("on", "off"), aliases=(("on", ("打开",)), ("off", ("关掉", "关")))),
            Arg("room", "enum", choices=("kitchen", "living_room", "bedroom", "hallway"),
                aliases=(("kitchen", ("厨房",)), ("bedroom", ("卧室",)), ("living_room", ("客厅",)))))),
        CommandSpec("set_thermostat", "set the heating target", (Arg("temperature_c", "number", "°C", 10, 28),)),
        CommandSpec("report_status", "say battery, position and errors"),
    ],
    examples=[
        ("go forward 2 meters", {"command": "move", "direction": "forward", "distance_m": 2}),
        ("back up half a meter", {"command": "move", "direction": "backward", "distance_m": 0.5}),
        ("turn right ninety degrees", {"command": "turn", "direction": "right", "angle_deg": 90}),
        ("halt!", {"command": "stop"}),
        ("close the gripper", {"command": "grip", "action": "close"}),
        ("switch off the bedroom lights", {"command": "lights", "state": "off", "room": "bedroom"}),
        ("make it 21 degrees in here", {"command": "set_thermostat", "temperature_c": 21}),
        ("how are you doing?", {"command": "report_status"}),
        ("sing me a song", {"command": "not_understood"}),
        ("向左转四十五度", {"command": "turn", "direction": "left", "angle_deg": 45}),
    ],
)
