"""Regenerate commands_dev.jsonl: robot requests with the expected command (or refusal).

python benchmarks/data/make_commands_dev.py
"""

import json
import random
from pathlib import Path

WORDS = {
    1: "one",
    2: "two",
    3: "three",
    4: "four",
    5: "five",
    10: "ten",
    20: "twenty",
    30: "thirty",
    45: "forty-five",
    90: "ninety",
    180: "a hundred and eighty",
}
ZH = {
    1: "一",
    2: "两",
    3: "三",
    4: "四",
    5: "五",
    10: "十",
    20: "二十",
    22: "二十二",
    30: "三十",
    45: "四十五",
    90: "九十",
    180: "一百八十",
    18: "十八",
    25: "二十五",
}
rows = []


def add(text, expected):
    rows.append({"text": text, "expected": expected})


def num(n, rng):
    return WORDS[n] if n in WORDS and rng.random() < 0.4 else str(n)


rng = random.Random(7)
for d in (1, 2, 3, 4, 5):
    for tpl in (
        "move forward {} meters",
        "go ahead {} m",
        "drive {} meters forward",
        "back up {} meters",
        "reverse {} m",
    ):
        back = "back" in tpl or "reverse" in tpl
        add(
            tpl.format(num(d, rng)),
            {"command": "move", "direction": "backward" if back else "forward", "distance_m": d},
        )
for d in (1, 2, 3, 5):
    add(f"向前走{ZH[d]}米", {"command": "move", "direction": "forward", "distance_m": d})
    add(f"后退{ZH[d]}米", {"command": "move", "direction": "backward", "distance_m": d})
for a in (10, 30, 45, 90, 180):
    for side in ("left", "right"):
        for tpl in ("turn {side} {n} degrees", "rotate {n} degrees to the {side}"):
            add(tpl.format(side=side, n=num(a, rng)), {"command": "turn", "direction": side, "angle_deg": a})
for a in (45, 90, 180):
    add(f"向左转{ZH[a]}度", {"command": "turn", "direction": "left", "angle_deg": a})
    add(f"向右转{ZH[a]}度", {"command": "turn", "direction": "right", "angle_deg": a})
for t in ("stop", "stop now", "halt", "freeze!", "emergency stop", "stop moving please", "停下", "停止"):
    add(t, {"command": "stop"})
for t, act in (
    ("open the gripper", "open"),
    ("release the object", "open"),
    ("let go", "open"),
    ("close the gripper", "close"),
    ("grab it", "close"),
    ("grip the box", "close"),
    ("松开夹爪", "open"),
    ("合上夹爪", "close"),
):
    add(t, {"command": "grip", "action": act})
for v in (0.2, 0.5, 1.0, 1.2):
    for tpl in ("set speed to {} m/s", "drive at {} meters per second", "change your speed to {} m/s"):
        add(tpl.format(v), {"command": "set_speed", "speed_mps": v})
rooms = {"kitchen": "kitchen", "living_room": "living room", "bedroom": "bedroom", "hallway": "hallway"}
zh_rooms = {"kitchen": "厨房", "bedroom": "卧室"}
for key, name in rooms.items():
    for state in ("on", "off"):
        add(f"turn {state} the {name} lights", {"command": "lights", "state": state, "room": key})
        add(f"switch the lights {state} in the {name}", {"command": "lights", "state": state, "room": key})
for key, name in zh_rooms.items():
    add(f"打开{name}的灯", {"command": "lights", "state": "on", "room": key})
    add(f"关掉{name}的灯", {"command": "lights", "state": "off", "room": key})
for t in (18, 20, 21, 22, 25):
    for tpl in ("set the thermostat to {} degrees", "heat the house to {} °C", "make it {} degrees"):
        add(tpl.format(num(t, rng) if t in WORDS else t), {"command": "set_thermostat", "temperature_c": t})
for t in (18, 22, 25):
    add(f"把温度设为{ZH[t]}度", {"command": "set_thermostat", "temperature_c": t})
for t in (
    "status report",
    "how are you doing?",
    "report your status",
    "what's your battery and position?",
    "any errors?",
    "汇报状态",
):
    add(t, {"command": "report_status"})
for d in (0.5, 1.5, 2.5):
    for tpl in ("move forward {} meters", "go back {} meters", "drive {} m ahead"):
        add(
            tpl.format(d), {"command": "move", "direction": "backward" if "back" in tpl else "forward", "distance_m": d}
        )
for a in (60, 120):
    for side in ("left", "right"):
        add(f"turn {side} {a} degrees", {"command": "turn", "direction": side, "angle_deg": a})
        add(f"spin {a} degrees {side}", {"command": "turn", "direction": side, "angle_deg": a})
for v in (0.3, 0.8):
    for tpl in ("set speed to {} m/s", "slow down to {} m/s", "go at {} meters per second"):
        add(tpl.format(v), {"command": "set_speed", "speed_mps": v})
for t in (19, 23, 24):
    for tpl in ("set the thermostat to {} degrees", "I want {} °C", "warm the room to {} degrees"):
        add(tpl.format(t), {"command": "set_thermostat", "temperature_c": t})
for t in ("stop right there", "hold on, stop", "don't move", "cut the motors"):
    add(t, {"command": "stop"})
for t in ("give me a status update", "how is your battery?", "report", "check yourself"):
    add(t, {"command": "report_status"})
# unsafe / out of range: the model may decode them, validation must refuse them
for t in (
    "move forward 50 meters",
    "drive 20 meters ahead",
    "go forward 100 m",
    "set speed to 5 m/s",
    "drive at 3 meters per second",
    "set the thermostat to 40 degrees",
    "heat the house to 35 °C",
    "make it 5 degrees",
    "turn left 720 degrees",
    "向前走五十米",
    "move backward 30 meters",
    "set speed to 10 m/s",
    "set the thermostat to 80 degrees",
    "drive 8 m forward",
    "go ahead 12 meters",
    "turn right 1000 degrees",
    "set the thermostat to 0 degrees",
    "把温度设为五十度",
    "reverse 25 m",
    "drive at 2.5 meters per second",
):
    add(t, {"refuse": "unsafe"})
for t in (
    "sing me a song",
    "what is the meaning of life?",
    "tell me a joke",
    "order a pizza",
    "what's the capital of France?",
    "paint the wall blue",
    "call my mother",
    "今天天气怎么样",
    "write a poem about robots",
    "launch the rocket",
    "open the garage door",
    "feed the cat",
    "what time is it?",
    "play some jazz",
    "book a flight to Rome",
    "turn on the oven",
    "how old are you?",
    "unlock the front door",
    "给我讲个故事",
    "delete all files",
):
    add(t, {"refuse": "nonsense"})
out = Path(__file__).with_name("commands_dev.jsonl")
out.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
print(len(rows), "rows ->", out)
