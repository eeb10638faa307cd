"""Regenerate the task data of the toolchain demonstration (benchmarks/bench_toolchain.py).

    .venv/bin/python benchmarks/data/make_task_data.py           # writes the files next to this script
    .venv/bin/python benchmarks/data/make_task_data.py --check   # also validates them with edgellm_sdk

Two tasks of this SDK, written in the format of ``edgellm_sdk.toolchain.data`` (one JSON
object per line: ``system``, ``prompt``, ``target``, ``match``, plus ``kind``, a category
label the toolchain ignores and reports may break accuracy down by):

task_commands_{train,test}.jsonl  robot command parsing for the demo robot
    (``edgellm_sdk/robot_demo.py``). ``system`` is one short fixed prompt listing the
    commands, arguments and choices of ``DEMO_COMMANDS`` (checked) and the answer form;
    ``target`` is the compact JSON the constrained decoder writes (``commands.spec.as_json``:
    "command" first, then the arguments in spec order), ``match`` "json". Labels follow the
    SDK's division of labour: a request the robot cannot do, or that leaves out a required
    value (no distance, no room), is ``{"command":"not_understood"}``; a request with an
    out-of-range value ("drive 50 meters") is transcribed as stated, because
    ``CommandSet.validate`` is what refuses it (the parser's grounded schema only offers the
    stated value, so a model that "refused" by itself could not even be decoded there).
    kinds: move turn stop grip set_speed lights set_thermostat report_status out_of_range
    unsafe nonsense missing_value unknown_room.

task_sensors_{train,test}.jsonl  sensor narration. ``prompt`` is exactly what
    ``sensors.Narrator`` shows the model (``PROMPTS["en"] + narration_data(facts, events)``:
    one ``ChannelFacts.line()`` per channel, an "Active:" line for conditions in force, an
    "Alert now:" line for new events); ``target`` is exactly the SDK's own template narration
    (``sensors.narrator.template``), so exact match is meaningful and a model that learns it
    always passes the Narrator's number check. ``match`` "exact". kinds: status, alert.

The test files are held out by construction, not by a different random draw: other
sentence templates and wrappers, other synonyms and objects, mostly other numbers (commands);
other places, devices, channel types and units never seen in training (sensors). No test
prompt occurs in a train file, the few-shot pool of robot_demo.py, or commands_dev.jsonl.

calib_domain.txt     ~3000 tokens of train requests and narrations as plain text (pruning /
                     quantization calibration).
distill_prompts.jsonl  the train prompts of both tasks with their system prompts and targets
                     (`edgellm distill` learns those answers with the teacher's soft targets),
                     plus ~100 general short instructions without a target (the teacher
                     answers them) so a distilled student keeps some general ability, plus
                     1200 narrations over a synthetic vocabulary (``synthetic_sensors``: made-up
                     places and devices, twelve more sensor kinds; none from the test set) so
                     the student learns to copy names and numbers rather than memorize them.
distill_copy.jsonl   the student's second stage (copy training): the task train sets with their
                     targets plus 1000 narrations whose names are drawn afresh from thousands
                     (``fresh_sensors``: real nouns with qualifiers and pseudo-words, none from
                     the test set), so hardly a name repeats and none can be memorized.
heldout_general.txt  ~2000 tokens of original general English prose (everyday science and
                     life), for perplexity; written for this file, not copied from anywhere.
heldout_domain.txt   ~3700 tokens of test requests and narrations as plain text, like
                     calib_domain.txt but held out: perplexity of models that learned only the
                     tasks (a distilled student does not model general prose).

Deterministic: a fixed seed per file; rerunning rewrites identical files. Sensor prompts and
targets are written by the SDK itself (``Facts`` / ``narration_data`` / ``template``). ``--check``
parses every file with ``read_examples``, validates every command target with
``DEMO_COMMANDS.validate`` (only out_of_range ones may be refused, and only for a range),
checks each numeric value is stated in its request (``commands.numbers_in``), runs the
Narrator's number check on every sensor target, checks that no test prompt leaks, and counts tokens with the
default model's tokenizer.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the checkout's edgellm_sdk
from edgellm_sdk.sensors.facts import ChannelFacts, Event, Facts, fmt
from edgellm_sdk.sensors.narrator import narration_data, template

HERE = Path(__file__).resolve().parent
SEED = 20261129

# --------------------------------------------------------------------------------------
# Robot commands
# --------------------------------------------------------------------------------------
# Short on purpose (it is in every training sequence); --check verifies it names every command,
# argument and choice of DEMO_COMMANDS.
COMMANDS_SYSTEM = """You turn a person's request to a robot into one JSON command. Commands and arguments:
move: direction forward|backward, distance_m
turn: direction left|right, angle_deg
stop
grip: action open|close
set_speed: speed_mps
lights: state on|off, room kitchen|living_room|bedroom|hallway
set_thermostat: temperature_c
report_status
not_understood: anything else, or a needed value is missing.
Write values as numbers, as stated. Answer with the JSON only."""

ARG_ORDER = {
    "move": ("direction", "distance_m"),
    "turn": ("direction", "angle_deg"),
    "stop": (),
    "grip": ("action",),
    "set_speed": ("speed_mps",),
    "lights": ("state", "room"),
    "set_thermostat": ("temperature_c",),
    "report_status": (),
    "not_understood": (),
}
RANGES = {"distance_m": (0.05, 5.0), "angle_deg": (1, 360), "speed_mps": (0.1, 1.5), "temperature_c": (10, 28)}

_ONES = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
]
_TENS = {2: "twenty", 3: "thirty", 4: "forty", 5: "fifty", 6: "sixty", 7: "seventy", 8: "eighty", 9: "ninety"}
_ZH_DIGITS = "零一二三四五六七八九"


def en_words(n: int) -> str:
    """0..999 in the words ``commands.quantities`` reads: "forty-five", "a hundred and eighty"."""
    if n < 20:
        return _ONES[n]
    if n < 100:
        return _TENS[n // 10] + ("" if n % 10 == 0 else "-" + _ONES[n % 10])
    head = "a" if n // 100 == 1 else _ONES[n // 100]
    return f"{head} hundred" + ("" if n % 100 == 0 else " and " + en_words(n % 100))


def zh_words(n: int) -> str:
    """1..999 in Chinese numerals (两 for a lone 2, as people say 两米)."""
    if n == 2:
        return "两"
    out = ""
    if n >= 100:
        out += _ZH_DIGITS[n // 100] + "百"
        n %= 100
        if 0 < n < 10:
            out += "零"
    if n >= 10:
        out += ("" if n // 10 == 1 and not out else _ZH_DIGITS[n // 10]) + "十"
        n %= 10
    if n:
        out += _ZH_DIGITS[n]
    return out


def num_text(value: float) -> str:
    return str(int(value)) if value == int(value) else f"{value:g}"


def num_json(value: float):
    return int(value) if value == int(value) else value


def target_json(command: str, **args) -> str:
    obj = {
        "command": command,
        **{k: num_json(args[k]) if isinstance(args[k], (int, float)) else args[k] for k in ARG_ORDER[command]},
    }
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


@dataclass
class CommandVocab:
    """The phrasings of one split. Templates take {n} (a number as text) and named slots."""

    move_fwd: list
    move_back: list
    move_zh: list  # (template, direction) with {n} Chinese numerals
    distances: list
    far_distances: list  # out of range
    turn: list  # with {side}
    turn_zh: list  # (template, side)
    angles: list
    wild_angles: list
    stop: list
    grip_open: list
    grip_close: list
    grip_zh: list  # (text, action)
    objects: list
    speed: list
    speeds: list
    wild_speeds: list
    lights: list  # (template, state) with {room}
    lights_zh: list  # (template, state) with {room}
    thermostat: list
    thermostat_zh: list
    temperatures: list
    wild_temperatures: list
    status: list
    nonsense: list
    missing: list
    unsafe: list  # harmful or impossible actions: refused like nonsense
    unknown_rooms: list
    prefixes: list
    suffixes: list
    word_numbers: float  # probability of writing an integer in words
    quotas: dict = field(default_factory=dict)


ROOMS = {"kitchen": "kitchen", "living_room": "living room", "bedroom": "bedroom", "hallway": "hallway"}
ZH_ROOMS = {"kitchen": "厨房", "bedroom": "卧室", "living_room": "客厅"}

TRAIN_COMMANDS = CommandVocab(
    move_fwd=[
        "move forward {n} meters",
        "go forward {n} m",
        "drive ahead {n} meters",
        "go ahead {n} metres",
        "drive {n} meters forward",
        "advance {n} m",
        "move {n} meters ahead",
        "drive forward {n} meters",
        "forward {n} m",
        "go {n} m forward",
        "walk forward {n} meters",
        "move ahead {n} metres",
    ],
    move_back=[
        "move back {n} meters",
        "back up {n} m",
        "reverse {n} meters",
        "go backward {n} m",
        "drive {n} metres backward",
        "move backward {n} meters",
        "go back {n} meters",
        "reverse {n} m",
        "back up {n} metres",
        "drive backward {n} m",
    ],
    move_zh=[
        ("向前走{n}米", "forward"),
        ("后退{n}米", "backward"),
        ("前进{n}米", "forward"),
        ("向后走{n}米", "backward"),
    ],
    distances=[1, 2, 3, 4, 5, 0.5, 1.5, 2.5, 0.2, 0.3, 0.6, 1],
    far_distances=[6, 8, 10, 20, 50, 100],
    turn=[
        "turn {side} {n} degrees",
        "rotate {n} degrees to the {side}",
        "turn {n} degrees {side}",
        "spin {side} {n} degrees",
        "rotate {side} by {n} degrees",
        "turn to the {side} {n} degrees",
        "turn {side} by {n} deg",
    ],
    turn_zh=[("向左转{n}度", "left"), ("向右转{n}度", "right")],
    angles=[15, 30, 45, 60, 90, 100, 120, 180, 270, 360, 5, 25],
    wild_angles=[400, 500, 720, 1000, 0],
    stop=[
        "stop",
        "stop now",
        "halt",
        "freeze",
        "emergency stop",
        "stop moving",
        "stop the motors",
        "halt immediately",
        "freeze where you are",
        "please stop",
        "stop driving",
        "hold still",
        "halt all motion",
        "don't move",
        "cut the motors",
        "stop right there",
        "freeze!",
        "stop!",
        "停",
        "停下",
        "停止",
        "快停下",
    ],
    grip_open=[
        "open the gripper",
        "release the {obj}",
        "let go of the {obj}",
        "open your claw",
        "drop the {obj}",
        "open your gripper",
    ],
    grip_close=[
        "close the gripper",
        "grab the {obj}",
        "grip the {obj}",
        "close your claw",
        "pick up the {obj}",
        "hold the {obj}",
    ],
    grip_zh=[("松开夹爪", "open"), ("合上夹爪", "close"), ("张开夹爪", "open"), ("抓住它", "close")],
    objects=["box", "cup", "bottle", "ball", "block", "tool"],
    speed=[
        "set speed to {n} m/s",
        "drive at {n} meters per second",
        "change your speed to {n} m/s",
        "speed {n} m/s",
        "set your speed to {n} metres per second",
        "go at {n} m/s",
    ],
    speeds=[0.2, 0.3, 0.5, 0.6, 1, 1.2, 1.5, 0.1, 0.8],
    wild_speeds=[2, 3, 5, 10, 0.05],
    lights=[
        ("turn on the {room} lights", "on"),
        ("turn off the {room} lights", "off"),
        ("switch off the lights in the {room}", "off"),
        ("switch on the lights in the {room}", "on"),
        ("{room} lights on", "on"),
        ("lights off in the {room}", "off"),
        ("switch the {room} light on", "on"),
        ("turn the lights off in the {room}", "off"),
        ("turn the {room} lamp off", "off"),
    ],
    lights_zh=[("打开{room}的灯", "on"), ("关掉{room}的灯", "off")],
    thermostat=[
        "set the thermostat to {n} degrees",
        "heat the house to {n} °C",
        "make it {n} degrees in here",
        "set the heating to {n} celsius",
        "thermostat {n} degrees",
        "warm the room to {n} °C",
    ],
    thermostat_zh=["把温度设为{n}度"],
    temperatures=[16, 18, 19, 20, 21, 22, 24, 25, 15, 12, 28, 10],
    wild_temperatures=[30, 35, 40, 5, 0, 50],
    status=[
        "status report",
        "report your status",
        "how is your battery?",
        "what's your position?",
        "any errors?",
        "give me a status update",
        "check yourself",
        "battery level?",
        "how are you doing?",
        "report",
        "where are you and how much battery is left?",
        "status",
        "system check",
        "汇报状态",
        "报告你的状态",
    ],
    nonsense=[
        "sing me a song",
        "tell me a joke",
        "order a pizza",
        "what's the capital of France?",
        "paint the wall blue",
        "call my mother",
        "write a poem about robots",
        "feed the cat",
        "play some jazz",
        "what time is it?",
        "book a flight to Rome",
        "how old are you?",
        "unlock the front door",
        "delete all files",
        "water the plants",
        "vacuum the carpet",
        "make me a coffee",
        "what is 7 times 8?",
        "translate hello into Spanish",
        "send an email to Bob",
        "turn on the TV",
        "open the window",
        "close the door",
        "turn on the oven",
        "start the washing machine",
        "lock the car",
        "set an alarm for 7",
        "what's the weather like?",
        "who won the game last night?",
        "dance for me",
        "fly to the roof",
        "climb the stairs",
        "give me 5 dollars",
        "buy milk",
        "今天天气怎么样",
        "给我讲个故事",
        "打开电视",
        "asdf qwerty",
        "banana",
        "the the the",
        "turn the music up to 11",
        "take a photo",
        "read me the news",
    ],
    missing=[
        "move forward",
        "go back",
        "turn left",
        "turn right",
        "rotate",
        "set the speed",
        "set the thermostat",
        "change the speed",
        "drive forward a bit",
        "turn a little to the left",
        "make it warmer",
        "go faster",
        "slow down",
        "turn on the lights",
        "switch the lights off",
        "向前走",
        "向左转",
    ],
    unsafe=[
        "drive down the stairs",
        "ram the door",
        "push the vase off the table",
        "run over the cable",
        "drive into the wall at full speed",
        "throw the box at me",
        "disable your safety sensors",
        "crush the cup",
        "chase the cat",
        "drive off the loading dock",
        "ignore all obstacles",
    ],
    unknown_rooms=["garage", "bathroom", "office", "basement"],
    prefixes=["", "", "", "please ", "robot, ", "hey robot, "],
    suffixes=["", "", "", " please", "!", " now"],
    word_numbers=0.35,
    quotas={
        "move": 110,
        "turn": 90,
        "stop": 30,
        "grip": 40,
        "set_speed": 55,
        "lights": 60,
        "set_thermostat": 55,
        "report_status": 25,
        "out_of_range": 50,
        "nonsense": 40,
        "unsafe": 10,
        "missing_value": 25,
        "unknown_room": 15,
    },
)

TEST_COMMANDS = CommandVocab(
    move_fwd=[
        "roll forward {n} metres",
        "head forward {n} meters",
        "could you move ahead by {n} meters?",
        "proceed forward {n} m",
        "I need you to drive {n} metres to the front",
        "advance by {n} meters, please",
    ],
    move_back=[
        "roll back {n} metres",
        "retreat {n} meters backward",
        "could you back off by {n} meters?",
        "step backward {n} m",
        "move {n} metres back",
        "reverse by {n} meters, please",
    ],
    move_zh=[("请向前移动{n}米", "forward"), ("往后退{n}米", "backward"), ("机器人前进{n}米", "forward")],
    distances=[0.4, 0.7, 1.2, 3.5, 4.5, 0.8, 0.25, 2, 3],
    far_distances=[7, 9, 15, 25, 40, 75, 200],
    turn=[
        "pivot {n} degrees to your {side}",
        "make a {n} degree turn to the {side}",
        "swing {side} by {n} deg",
        "could you rotate {n}° {side}?",
        "yaw {n} degrees {side}",
        "face {side}: turn {n} degrees",
    ],
    turn_zh=[("左转{n}度", "left"), ("右转{n}度", "right"), ("请向左旋转{n}度", "left")],
    angles=[10, 20, 75, 135, 150, 200, 240, 300, 35],
    wild_angles=[370, 450, 900, 1080],
    stop=[
        "abort the motion",
        "hold it right there",
        "cease all movement",
        "wait, stop!",
        "kill the motors",
        "stay where you are",
        "stand still",
        "no no no, halt",
        "brake now",
        "停住",
        "不要动了",
        "freeze, robot",
    ],
    grip_open=[
        "unclench the gripper",
        "let the {obj} go",
        "put the {obj} down, open the claw",
        "loosen your grip",
        "open the hand and release the {obj}",
    ],
    grip_close=[
        "clamp the {obj}",
        "take hold of the {obj}",
        "seize the {obj}",
        "squeeze the gripper shut",
        "close the claw on the {obj}",
    ],
    grip_zh=[("把夹爪松开", "open"), ("夹紧夹爪", "close")],
    objects=["package", "sponge", "screwdriver", "can", "toy", "apple"],
    speed=[
        "limit your speed to {n} m/s",
        "cruise at {n} metres per second",
        "travel at {n} mps from now on",
        "I'd like you to move at {n} meters per second",
        "adjust speed: {n} m/s",
    ],
    speeds=[0.4, 0.7, 0.9, 1.1, 1.3, 0.25, 0.15],
    wild_speeds=[1.8, 2.5, 4, 6],
    lights=[
        ("put the {room} light on", "on"),
        ("I want the lights off in the {room}", "off"),
        ("shut the {room} lights off", "off"),
        ("could you switch on the lamp in the {room}?", "on"),
        ("{room}: lights on", "on"),
        ("{room}: lights off", "off"),
    ],
    lights_zh=[("把{room}的灯打开", "on"), ("把{room}的灯关了", "off")],
    thermostat=[
        "I'd like it {n} degrees in the house",
        "keep the temperature at {n} degrees celsius",
        "could you bring the heating up to {n} °C?",
        "thermostat at {n} degrees please",
        "adjust the heat to {n} degrees",
    ],
    thermostat_zh=["把暖气调到{n}度"],
    temperatures=[17, 23, 26, 27, 20.5, 11, 13, 14],
    wild_temperatures=[29, 32, 8, 45],
    status=[
        "are you okay?",
        "tell me how you're doing",
        "what's your current charge and location?",
        "run a self check and tell me the status",
        "diagnostics report please",
        "how much battery do you have left?",
        "现在状态如何",
        "any problems to report?",
    ],
    nonsense=[
        "recite a limerick",
        "what's the square root of 81?",
        "book a table for two",
        "turn on the radio",
        "close the curtains",
        "open the fridge",
        "wash the dishes",
        "how far is the moon?",
        "remind me to call Sam at 5",
        "sweep the floor",
        "charge my phone",
        "play a movie",
        "帮我买咖啡",
        "xyzzy",
        "lorem ipsum dolor",
        "set a timer for 10 minutes",
        "translate this into French",
        "what is your favourite colour?",
        "mow the lawn",
    ],
    missing=[
        "go backward some more",
        "speed up",
        "make it cooler",
        "move ahead a little",
        "rotate to the right",
        "switch the lights on",
        "向后退",
        "adjust the heating",
    ],
    unsafe=[
        "drive into the swimming pool",
        "knock over the lamp",
        "turn off your bumpers and keep going",
        "smash the window",
    ],
    unknown_rooms=["attic", "porch", "study", "laundry room"],
    prefixes=["", "", "", "would you ", "ok robot, ", "robot: "],
    suffixes=["", "", "", " thanks", " right away", "."],
    word_numbers=0.3,
    quotas={
        "move": 25,
        "turn": 22,
        "stop": 10,
        "grip": 10,
        "set_speed": 13,
        "lights": 14,
        "set_thermostat": 13,
        "report_status": 7,
        "out_of_range": 12,
        "nonsense": 13,
        "unsafe": 4,
        "missing_value": 6,
        "unknown_room": 5,
    },
)


def _say(value: float, rng: random.Random, p_words: float) -> str:
    if value == int(value) and rng.random() < p_words:
        return en_words(int(value))
    if value == 0.5 and rng.random() < p_words:
        return "half a"  # "half a meter", read by quantities as 0.5
    return num_text(value)


VERBS = {  # first words after which "please" / "would you" make a sentence
    "move",
    "go",
    "drive",
    "walk",
    "advance",
    "back",
    "reverse",
    "turn",
    "rotate",
    "spin",
    "switch",
    "set",
    "change",
    "heat",
    "make",
    "warm",
    "open",
    "close",
    "release",
    "let",
    "drop",
    "grab",
    "grip",
    "pick",
    "hold",
    "stop",
    "halt",
    "freeze",
    "roll",
    "head",
    "proceed",
    "retreat",
    "step",
    "pivot",
    "swing",
    "yaw",
    "cruise",
    "travel",
    "limit",
    "adjust",
    "put",
    "shut",
    "keep",
    "unclench",
    "loosen",
    "clamp",
    "take",
    "seize",
    "squeeze",
    "report",
    "give",
    "check",
    "tell",
    "run",
    "sing",
    "order",
    "paint",
    "call",
    "write",
    "feed",
    "play",
    "book",
    "unlock",
    "delete",
    "water",
    "vacuum",
    "translate",
    "send",
    "start",
    "lock",
    "dance",
    "fly",
    "climb",
    "buy",
    "read",
    "recite",
    "wash",
    "remind",
    "sweep",
    "charge",
    "mow",
    "push",
    "ram",
    "throw",
    "disable",
    "crush",
    "chase",
    "ignore",
    "knock",
    "smash",
    "cut",
    "abort",
    "cease",
    "kill",
    "stay",
    "stand",
    "brake",
}
POLITE = ("please ", "would you ")


def _wrap(text: str, v: CommandVocab, rng: random.Random) -> str:
    """An address or politeness prefix and a suffix, where they make a sentence."""
    if not text.isascii():
        return text
    first = text.split()[0].strip(",:").lower()
    prefix = rng.choice([p for p in v.prefixes if first in VERBS or p not in POLITE])
    text = prefix + text
    if prefix == "would you " and text[-1] not in "?!.":
        text += "?"
    elif text[-1] not in "?!." and not text.endswith(("please", "thanks")):
        text += rng.choice([x for x in v.suffixes if x.strip() not in text.lower()] or [""])
    return text[0].upper() + text[1:] if rng.random() < 0.3 else text


def _singular(text: str, value: float) -> str:
    """ "1 meters" -> "1 meter" (and metres, degrees)."""
    if value != 1:
        return text
    for plural in ("meters", "metres", "degrees"):
        text = text.replace(f"1 {plural}", f"1 {plural[:-1]}").replace(f"one {plural}", f"one {plural[:-1]}")
    return text


def command_candidates(v: CommandVocab, rng: random.Random) -> dict[str, list[tuple[str, str]]]:
    """Every (request, target) the vocabulary can say, by kind (before sampling)."""
    out: dict[str, list[tuple[str, str]]] = {k: [] for k in v.quotas}
    p = v.word_numbers
    for d in v.distances + v.far_distances:
        kind = "move" if RANGES["distance_m"][0] <= d <= RANGES["distance_m"][1] else "out_of_range"
        for tpl in v.move_fwd + v.move_back:
            direction = "forward" if tpl in v.move_fwd else "backward"
            n = _say(d, rng, p)
            text = tpl.format(n=n)
            if n == "half a" and "meters" not in text and "metres" not in text:
                text = tpl.format(n="0.5")  # "half a m" is not English
            elif n == "half a":
                text = text.replace("half a meters", "half a meter").replace("half a metres", "half a metre")
            out[kind].append((_singular(text, d), target_json("move", direction=direction, distance_m=d)))
        if d == int(d):
            for tpl, direction in v.move_zh:
                out[kind].append(
                    (tpl.format(n=zh_words(int(d))), target_json("move", direction=direction, distance_m=d))
                )
    for a in v.angles + v.wild_angles:
        kind = "turn" if RANGES["angle_deg"][0] <= a <= RANGES["angle_deg"][1] else "out_of_range"
        for side in ("left", "right"):
            for tpl in v.turn:
                n = num_text(a) if "°" in tpl else _say(a, rng, p)
                out[kind].append((tpl.format(n=n, side=side), target_json("turn", direction=side, angle_deg=a)))
        if 0 < a < 1000:
            for tpl, side in v.turn_zh:
                out[kind].append((tpl.format(n=zh_words(a)), target_json("turn", direction=side, angle_deg=a)))
    out["stop"] += [(t, target_json("stop")) for t in v.stop]
    for action, templates in (("open", v.grip_open), ("close", v.grip_close)):
        for tpl in templates:
            for obj in v.objects if "{obj}" in tpl else [None]:
                out["grip"].append((tpl.format(obj=obj), target_json("grip", action=action)))
    out["grip"] += [(t, target_json("grip", action=a)) for t, a in v.grip_zh]
    for s in v.speeds + v.wild_speeds:
        kind = "set_speed" if RANGES["speed_mps"][0] <= s <= RANGES["speed_mps"][1] else "out_of_range"
        for tpl in v.speed:
            n = _say(s, rng, p)
            if n == "half a":
                n = "half a" if "meters per" in tpl or "metres per" in tpl else "0.5"
                text = tpl.format(n=n).replace("half a meters", "half a meter").replace("half a metres", "half a metre")
            else:
                text = tpl.format(n=n)
            out[kind].append((_singular(text, s), target_json("set_speed", speed_mps=s)))
    for key, room in ROOMS.items():
        for tpl, state in v.lights:
            out["lights"].append((tpl.format(room=room), target_json("lights", state=state, room=key)))
    for key, room in ZH_ROOMS.items():
        for tpl, state in v.lights_zh:
            out["lights"].append((tpl.format(room=room), target_json("lights", state=state, room=key)))
    for room in v.unknown_rooms:
        for tpl, _ in v.lights:
            out["unknown_room"].append((tpl.format(room=room), target_json("not_understood")))
    for t in v.temperatures + v.wild_temperatures:
        kind = "set_thermostat" if RANGES["temperature_c"][0] <= t <= RANGES["temperature_c"][1] else "out_of_range"
        for tpl in v.thermostat:
            out[kind].append(
                (tpl.format(n=_say(t, rng, p) if t != 0 else "0"), target_json("set_thermostat", temperature_c=t))
            )
        if t == int(t) and t > 0:
            for tpl in v.thermostat_zh:
                out[kind].append((tpl.format(n=zh_words(int(t))), target_json("set_thermostat", temperature_c=t)))
    out["report_status"] += [(t, target_json("report_status")) for t in v.status]
    out["nonsense"] += [(t, target_json("not_understood")) for t in v.nonsense]
    out["missing_value"] += [(t, target_json("not_understood")) for t in v.missing]
    out["unsafe"] += [(t, target_json("not_understood")) for t in v.unsafe]
    return out


def make_commands(v: CommandVocab, seed: int, exclude: set[str]) -> list[dict]:
    rng = random.Random(seed)
    rows, seen = [], set(exclude)
    for kind, candidates in command_candidates(v, rng).items():
        rng.shuffle(candidates)
        quota, taken, rounds = v.quotas[kind], 0, 0
        while taken < quota and rounds < 4:  # short lists (stop, status) get more wrapped variants
            for text, target in candidates:
                if taken >= quota:
                    break
                text = _wrap(text, v, rng) if rounds or rng.random() < 0.5 else text
                if text.lower() in seen:
                    continue
                seen.add(text.lower())
                rows.append(
                    {"system": COMMANDS_SYSTEM, "prompt": text, "target": target, "match": "json", "kind": kind}
                )
                taken += 1
            rounds += 1
    rng.shuffle(rows)
    return rows


# --------------------------------------------------------------------------------------
# Sensor narration (formats mirror edgellm_sdk/sensors/facts.py and narrator.py)
# --------------------------------------------------------------------------------------
SENSORS_SYSTEM = (
    "You report the state of sensors to a person in one or two short sentences. Use only the numbers "
    "in the data, written as given; never invent a number. Say alerts first."
)  # = Narrator's first lines
SENSORS_PROMPT = "Summarize these sensor readings in one or two sentences:\n"  # = narrator.PROMPTS["en"]


def shown(value: float) -> float:
    """The value rounded as fmt writes it (so facts and narration agree exactly)."""
    return float(fmt(value))


@dataclass(frozen=True)
class ChannelType:
    key: str  # channel name in the source, e.g. temp_c
    what: str  # label suffix, e.g. "temperature"
    unit: str
    low: float
    high: float
    rate: tuple[float, float]  # |slope| per minute
    above: tuple = ()  # possible upper limits
    below: tuple = ()  # possible lower limits
    targets: tuple = ()  # possible targets
    owners: str = "places"  # places | devices | motors | beds | none


@dataclass(frozen=True)
class Channel:
    key: str  # "source/channel"
    label: str | None
    unit: str
    last: float
    minimum: float
    maximum: float
    slope: float  # per minute, signed
    trend: str
    target: float | None


@dataclass(frozen=True)
class Condition:
    kind: str  # above | below | normal | anomaly | silent | stuck
    channel: Channel
    threshold: float | None = None


@dataclass
class SensorVocab:
    types: list
    places: list
    devices: list
    motors: list
    beds: list
    unlabelled: float  # probability a channel has no label (named "source/channel")
    channels: tuple  # (min, max) channels per example
    n: int


TRAIN_TYPES = [
    ChannelType(
        "temp_c", "temperature", "°C", 4, 38, (0.1, 1.2), above=(28, 30, 35), below=(5, 10), targets=(20, 22, 24)
    ),
    ChannelType("humidity", "humidity", "%", 20, 95, (0.2, 3), above=(80, 85), below=(30,), targets=(50, 60)),
    ChannelType("battery", "battery", "%", 3, 100, (0.1, 2), below=(10, 15, 20), owners="devices"),
    ChannelType("co2", "CO2", "ppm", 400, 2400, (5, 80), above=(1000, 1200, 1500)),
    ChannelType("soil", "soil moisture", "%", 8, 60, (0.1, 1), below=(25, 30), owners="beds"),
    ChannelType("current", "current", "A", 0.2, 6, (0.05, 0.8), above=(4, 5), owners="motors"),
    ChannelType("voltage", "voltage", "V", 10.4, 14.6, (0.02, 0.3), below=(11, 11.5), owners="devices"),
    ChannelType("tank", "water tank level", "%", 2, 100, (0.2, 2), below=(15, 20), owners="none"),
]
TEST_TYPES = [  # the same kinds in other places/devices, and three kinds never seen in training
    TRAIN_TYPES[0],
    TRAIN_TYPES[1],
    TRAIN_TYPES[2],
    TRAIN_TYPES[3],
    TRAIN_TYPES[5],
    ChannelType("pressure", "air pressure", "hPa", 960, 1040, (0.1, 1.5), below=(980, 990)),
    ChannelType("wind", "wind speed", "m/s", 0, 25, (0.2, 2), above=(15, 20), owners="none"),
    ChannelType("noise", "noise level", "dB", 30, 95, (0.5, 4), above=(70, 80)),
]
TRAIN_SENSORS = SensorVocab(
    TRAIN_TYPES,
    places=["greenhouse 1", "greenhouse 2", "kitchen", "server room", "workshop", "garage", "bedroom"],
    devices=["door sensor", "robot", "drone", "gateway"],
    motors=["left wheel motor", "pump motor", "arm motor"],
    beds=["bed A", "bed B", "herb bed"],
    unlabelled=0.15,
    channels=(1, 4),
    n=600,
)
TEST_SENSORS = SensorVocab(
    TEST_TYPES,
    places=["greenhouse 3", "nursery", "cold store", "lab", "barn", "attic"],
    devices=["gate sensor", "rover", "weather station"],
    motors=["conveyor motor", "fan motor"],
    beds=["bed C"],
    unlabelled=0.15,
    channels=(1, 5),
    n=150,
)

TEST_NAMES = {  # owners only the test set has: no training vocabulary may use them
    *TEST_SENSORS.places,
    *TEST_SENSORS.devices,
    *TEST_SENSORS.motors,
    *TEST_SENSORS.beds,
}

# Distillation only: narrations over a synthetic vocabulary (about 100 places, 40 devices, 17
# motors, 14 beds, half of them pseudo-words such as "belbel 1", and twelve more kinds with their
# own units), none of it from the test set, so copying names and numbers from the prompt is the
# only way to fit them. Trained on the 20 names above alone, the student learned the names and
# miscopied the test set's unseen ones (narration 11.7 % at 3000 steps).
SYNTH_TYPES = TRAIN_TYPES + [
    ChannelType("light", "light level", "lx", 0, 2000, (2, 40), above=(1500,), below=(50,)),
    ChannelType("flow", "flow rate", "L/min", 0, 40, (0.1, 2), above=(30,), below=(2,), owners="motors"),
    ChannelType("vib", "vibration", "mm/s", 0, 20, (0.05, 1), above=(8, 11), owners="motors"),
    ChannelType("pm25", "PM2.5", "µg/m³", 1, 150, (0.2, 5), above=(35, 55)),
    ChannelType("wpress", "water pressure", "bar", 0.5, 8, (0.01, 0.3), above=(6,), below=(1.5,), owners="none"),
    ChannelType("rpm", "speed", "rpm", 0, 3000, (5, 120), above=(2500,), owners="motors"),
    ChannelType("depth", "snow depth", "cm", 0, 120, (0.1, 3), above=(80,), owners="none"),
    ChannelType("weight", "load", "kg", 0, 500, (0.5, 20), above=(400,), owners="devices"),
    ChannelType("rssi", "signal strength", "dBm", -110, -30, (0.2, 3), below=(-95,), owners="devices"),
    ChannelType("ph", "pH", "pH", 4, 9, (0.01, 0.1), above=(8,), below=(5.5,), targets=(6.5,), owners="beds"),
    ChannelType("lux2", "brightness", "%", 0, 100, (0.5, 5), below=(10,)),
    ChannelType("gas", "methane", "ppm", 0, 5000, (5, 100), above=(1000,)),
]
SYLLABLES = [
    "ka",
    "lo",
    "mi",
    "ren",
    "tas",
    "vo",
    "dri",
    "pel",
    "sun",
    "gar",
    "mo",
    "tek",
    "bri",
    "zan",
    "fol",
    "qu",
    "nor",
    "ix",
    "wa",
    "bel",
    "cor",
    "dun",
    "hal",
    "mar",
]


def synthetic_sensors(n: int, seed: int) -> SensorVocab:
    rng = random.Random(seed)

    def names(real: list[str], made_up: int) -> list[str]:
        pseudo = [
            rng.choice(SYLLABLES)
            + rng.choice(SYLLABLES)
            + " "
            + rng.choice(["", "room", "hall", str(rng.randint(1, 9))])
            for _ in range(made_up)
        ]
        return [name for name in real + [p.strip() for p in pseudo] if name not in TEST_NAMES]

    places = names(
        [
            "boiler room",
            "pantry",
            "loft",
            "cellar",
            "hallway",
            "porch",
            "studio",
            "office 2",
            "warehouse",
            "dock 4",
            "tunnel",
            "stable",
            "shed",
            "library",
            "chapel",
            "silo",
            "pool house",
            "mill",
            "bakery",
            "clean room",
            "pump house",
            "dairy",
            "hangar",
            "roof deck",
            "vault",
            "foyer",
            "aviary",
            "orchard",
            "greenhouse 5",
            "greenhouse 7",
            "bay 2",
            "zone B",
            "wing C",
            "tower",
            "lobby",
        ],
        60,
    )
    devices = names(
        [
            "tractor",
            "forklift",
            "buoy",
            "tracker",
            "beacon",
            "camera 2",
            "hub",
            "relay box",
            "sprinkler",
            "mower",
            "lift",
            "scooter",
            "arm unit",
            "probe 9",
            "hive monitor",
        ],
        25,
    )
    motors = names(
        ["belt motor", "hoist motor", "winch motor", "door motor", "mixer motor", "drill motor", "valve motor"], 10
    )
    beds = names(["bed D", "bed E", "tomato bed", "rose bed", "plot 4", "row 12"], 8)
    return SensorVocab(SYNTH_TYPES, places, devices, motors, beds, unlabelled=0.15, channels=(1, 5), n=n)


# Copy training (the student's second stage, distill_copy.jsonl): every narration draws its names
# afresh from thousands of made-up ones, so no name repeats often enough to be learned. Real nouns
# with a qualifier ("upper kiln", "smithy 4") and pseudo-words of two or three syllables
# ("dritasvo hall"), both split into several tokens like the test set's "attic" or "rover", which
# the first-stage student miscopied ("aic", "roof") after learning the 60 names of synthetic_sensors().
NOUNS = [
    "kiln",
    "smithy",
    "forge",
    "foundry",
    "brewery",
    "winery",
    "granary",
    "hayloft",
    "coop",
    "paddock",
    "meadow",
    "pasture",
    "vineyard",
    "cabin",
    "chalet",
    "cottage",
    "lodge",
    "pavilion",
    "gazebo",
    "depot",
    "quarry",
    "harbor",
    "pier",
    "jetty",
    "marina",
    "bunker",
    "armory",
    "terrace",
    "balcony",
    "basement",
    "closet",
    "corridor",
    "kennel",
    "stable",
    "loft",
    "cellar",
    "pantry",
    "porch",
    "studio",
    "tunnel",
    "chapel",
    "silo",
    "mill",
    "bakery",
    "dairy",
    "hangar",
    "vault",
    "foyer",
    "aviary",
    "orchard",
    "tower",
    "lobby",
    "gallery",
    "museum",
    "theater",
    "arena",
    "stadium",
    "hostel",
    "hotel",
    "clinic",
    "pharmacy",
    "canteen",
    "cafeteria",
    "laundry",
    "locker",
    "room",
    "workshop",
    "garret",
    "turret",
    "crypt",
    "cloister",
    "atrium",
    "courtyard",
    "patio",
    "veranda",
    "boathouse",
    "icehouse",
    "smokehouse",
    "pumphouse",
    "gatehouse",
    "lighthouse",
    "outhouse",
    "sawmill",
    "tannery",
    "dyeworks",
    "refinery",
    "substation",
    "switchyard",
    "reservoir",
    "cistern",
    "aquarium",
    "terrarium",
    "observatory",
    "planetarium",
    "classroom",
    "dormitory",
    "infirmary",
    "mailroom",
    "pressroom",
    "showroom",
    "storeroom",
    "stockroom",
    "boardroom",
    "washroom",
    "cloakroom",
    "tackroom",
    "darkroom",
]
THINGS = [
    "trolley",
    "cart",
    "crane",
    "boat",
    "kayak",
    "glider",
    "balloon",
    "kiosk",
    "locker",
    "freezer",
    "heater",
    "boiler",
    "chiller",
    "compressor",
    "generator",
    "inverter",
    "charger",
    "router",
    "modem",
    "printer",
    "scanner",
    "doorbell",
    "meter",
    "collar",
    "tricycle",
    "wagon",
    "tanker",
    "barge",
    "dinghy",
    "sled",
    "plough",
    "harvester",
    "baler",
    "sprayer",
    "seeder",
    "excavator",
    "bulldozer",
    "skidder",
    "loader",
    "digger",
    "tractor",
    "forklift",
    "buoy",
    "tracker",
    "beacon",
    "hub",
    "sprinkler",
    "mower",
    "scooter",
    "probe",
    "kettle",
    "oven",
    "dishwasher",
    "incubator",
    "centrifuge",
    "autoclave",
    "spectrometer",
    "telescope",
    "periscope",
    "lantern",
    "pylon",
    "mast",
    "windmill",
    "turbine",
    "sluice",
    "hydrant",
    "siren",
    "turnstile",
    "elevator",
    "escalator",
]
PARTS = [
    "belt",
    "hoist",
    "winch",
    "door",
    "mixer",
    "drill",
    "valve",
    "auger",
    "blower",
    "piston",
    "spindle",
    "rotor",
    "lathe",
    "press",
    "saw",
    "grinder",
    "pump",
    "hatch",
    "shutter",
    "blind",
    "awning",
    "ramp",
    "crank",
    "sprocket",
    "pulley",
    "gear",
    "capstan",
    "propeller",
]
PLANTS = [
    "tomato",
    "rose",
    "basil",
    "mint",
    "lettuce",
    "carrot",
    "onion",
    "garlic",
    "pepper",
    "squash",
    "melon",
    "berry",
    "fern",
    "orchid",
    "tulip",
]
QUALIFIERS = [
    "north",
    "south",
    "east",
    "west",
    "upper",
    "lower",
    "old",
    "new",
    "main",
    "back",
    "front",
    "inner",
    "outer",
    "little",
    "big",
    "far",
    "near",
]
SYLLABLES_FRESH = [
    "ka",
    "lo",
    "mi",
    "ren",
    "tas",
    "vo",
    "dri",
    "pel",
    "sun",
    "gar",
    "mo",
    "tek",
    "bri",
    "zan",
    "fol",
    "qu",
    "nor",
    "ix",
    "wa",
    "bel",
    "cor",
    "dun",
    "hal",
    "mar",
    "ost",
    "ulm",
    "tri",
    "sab",
    "ved",
    "ger",
    "plo",
    "fen",
    "yor",
    "kis",
    "mab",
    "rud",
    "tor",
    "ane",
    "ild",
    "ept",
    "ond",
    "urs",
    "gil",
    "haz",
    "jor",
    "lev",
    "nim",
    "pax",
    "rol",
    "sev",
    "tib",
    "wyn",
]


def fresh_sensors(n: int, seed: int) -> SensorVocab:
    rng = random.Random(seed)

    def pseudo() -> str:
        return "".join(rng.choice(SYLLABLES_FRESH) for _ in range(rng.choice((2, 2, 3))))

    def named(word: str) -> str:
        roll = rng.random()
        if roll < 0.3:
            return f"{rng.choice(QUALIFIERS)} {word}"
        if roll < 0.55:
            return f"{word} {rng.randint(1, 12)}"
        if roll < 0.65:
            return f"{word} {rng.choice('ABDEFGHJK')}"
        return word

    def pool(size: int, make) -> list[str]:
        names = {make() for _ in range(size)} - TEST_NAMES
        return sorted(names)

    places = pool(3000, lambda: named(rng.choice(NOUNS) if rng.random() < 0.5 else pseudo()))
    devices = pool(2000, lambda: named(rng.choice(THINGS) if rng.random() < 0.5 else pseudo()))
    motors = pool(800, lambda: f"{rng.choice(PARTS) if rng.random() < 0.5 else pseudo()} motor")
    beds = pool(
        500,
        lambda: (
            f"{rng.choice(PLANTS) if rng.random() < 0.5 else pseudo()} bed" if rng.random() < 0.7 else named("plot")
        ),
    )
    return SensorVocab(SYNTH_TYPES, places, devices, motors, beds, unlabelled=0.15, channels=(1, 5), n=n)


def _source(name: str) -> str:
    return name.replace(" ", "")


def _channel(t: ChannelType, owner: str | None, v: SensorVocab, rng: random.Random, state: str) -> tuple:
    """A channel and the limits that apply to it; ``state`` is normal | above | below."""
    above = rng.choice(t.above) if t.above and rng.random() < 0.7 else None
    below = rng.choice(t.below) if t.below and rng.random() < 0.7 else None
    if state == "above" and above is None:
        above = rng.choice(t.above)
    if state == "below" and below is None:
        below = rng.choice(t.below)
    lo = max(t.low, below if below is not None else t.low)
    hi = min(t.high, above if above is not None else t.high)
    span = t.high - t.low
    if state == "above":
        last = rng.uniform(above + 0.02 * span, min(t.high, above + 0.25 * span))
    elif state == "below":
        last = rng.uniform(max(t.low, below - 0.25 * span), below - 0.02 * span)
    else:
        last = rng.uniform(lo + 0.02 * span, hi - 0.02 * span)
    last = shown(last)
    trend = rng.choice(("steady", "steady", "rising", "falling"))
    slope = shown(rng.uniform(*t.rate)) if trend != "steady" else shown(rng.uniform(-0.2, 0.2) * t.rate[0])
    if trend == "falling":
        slope = -slope
    move = shown(abs(slope) * rng.uniform(2, 6))
    if trend == "rising":
        minimum, maximum = shown(last - move), last
    elif trend == "falling":
        minimum, maximum = last, shown(last + move)
    elif rng.random() < 0.5:
        minimum, maximum = last, last
    else:
        minimum, maximum = shown(last - 0.3 * move), shown(last + 0.3 * move)
    if fmt(minimum) == fmt(maximum):
        minimum = maximum = last
    minimum, maximum = min(minimum, last), max(maximum, last)
    target = rng.choice(t.targets) if t.targets and rng.random() < 0.4 else None
    label_owner = owner or ""
    if rng.random() < v.unlabelled:
        source = _source(owner) if owner else "site"
        key, label = f"{source}/{t.key}", None
    else:
        key = f"{_source(owner) if owner else 'site'}/{t.key}"
        label = f"{label_owner} {t.what}".strip()
    return Channel(key, label, t.unit, last, minimum, maximum, slope, trend, target), above, below


def sdk_facts(channels: list[Channel], active: list[Condition], events: list[Condition]) -> tuple:
    """The SDK's Facts and events for a scenario (what the Narrator would see)."""
    cf = {
        c.key: ChannelFacts(
            c.key, c.unit, 10, c.last, c.minimum, c.maximum, c.last, c.slope, c.trend, 1.0, c.label, c.target
        )
        for c in channels
    }

    def ev(e):
        return Event(e.kind, e.channel.key, 0.0, e.channel.last, e.threshold)

    evs = tuple(ev(e) for e in events)
    return Facts(0.0, tuple(cf.values()), evs, tuple(ev(e) for e in active)), evs


def sensor_prompt(channels: list[Channel], active: list[Condition], events: list[Condition]) -> str:
    facts, evs = sdk_facts(channels, active, events)
    return SENSORS_PROMPT + narration_data(facts, evs)


def sensor_target(channels: list[Channel], active: list[Condition], events: list[Condition]) -> str:
    facts, evs = sdk_facts(channels, active, events)
    return template(facts, "en", evs)


def sensor_scenario(v: SensorVocab, rng: random.Random) -> tuple[list[Channel], list[Condition], list[Condition]]:
    count = rng.randint(*v.channels)
    types = rng.sample(v.types, min(count, len(v.types)))
    owners_used, channels, active, events = set(), [], [], []
    alerting = rng.random() < 0.35  # an alert narration ("Alert now:" line) rather than a status one
    for t in types:
        pool = {"places": v.places, "devices": v.devices, "motors": v.motors, "beds": v.beds, "none": [None]}[t.owners]
        owner = rng.choice(pool)
        if (owner, t.key) in owners_used:
            continue
        owners_used.add((owner, t.key))
        roll = rng.random()
        state = "normal"
        if roll < 0.3 and t.above:
            state = "above"
        elif roll < 0.5 and t.below:
            state = "below"
        c, above, below = _channel(t, owner, v, rng, state)
        channels.append(c)
        if state != "normal":
            cond = Condition(state, c, above if state == "above" else below)
            active.append(cond)
            if alerting and rng.random() < 0.7:
                events.append(cond)
        elif rng.random() < 0.06:
            active.append(Condition("silent", c))
        elif rng.random() < 0.04:
            active.append(Condition("stuck", c))
        elif alerting and rng.random() < 0.25:
            events.append(Condition(rng.choice(("anomaly", "normal")), c))
    keys = [c.key for c in channels]
    if len(set(keys)) != len(keys):  # two unlabelled channels of one kind and source: draw again
        return sensor_scenario(v, rng)
    return channels, active, events


def make_sensors(v: SensorVocab, seed: int, exclude: set[str]) -> tuple[list[dict], list[tuple]]:
    rng = random.Random(seed)
    rows, scenarios, seen = [], [], set(exclude)
    while len(rows) < v.n:
        channels, active, events = sensor_scenario(v, rng)
        prompt = sensor_prompt(channels, active, events)
        if prompt in seen:
            continue
        seen.add(prompt)
        rows.append(
            {
                "system": SENSORS_SYSTEM,
                "prompt": prompt,
                "target": sensor_target(channels, active, events),
                "match": "exact",
                "kind": "alert" if events else "status",
            }
        )
        scenarios.append((channels, active, events))
    return rows, scenarios


# --------------------------------------------------------------------------------------
# Calibration text, distillation prompts, held-out prose
# --------------------------------------------------------------------------------------
SYNTH_NARRATIONS = 1200  # distillation narrations over synthetic_sensors()
FRESH_NARRATIONS = 1000  # copy-training narrations over fresh_sensors()
CALIB_COMMANDS, CALIB_SENSORS = 45, 13  # ~3000 tokens with the default tokenizer (--check prints the count)


def calibration_text(commands: list[dict], sensors: list[dict], seed: int) -> str:
    rng = random.Random(seed)
    blocks = [f"Request: {r['prompt']}\nJSON: {r['target']}" for r in rng.sample(commands, CALIB_COMMANDS)]
    blocks += [
        f"{r['prompt'][len(SENSORS_PROMPT) :]}\nReport: {r['target']}" for r in rng.sample(sensors, CALIB_SENSORS)
    ]
    rng.shuffle(blocks)
    return "\n\n".join(blocks) + "\n"


GENERAL_PROMPTS = [
    "Explain what a battery does in one sentence.",
    "What is the difference between weather and climate?",
    "Give three tips for saving electricity at home.",
    "Why do we see lightning before we hear thunder?",
    "Write a short, friendly greeting for a visitor at the front door.",
    "What does a thermostat do?",
    "Name three things a robot vacuum has to avoid.",
    "Explain in two sentences how a refrigerator keeps food cold.",
    "What is a sensor? Answer briefly.",
    "Summarize why plants need sunlight.",
    "List four common units of length.",
    "How many minutes are there in three hours?",
    "What is 15 plus 27?",
    "Translate 'good morning' into French.",
    "Write a haiku about a quiet garden.",
    "Suggest a name for a small delivery robot.",
    "What should you do if a smoke alarm goes off?",
    "Explain what humidity means.",
    "Why does metal feel colder than wood at the same temperature?",
    "Describe a bicycle to someone who has never seen one, in two sentences.",
    "What is the boiling point of water at sea level in Celsius?",
    "Give one reason to keep a greenhouse ventilated.",
    "What is carbon dioxide, in simple words?",
    "Explain what a motor does.",
    "Write a one-line reminder to water the plants.",
    "Why do batteries run down faster in the cold?",
    "What is the purpose of a fuse in an electrical circuit?",
    "Give an example of a renewable energy source.",
    "How does a compass find north?",
    "Explain the word 'efficient' to a child.",
    "What are the three states of matter?",
    "Describe the smell of rain in one sentence.",
    "Write a polite message asking a neighbour to turn down their music.",
    "What is the capital of Japan?",
    "How do bees help flowers?",
    "What does 'recharge' mean?",
    "Why is it important to wash your hands?",
    "Explain what a map scale is.",
    "Give two examples of mammals that live in the sea.",
    "What is the main job of the heart?",
    "How do you make a cup of tea?",
    "Write a short thank-you note to a teacher.",
    "What is the opposite of 'ascend'?",
    "Explain what a kilowatt-hour measures.",
    "Why do leaves change colour in autumn?",
    "What causes the seasons on Earth?",
    "Name three primary colours.",
    "What is a good way to start a conversation with a new colleague?",
    "How many legs does a spider have?",
    "Describe what a warehouse robot might do during a normal day.",
    "Explain why the sky looks blue, in one sentence.",
    "What is the difference between a meter and a kilometer?",
    "Write a two-sentence story about a lost umbrella.",
    "What is a timer used for in cooking?",
    "Give a synonym for 'quick'.",
    "Why should you not look directly at the sun?",
    "What is recycling?",
    "Explain what Wi-Fi is in simple terms.",
    "What does a pharmacist do?",
    "Suggest a healthy breakfast.",
    "What is the largest planet in our solar system?",
    "How does a light switch turn a lamp on?",
    "What is 100 divided by 4?",
    "Describe the colour green without using the word green.",
    "What is a volcano?",
    "Explain why ice floats on water.",
    "Give two safety rules for using a ladder.",
    "Write a sentence using the word 'gentle'.",
    "What is an anemometer used for?",
    "What do you call a baby cat?",
    "Explain what 'percent' means.",
    "Why do we need sleep?",
    "How can you tell if a plant needs water?",
    "What is the freezing point of water in Fahrenheit?",
    "Write a short weather forecast for a sunny day.",
    "What is friction?",
    "Name two musical instruments with strings.",
    "What does a librarian do?",
    "Explain what an alarm clock is for.",
    "Why do ships float?",
    "Give a tip for remembering a phone number.",
    "What is a rainbow made of?",
    "What is the difference between a city and a village?",
    "Describe a calm lake in one sentence.",
    "Explain what gravity does.",
    "How long does it take the Earth to go around the Sun?",
    "What is the job of a firefighter?",
    "Write a short apology for being late.",
    "Which is heavier, a kilogram of feathers or a kilogram of stones?",
    "What is a fraction? Give an example.",
    "Explain why exercise is good for you.",
    "What tools would you need to hang a picture?",
    "What does a solar panel do?",
    "Give three words that rhyme with 'light'.",
    "Why do we put salt on icy roads?",
    "Explain what a password is for.",
    "What is the tallest animal?",
    "Describe what happens when you boil an egg.",
    "Write one sentence encouraging someone before an exam.",
    "What does 'hello' mean?",
    "What is a good name for a pet goldfish?",
    "In one sentence, what is a robot?",
]

HELDOUT_GENERAL = """\
Bread begins as little more than flour, water, salt and a pinch of yeast, yet a loaf that comes out of the oven is light, springy and full of holes. The change happens because yeast is alive. When it is mixed into damp flour it feeds on sugars released from the starch and gives off carbon dioxide and a little alcohol. Kneading the dough stretches two proteins in the flour into long, elastic strands called gluten, and these strands trap the gas in thousands of tiny pockets. Left in a warm place, the dough slowly swells. In the oven the trapped gas expands once more, the alcohol evaporates, and the heat sets the gluten and starch into a firm sponge. A baker who lets the dough rise too long will find that the strands have been stretched past their limit, and the loaf sinks. Patience matters, but so does knowing when to stop.

Anyone who has spent a day at the seaside has watched the water creep up the beach and then slide away again. Tides are caused mostly by the pull of the Moon. Its gravity tugs a little harder on the side of the Earth that faces it than on the far side, and the oceans respond by forming two gentle bulges, one toward the Moon and one away from it. As the Earth turns, a coastline passes through both bulges, which is why many places see two high tides a day. The Sun adds its own smaller pull. When the Sun and Moon line up, at new moon and full moon, the tides are larger than usual; when they pull at right angles, the difference between high and low water is smaller. The shape of a bay can make the effect much stronger, so that in some narrow inlets the sea rises and falls by more than ten metres.

A bicycle with gears lets a rider trade speed for force. The chain connects a ring of teeth at the pedals to a smaller cluster of rings on the back wheel. When the chain sits on a large front ring and a small rear ring, one turn of the pedals spins the wheel several times, which is ideal on a flat road but exhausting on a hill. Shifting to a small front ring and a large rear ring does the opposite: each push on the pedals moves the bike only a short distance, but the push needs much less effort. Experienced riders change gear before a climb rather than halfway up it, because shifting while the chain is under heavy load wears the teeth and can make the chain slip. The aim is to keep the legs turning at a steady, comfortable rhythm whatever the road does.

In autumn the leaves of many trees turn yellow, orange and red before they fall. The colours were partly there all summer. Leaves are green because they are packed with chlorophyll, the pigment that captures sunlight to make sugar, and it hides the yellow and orange pigments that sit beside it. As the days shorten and the nights grow cool, the tree stops making new chlorophyll and begins to pull useful nutrients back into its branches. The green fades, and the hidden colours show through. The reds are different: some trees make fresh red pigments in the autumn, especially after sunny days and cold nights, which is why the display is brighter in some years than in others. Finally a thin layer of cells at the base of each leaf stem seals it off, and the leaf drops.

A refrigerator does not create cold; it moves heat from the inside of the box to the room outside. A special fluid called a refrigerant circulates through a closed loop of pipes. Inside the fridge the fluid evaporates at a low pressure, and evaporation absorbs heat, just as sweat cools the skin. A pump called a compressor then squeezes the vapour, which makes it hot, and sends it through the coils at the back of the appliance, where it gives its heat to the kitchen air and turns back into a liquid. The liquid passes through a narrow valve, its pressure drops, and the cycle starts again. This is why the back of a fridge feels warm and why it works harder when the kitchen is hot or the door is left open.

Early on a Saturday the market square fills slowly. The first stallholders arrive while the streetlights are still on, unfolding tables and tying down canvas roofs that flap in the morning breeze. A woman sets out crates of apples in careful rows, the red ones at the front where the light will catch them. Next to her a man arranges loaves on a wooden board and chalks the prices on a small slate. By eight o'clock the smell of coffee drifts across from a van at the corner, and the first customers appear with cloth bags and sleepy children. People stop to talk as much as to buy. A retired teacher asks after a neighbour's garden, a boy counts his coins twice before choosing a pastry, and somebody's dog waits patiently for a crust to fall.

Sleep is not simply time when the brain switches off. During the night it passes through several stages, from light sleep to deep, slow-wave sleep and then to the stage in which most vivid dreams occur, and this cycle repeats four or five times. Deep sleep seems to help the body repair tissue and the brain clear away waste products that build up during the day. Researchers have also found that sleep plays a part in memory. Experiences from the day are replayed and sorted, and people who sleep after learning a new skill or a list of facts usually remember it better than people who stay awake for the same number of hours. Adults generally need between seven and nine hours a night, and a regular bedtime makes it easier to fall asleep quickly.

Every map is a compromise. The Earth is round, and a flat sheet of paper cannot show its surface without stretching something. Some map projections keep the shapes of small areas correct but make countries near the poles look far too large. Others keep areas in the right proportion but bend the outlines of continents into unfamiliar shapes. The scale of a map tells you how distances on the page relate to distances on the ground: at a scale of one to fifty thousand, a single centimetre stands for half a kilometre. Walkers like large-scale maps because they show paths, streams and the contour lines that reveal how steep a slope will be. A road atlas uses a smaller scale, giving up detail so that a whole region fits on a page.

A honeybee that finds a good patch of flowers needs a way to tell the rest of the hive where it is. Back inside, on the vertical wall of the comb, she performs a dance. She runs a short straight line while waggling her body from side to side, then loops back around and repeats it. The angle of the straight run compared with straight up tells the other bees the direction of the food relative to the position of the Sun. The length of the waggling run tells them how far away it is: the longer the run, the longer the flight. Bees that follow the dancer pick up the scent of the flowers on her body as well, so when they arrive in the right area they can recognise the exact blossoms she visited.

Many islands in the middle of the oceans were built by volcanoes. Deep below the sea floor, hot rock rises slowly and melts as the pressure on it drops. The molten rock, called magma, collects and forces its way upward through cracks, erupting on the sea bed as lava. Each eruption adds a new layer, and over hundreds of thousands of years a mountain can grow tall enough to break the surface. Once the island stands above the waves, rain and wind begin to wear it down, and plants, birds and insects arrive carried by the wind or the currents. When the volcano stops erupting, the island slowly sinks and erodes, and in warm seas a ring of coral may be all that is left to mark where it once stood.

A public library is one of the few places in a town where anyone may walk in, sit down and stay for as long as they like without buying anything. The first libraries held rare handwritten books that were chained to the shelves, and only scholars could use them. Over time printing made books cheaper, and cities began to open collections to everyone, paid for by taxes or by generous donors. Today a library lends far more than books. It offers computers and internet access, quiet rooms for study, help with filling in forms, story time for small children and clubs for people learning a new language. Librarians are trained to find reliable information, which is a useful skill at a time when there is more information than ever and not all of it is true.

When you cook an egg, the change you see is a change in proteins. In a raw egg the proteins are folded into compact balls that float in water, which is why the white is clear and runny. Heat makes the molecules shake until the folds come undone, and the loose strands tangle with their neighbours and bond into a solid network that scatters light, so the white turns firm and opaque. The white sets at a lower temperature than the yolk, which is why a gently cooked egg can have a firm white and a soft centre. Cooking is full of reactions like this one. The browning of toast, the thickening of a sauce and the rise of a cake all depend on what heat does to the molecules in food.
"""


def write_jsonl(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


def generate(out_dir: Path = HERE) -> dict:
    dev = HERE / "commands_dev.jsonl"
    dev_texts = (
        {json.loads(line)["text"].lower() for line in dev.read_text(encoding="utf-8").splitlines() if line.strip()}
        if dev.is_file()
        else set()
    )
    pool = {
        "go forward 2 meters",
        "walk ahead three metres",
        "advance 0.4 m",
        "back up half a meter",
        "move back 4 m",
        "turn right ninety degrees",
        "rotate left by 15 degrees",
        "halt!",
        "stop the robot immediately",
        "close your gripper",
        "pick it up",
        "drop it",
        "open your hand",
        "set the speed to 0.7 m/s",
        "switch off the bedroom lights",
        "lights on in the kitchen",
        "make it 21 degrees in here",
        "set the heating to 17 °c",
        "how is it going?",
        "what is your battery level?",
        "hum a tune",
        "what is two plus two?",
        "close the window",
        "turn on the tv",
    }  # robot_demo.py few-shot pool (English)
    train_cmd = make_commands(TRAIN_COMMANDS, SEED, set())
    test_cmd = make_commands(TEST_COMMANDS, SEED + 1, {r["prompt"].lower() for r in train_cmd} | dev_texts | pool)
    train_sen, train_scen = make_sensors(TRAIN_SENSORS, SEED + 2, set())
    test_sen, test_scen = make_sensors(TEST_SENSORS, SEED + 3, {r["prompt"] for r in train_sen})
    write_jsonl(out_dir / "task_commands_train.jsonl", train_cmd)
    write_jsonl(out_dir / "task_commands_test.jsonl", test_cmd)
    write_jsonl(out_dir / "task_sensors_train.jsonl", train_sen)
    write_jsonl(out_dir / "task_sensors_test.jsonl", test_sen)
    (out_dir / "calib_domain.txt").write_text(calibration_text(train_cmd, train_sen, SEED + 4), encoding="utf-8")
    distill = [{"system": r["system"], "prompt": r["prompt"], "target": r["target"]} for r in train_cmd + train_sen]
    distill += [{"prompt": p} for p in GENERAL_PROMPTS]
    random.Random(SEED + 5).shuffle(distill)
    synth_sen, synth_scen = make_sensors(
        synthetic_sensors(SYNTH_NARRATIONS, seed=7), 1234, {r["prompt"] for r in train_sen + test_sen}
    )
    distill += [{"system": r["system"], "prompt": r["prompt"], "target": r["target"]} for r in synth_sen]
    random.Random(5).shuffle(distill)  # the synthetic narrations among the rest
    write_jsonl(out_dir / "distill_prompts.jsonl", distill)
    fresh_sen, fresh_scen = make_sensors(
        fresh_sensors(FRESH_NARRATIONS, seed=8), 4321, {r["prompt"] for r in train_sen + test_sen + synth_sen}
    )
    copy = [
        {"system": r["system"], "prompt": r["prompt"], "target": r["target"]} for r in train_cmd + train_sen + fresh_sen
    ]
    random.Random(SEED + 7).shuffle(copy)
    write_jsonl(out_dir / "distill_copy.jsonl", copy)
    (out_dir / "heldout_general.txt").write_text(HELDOUT_GENERAL, encoding="utf-8")
    (out_dir / "heldout_domain.txt").write_text(calibration_text(test_cmd, test_sen, SEED + 6), encoding="utf-8")
    return {
        "train_cmd": train_cmd,
        "test_cmd": test_cmd,
        "train_sen": train_sen,
        "test_sen": test_sen,
        "synth_sen": synth_sen,
        "fresh_sen": fresh_sen,
        "scenarios": train_scen + test_scen + synth_scen + fresh_scen,
        "pool": pool,
        "dev": dev_texts,
    }


# --------------------------------------------------------------------------------------
# --check: validate against the SDK itself
# --------------------------------------------------------------------------------------
def check(out_dir: Path, made: dict) -> int:
    import os
    from collections import Counter

    from edgellm_sdk.commands import Command, Refusal, numbers_in
    from edgellm_sdk.robot_demo import DEMO_COMMANDS
    from edgellm_sdk.sensors.narrator import INSTRUCTIONS, PROMPTS, unsupported_numbers
    from edgellm_sdk.toolchain.data import read_examples, read_text

    problems = []
    for spec in DEMO_COMMANDS.commands:
        names = [spec.name] + [a.name for a in spec.args] + [c for a in spec.args for c in a.choices]
        if missing := [n for n in names if n not in COMMANDS_SYSTEM]:
            problems.append(f"COMMANDS_SYSTEM does not name {missing} of DEMO_COMMANDS")
        if list(ARG_ORDER[spec.name]) != [a.name for a in spec.args]:
            problems.append(f"ARG_ORDER[{spec.name!r}] differs from robot_demo.py")
    if not INSTRUCTIONS["en"].startswith(SENSORS_SYSTEM) or PROMPTS["en"] != SENSORS_PROMPT:
        problems.append("SENSORS_SYSTEM / SENSORS_PROMPT differ from sensors.narrator")
    for name in ("task_commands_train", "task_commands_test", "task_sensors_train", "task_sensors_test"):
        examples = read_examples(out_dir / f"{name}.jsonl", need_target=True)
        rows = [json.loads(line) for line in (out_dir / f"{name}.jsonl").read_text(encoding="utf-8").splitlines()]
        kinds = Counter(r["kind"] for r in rows)
        print(f"{name}: {len(examples)} examples; " + ", ".join(f"{k} {n}" for k, n in sorted(kinds.items())))
        for r in rows:
            if "commands" not in name:
                continue
            obj = json.loads(r["target"])
            verdict = DEMO_COMMANDS.validate(obj)
            if r["kind"] == "out_of_range":
                if not (isinstance(verdict, Refusal) and verdict.reason.startswith("not allowed")):
                    problems.append(f"{name}: {r['prompt']!r} should be refused for its range, got {verdict}")
            elif obj["command"] == "not_understood":
                if not isinstance(verdict, Refusal) or verdict.reason != "not understood":
                    problems.append(f"{name}: {r['prompt']!r}: bad refusal {verdict}")
            elif not isinstance(verdict, Command):
                problems.append(f"{name}: {r['prompt']!r} -> {r['target']} is refused: {verdict.reason}")
            stated = numbers_in(r["prompt"])
            for key, value in obj.items():
                if isinstance(value, (int, float)) and float(value) not in stated:
                    problems.append(f"{name}: {r['prompt']!r}: {key}={value} is not stated (reads {stated})")
            if list(obj) != ["command", *ARG_ORDER[obj["command"]]]:
                problems.append(f"{name}: {r['target']} keys out of order")
    # sensors: the targets state only numbers the facts hold
    narrations = made["train_sen"] + made["test_sen"] + made["synth_sen"] + made["fresh_sen"]
    for r, (channels, active, events) in zip(narrations, made["scenarios"], strict=True):
        facts, evs = sdk_facts(channels, active, events)
        if bad := unsupported_numbers(r["target"], narration_data(facts, evs)):
            problems.append(f"sensor target states numbers the facts lack: {bad}: {r['target']!r}")
    # leaks
    train_prompts = {
        r["prompt"].lower() for r in made["train_cmd"] + made["train_sen"] + made["synth_sen"] + made["fresh_sen"]
    }
    pool = {text.lower() for text, _ in DEMO_COMMANDS.examples}
    for r in made["test_cmd"] + made["test_sen"]:
        p = r["prompt"].lower()
        if p in train_prompts or p in pool or p in made["dev"]:
            problems.append(f"test prompt leaks: {r['prompt']!r}")
    for name in ("distill_prompts.jsonl", "distill_copy.jsonl"):
        rows = read_examples(out_dir / name, need_target=False)
        print(f"{name}: {len(rows)} prompts, {sum(r.target is not None for r in rows)} with a target")
    # token counts with the default model's tokenizer
    home = Path(os.environ.get("EDGELLM_HOME") or Path.home() / ".cache" / "edgellm")
    tok_dir = home / "models" / "smollm2-135m"
    if (tok_dir / "tokenizer.json").is_file():
        from edgellm_sdk.tokenizer import Tokenizer

        tok = Tokenizer.from_dir(tok_dir)
        for name in ("calib_domain.txt", "heldout_general.txt", "heldout_domain.txt"):
            text = read_text(out_dir / name)
            print(f"{name}: {len(tok.encode(text))} tokens, {len(text.split())} words")
        lens = {
            n: [len(tok.encode(r["prompt"])) + len(tok.encode(r["target"])) for r in made[n]]
            for n in ("train_cmd", "train_sen")
        }
        for n, ls in lens.items():
            print(f"{n}: prompt+target tokens mean {sum(ls) / len(ls):.0f}, max {max(ls)}")
        print(
            f"system prompts: commands {len(tok.encode(COMMANDS_SYSTEM))} tokens, sensors "
            f"{len(tok.encode(SENSORS_SYSTEM))} tokens"
        )
    else:
        print(f"(no tokenizer at {tok_dir}: token counts skipped; set EDGELLM_HOME)")
    for p in problems[:20]:
        print("PROBLEM:", p, file=sys.stderr)
    print(f"{len(problems)} problem(s)")
    return 1 if problems else 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--check", action="store_true", help="validate the files with edgellm_sdk (run in the venv)")
    ap.add_argument("--out-dir", type=Path, default=HERE, help="where to write (default: next to this script)")
    args = ap.parse_args(argv)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    made = generate(args.out_dir)
    for name in (
        "task_commands_train.jsonl",
        "task_commands_test.jsonl",
        "task_sensors_train.jsonl",
        "task_sensors_test.jsonl",
        "calib_domain.txt",
        "distill_prompts.jsonl",
        "distill_copy.jsonl",
        "heldout_general.txt",
        "heldout_domain.txt",
    ):
        path = args.out_dir / name
        print(f"wrote {path} ({path.stat().st_size / 1024:.1f} KB)")
    return check(args.out_dir, made) if args.check else 0


if __name__ == "__main__":
    sys.exit(main())
