"""The demo robot's command set (used by examples/robot_commands.py and the command benchmark)."""

from .commands import Arg, CommandSet, CommandSpec

_MOVE = CommandSpec(
    "move",
    "drive straight",
    keywords=("drive", "go", "advance", "reverse", "roll", "head", "proceed", "travel")
    + ("走", "前进", "后退", "倒退", "移动"),
    args=(
        Arg(
            "direction",
            "enum",
            choices=("forward", "backward"),
            aliases=(
                ("forward", ("ahead", "front", "向前", "往前", "前进")),
                ("backward", ("back", "reverse", "后退", "向后", "往后", "倒退")),
            ),
        ),
        Arg("distance_m", "number", "m", 0.05, 5.0),
    ),
)
_TURN = CommandSpec(
    "turn",
    "turn in place",
    keywords=("rotate", "spin", "pivot", "swivel", "转"),
    args=(
        Arg("direction", "enum", choices=("left", "right"), aliases=(("left", ("左",)), ("right", ("右",)))),
        Arg("angle_deg", "number", "degrees", 1, 360),
    ),
)
_GRIP = CommandSpec(
    "grip",
    "open or close the gripper",
    keywords=("gripper", "claw", "夹爪", "爪子"),
    args=(
        Arg(
            "action",
            "enum",
            choices=("open", "close"),
            aliases=(
                ("open", ("release", "let", "松开", "张开", "放开")),
                ("close", ("grab", "grip", "clamp", "合上", "抓住", "夹紧")),
            ),
        ),
    ),
)
_LIGHTS = CommandSpec(
    "lights",
    "switch room lights",
    keywords=("light", "lamp", "灯"),
    args=(
        Arg("state", "enum", choices=("on", "off"), aliases=(("on", ("打开",)), ("off", ("关掉", "关")))),
        Arg(
            "room",
            "enum",
            choices=("kitchen", "living_room", "bedroom", "hallway"),
            aliases=(
                ("kitchen", ("厨房",)),
                ("bedroom", ("卧室",)),
                ("living_room", ("客厅",)),
                ("hallway", ("hall", "走廊")),
            ),
        ),
    ),
)

DEMO_COMMANDS = CommandSet(
    commands=[
        _MOVE,
        _TURN,
        CommandSpec("stop", "stop all motion", keywords=("halt", "freeze", "brake", "abort", "停", "停止", "停下")),
        _GRIP,
        CommandSpec(
            "set_speed",
            "set the driving speed",
            keywords=("speed", "velocity", "faster", "slower", "速度"),
            args=(Arg("speed_mps", "number", "m/s", 0.1, 1.5),),
        ),
        _LIGHTS,
        CommandSpec(
            "set_thermostat",
            "set the heating target",
            keywords=("thermostat", "heating", "heat", "warm", "温度", "暖气"),
            args=(Arg("temperature_c", "number", "°C", 10, 28),),
        ),
        CommandSpec(
            "report_status",
            "say battery, position and errors",
            keywords=(
                "status",
                "report",
                "battery",
                "position",
                "errors",
                "faults",
                "汇报",
                "报告",
                "状态",
                "电量",
                "故障",
            ),
        ),
    ],
    examples=[  # the few-shot pool; benchmarks/bench_commands.py checks none is a dev-set request
        ("go forward 2 meters", {"command": "move", "direction": "forward", "distance_m": 2}),
        ("walk ahead three metres", {"command": "move", "direction": "forward", "distance_m": 3}),
        ("advance 0.4 m", {"command": "move", "direction": "forward", "distance_m": 0.4}),
        ("back up half a meter", {"command": "move", "direction": "backward", "distance_m": 0.5}),
        ("move back 4 m", {"command": "move", "direction": "backward", "distance_m": 4}),
        ("前进两米", {"command": "move", "direction": "forward", "distance_m": 2}),
        ("向后退四米", {"command": "move", "direction": "backward", "distance_m": 4}),
        ("turn right ninety degrees", {"command": "turn", "direction": "right", "angle_deg": 90}),
        ("rotate left by 15 degrees", {"command": "turn", "direction": "left", "angle_deg": 15}),
        ("spin around to the right 270 degrees", {"command": "turn", "direction": "right", "angle_deg": 270}),
        ("向右转六十度", {"command": "turn", "direction": "right", "angle_deg": 60}),
        ("halt!", {"command": "stop"}),
        ("stop the robot immediately", {"command": "stop"}),
        ("别动", {"command": "stop"}),
        ("马上停下", {"command": "stop"}),
        ("close your gripper", {"command": "grip", "action": "close"}),
        ("pick it up", {"command": "grip", "action": "close"}),
        ("drop it", {"command": "grip", "action": "open"}),
        ("open your hand", {"command": "grip", "action": "open"}),
        ("把夹爪张开", {"command": "grip", "action": "open"}),
        ("抓住这个东西", {"command": "grip", "action": "close"}),
        ("set the speed to 0.7 m/s", {"command": "set_speed", "speed_mps": 0.7}),
        ("go slower, 0.4 meters per second", {"command": "set_speed", "speed_mps": 0.4}),
        ("速度改成零点五米每秒", {"command": "set_speed", "speed_mps": 0.5}),
        ("switch off the bedroom lights", {"command": "lights", "state": "off", "room": "bedroom"}),
        ("lights on in the kitchen", {"command": "lights", "state": "on", "room": "kitchen"}),
        ("打开客厅的灯", {"command": "lights", "state": "on", "room": "living_room"}),
        ("把卧室的灯关上", {"command": "lights", "state": "off", "room": "bedroom"}),
        ("make it 21 degrees in here", {"command": "set_thermostat", "temperature_c": 21}),
        ("set the heating to 17 °C", {"command": "set_thermostat", "temperature_c": 17}),
        ("温度调到二十度", {"command": "set_thermostat", "temperature_c": 20}),
        ("how is it going?", {"command": "report_status"}),
        ("what is your battery level?", {"command": "report_status"}),
        ("状态怎么样", {"command": "report_status"}),
        ("电池还剩多少", {"command": "report_status"}),
        ("hum a tune", {"command": "not_understood"}),
        ("what is two plus two?", {"command": "not_understood"}),
        ("close the window", {"command": "not_understood"}),
        ("turn on the TV", {"command": "not_understood"}),
        ("帮我订外卖", {"command": "not_understood"}),
    ],
)
