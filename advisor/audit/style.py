"""The stylesheet and Content-Security-Policy that the HTML report and the web UI share: one look,
and nothing loaded from elsewhere (the report is opened offline, months later)."""

from __future__ import annotations

CSS = "\n".join(
    [
        'body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1d2330;margin:0;'
        "background:#f6f7f9}",
        "main{max-width:1060px;margin:0 auto;padding:24px 28px 48px;background:#fff;min-height:100vh}",
        "@media (max-width:600px){main{padding:14px 12px 32px}}",
        "h1,.muted,.pick-box,li{overflow-wrap:anywhere}",
        ".scroll{overflow-x:auto;max-width:100%}",
        "h1{font-size:22px;margin:0 0 4px}",
        "h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #e2e5ea;padding-bottom:4px}",
        ".muted{color:#5b6472}",
        ".pick-box{background:#eef6ee;border-left:4px solid #2e7d32;padding:10px 14px;margin:14px 0}",
        ".pick-box.flagged{background:#fdf1ef;border-left-color:#b71c1c}",
        ".pick-box.tied{border-left-color:#f0b400}",
        ".pick-box ul{margin:6px 0 0;padding-left:18px}",
        ".status{display:inline-block;padding:1px 8px;border-radius:10px;font-size:12px;font-weight:600;"
        "vertical-align:middle}",
        ".status.done{background:#e3f2e5;color:#1b5e20}",
        ".status.failed{background:#fde7e7;color:#b71c1c}",
        ".status.running{background:#fff4d6;color:#8a5a00}",
        "table{border-collapse:collapse;width:100%;margin:6px 0;font-size:13px}",
        "th,td{text-align:left;padding:4px 8px;border-bottom:1px solid #edf0f3;vertical-align:top}",
        "th{background:#f3f5f8;font-weight:600}",
        "td.num{text-align:right;font-variant-numeric:tabular-nums}",
        "tr.pick td{background:#f3faf3;font-weight:600}",
        "code,.mono{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12px}",
        "td.long{min-width:14em}td.num{white-space:nowrap}",
        ".grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(min(480px,100%),1fr));gap:8px 24px}",
        ".note{background:#fff8e1;border-left:4px solid #f0b400;padding:8px 12px;margin:8px 0}",
        ".warn{color:#8a4b00}",
        ".flag{color:#b71c1c;font-weight:600}",
        "svg.chart{max-width:100%;height:auto;margin:6px 0}",
        "svg .bar.model,svg .rank.model{fill:#5b8def}",
        "svg .bar.pick,svg .rank.pick{fill:#2e7d32}",
        "svg .bar.baseline{fill:#b9bec7}",
        "svg .interval.model{stroke:#a9c2f5}",
        "svg .interval.pick{stroke:#8fc593}",
        "svg .point.model{fill:#5b8def;fill-opacity:.85}",
        "svg .point.pick{fill:#2e7d32}",
        "svg .point.pareto{stroke:#d84315;stroke-width:2.5}",
        "svg .front{stroke:#d84315;stroke-width:1.5}",
        "svg .label.pick{font-weight:600}",
        "svg .label.baseline{fill:#6b7280}",
        "svg .point-label{fill:#333}",
        "svg .point-label.pick{font-weight:600;fill:#1b5e20}",
        "details{margin:6px 0}",
        "summary{cursor:pointer;color:#3451b2}",
    ]
)
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
