#!/usr/bin/env python3
"""Markdown tables (and a plot) from `qsdpa bench --json` / `qsdpa eval --json` files.

    python3 scripts/report.py bench bench/results/cpu-....json [--plot out.png]
    python3 scripts/report.py eval bench/results/eval-....json
    python3 scripts/report.py lq-ratios lq1.json lq4.json [lq8.json ...]   # times over the first file's

The plot (matplotlib, optional) shows the speedup vs context length per format: over PyTorch's best
fp16 SDPA when the JSON has `speedup_vs_torch` (scripts/torch_sdpa.py), else over qsdpa's f16 path.
"""
import argparse
import json
import sys


def name(row):
    k, v = row["k_format"], row["v_format"]
    return k if k == v else f"{k}:{v}"


def us(t):
    """A time in µs to three significant digits (short calls differ by a few percent)."""
    return f"{t:.2f}" if t < 10 else f"{t:.1f}" if t < 100 else f"{t:.0f}"


def bench_table(doc):
    out = [f"{doc['device_name']} ({doc['device']}, {doc['threads']} threads), peak {doc['peak_gbps']:.1f} GB/s "
           f"({doc['peak_kind']}), commit {doc['commit']}, {doc['date']}", ""]
    rows = doc["rows"]
    r0 = rows[0]
    torch = any("torch_best_time_us" in r for r in rows)
    clocks = any(r.get("sm_clock_mhz") for r in rows)  # bench JSONs since session 19
    out.append(f"B={r0['batch']}, Hq={r0['hq']}, Hkv={r0['hkv']}, D={r0['dim']}, Lq={r0['lq']}")
    out.append("")
    out.append("| format | context | time (µs) | GB/s | % of peak | f16 (µs) | unfused (µs) | vs f16 | vs unfused |"
               + (" torch (µs) | vs torch |" if torch else "") + (" SM MHz (ours / torch) |" if clocks else ""))
    out.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|" + ("---:|---:|" if torch else "") + ("---:|" if clocks else ""))
    for r in rows:
        line = (f"| {name(r)} | {r['context']} | {us(r['time_us'])} | {r['gbps']:.1f} | {100 * r['gbps'] / doc['peak_gbps']:.0f}% "
                f"| {us(r['f16_time_us'])} | {us(r['unfused_time_us'])} | {r['speedup_vs_f16']:.2f}× | {r['speedup_vs_unfused']:.2f}× |")
        if torch:
            line += (f" {us(r['torch_best_time_us'])} | {r['speedup_vs_torch']:.2f}× |" if r.get("torch_best_time_us")
                     else " – | – |")
        if clocks:
            mine, theirs = r.get("sm_clock_mhz"), r.get("torch_sm_clock_mhz")
            line += f" {f'{mine:.0f}' if mine else '–'} / {f'{theirs:.0f}' if theirs else '–'} |"
        out.append(line)
    return "\n".join(out)


def eval_table(doc):
    rows = doc["rows"]
    datas = []
    for r in rows:
        if r["data"] not in datas:
            datas.append(r["data"])
    by = {}
    for r in rows:
        by.setdefault(name(r), {})[r["data"]] = r
    out = ["| format | bits/value | compression vs f16 | " + " | ".join(f"rel. L2 error ({d})" for d in datas) + " |",
           "|---|---:|---:|" + "---:|" * len(datas)]
    for n, d in by.items():
        first = next(iter(d.values()))
        out.append(f"| {n} | {first['bits_per_value']:.3f} | {first['compression']:.2f}× | "
                   + " | ".join(f"{d[x]['rel_l2_error']:.2e}" for x in datas) + " |")
    return "\n".join(out)


def plot(doc, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    vs_torch = all(r.get("speedup_vs_torch") for r in doc["rows"])
    key = "speedup_vs_torch" if vs_torch else "speedup_vs_f16"
    series = {}
    for r in doc["rows"]:
        series.setdefault(name(r), []).append((r["context"], r[key]))
    fig, ax = plt.subplots(figsize=(7, 4.2))
    ax.set_prop_cycle(color=plt.cm.tab10.colors)
    for n, pts in series.items():
        pts.sort()
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="os^vD<>pP*"[len(ax.lines) % 10], label=n)
    ax.axhline(1.0, color="gray", lw=0.8, ls="--")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("context length (tokens)")
    ax.set_ylabel("speedup over PyTorch's best fp16 SDPA" if vs_torch else "speedup over qsdpa's f16 path")
    ax.set_yscale("log", base=2)
    r0 = doc["rows"][0]
    ax.set_title(f"{doc['device_name']} — B={r0['batch']} Hq={r0['hq']} Hkv={r0['hkv']} D={r0['dim']} Lq={r0['lq']}",
                 fontsize=9)
    ax.legend(fontsize=7, ncol=2)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def lq_ratios(paths):
    """Each format's time in the later bench files over its time in the first (issue 3's item 3: Lq 4
    and 8 against Lq 1, same shape otherwise), one row per (format, context)."""
    docs = []
    for p in paths:
        with open(p) as f:
            docs.append(json.load(f))
    times = [{(name(r), r["context"]): r for r in d["rows"]} for d in docs]
    head = ["format", "context", f"Lq {docs[0]['rows'][0]['lq']} (µs)"]
    head += [f"Lq {d['rows'][0]['lq']} (µs, ×)" for d in docs[1:]]
    lines = ["| " + " | ".join(head) + " |", "|---|---:|" + "---:|" * (len(docs))]
    for key, base in times[0].items():
        cells = [key[0], str(key[1]), us(base["time_us"])]
        for t in times[1:]:
            r = t.get(key)
            cells.append(f"{us(r['time_us'])} ({r['time_us'] / base['time_us']:.2f}×)" if r else "–")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("kind", choices=["bench", "eval", "lq-ratios"])
    ap.add_argument("json", nargs="+")
    ap.add_argument("--plot")
    a = ap.parse_args()
    if a.kind == "lq-ratios":
        print(lq_ratios(a.json))
        return 0
    if len(a.json) != 1:
        ap.error(f"{a.kind} takes one JSON file")
    with open(a.json[0]) as f:
        doc = json.load(f)
    print(bench_table(doc) if a.kind == "bench" else eval_table(doc))
    if a.plot:
        plot(doc, a.plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
