  // ---------------------------------------------------------------- charts (plain SVG)
  /** Horizontal bars: rows [{label, value, text, color, title}], with optional marker lines. */
  function barChart(rows, { width = 640, max = null, markers = [], rowH = 26, labelW = null, onPick = null, picked = -1 } = {}) {
    const top = markers.length ? 18 : 4;
    const lw = labelW ?? Math.min(260, Math.max(70, Math.max(...rows.map((r) => r.label.length), 4) * 7 + 12));
    const vw = Math.min(150, Math.max(...rows.map((r) => r.text.length), 4) * 7 + 14);
    const bw = Math.max(60, width - lw - vw);
    const top0 = max ?? Math.max(1, ...rows.map((r) => r.value || 0));
    const svg = s("svg", { class: "chart", viewBox: `0 0 ${width} ${top + rows.length * rowH + 4}`, role: "img", width, height: top + rows.length * rowH + 4 });
    const grid = s("g", { class: "grid" });
    for (let k = 0; k <= 4; k++) grid.append(s("line", { x1: lw + (bw * k) / 4, x2: lw + (bw * k) / 4, y1: top, y2: top + rows.length * rowH }));
    svg.append(grid);
    rows.forEach((r, i) => {
      const y = top + i * rowH;
      const w = r.value ? Math.max(2, (bw * r.value) / top0) : 0;
      const g = s("g", { class: onPick ? "memrow" : null });
      g.append(
        s("title", { text: r.title || r.label + ": " + r.text }),
        s("text", { x: lw - 8, y: y + rowH / 2 + 4, "text-anchor": "end", text: r.label.length > 38 ? r.label.slice(0, 37) + "…" : r.label }),
        s("rect", { x: lw, y: y + 4, width: w, height: rowH - 8, rx: 3, fill: r.color || "var(--bar1)", class: i === picked ? "sel" : null }),
        s("text", { x: lw + Math.min(w, bw) + 6, y: y + rowH / 2 + 4, class: "muted", text: r.text }),
      );
      if (onPick) g.addEventListener("click", () => onPick(i));
      svg.append(g);
    });
    const mg = s("g", { class: "gpu" });
    for (const m of markers) {
      if (m.value > top0) continue;
      const x = lw + (bw * m.value) / top0;
      mg.append(s("line", { x1: x, x2: x, y1: top - 2, y2: top + rows.length * rowH }), s("text", { x: x + 3, y: 11, class: "muted", text: m.label }));
    }
    svg.append(mg);
    return svg;
  }
  /** One stacked bar of parts [{label, value, color}] with a legend. */
  function stackedBar(parts, width = 640) {
    const total = parts.reduce((a, p) => a + p.value, 0) || 1;
    const svg = s("svg", { class: "chart", viewBox: `0 0 ${width} 28`, role: "img", width, height: 28 });
    let x = 0;
    for (const p of parts) {
      const w = (width * p.value) / total;
      svg.append(s("rect", { x, y: 2, width: Math.max(0, w), height: 24, fill: p.color }, s("title", { text: `${p.label}: ${fmtGiB(p.value)}` })));
      x += w;
    }
    const legend = h("div", { class: "legend" }, parts.map((p) => h("span", null, swatch(p.color), `${p.label} ${fmtGiB(p.value)}`)));
    return h("div", null, svg, legend);
  }
  function swatch(color) {
    const i = h("i");
    i.style.background = color;
    return i;
  }
  /** Bars of the per-block parameters of a collapsed group (one bar per block). */
  function blockBars(blocks) {
    const max = Math.max(1, ...blocks.map((b) => b.params));
    const w = 200;
    const bw = w / blocks.length;
    const svg = s("svg", { class: "blockbars", viewBox: `0 0 ${w} 26`, preserveAspectRatio: "none", role: "img", "aria-label": `parameters of ${blocks.length} blocks` });
    blocks.forEach((b, i) => {
      const bh = Math.max(1, (24 * b.params) / max);
      svg.append(s("rect", { x: i * bw + bw * 0.1, y: 26 - bh, width: Math.max(0.5, bw * 0.8), height: bh, fill: "var(--bar1)" }, s("title", { text: `block ${b.index}: ${fmtInt(b.params)} parameters` })));
    });
    return svg;
  }
  const chartWidth = (el) => Math.max(280, Math.min(1100, (el && el.clientWidth) || document.body.clientWidth - 60));

