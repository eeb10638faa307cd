"""PII redaction quality and latency on benchmarks/data/pii_labelled.jsonl.

The set: 238 strings (118 English, 110 Chinese, 10 mixed), 104 of them without PII, among them hard
negatives (sensor readings, versions, times, robot commands, city names). Labelling rules:
PERSON = a person's name (titles like Mr./Dr. excluded; 王先生 / 罗老师 kept whole); PHONE, EMAIL, IP, MAC
as written; ADDRESS = a street-level postal address (house number + street, with city / postcode when
they follow), a city or country alone is not PII; GPS = a coordinate pair, or each labelled value
(lat 52.52 / 北纬39.90); ID = national ID, social security or payment card number.

Matching is by span overlap: a found span is a true positive if it overlaps a labelled span of the same
type (each labelled span is matched once). "Leaked" counts labelled spans not wholly covered by found
spans of any type: the part of the PII a redacted string would still show.

    .venv/bin/python benchmarks/bench_pii.py   # writes benchmarks/results/bench_pii.json and .md
"""

from __future__ import annotations

import json
import statistics
import time
from collections import Counter
from pathlib import Path

from machine import describe, machine

from edgellm_sdk.privacy import PLACEHOLDERS, Redactor

HERE = Path(__file__).resolve().parent
DATA = HERE / "data" / "pii_labelled.jsonl"
OUT = HERE / "results" / "bench_pii"


def load(path: Path) -> list[dict]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip() and not line.startswith("#")]


def score(rows: list[dict], found: list[list]) -> dict:
    tp, fp, fn, leaked = Counter(), Counter(), Counter(), 0
    errors = []
    for row, spans in zip(rows, found):
        gold = row["entities"]
        matched = set()
        for s in spans:
            hit = next(
                (
                    i
                    for i, g in enumerate(gold)
                    if i not in matched and g["type"] == s.type and s.start < g["end"] and g["start"] < s.end
                ),
                None,
            )
            if hit is None:
                fp[s.type] += 1
                errors.append({"text": row["text"], "false_positive": s.type, "span": row["text"][s.start : s.end]})
            else:
                matched.add(hit)
                tp[s.type] += 1
        for i, g in enumerate(gold):
            if i not in matched:
                fn[g["type"]] += 1
                errors.append({"text": row["text"], "missed": g["type"], "span": g["text"]})
            covered = set()
            for s in spans:
                covered |= set(range(max(s.start, g["start"]), min(s.end, g["end"])))
            leaked += len(covered) < g["end"] - g["start"]

    def prf(t: int, p: int, n: int) -> dict:
        precision = t / (t + p) if t + p else 1.0
        recall = t / (t + n) if t + n else 1.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        return {
            "precision": round(precision, 3),
            "recall": round(recall, 3),
            "f1": round(f1, 3),
            "tp": t,
            "fp": p,
            "fn": n,
        }

    per_type = {k: prf(tp[k], fp[k], fn[k]) for k in PLACEHOLDERS if tp[k] + fp[k] + fn[k]}
    overall = prf(sum(tp.values()), sum(fp.values()), sum(fn.values()))
    negatives = [f for row, f in zip(rows, found) if not row["entities"]]
    n_gold = sum(len(r["entities"]) for r in rows)
    return {
        "per_type": per_type,
        "overall": overall,
        "leaked_spans": leaked,
        "labelled_spans": n_gold,
        "clean_strings_left_unchanged": f"{sum(not f for f in negatives)}/{len(negatives)}",
        "errors": errors,
    }


def main() -> None:
    rows = load(DATA)
    t0 = time.perf_counter()
    redactor = Redactor().load()
    build_s = time.perf_counter() - t0
    found = [redactor.find(r["text"]) for r in rows]
    times = []
    for _ in range(5):
        for r in rows:
            t = time.perf_counter()
            redactor.redact(r["text"])
            times.append(time.perf_counter() - t)
    times.sort()
    long_text = " ".join(r["text"] for r in rows[:20])  # ~1 KB: a long prompt or a paragraph of a transcript
    long_times = []
    for _ in range(20):
        t = time.perf_counter()
        redactor.redact(long_text)
        long_times.append(time.perf_counter() - t)
    results = {
        "data": str(DATA.relative_to(HERE.parent)),
        "strings": len(rows),
        "languages": dict(Counter(r["lang"] for r in rows)),
        "matching": "span overlap, same type",
        **score(rows, found),
        "by_language": {
            lang: score([r for r in rows if r["lang"] == lang], [f for r, f in zip(rows, found) if r["lang"] == lang])[
                "overall"
            ]
            for lang in ("en", "zh", "mixed")
        },
        "latency_ms": {
            "p50": round(1e3 * statistics.median(times), 2),
            "p95": round(1e3 * times[int(0.95 * len(times))], 2),
            "median_chars": statistics.median(len(r["text"]) for r in rows),
            f"p50_{len(long_text)}_chars": round(1e3 * statistics.median(long_times), 2),
            "first_use_s": round(build_s, 2),
        },
        "machine": machine(),
    }
    errors = results.pop("errors")
    results["errors"] = errors
    OUT.parent.mkdir(exist_ok=True)
    OUT.with_suffix(".json").write_text(json.dumps(results, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    md = [
        f"PII redaction on `{results['data']}` ({len(rows)} strings; span-overlap matching), {describe(results['machine'])}",
        "",
        "| entity | precision | recall | F1 | labelled |",
        "|---|---|---|---|---|",
    ]
    for k, v in results["per_type"].items():
        md.append(f"| {k} | {v['precision']:.3f} | {v['recall']:.3f} | {v['f1']:.3f} | {v['tp'] + v['fn']} |")
    o = results["overall"]
    md.append(f"| **overall** | {o['precision']:.3f} | {o['recall']:.3f} | {o['f1']:.3f} | {o['tp'] + o['fn']} |")
    lat = results["latency_ms"]
    md += [
        "",
        (
            f"Leaked labelled spans (not wholly covered by any placeholder): "
            f"{results['leaked_spans']}/{results['labelled_spans']}; "
            f"clean strings left unchanged: {results['clean_strings_left_unchanged']}."
        ),
        (
            f"Latency per redact() call: p50 {lat['p50']} ms, p95 {lat['p95']} ms (median {lat['median_chars']} characters); "
            f"p50 {lat[f'p50_{len(long_text)}_chars']} ms on {len(long_text)} characters; "
            f"first use (imports, jieba dictionary) {lat['first_use_s']} s."
        ),
    ]
    OUT.with_suffix(".md").write_text("\n".join(md) + "\n", encoding="utf-8")
    print("\n".join(md))
    print(f"\n{len(errors)} errors:")
    for e in errors:
        print(" ", json.dumps(e, ensure_ascii=False))


if __name__ == "__main__":
    main()
