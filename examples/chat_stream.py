"""Stream a chat answer with a deadline and Ctrl-C cancellation.

python examples/chat_stream.py "How does a lidar work?"
"""

import signal
import sys
import threading

from edgellm_sdk import Engine

question = " ".join(sys.argv[1:]) or "Give me three tips for keeping a robot's battery healthy."
cancel = threading.Event()
signal.signal(signal.SIGINT, lambda *_: cancel.set())  # Ctrl-C ends the answer cleanly

with Engine.load("smollm2-135m") as engine:
    messages = [
        {"role": "system", "content": "You are a concise assistant inside a home robot."},
        {"role": "user", "content": question},
    ]
    for token in engine.generate(messages, max_tokens=200, deadline_s=10.0, cancel=cancel):
        print(token.text, end="", flush=True)
    u = token.usage
    print(
        f"\n[{token.finish_reason}] {u.prompt_tokens} prompt + {u.completion_tokens} generated tokens, "
        f"TTFT {u.ttft_s * 1000:.0f} ms, {u.decode_tokens_per_s:.1f} tok/s"
    )
