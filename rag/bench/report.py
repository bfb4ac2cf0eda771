"""Tables for the terminal, the floors each run is judged against, and the JSON file with every number.

Tables and floors are computed from the results dictionary alone (the same one ``--json`` writes),
so a saved run can be re-rendered and re-judged without measuring again.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from rag.bench.failures import unavailable
from rag.bench.llm import LLAMA

Row = list[Any]
CONCURRENCY_NOTE = (
    "engine: pipeline serves one generation at a time, so concurrent questions queue; engine: batching "
    "(continuous batching, what `kura serve` uses) decodes them together."
)

INGEST_NOTE = (
    "wall = the embedding model's load + the ingest; tokens/s = tokens embedded per wall second; padding share = "
    "padded / executed encoder tokens. The notebook pipeline splits 400/50 characters, Kura 200/30 tokens."
)


@dataclass
class Floor:
    """A target a figure must reach; ``met`` is None when this run did not measure it."""

    name: str
    target: str
    measured: str
    met: bool | None


def fmt(value: Any, digits: int = 1) -> str:
    """A median with its range when there were several runs, e.g. ``51.2 (48.0-53.1)``."""
    if value is None:
        return "-"
    if isinstance(value, dict) and "median" in value:
        median, low, high = (fmt(value[k], digits) for k in ("median", "min", "max"))
        return median if low == high else f"{median} ({low}-{high})"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _median(value: Any) -> float | None:
    return value.get("median") if isinstance(value, dict) else value


def _times(value: Any) -> str:
    return "-" if value is None else f"{value:.2f}×"


def _pct(value: Any) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _failed_row(name: str, info: dict[str, Any], width: int) -> Row | None:
    """An engine's row when it did not run: Kura's own "failed", a baseline "baseline unavailable"."""
    if "error" in info:
        status, reason = "failed", info["error"]
    elif (why := unavailable(info)) is not None:
        status, reason = "baseline unavailable", why
    else:
        return None
    return [name, status, reason[:80], *[""] * (width - 3)]


PEAK_KEYS = {"fp32": "peak_gflops", "bf16": "peak_gflops_bf16", "int8": "peak_gops_int8"}


def _peak_share(info: dict[str, Any], limits: dict[str, Any]) -> str:
    """Useful GFLOP/s (real tokens only) as a share of the measured matmul peak of the precision it runs in."""
    peak = limits.get(PEAK_KEYS.get(info.get("peak_kind", ""), ""))
    if not peak or "useful_gflop_per_s" not in info:
        return "-"
    return f"{100 * info['useful_gflop_per_s'] / peak:.0f}% {info['peak_kind']}"


def embed_table(data: dict[str, Any], limits: dict[str, Any] | None = None) -> tuple[list[str], list[Row]]:
    limits = limits or {}
    columns = ["variant", "exec", "chunks/s", "× ST", "× ST-OV", "cos min / mean", "top-1 vs fp32", "hit@1"]
    columns += ["padding", "% of peak", "RSS MB"]
    rows = []
    for name, info in data["variants"].items():
        if (failed := _failed_row(name, info, len(columns))) is not None:
            rows.append(failed)
            continue
        cosine = info.get("cosine_vs_torch")
        rows.append([
            name,
            info.get("execution_precision", "torch fp32"),
            fmt(info["chunks_per_s"]),
            _times(info.get("ratio_vs_torch")),
            _times(info.get("ratio_vs_st_openvino")),
            f"{cosine['min']:.5f} / {cosine['mean']:.5f}" if cosine else "-",
            _pct(info.get("top1_agreement_vs_fp32")),
            _pct(info.get("hit_at_1")),
            _pct(info.get("padding_share")),
            _peak_share(info, limits),
            fmt(info.get("peak_rss_mb")),
        ])  # fmt: skip
    return columns, rows


def llm_table(data: dict[str, Any]) -> tuple[list[str], list[Row]]:
    columns = ["engine", "TTFT ms", "TTFT × llama.cpp", "decode tok/s", "× llama.cpp", "× PyTorch", "limit tok/s"]
    columns.append("RSS MB")
    rows = []
    for name, info in data["engines"].items():
        if (failed := _failed_row(name, info, len(columns))) is not None:
            rows.append(failed)
            continue
        rows.append([
            name,
            fmt(info["ttft_ms"], 0),
            _times(info.get("ttft_ratio_vs_llama_cpp")),
            fmt(info["decode_tokens_per_s"]),
            _times(info.get("decode_ratio_vs_llama_cpp")),
            _times(info.get("decode_ratio_vs_torch")),
            fmt(info.get("decode_limit_tokens_per_s")),
            fmt(info.get("peak_rss_mb")),
        ])  # fmt: skip
    return columns, rows


def lookup_table(data: dict[str, Any]) -> tuple[list[str], list[Row]]:
    columns = ["prompt lookup", "answer tok/s", "× off", "decode tok/s", "TTFT ms", "tokens", "same text as off"]
    lookup = data.get("prompt_lookup", {})
    if "error" in lookup:
        return columns, [["failed", lookup["error"][:80], "", "", "", "", ""]]
    off = _median(lookup.get("off", {}).get("answer_tokens_per_s"))
    rows = []
    for name, info in lookup.items():
        if not isinstance(info, dict) or "answer_tokens_per_s" not in info:
            continue
        rate = _median(info["answer_tokens_per_s"])
        rows.append([
            name,
            fmt(info["answer_tokens_per_s"]),
            _times(rate / off) if off and rate else "-",
            fmt(info["decode_tokens_per_s"]),
            fmt(info["ttft_ms"], 0),
            f"{sum(info['generated_tokens']) / max(len(info['generated_tokens']), 1):.0f} avg",
            f"{sum(info['same_text_as_off'])}/{len(info['same_text_as_off'])}",
        ])  # fmt: skip
    return columns, rows


def retrieve_table(data: dict[str, Any]) -> tuple[list[str], list[Row]]:
    columns = ["Chroma", "vectors", "insert s", "p50 ms", "p95 ms", "RSS MB"]
    rows = []
    for backend, info in data["backends"].items():
        if "error" in info:
            rows.append([backend, "failed", info["error"][:80], "", "", ""])
            continue
        for size in data["sizes"]:
            entry = info.get(str(size), {})
            rows.append([
                backend, f"{size:,}", fmt(entry.get("insert_s")), fmt(entry.get("p50_ms"), 2),
                fmt(entry.get("p95_ms"), 2), fmt(info.get("peak_rss_mb")),
            ])  # fmt: skip
    return columns, rows


def e2e_tables(data: dict[str, Any]) -> list[tuple[str, list[str], list[Row]]]:
    single = [
        ["first answer token (ask() to first answer text), ms", fmt(data.get("first_answer_token_ms"), 0)],
        ["total per answer, ms", fmt(data.get("total_ms"), 0)],
        ["retrieval (hybrid), ms", fmt(data.get("retrieve_ms"), 0)],
        ["LLM time to first token, ms", fmt(data.get("llm_ttft_ms"), 0)],
        ["the rest before the first token (packing, evidence), ms", fmt(data.get("other_before_first_token_ms"), 0)],
        ["decode tok/s (Answer.timings)", fmt(data.get("decode_tokens_per_s"))],
        ["questions asked / abstained (not timed)", f"{data.get('questions')} / {data.get('abstained')}"],
    ]
    lookup = data.get("prompt_lookup") or {}
    if "on" in lookup:
        on, off = lookup["on"], lookup["off"]
        rate_on, rate_off = _median(on.get("answer_tokens_per_s")), _median(off.get("answer_tokens_per_s"))
        single += [
            ["answer tok/s, prompt lookup off (sample answers)", fmt(off.get("answer_tokens_per_s"))],
            ["answer tok/s, prompt lookup on (the default)", fmt(on.get("answer_tokens_per_s"))],
            ["prompt lookup on ÷ off", _times(rate_on / rate_off) if rate_on and rate_off else "-"],
            [
                "decode tok/s, lookup off / on",
                f"{fmt(off.get('decode_tokens_per_s'))} / {fmt(on.get('decode_tokens_per_s'))}",
            ],
            ["same answer text with and without lookup", f"{lookup.get('same_text')} of {lookup.get('answers')}"],
        ]
    concurrent = []
    for engine, levels in data.get("concurrency", {}).items():
        for level, info in levels.items():
            concurrent.append([
                engine, level, fmt(info["aggregate_tokens_per_s"]), _times(info.get("ratio_vs_one")),
                fmt(info["slowest_first_token_ms"], 0),
            ])  # fmt: skip
    return [
        ("e2e: Assistant over data/sample", ["measure", "median (min-max)"], single),
        (
            "e2e: questions at once",
            ["LLM", "at once", "aggregate tok/s", "× one", "slowest first token ms"],
            concurrent,
        ),
    ]


def ingest_table(data: dict[str, Any]) -> tuple[list[str], list[Row]]:
    columns = ["pipeline", "wall s", "× baseline", "files/s", "chunks", "chunks/s", "tokens/s", "embedder share"]
    columns += ["padding share", "RSS MB"]
    rows = []
    for name, info in data["engines"].items():
        if (failed := _failed_row(name, info, len(columns))) is not None:
            rows.append(failed)
            continue
        kura = name == "Kura"
        rows.append([
            name, fmt(info["seconds"]), _times(data.get("wall_ratio_vs_baseline")) if kura else "1.00×",
            fmt(info["files_per_s"], 2), fmt(info["chunks"]), fmt(info["chunks_per_s"]), fmt(info["tokens_per_s"], 0),
            _pct(_median(info["embed_share"])), _pct(info.get("padding_share")), fmt(info["peak_rss_mb"]),
        ])  # fmt: skip
    return columns, rows


def floors(results: dict[str, Any]) -> list[Floor]:
    """The issue's targets, each met, missed, or not measured in this run."""
    out: list[Floor] = []
    embed = results.get("embed", {})
    variants = embed.get("variants", {})
    fp32 = variants.get(embed.get("fp32_variant", ""), {})
    if "ratio_vs_torch" in fp32:
        cosine = fp32.get("cosine_vs_torch", {}).get("min", 0.0)
        ratio = fp32["ratio_vs_torch"]
        out.append(Floor("embed fp32 vs sentence-transformers", "≥ 2× at cos ≥ 0.999",
                         f"{ratio:.2f}× at cos {cosine:.5f}", ratio >= 2 and cosine >= 0.999))  # fmt: skip
    if "ratio_vs_st_openvino" in fp32:
        ratio = fp32["ratio_vs_st_openvino"]
        out.append(Floor("embed fp32 vs sentence-transformers' OpenVINO backend", "≥ 2×", f"{ratio:.2f}×", ratio >= 2))
    for name, info in variants.items():
        if info.get("precision", "").startswith("int8") and info.get("buckets", True) and "ratio_vs_torch" in info:
            agreement = info.get("top1_agreement_vs_fp32", 0.0)
            ratio = info["ratio_vs_torch"]
            measured = f"{ratio:.2f}× at {100 * agreement:.1f}% top-1"
            if "ratio_vs_st_openvino" in info:
                measured += f" ({info['ratio_vs_st_openvino']:.2f}× the OpenVINO backend)"
            out.append(Floor(f"embed {name}", "≥ 3.5× at ≥ 97% top-1", measured, ratio >= 3.5 and agreement >= 0.97))
    engines = results.get("llm", {}).get("engines", {})
    kura = engines.get("Kura openvino-genai int4", {})
    if "decode_ratio_vs_llama_cpp" in kura:
        out.append(Floor("decode int4 vs llama.cpp", "≥ 1.0×", _times(kura["decode_ratio_vs_llama_cpp"]),
                         kura["decode_ratio_vs_llama_cpp"] >= 1.0))  # fmt: skip
        out.append(Floor("TTFT int4 vs llama.cpp", "≤ 0.25×", _times(kura["ttft_ratio_vs_llama_cpp"]),
                         kura["ttft_ratio_vs_llama_cpp"] <= 0.25))  # fmt: skip
    if why := unavailable(engines.get(LLAMA)):
        for name, target in (("decode int4 vs llama.cpp", "≥ 1.0×"), ("TTFT int4 vs llama.cpp", "≤ 0.25×")):
            out.append(Floor(name, target, f"baseline unavailable ({why[:60]})", None))
    if "decode_ratio_vs_torch" in kura:
        out.append(Floor("decode int4 vs PyTorch fp32", "≥ 5×", _times(kura["decode_ratio_vs_torch"]),
                         kura["decode_ratio_vs_torch"] >= 5))  # fmt: skip
    retrieve = results.get("retrieve", {})
    sizes = retrieve.get("sizes") or [0]
    largest = str(max(sizes))
    for backend, info in retrieve.get("backends", {}).items():
        p95 = _median(info.get(largest, {}).get("p95_ms"))
        if p95 is not None:
            met = p95 < 50 if largest == "100000" else None
            out.append(Floor(f"retrieval p95, Chroma {backend}", "< 50 ms at 100k",
                             f"{p95:.2f} ms at {int(largest):,}", met))  # fmt: skip
    ratio = results.get("ingest", {}).get("wall_ratio_vs_baseline")
    if ratio is not None:
        out.append(Floor("ingest wall vs notebook pipeline", "≤ 0.33×", _times(ratio), ratio <= 1 / 3))
    for engine, levels in results.get("e2e", {}).get("concurrency", {}).items():
        ratio = levels.get("4", {}).get("ratio_vs_one")
        if ratio is not None:
            out.append(Floor(f"4 at once: {engine}", "≥ 2× one", _times(ratio), ratio >= 2))
    return out


@dataclass
class Block:
    """One titled table, or a line of text when ``columns`` is empty: what a console or Markdown shows."""

    title: str
    columns: list[str]
    rows: list[Row]


def blocks(results: dict[str, Any]) -> list[Block]:
    """Every section that ran as tables and notes, then the floors; shared by the terminal and Markdown."""
    meta = results.get("meta", {})
    machine = results.get("machine", {})
    limits = results.get("limits", {})
    out = [
        Block(
            f"kura bench {meta.get('what')} {'--quick ' if meta.get('quick') else ''}on {machine.get('cpu')} "
            f"({', '.join(machine.get('cpu_flags') or []) or 'no AVX2'}), {machine.get('logical_cores')} cores, "
            f"{machine.get('memory_gib')} GiB; load average before/after "
            f"{meta.get('load_before')} / {meta.get('load_after')}",
            [],
            [],
        )
    ]
    if "peak_gflops" in limits:
        out.append(
            Block(
                f"measured limits ({limits['threads']} threads): {limits['peak_gflops']} GFLOP/s fp32 matmul (numpy), "
                f"{limits.get('peak_gflops_bf16', '-')} GFLOP/s bf16 matmul (torch), "
                f"{limits.get('peak_gops_int8', '-')} GOP/s int8 matmul (torch._int_mm, VNNI), "
                f"{limits['copy_bandwidth_gbs']} GB/s copy bandwidth",
                [],
                [],
            )
        )
    builders = {"embed": embed_table, "llm": llm_table, "retrieve": retrieve_table, "ingest": ingest_table}
    for section, builder in builders.items():
        data = results.get(section)
        if data is None:
            continue
        if "error" in data:
            out.append(Block(f"{section} failed: {data['error']}", [], []))
            continue
        out.append(Block(section, *(embed_table(data, limits) if section == "embed" else builder(data))))
        if section == "ingest":
            out.append(Block(f"ingest: {data['path']}, {data['runs']} run(s) per pipeline; {INGEST_NOTE}", [], []))
        if section == "embed":
            out += [Block(line, [], []) for line in _embed_limits(data, limits)]
        if section == "llm":
            out.append(Block("llm: prompt lookup on grounded copy answers", *lookup_table(data)))
    e2e = results.get("e2e")
    if e2e is not None and "error" not in e2e:
        out += [Block(title, columns, rows) for title, columns, rows in e2e_tables(e2e)]
        out.append(Block(CONCURRENCY_NOTE, [], []))
    elif e2e is not None:
        out.append(Block(f"e2e failed: {e2e['error']}", [], []))
    found = [Floor(**f) for f in results.get("floors", [])]
    if found:
        rows = [
            [f.name, f.target, f.measured, {True: "met", False: "MISSED", None: "not measured"}[f.met]] for f in found
        ]
        out.append(Block("floors", ["floor", "target", "measured", "result"], rows))
    return out


def render(results: dict[str, Any], console: Console | None = None) -> None:
    """Print every section that ran as a table, then the floors."""
    # Piped output defaults to 80 columns, which folds every table: keep them one line per row.
    console = console or Console(width=None if sys.stdout.isatty() else 160)
    for block in blocks(results):
        if block.columns:
            _print(console, block.title, block.columns, block.rows)
        else:
            console.print(block.title, markup=False, highlight=False)


def markdown(results: dict[str, Any]) -> str:
    """The same tables as Markdown, to paste into README's Performance section."""
    lines: list[str] = []
    for block in blocks(results):
        if not block.columns:
            lines += [block.title, ""]
            continue
        lines += [f"**{block.title}**", "", "| " + " | ".join(block.columns) + " |"]
        lines.append("|" + "|".join("---" if i == 0 else "---:" for i in range(len(block.columns))) + "|")
        lines += ["| " + " | ".join(str(cell).replace("|", "\\|") for cell in row) + " |" for row in block.rows]
        lines.append("")
    return "\n".join(lines)


def _embed_limits(data: dict[str, Any], limits: dict[str, Any]) -> list[str]:
    flops = data.get("flops", {})
    peaks = [(kind, limits.get(key)) for kind, key in PEAK_KEYS.items()]
    lines = []
    for label, key in (("buckets", "buckets"), ("max_length only", "max_length_only")):
        entry = flops.get(key)
        if not entry:
            continue
        gflop = entry["executed_gflop_per_chunk"]
        ceilings = ", ".join(f"{peak / gflop:.1f} chunks/s at the {kind} peak" for kind, peak in peaks if peak)
        lines.append(
            f"compute limit, {label}: {gflop} GFLOP executed per chunk ({entry['useful_gflop_per_chunk']} on real "
            f"tokens): {ceilings}"
        )
    dynamic = flops.get("buckets", {}).get("dynamic_gflop_per_chunk")
    if dynamic:
        ceilings = ", ".join(f"{peak / dynamic:.1f} chunks/s at the {kind} peak" for kind, peak in peaks if peak)
        lines.append(f"compute limit, dynamic length-sorted batches: {dynamic} GFLOP executed per chunk: {ceilings}")
    return lines


def _print(console: Console, title: str, columns: list[str], rows: list[Row]) -> None:
    table = Table(title=title, title_justify="left")
    for index, column in enumerate(columns):
        table.add_column(column, justify="left" if index == 0 else "right")
    for row in rows:
        table.add_row(*(str(cell) for cell in row))
    console.print(table)


def write_json(results: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2, ensure_ascii=False, default=str), encoding="utf-8")


def floors_as_dicts(found: list[Floor]) -> list[dict[str, Any]]:
    return [asdict(f) for f in found]
