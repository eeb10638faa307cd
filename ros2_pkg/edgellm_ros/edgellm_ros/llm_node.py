"""llm_node: a lifecycle node serving the EdgeLLM Engine.

configure loads the model (Engine.load) and warms the system prompt; activate opens
  ~/generate  (edgellm_interfaces/action/Generate)  streamed text, cancel, deadline
  ~/query     (edgellm_interfaces/srv/Query)        one-shot, greedy
  ~/parse_command (edgellm_interfaces/srv/ParseCommand)  validated robot command or refusal
  ~/prompt -> ~/response (std_msgs/String)          a simple topic bridge
Requests share one Engine first come, first served: one runs, at most ``max_queue`` wait, more are
refused. A goal's place is kept under its UUID from acceptance until it ends, and given back at once
when it is cancelled before it runs or the node deactivates. /diagnostics reports the model, state,
tokens/s, queue depth and cache hit rate.
"""

from __future__ import annotations

import json
import sys
import threading
import time

import rclpy
from action_msgs.msg import GoalStatus  # noqa: F401  (re-exported for clients' convenience)
from diagnostic_msgs.msg import DiagnosticArray
from edgellm_interfaces.action import Generate
from edgellm_interfaces.msg import Usage
from edgellm_interfaces.srv import ParseCommand, Query
from rclpy.action import ActionServer, CancelResponse, GoalResponse
from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from std_msgs.msg import String

from edgellm_sdk.models.store import DEFAULT_MODEL

from .diagnostics import ERROR, OK, WARN, diagnostic_array
from .engine_host import EngineHost, Outcome, load_command_set
from .params import BadParameter, Param, current, declare
from .requests import Defaults, chat_messages, generate_kwargs
from .turns import GoalPlaces, Turn

MAX_QUEUE_LIMIT = 16
DEFAULT_SYSTEM = "You are a helpful assistant on a robot. Answer in one or two short sentences."

PARAMS = (
    Param(
        "model",
        DEFAULT_MODEL,
        "installed model name (edgellm pull NAME) or a model directory; takes effect at the next configure",
    ),
    Param(
        "profile",
        "",
        "device profile: auto (detect the board), rpi4, rpi5, jetson-orin-nano, jetson-nano, "
        "x86-64 or a .toml path; empty = none. It sets threads, context, variant, execution providers and the "
        "memory budget unless the parameters below do",
    ),
    Param("variant", "", "ONNX variant (q4, q8, fp32...); empty = the profile's, else the model's default"),
    Param("threads", 0, "onnxruntime intra-op threads; 0 = the profile's, else automatic", 0, 64),
    Param(
        "max_context",
        0,
        "KV cache length in tokens; 0 = the profile's, else the SDK default (capped by the model)",
        0,
        131072,
    ),
    Param("system_prompt", DEFAULT_SYSTEM, "system prompt for requests that bring none (prefilled once at configure)"),
    Param("max_tokens", 256, "default tokens per answer", 1, 8192),
    Param("deadline_s", 0.0, "default time limit per request in seconds; 0 = none", 0.0, 3600.0),
    Param("max_queue", 2, "requests that may wait while one runs; more are refused", 0, MAX_QUEUE_LIMIT),
    Param("prefix_cache_mb", -1, "prefix KV cache budget in MB; 0 = off, -1 = the profile's (else 32)", -1, 4096),
    Param("response_cache_mb", 8, "answer cache for deterministic requests in MB; 0 = off", 0, 4096),
    Param(
        "command_set",
        "edgellm_sdk.robot_demo:DEMO_COMMANDS",
        "'module:ATTRIBUTE' of the CommandSet ~/parse_command uses; empty = no command parsing",
        check=lambda v: None if not v or ":" in v else f"command_set={v!r} must look like 'package.module:ATTR'",
    ),
    Param(
        "command_embedder",
        "",
        "embedding model for command few-shot retrieval (e.g. minilm-l6); empty = character bigrams",
    ),
    Param("autostart", True, "configure and activate at start-up", read_only=True),
    Param("diagnostics_period_s", 1.0, "seconds between /diagnostics messages", 0.1, 60.0, read_only=True),
)
PARAM_BY_NAME = {p.name: p for p in PARAMS}


class LlmNode(LifecycleNode):
    def __init__(self, **kwargs):
        super().__init__("llm_node", **kwargs)
        declare(self, PARAMS)
        self.host: EngineHost | None = None
        self.engine = None  # the Engine configure loaded (closed by cleanup)
        self.problem = ""  # why the last configure failed
        self._group = ReentrantCallbackGroup()
        self._servers: list = []
        self.goals = GoalPlaces()  # accepted Generate goals by UUID: cancel flag, place in line
        self._state = "unconfigured"
        self._diagnostics = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.create_timer(self.p("diagnostics_period_s"), self._publish_diagnostics)

    def p(self, name: str):
        return PARAM_BY_NAME[name].coerce(self.get_parameter(name).value)

    # ---- lifecycle ----------------------------------------------------------------------
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        from edgellm_sdk import EdgeLLMError, Engine, ResponseCache
        from edgellm_sdk.profiles import named

        t0 = time.perf_counter()
        cfg = current(self, PARAMS)
        try:
            cache = ResponseCache(cfg["response_cache_mb"] << 20) if cfg["response_cache_mb"] else None
            prefix = True if cfg["prefix_cache_mb"] < 0 else (cfg["prefix_cache_mb"] << 20) or False
            engine = Engine.load(
                cfg["model"],
                profile=named(cfg["profile"]),
                variant=cfg["variant"] or None,
                threads=cfg["threads"] or None,
                max_context=cfg["max_context"] or None,
                prefix_cache=prefix,
                response_cache=cache,
            )
            if cfg["system_prompt"] and engine.prefix_cache is not None:
                engine.warm([{"role": "system", "content": cfg["system_prompt"]}])
            make_parser = self._command_parser(engine, cfg) if cfg["command_set"] else None
        except (EdgeLLMError, ValueError, TypeError, OSError) as exc:
            self.problem = f"configure failed: {exc}"
            self.get_logger().error(self.problem)
            return TransitionCallbackReturn.FAILURE
        self.engine = engine
        self.host = EngineHost(engine, max_queue=cfg["max_queue"], make_parser=make_parser, response_cache=cache)
        self.problem, self._state = "", "inactive"
        self.get_logger().info(f"loaded {engine.model_id} in {time.perf_counter() - t0:.2f} s: {engine.plan}")
        return TransitionCallbackReturn.SUCCESS

    def _command_parser(self, engine, cfg):
        """Check the command set now; the parser itself is built in the background."""
        from edgellm_sdk.commands import CommandParser

        commands = load_command_set(cfg["command_set"])
        embedder = None
        if cfg["command_embedder"]:
            from edgellm_sdk import Embedder

            embedder = Embedder.load(cfg["command_embedder"])
        return lambda: CommandParser(engine, commands, embedder=embedder)

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        g = self._group
        self._response = self.create_publisher(String, "~/response", 10)
        self._servers = [
            ActionServer(
                self,
                Generate,
                "~/generate",
                execute_callback=self._execute,
                goal_callback=self._on_goal,
                handle_accepted_callback=self._on_accepted,
                cancel_callback=self._on_cancel,
                callback_group=g,
            ),
            self.create_service(Query, "~/query", self._on_query, callback_group=g),
            self.create_service(ParseCommand, "~/parse_command", self._on_parse_command, callback_group=g),
            self.create_subscription(String, "~/prompt", self._on_prompt, 10, callback_group=g),
        ]
        self._state = "active"
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._close_interfaces()
        self._state = "inactive"
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._unload()
        self._state = "unconfigured"
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._close_interfaces()
        self._unload()
        self._state = "finalized"
        return TransitionCallbackReturn.SUCCESS

    def _close_interfaces(self) -> None:
        self.goals.cancel_all()
        if self.host is not None:
            self.host.cancel_all()
        for server in self._servers:
            server.destroy() if isinstance(server, ActionServer) else self.destroy_entity(server)
        if self._servers:
            self.destroy_publisher(self._response)
        self._servers = []

    def _unload(self) -> None:
        self.goals.cancel_all()
        if self.host is not None:
            self.host.close()
            self.host = None
        if self.engine is not None:
            self.engine.close()
            self.engine = None

    def destroy_entity(self, entity) -> None:
        (self.destroy_service if hasattr(entity, "srv_type") else self.destroy_subscription)(entity)

    # ---- Generate action ------------------------------------------------------------------
    def _on_goal(self, goal) -> GoalResponse:
        """Accept while there is room in line. The place is held here, in order of arrival, and
        kept under the goal's UUID by _on_accepted (this callback does not see the UUID)."""
        host = self.host
        if self._state != "active" or host is None:
            self.get_logger().warning("goal rejected: the node is not active")
            return GoalResponse.REJECT
        self._defaults()  # max_queue may have changed
        turn = host.turns.hold()
        if turn is None:
            self.get_logger().warning(f"goal rejected: {host.turns.max_queue} requests already wait (max_queue)")
            return GoalResponse.REJECT
        self.goals.offer(goal, turn)
        return GoalResponse.ACCEPT

    def _on_accepted(self, goal_handle) -> None:
        self.goals.accept(bytes(goal_handle.goal_id.uuid), goal_handle.request)
        goal_handle.execute()

    def _on_cancel(self, goal_handle) -> CancelResponse:
        if goal_handle.is_active:
            self.goals.cancel(bytes(goal_handle.goal_id.uuid))
            if self.host is not None:
                self.host.turns.wake()
        return CancelResponse.ACCEPT

    def _execute(self, goal_handle) -> Generate.Result:
        key = bytes(goal_handle.goal_id.uuid)
        cancel, turn = self.goals.start(key)
        try:
            outcome = self._generate_goal(goal_handle, cancel, turn)
            if outcome.finish_reason == "cancelled" and goal_handle.is_cancel_requested:
                goal_handle.canceled()
            elif outcome.finish_reason in ("error", "busy"):
                goal_handle.abort()
            else:
                goal_handle.succeed()
        finally:
            self.goals.end(key)
        return Generate.Result(
            text=outcome.text,
            finish_reason=outcome.finish_reason,
            error=outcome.error,
            usage=_usage(outcome.usage),
            cached=outcome.cached,
        )

    def _generate_goal(self, goal_handle, cancel: threading.Event, turn: Turn | None) -> Outcome:
        """Run the goal in its place (``turn``, released here; None: take one now or refuse)."""
        try:
            host = self.host
            if cancel.is_set() or goal_handle.is_cancel_requested:
                return Outcome(finish_reason="cancelled")  # cancelled before it ran
            if host is None:
                return Outcome(error="the node is not configured")
            if self._state != "active":
                return Outcome(error="the node was deactivated before this goal ran")
            try:
                messages, kwargs = generate_kwargs(goal_handle.request, self._defaults())
            except ValueError as exc:
                return Outcome(error=str(exc))

            def feedback(delta: str, count: int) -> None:
                goal_handle.publish_feedback(Generate.Feedback(delta=delta, token_count=count))

            return host.generate(messages, kwargs, cancel=cancel, on_token=feedback, turn=turn)
        finally:
            if turn is not None:
                turn.done()  # idempotent: host.generate already gave it back when it ran

    def _defaults(self) -> Defaults:
        if self.host is not None:
            self.host.turns.max_queue = self.p("max_queue")  # may change at run time
        return Defaults(self.p("system_prompt"), self.p("max_tokens"), self.p("deadline_s"))

    # ---- services and the topic bridge ----------------------------------------------------
    def _simple(self, prompt: str, max_tokens: int = 0) -> Outcome:
        host, defaults = self.host, self._defaults()
        if host is None:
            return Outcome(error="the node is not configured")
        try:
            messages = chat_messages(prompt, (), "", defaults.system_prompt)
        except ValueError as exc:
            return Outcome(error=str(exc))
        kwargs = {"max_tokens": max_tokens or defaults.max_tokens, "deadline_s": defaults.deadline_s or None}
        return host.generate(messages, kwargs, cancel=threading.Event())

    def _on_query(self, request: Query.Request, response: Query.Response) -> Query.Response:
        outcome = self._simple(request.prompt, request.max_tokens)
        response.success = outcome.finish_reason not in ("error", "busy", "cancelled")
        response.text, response.finish_reason, response.error = outcome.text, outcome.finish_reason, outcome.error
        response.usage, response.cached = _usage(outcome.usage), outcome.cached
        return response

    def _on_prompt(self, msg: String) -> None:
        outcome = self._simple(msg.data)
        if outcome.error:
            self.get_logger().warning(f"~/prompt not answered: {outcome.error}")
            return
        self._response.publish(String(data=outcome.text))

    def _on_parse_command(self, request: ParseCommand.Request, response: ParseCommand.Response):
        t0 = time.perf_counter()
        host = self.host
        if host is None:
            result = Outcome(error="the node is not configured")
        elif not request.request.strip():
            result = Outcome(error="request is empty: send the person's words, e.g. 'drive forward 1 meter'")
        else:
            result = host.parse_command(
                request.request, deadline_s=self.p("deadline_s") or None, cancel=threading.Event()
            )
        response.latency_s = time.perf_counter() - t0
        if isinstance(result, Outcome):
            response.accepted, response.reason = False, result.error or result.finish_reason
        elif hasattr(result, "reason"):
            response.accepted, response.reason = False, result.reason
            if result.suggestion is not None:  # low confidence: the caller asks, then executes
                response.needs_confirmation, response.command = True, result.suggestion.name
                response.arguments_json = json.dumps(result.suggestion.args, ensure_ascii=False)
        else:
            response.accepted, response.command = True, result.name
            response.arguments_json = json.dumps(result.args, ensure_ascii=False)
        return response

    # ---- diagnostics ----------------------------------------------------------------------
    def _publish_diagnostics(self) -> None:
        host = self.host
        values: dict[str, object] = {"state": self._state, "model": self.p("model")}
        if host is None:
            level = ERROR if self.problem else WARN
            message = self.problem or f"model not loaded ({self._state})"
        else:
            s = host.stats
            level, message = (OK, "ready") if self._state == "active" else (WARN, self._state)
            values.update(
                model_id=host.engine.model_id,
                queue_depth=host.turns.waiting,
                busy=host.turns.busy,
                max_queue=host.turns.max_queue,
                requests=s.requests,
                tokens=s.tokens,
                tokens_per_s=s.last_tokens_per_s,
                ttft_s=s.last_ttft_s,
                errors=s.errors,
                busy_refusals=s.busy_refusals,
                cached_answers=s.cached_answers,
                cache_hit_rate=host.cache_hit_rate(),
                command_parser=host.parser_state(),
            )
        self._diagnostics.publish(diagnostic_array(self, level, message, values))


def _usage(usage) -> Usage:
    if usage is None:
        return Usage()
    return Usage(
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
        ttft_s=usage.ttft_s,
        total_s=usage.total_s,
        decode_tokens_per_s=usage.decode_tokens_per_s,
    )


def main(args=None) -> int:
    rclpy.init(args=args)
    try:
        node = LlmNode()
    except BadParameter as exc:
        print(f"llm_node: {exc}", file=sys.stderr)
        rclpy.try_shutdown()
        return 2
    executor = MultiThreadedExecutor(num_threads=MAX_QUEUE_LIMIT + 4)
    executor.add_node(node)
    if node.p("autostart"):
        t0 = time.perf_counter()
        node.trigger_configure()
        if node.host is not None:
            node.trigger_activate()
            node.get_logger().info(f"active in {time.perf_counter() - t0:.2f} s")
    try:
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node._unload()
        executor.shutdown(timeout_sec=2.0)
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
