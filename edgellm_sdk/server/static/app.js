// The chat page: streams /v1/chat/completions (fetch + SSE parsing), shows /status every 2 s.
"use strict";
const $ = (id) => document.getElementById(id);
const history = [];
let controller = null;
$("key").value = localStorage.getItem("edgellm-key") || "";
$("key").addEventListener("change", () => localStorage.setItem("edgellm-key", $("key").value));

function headers() {
  const h = { "Content-Type": "application/json" };
  if ($("key").value) h.Authorization = "Bearer " + $("key").value;
  return h;
}

function bubble(role, text) {
  const div = document.createElement("div");
  div.className = "msg " + role;
  div.textContent = text;
  $("log").appendChild(div);
  $("log").scrollTop = $("log").scrollHeight;
  return div;
}

async function send(text) {
  history.push({ role: "user", content: text });
  bubble("user", text);
  const out = bubble("assistant", "");
  controller = new AbortController();
  $("send").disabled = true;
  $("stop").disabled = false;
  try {
    const resp = await fetch("/v1/chat/completions", {
      method: "POST", headers: headers(), signal: controller.signal,
      body: JSON.stringify({ messages: history, stream: true, max_tokens: 256 }),
    });
    if (!resp.ok) throw new Error((await resp.json()).error.message);
    const reader = resp.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const event = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        if (!event.startsWith("data: ") || event === "data: [DONE]") continue;
        const delta = JSON.parse(event.slice(6)).choices[0]?.delta || {};
        if (delta.content) out.textContent += delta.content;
      }
    }
    history.push({ role: "assistant", content: out.textContent });
  } catch (err) {
    if (err.name !== "AbortError") { out.className = "msg error"; out.textContent = String(err.message || err); }
  } finally {
    controller = null;
    $("send").disabled = false;
    $("stop").disabled = true;
  }
}

$("form").addEventListener("submit", (e) => {
  e.preventDefault();
  const text = $("prompt").value.trim();
  if (text && !controller) { $("prompt").value = ""; send(text); }
});
$("prompt").addEventListener("keydown", (e) => {
  if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); $("form").requestSubmit(); }
});
$("stop").addEventListener("click", () => controller && controller.abort());

const fmt = (v) => (typeof v === "number" ? (Number.isInteger(v) ? v : v.toFixed(3)) : v);
async function refresh() {
  try {
    const resp = await fetch("/status", { headers: headers() });
    if (!resp.ok) return;
    const s = await resp.json();
    $("model").textContent = "model: " + s.model + (s.variant ? " (" + s.variant + ")" : "");
    $("profile").textContent = "profile: " + (s.profile || "none");
    const dl = $("metrics");
    dl.replaceChildren();
    for (const [k, v] of Object.entries(s.metrics)) {
      const dt = document.createElement("dt"); dt.textContent = k.replaceAll("_", " ");
      const dd = document.createElement("dd"); dd.textContent = fmt(v);
      dl.append(dt, dd);
    }
  } catch (err) { /* the server restarts: try again next tick */ }
}
refresh();
setInterval(refresh, 2000);
