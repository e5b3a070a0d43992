/* tensorfile view: the page. Plain JS, no framework, no network beyond this server's documents.
 *
 * Data: the documents `tensorfile ... --json` prints (inspect, scan, estimate, diff), either embedded in
 * the page as JSON data, id tf-data (the --html export) or fetched from doc/NAME.json (the local server).
 * Every value from a model file is put in the page as text (textContent), never as HTML.
 */
"use strict";
(() => {
  // ---------------------------------------------------------------- small helpers
  const SVGNS = "http://www.w3.org/2000/svg";
  const $ = (sel, root = document) => root.querySelector(sel);

  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    setAttrs(el, attrs);
    append(el, children);
    return el;
  }
  function s(tag, attrs, ...children) {
    const el = document.createElementNS(SVGNS, tag);
    setAttrs(el, attrs);
    append(el, children);
    return el;
  }
  function setAttrs(el, attrs) {
    if (!attrs) return;
    for (const [k, v] of Object.entries(attrs)) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") el.setAttribute("class", v);
      else if (k === "text") el.textContent = v;
      else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
      else el.setAttribute(k, v === true ? "" : String(v));
    }
  }
  function append(el, children) {
    for (const c of children.flat(Infinity)) {
      if (c === null || c === undefined || c === false) continue;
      el.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
  }
  let charWidth = 0;
  /** The width of one character of the table's monospace names (as .vt-cell.name sets them). */
  function monoCharWidth() {
    if (!charWidth) {
      const ctx = document.createElement("canvas").getContext("2d");
      ctx.font = '12.5px ui-monospace, Menlo, Consolas, "DejaVu Sans Mono", monospace';
      charWidth = ctx.measureText("0123456789abcdefghij").width / 20 || 7.6;
    }
    return charWidth;
  }
  /** The name cut in the middle to `n` characters, so both the block number and the leaf stay. */
  function elide(name, n) {
    if (name.length <= n) return name;
    // best: up to the block number, and the last two parts (model.layers.0…q_proj.weight)
    const parts = name.split(".");
    const block = parts.findIndex((p) => /^\d+$/.test(p));
    if (block >= 0 && parts.length - block > 2) {
      const head = parts.slice(0, block + 1).join(".");
      const short = head + "…" + parts.slice(-2).join(".");
      if (short.length <= n) return short;
      if (head.length + 8 <= n) return head + "…" + name.slice(name.length - (n - head.length - 1));
    }
    const head = Math.ceil((n - 1) * 0.45);
    return name.slice(0, head) + "…" + name.slice(name.length - (n - 1 - head));
  }
  const fmtInt = (n) => (n === null || n === undefined ? "—" : Number(n).toLocaleString("en-US"));
  function fmtShort(n) {
    if (n === null || n === undefined) return "—";
    const a = Math.abs(n);
    if (a >= 1e12) return (n / 1e12).toFixed(2) + " T";
    if (a >= 1e9) return (n / 1e9).toFixed(2) + " B";
    if (a >= 1e6) return (n / 1e6).toFixed(2) + " M";
    if (a >= 1e3) return (n / 1e3).toFixed(1) + " K";
    return String(n);
  }
  function fmtBytes(n) {
    if (n === null || n === undefined) return "—";
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let v = Number(n);
    let i = 0;
    while (Math.abs(v) >= 1024 && i < units.length - 1) {
      v /= 1024;
      i++;
    }
    return (i === 0 ? String(v) : v.toFixed(v >= 100 ? 0 : v >= 10 ? 1 : 2)) + " " + units[i];
  }
  const GIB = 1024 ** 3;
  const fmtGiB = (n) => (n / GIB).toFixed(n >= 100 * GIB ? 0 : 2) + " GiB";
  const shapeText = (shape) => (shape ? "[" + shape.join(", ") + "]" : "—");
  const collator = new Intl.Collator("en", { numeric: true });
  const PALETTE = ["#2f6fd0", "#e07b28", "#2b9a66", "#c2417b", "#7a5cc7", "#b59a18", "#1f9bb0", "#8c6d4f", "#d0463b", "#5d7a8c"];
  const dtypeColor = new Map();
  const colorFor = (key) => {
    if (!dtypeColor.has(key)) dtypeColor.set(key, PALETTE[dtypeColor.size % PALETTE.length]);
    return dtypeColor.get(key);
  };

  let toastTimer = 0;
  function toast(text) {
    const el = $("#tf-toast");
    el.textContent = text;
    el.classList.add("show");
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => el.classList.remove("show"), 1400);
  }
  function copyText(text) {
    const fallback = () => {
      const area = h("textarea", { "aria-hidden": "true" });
      area.value = text;
      area.style.position = "fixed";
      area.style.opacity = "0";
      document.body.append(area);
      area.select();
      let ok = false;
      try {
        ok = document.execCommand("copy");
      } catch (_) {
        ok = false;
      }
      area.remove();
      toast(ok ? "Copied " + text : "Copy failed: select the name by hand");
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(() => toast("Copied " + text), fallback);
    } else fallback();
  }

  const copyIcon = () =>
    s("svg", { viewBox: "0 0 16 16", width: 13, height: 13, "aria-hidden": "true" },
      s("rect", { x: 5, y: 5, width: 9, height: 9, rx: 1.5, fill: "none", stroke: "currentColor", "stroke-width": 1.4 }),
      s("path", { d: "M3 11V3.5A1.5 1.5 0 0 1 4.5 2H11", fill: "none", stroke: "currentColor", "stroke-width": 1.4 }));

  /** A glob (fnmatch: * ? [...]) as a RegExp matching the whole name; null when `q` is plain text. */
  function globRegex(q) {
    if (!/[*?[]/.test(q)) return null;
    let re = "";
    for (let i = 0; i < q.length; i++) {
      const c = q[i];
      if (c === "*") re += ".*";
      else if (c === "?") re += ".";
      else if (c === "[") {
        const j = q.indexOf("]", i + 2);
        if (j < 0) re += "\\[";
        else {
          let body = q.slice(i + 1, j);
          if (body[0] === "!") body = "^" + body.slice(1);
          re += "[" + body.replace(/\\/g, "\\\\") + "]";
          i = j;
        }
      } else re += c.replace(/[.+^${}()|\\\]]/g, "\\$&");
    }
    try {
      return new RegExp("^" + re + "$", "s");
    } catch (_) {
      return /$^/;
    }
  }
  function nameFilter(q) {
    q = q.trim();
    if (!q) return null;
    const re = globRegex(q);
    if (re) return (name) => re.test(name);
    const low = q.toLowerCase();
    return (name) => name.toLowerCase().includes(low);
  }

  // ---------------------------------------------------------------- the virtual table
  /**
   * Rows are absolutely placed in a spacer as tall as all of them; only those in view (plus a few)
   * exist in the DOM, from a pool of row elements reused while scrolling.
   * columns: [{key, label, get(row) -> sort value, text(row) -> string, num, opt (hidden on phones),
   *            width (CSS grid track), name (monospace + copy button)}]
   */
  class VTable {
    constructor(columns, { label, sort = null, rowKey = (r) => r.name } = {}) {
      this.allColumns = columns;
      this.rows = [];
      this.view = [];
      this.sort = sort;
      this.rowKey = rowKey;
      this.selected = -1;
      this.rowH = 30;
      this.pool = [];
      this.el = h("div", { class: "vt", role: "grid", "aria-label": label, tabindex: "0" });
      this.head = h("div", { class: "vt-head", role: "row" });
      this.spacer = h("div", { class: "vt-spacer", role: "rowgroup" });
      this.el.append(this.head, this.spacer);
      this.narrow = window.matchMedia("(max-width: 760px)");
      this.narrow.addEventListener("change", () => this.layout());
      this.el.addEventListener("scroll", () => this.schedule(), { passive: true });
      this.el.addEventListener("click", (e) => this.onClick(e));
      new ResizeObserver(() => {
        this.measured = false;
        this.schedule();
      }).observe(this.el);
      this.layout();
    }
    layout() {
      const narrow = this.narrow.matches;
      // on a phone: optional columns go, and some columns print shorter (4096×4096, 16.8 M)
      this.columns = this.allColumns
        .filter((c) => !(c.opt && narrow))
        .map((c) => (narrow && c.narrowText ? Object.assign({}, c, { text: c.narrowText }) : c));
      this.template = this.columns.map((c) => (this.narrow.matches && c.narrow) || c.width || "minmax(80px, 1fr)").join(" ");
      this.head.replaceChildren();
      this.head.style.gridTemplateColumns = this.template;
      for (const c of this.columns) {
        const b = h("button", { type: "button", class: c.num ? "num" : null, role: "columnheader", "data-key": c.key, text: c.label, title: "Sort by " + c.label });
        if (this.sort && this.sort.key === c.key) b.setAttribute("aria-sort", this.sort.dir > 0 ? "ascending" : "descending");
        b.addEventListener("click", () => this.sortBy(c.key));
        this.head.append(b);
      }
      for (const r of this.pool) r.remove();
      this.pool = [];
      this.measured = false;
      this.render(true);
    }
    setRows(rows) {
      this.rows = rows;
      this.apply();
    }
    setFilter(fn) {
      this.filter = fn;
      this.apply();
    }
    sortBy(key) {
      const dir = this.sort && this.sort.key === key ? -this.sort.dir : this.allColumns.find((c) => c.key === key).num ? -1 : 1;
      this.sort = { key, dir };
      this.layout();
      this.apply();
    }
    apply() {
      const selKey = this.selected >= 0 && this.view[this.selected] ? this.rowKey(this.view[this.selected]) : null;
      let view = this.filter ? this.rows.filter(this.filter) : this.rows.slice();
      if (this.sort) {
        const col = this.allColumns.find((c) => c.key === this.sort.key);
        const get = col.get || col.text;
        const dir = this.sort.dir;
        if (col.num) view.sort((a, b) => dir * ((get(a) ?? -Infinity) - (get(b) ?? -Infinity)) || a._i - b._i);
        else view.sort((a, b) => dir * collator.compare(String(get(a) ?? ""), String(get(b) ?? "")) || a._i - b._i);
      }
      this.view = view;
      this.selected = selKey === null ? -1 : view.findIndex((r) => this.rowKey(r) === selKey);
      this.el.setAttribute("aria-rowcount", String(view.length + 1));
      this.spacer.style.height = view.length * this.rowH + "px";
      if (this.onChange) this.onChange(view);
      this.render(true);
    }
    schedule() {
      if (this.pending) return;
      this.pending = requestAnimationFrame(() => {
        this.pending = 0;
        this.render(false);
      });
    }
    render(force) {
      if (!this.measured && this.el.clientWidth) {
        // on a phone a long name keeps its start and its end (model.layers.0…q_proj.weight)
        const nameHead = this.head.querySelector("[data-key=name]");
        const narrow = this.narrow.matches && nameHead;
        this.nameChars = narrow ? Math.max(8, Math.floor((nameHead.clientWidth - 34) / monoCharWidth())) : 0;
        this.measured = true;
        force = true;
      }
      const top = Math.max(0, this.el.scrollTop - 34);
      const height = this.el.clientHeight || 600;
      const first = Math.max(0, Math.floor(top / this.rowH) - 6);
      const last = Math.min(this.view.length, Math.ceil((top + height) / this.rowH) + 6);
      if (!force && first === this.first && last === this.last) return;
      this.first = first;
      this.last = last;
      const need = last - first;
      if (this.pool.length < need) force = true;
      while (this.pool.length < need) {
        const row = h("div", { class: "vt-row", role: "row" });
        row.style.gridTemplateColumns = this.template;
        for (const c of this.columns) {
          const cell = h("div", { class: "vt-cell" + (c.num ? " num" : "") + (c.name ? " name" : ""), role: "gridcell" });
          if (c.name) cell.append(h("button", { type: "button", class: "copy", "aria-label": "Copy name", title: "Copy name" }, copyIcon()), h("span"));
          row.append(cell);
        }
        this.pool.push(row);
        this.spacer.append(row);
      }
      // Row i always lives in pool[i % n]: while scrolling, rows still in view keep their content and
      // only those that came into view are filled.
      const n = this.pool.length;
      const live = new Set();
      for (let i = first; i < last; i++) {
        const row = this.pool[i % n];
        live.add(row);
        if (row.hidden) row.hidden = false;
        if (!force && row._i === i) continue;
        row._i = i;
        const data = this.view[i];
        row.style.transform = "translateY(" + i * this.rowH + "px)";
        row.dataset.index = String(i);
        row.setAttribute("aria-rowindex", String(i + 2));
        row.setAttribute("aria-selected", i === this.selected ? "true" : "false");
        for (let c = 0; c < this.columns.length; c++) {
          const col = this.columns[c];
          const cell = row.children[c];
          const text = col.text(data);
          const target = col.name ? cell.lastChild : cell;
          const shown = col.name && this.nameChars ? elide(text, this.nameChars) : text;
          if (target.textContent !== shown) target.textContent = shown;
          if (col.name || col.title) cell.title = text;
        }
      }
      for (const row of this.pool) {
        if (!live.has(row) && !row.hidden) {
          row.hidden = true;
          row._i = -1;
        }
      }
    }
    onClick(e) {
      const row = e.target.closest(".vt-row");
      if (!row) return;
      const i = Number(row.dataset.index);
      if (e.target.closest(".copy")) copyText(this.rowKey(this.view[i]));
      this.select(i);
    }
    select(i) {
      if (!this.view.length) return;
      this.selected = Math.max(0, Math.min(this.view.length - 1, i));
      const y = this.selected * this.rowH;
      const viewTop = this.el.scrollTop;
      const viewH = this.el.clientHeight - 34;
      if (y < viewTop) this.el.scrollTop = y;
      else if (y + this.rowH > viewTop + viewH) this.el.scrollTop = y + this.rowH - viewH;
      this.render(true);
    }
    move(delta) {
      this.select(this.selected < 0 ? 0 : this.selected + delta);
    }
    copySelected() {
      if (this.selected >= 0) copyText(this.rowKey(this.view[this.selected]));
    }
  }

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

  // ---------------------------------------------------------------- sections
  const state = { docs: {}, tables: {}, tabs: [], panels: {} };

  function card(title, ...body) {
    return h("section", { class: "card" }, title ? h("h3", { text: title }) : null, ...body);
  }
  function kvTable(entries) {
    const t = h("table", { class: "kv" });
    for (const [k, v] of entries) t.append(h("tr", null, h("th", { scope: "row", text: k }), h("td", null, v instanceof Node ? v : String(v))));
    return t;
  }
  function errorNote(doc, what) {
    return h("p", { class: "error" }, `${what} is not available: ${doc.error}`);
  }
  function stat(label, value, sub) {
    return h("div", { class: "stat" }, h("dt", { text: label }), h("dd", null, value, sub ? h("small", { text: sub }) : null));
  }

  function renderSummary(panel, doc) {
    const tensors = doc.tensors;
    const bytesByDtype = {};
    for (const t of tensors) bytesByDtype[t.dtype] = (bytesByDtype[t.dtype] || 0) + t.nbytes;
    const stats = h(
      "dl",
      { class: "stats" },
      stat("Format", doc.format, doc.files.length + (doc.files.length === 1 ? " file · " : " files · ") + fmtBytes(doc.size_bytes)),
      h("div", { class: "stat", "data-testid": "params" }, h("dt", { text: "Parameters" }), h("dd", null, h("span", { "data-count": "parameter_count", text: fmtInt(doc.parameter_count) }), h("small", { text: fmtShort(doc.parameter_count) }))),
      h("div", { class: "stat" }, h("dt", { text: "Tensors" }), h("dd", null, h("span", { "data-count": "tensor_count", text: fmtInt(doc.tensor_count) }))),
      stat("Tensor bytes", fmtBytes(doc.total_bytes), fmtInt(doc.total_bytes) + " bytes"),
      h("div", { class: "stat" }, h("dt", { text: "Tensor types" }), h("dd", { class: "types", "data-count": "tensor_types", text: doc.tensor_types || "—" })),
      h("div", { class: "stat" }, h("dt", { text: "Scan" }), h("dd", { id: "tf-verdict", text: "…" }, h("small", { text: "checking" }))),
    );
    panel.append(stats);
    if (state.docs.scan) showVerdict(state.docs.scan); // the scan came before this tab was drawn
    const dtypes = Object.keys(doc.parameters_by_dtype);
    if (dtypes.length) {
      const box = card("Parameters and bytes per dtype");
      panel.append(box);
      const draw = () => {
        box.querySelectorAll("svg, .legend").forEach((e) => e.remove());
        const w = chartWidth(box) - 32;
        const rows = [];
        for (const d of dtypes) {
          const p = doc.parameters_by_dtype[d];
          const pct = doc.parameter_count ? ((100 * p) / doc.parameter_count).toFixed(1) : "0";
          rows.push({ label: d + " params", value: p / (doc.parameter_count || 1), text: `${fmtShort(p)} (${pct}%)`, color: colorFor(d), title: `${d}: ${fmtInt(p)} parameters` });
          const b = bytesByDtype[d] || 0;
          const bp = doc.total_bytes ? ((100 * b) / doc.total_bytes).toFixed(1) : "0";
          rows.push({ label: d + " bytes", value: b / (doc.total_bytes || 1), text: `${fmtBytes(b)} (${bp}%)`, color: colorFor(d), title: `${d}: ${fmtInt(b)} bytes` });
        }
        const chart = barChart(rows, { width: w, max: 1, rowH: 22 });
        chart.setAttribute("aria-label", "parameters and bytes per dtype");
        chart.dataset.chart = "dtypes";
        box.append(chart);
      };
      state.redraw.push(draw);
    }
    const grid = h("div", { class: "grid" });
    panel.append(grid);
    const facts = [];
    facts.push(["Path", h("code", { text: doc.path })]);
    if (Object.keys(doc.parameters_by_role || {}).length > 1 || !doc.parameters_by_role.weight)
      for (const [role, n] of Object.entries(doc.parameters_by_role || {})) facts.push([`Parameters (${role})`, fmtInt(n)]);
    for (const [k, v] of Object.entries(doc.architecture || {})) facts.push([k, Array.isArray(v) ? v.join(", ") : String(v)]);
    grid.append(card("Model", kvTable(facts)));
    if (doc.quantization) {
      const q = doc.quantization;
      const rows = [];
      for (const [k, v] of Object.entries(q)) {
        if (k === "types" || k === "logical_parameter_count") continue;
        rows.push([k, v !== null && typeof v === "object" ? valueView(k, v) : String(v)]);
      }
      rows.push(["stored parameters", fmtInt(doc.parameter_count)]);
      if (q.logical_parameter_count !== undefined) rows.push(["logical parameters", fmtInt(q.logical_parameter_count)]);
      if (q.types) rows.push(["types", Object.entries(q.types).map(([t, n]) => `${t}: ${fmtShort(n)}`).join(" · ")]);
      grid.append(card("Quantization", kvTable(rows)));
    }
    if (doc.checkpoint) grid.append(card("Checkpoint parts", checkpointView(doc.checkpoint)));
    if (doc.files.length) {
      const t = h("table", { class: "plain" }, h("thead", null, h("tr", null, h("th", { text: "file" }), h("th", { class: "num", text: "size" }))));
      const body = h("tbody");
      for (const f of doc.files.slice(0, 200)) body.append(h("tr", null, h("td", null, h("code", { text: f.path })), h("td", { class: "num", text: fmtBytes(f.size_bytes) })));
      t.append(body);
      grid.append(card(`Files (${doc.files.length})`, h("div", { class: "scroll-x" }, t), doc.files.length > 200 ? h("p", { class: "muted", text: `and ${doc.files.length - 200} more` }) : null));
    }
    const comps = Object.entries(doc.components || {});
    if (comps.length) {
      const t = h("table", { class: "plain" }, h("tr", null, ["component", "format", "tensors", "parameters", "types"].map((x) => h("th", { text: x }))));
      for (const [name, c] of comps) t.append(h("tr", null, h("td", { text: name }), h("td", { text: c.format }), h("td", { class: "num", text: fmtInt(c.tensor_count) }), h("td", { class: "num", text: fmtInt(c.parameter_count) }), h("td", { text: c.tensor_types })));
      grid.append(card("Components", h("div", { class: "scroll-x" }, t)));
    }
    if (doc.pickle) {
      const rows = Object.entries(doc.pickle).map(([k, v]) => [k, Array.isArray(v) ? h("div", null, v.map((x) => h("div", null, h("code", { text: String(x) })))) : String(v)]);
      grid.append(card("Pickle (read symbolically, never run)", kvTable(rows)));
    }
    if (doc.warnings && doc.warnings.length) grid.append(card("Warnings", h("ul", { class: "warnings" }, doc.warnings.map((w) => h("li", { class: "warn", text: w })))));
  }

  /** The summary's scan box: what loading the file(s) could do, with the worst finding. */
  function showVerdict(doc) {
    const el = document.getElementById("tf-verdict");
    if (!el) return;
    if (doc.error) {
      el.replaceChildren("—", h("small", { class: "error", text: doc.error }));
      return;
    }
    const v = doc.summary.verdicts;
    const verdict = v.unsafe ? "unsafe" : v.error ? "error" : v.incomplete ? "incomplete" : "clean";
    const sev = doc.summary.findings_by_severity;
    const worst = ["critical", "high", "medium", "low", "info"].find((k) => sev[k]);
    el.className = verdict === "clean" ? "ok" : "bad";
    el.replaceChildren(verdict, h("small", { text: worst ? `${sev[worst]} ${worst} finding${sev[worst] > 1 ? "s" : ""}` : "no findings" }));
  }

  function checkpointView(cp) {
    const rows = [];
    if (cp.kind) rows.push(["kind", cp.kind]);
    if (cp.framework) rows.push(["framework", cp.framework]);
    if (cp.class) rows.push(["class", cp.class]);
    if (cp.model) rows.push(["model", `${fmtInt(cp.model.tensor_count)} tensors · ${fmtInt(cp.model.parameter_count)} parameters · ${fmtBytes(cp.model.total_bytes)}`]);
    if (cp.optimizer) {
      const o = cp.optimizer;
      rows.push(["optimizer", `${o.name || "(unnamed)"} · ${fmtInt(o.tensor_count)} tensors · ${fmtInt(o.parameter_count)} values · ${fmtBytes(o.total_bytes)}`]);
      if (o.slots && o.slots.length) rows.push(["optimizer slots", o.slots.join(", ")]);
      for (const [k, v] of Object.entries(o.hyperparameters || {})) rows.push([`  ${k}`, JSON.stringify(v)]);
    } else if ("optimizer" in cp) rows.push(["optimizer", "none"]);
    for (const [k, v] of Object.entries(cp.counters || {})) rows.push([`counter: ${k}`, String(v)]);
    for (const [k, v] of Object.entries(cp)) {
      if (["kind", "framework", "class", "model", "optimizer", "counters", "top_level_keys", "extra"].includes(k)) continue;
      rows.push([k, typeof v === "object" ? JSON.stringify(v) : String(v)]);
    }
    if (cp.top_level_keys && cp.top_level_keys.length) rows.push(["top-level keys", cp.top_level_keys.slice(0, 30).join(", ") + (cp.top_level_keys.length > 30 ? ", …" : "")]);
    return kvTable(rows);
  }

  function tensorColumns(withFile) {
    const cols = [
      { key: "index", label: "#", num: true, width: "64px", get: (t) => t._i, text: (t) => String(t._i), opt: true },
      { key: "name", label: "name", name: true, width: "minmax(220px, 4fr)", narrow: "minmax(0, 1fr)", text: (t) => t.name },
      { key: "dtype", label: "dtype", width: "minmax(64px, .7fr)", narrow: "48px", text: (t) => t.dtype },
      { key: "shape", label: "shape", opt: true, width: "minmax(110px, 1.3fr)", get: (t) => t.shape.length + ":" + t.shape.join(","), text: (t) => shapeText(t.shape) },
      { key: "numel", label: "params", num: true, width: "minmax(90px, 1fr)", narrow: "74px", get: (t) => t.numel, text: (t) => fmtInt(t.numel), narrowText: (t) => fmtShort(t.numel) },
      { key: "nbytes", label: "bytes", num: true, width: "minmax(80px, .9fr)", get: (t) => t.nbytes, text: (t) => fmtBytes(t.nbytes), opt: true },
      { key: "role", label: "role", width: "minmax(70px, .7fr)", text: (t) => t.role, opt: true },
    ];
    if (withFile) cols.push({ key: "file", label: "file", width: "minmax(90px, 1fr)", text: (t) => (t.file || "").split("/").pop(), opt: true, title: true });
    cols.push({ key: "offset", label: "offset", num: true, width: "minmax(80px, .8fr)", get: (t) => t.offset, text: (t) => (t.offset === null ? "—" : fmtInt(t.offset)), opt: true });
    return cols;
  }

  function searchBox(id, placeholder) {
    return h("input", { type: "search", id, placeholder, "aria-label": placeholder, autocomplete: "off", spellcheck: "false" });
  }
  function debounce(fn, ms) {
    let t = 0;
    return (...a) => {
      clearTimeout(t);
      t = setTimeout(() => fn(...a), ms);
    };
  }

  function renderTensors(panel, doc) {
    const tensors = doc.tensors;
    tensors.forEach((t, i) => (t._i = i));
    const files = new Set(tensors.map((t) => t.file));
    const search = searchBox("tf-search", "Search names (text, or glob like *attn*)");
    const dtype = h("select", { id: "tf-dtype", "aria-label": "Filter by dtype" }, h("option", { value: "", text: "all dtypes" }), Object.keys(doc.parameters_by_dtype).map((d) => h("option", { value: d, text: d })));
    const roles = Object.keys(doc.parameters_by_role || {});
    const role = roles.length > 1 ? h("select", { id: "tf-role", "aria-label": "Filter by role" }, h("option", { value: "", text: "all roles" }), roles.map((r) => h("option", { value: r, text: r }))) : null;
    const count = h("span", { class: "count", id: "tf-count", "aria-live": "polite" });
    panel.append(h("div", { class: "toolbar" }, search, dtype, role, count));
    const table = new VTable(tensorColumns(files.size > 1), { label: "Tensors" });
    table.onChange = (view) => {
      let p = 0;
      for (const t of view) p += t.numel;
      count.textContent = `${fmtInt(view.length)} of ${fmtInt(tensors.length)} tensors · ${fmtInt(p)} parameters`;
      count.dataset.shown = String(view.length);
      count.dataset.params = String(p);
    };
    panel.append(table.el);
    const update = () => {
      const byName = nameFilter(search.value);
      const d = dtype.value;
      const r = role ? role.value : "";
      table.setFilter(byName || d || r ? (t) => (!d || t.dtype === d) && (!r || t.role === r) && (!byName || byName(t.name)) : null);
    };
    search.addEventListener("input", debounce(update, tensors.length > 20000 ? 120 : 40));
    dtype.addEventListener("change", update);
    if (role) role.addEventListener("change", update);
    table.setRows(tensors);
    state.tables.tensors = table;
    state.search = search;
  }

  // ---------------------------------------------------------------- layer tree
  function buildTree(tensors) {
    const root = { key: "", children: new Map(), params: 0, bytes: 0, count: 0 };
    for (const t of tensors) {
      const parts = t.name.split(/[./]/);
      let node = root;
      node.params += t.numel;
      node.bytes += t.nbytes;
      node.count++;
      for (const part of parts) {
        let next = node.children.get(part);
        if (!next) {
          next = { key: part, children: new Map(), params: 0, bytes: 0, count: 0 };
          node.children.set(part, next);
        }
        next.params += t.numel;
        next.bytes += t.nbytes;
        next.count++;
        node = next;
      }
    }
    return collapse(root);
  }
  function span(ids) {
    const lo = ids[0];
    const hi = ids[ids.length - 1];
    if (ids.length === hi - lo + 1) return `{${lo}..${hi}}`;
    return "{" + ids.join(",") + "}";
  }
  function mergeInto(target, node) {
    target.params += node.params;
    target.bytes += node.bytes;
    target.count += node.count;
    for (const [k, c] of node.children) {
      let t = target.children.get(k);
      if (!t) {
        t = { key: k, children: new Map(), params: 0, bytes: 0, count: 0 };
        target.children.set(k, t);
      }
      mergeInto(t, c);
    }
  }
  /** Numbered children (layers.0 … layers.31) become one node `{0..31}` with per-block parameters. */
  function collapse(node) {
    const numbered = [...node.children.values()].filter((c) => /^\d+$/.test(c.key));
    if (numbered.length >= 2) {
      numbered.sort((a, b) => Number(a.key) - Number(b.key));
      const group = { key: span(numbered.map((c) => Number(c.key))), children: new Map(), params: 0, bytes: 0, count: 0 };
      group.blocks = numbered.map((c) => ({ index: Number(c.key), params: c.params }));
      for (const c of numbered) {
        mergeInto(group, c);
        node.children.delete(c.key);
      }
      node.children.set(group.key, group);
    }
    for (const c of node.children.values()) collapse(c);
    // a chain of single children reads as one name: model.layers.{0..31}
    if (node.children.size === 1 && node.key !== "") {
      const [only] = node.children.values();
      if (only.count === node.count && !node.blocks) {
        node.key = node.key + "." + only.key;
        node.children = only.children;
        node.blocks = only.blocks;
      }
    }
    return node;
  }
  function renderTree(panel, doc) {
    const root = buildTree(doc.tensors);
    const total = root.params || 1;
    const note = h("p", { class: "muted" }, "Numbered blocks are folded into one row (", h("code", { text: "model.layers.{0..31}" }), "): its bars show each block's parameters; inside it, counts are summed over all blocks.");
    const head = h("div", { class: "node", "aria-hidden": "true" }, h("span"), h("b", { class: "muted", text: "name" }), h("b", { class: "muted", text: "share of parameters" }), h("b", { class: "muted pc", text: "params" }), h("b", { class: "muted bc", text: "bytes" }));
    const tree = h("ul", { class: "tree", role: "tree", "aria-label": "Layer tree", id: "tf-tree" });
    const item = (node, depth) => {
      const kids = [...node.children.values()].sort((a, b) => collator.compare(a.key, b.key));
      const bar = node.blocks ? blockBars(node.blocks) : h("div", { class: "bar" }, (() => {
        const i = h("i");
        i.style.width = Math.max(0.5, (100 * node.params) / total) + "%";
        return i;
      })());
      const label = node.blocks ? h("span", null, node.key.replace(/\{[^}]*\}$/, ""), h("span", { class: "blocks", text: node.key.match(/\{[^}]*\}$/)[0] }), h("span", { class: "muted", text: ` ${node.blocks.length} blocks` })) : node.key;
      const row = h("span", { class: "node", title: `${node.key}: ${fmtInt(node.params)} parameters in ${fmtInt(node.count)} tensors` }, h("span", { class: "tw", text: kids.length ? "▶" : "" }), h("span", { class: "nm" }, label), bar, h("span", { class: "pc", text: fmtShort(node.params) }), h("span", { class: "bc", text: fmtBytes(node.bytes) }));
      const li = h("li", { role: "treeitem", "aria-level": depth });
      if (!kids.length) {
        li.append(row);
        return li;
      }
      const det = h("details", null, h("summary", null, row));
      li.setAttribute("aria-expanded", "false");
      det.addEventListener("toggle", () => {
        li.setAttribute("aria-expanded", det.open ? "true" : "false");
        if (det.open && det.childElementCount === 1) {
          const ul = h("ul", { role: "group" });
          for (const k of kids.slice(0, 2000)) ul.append(item(k, depth + 1));
          if (kids.length > 2000) ul.append(h("li", { class: "muted", text: `and ${kids.length - 2000} more` }));
          det.append(ul);
        }
      });
      li.append(det);
      return li;
    };
    const top = [...root.children.values()].sort((a, b) => collator.compare(a.key, b.key));
    for (const n of top.slice(0, 2000)) tree.append(item(n, 1));
    if (top.length > 2000) tree.append(h("li", { class: "muted", text: `and ${top.length - 2000} more` }));
    // open the first level so the page shows structure at once
    tree.querySelectorAll(":scope > li > details").forEach((d, i) => {
      if (i < 6) d.open = true;
    });
    panel.append(card(null, note, head, tree));
    if (!doc.tensors.length) panel.append(h("p", { class: "empty", text: "No tensors." }));
  }

  // ---------------------------------------------------------------- memory
  const PART_COLORS = ["#2f6fd0", "#e07b28", "#2b9a66", "#c2417b", "#7a5cc7", "#b59a18", "#1f9bb0", "#8c6d4f", "#d0463b", "#5d7a8c", "#9a9a3a"];
  function renderMemory(panel, doc) {
    if (doc.error && !doc.rows) {
      panel.append(card("Memory", errorNote(doc, "The estimate")));
      return;
    }
    const rows = doc.rows.filter((r) => r.report);
    const failed = doc.rows.filter((r) => r.error);
    if (!rows.length) {
      panel.append(card("Memory", h("p", { class: "error", text: failed.map((r) => r.error)[0] || "no estimate" })));
      return;
    }
    if (doc.model && doc.model.notes && doc.model.notes.length) panel.append(card("Model as estimated", h("ul", { class: "warnings" }, doc.model.notes.map((n) => h("li", { text: n })))));
    let picked = 0;
    const chartBox = card("Peak GPU memory (nvidia-smi view, one GPU, batch 1, prompt 2048 + 256 tokens)");
    const detail = card("Breakdown");
    panel.append(chartBox, detail);
    // dashed lines at the memory of a few common GPUs (as the fit table counts it)
    const fitsOf = rows.length ? rows[0].report.fits : {};
    const markers = ["RTX 4090 24GB", "L40S 48GB", "H100 80GB", "H200 141GB"]
      .filter((g) => fitsOf[g])
      .map((g) => ({ value: fitsOf[g].memory_bytes, label: g.replace(/^RTX /, "") }));
    const draw = () => {
      chartBox.querySelectorAll("svg").forEach((e) => e.remove());
      const w = chartWidth(chartBox) - 32;
      const bars = rows.map((r) => ({ label: (r.group === "fine-tuning" ? "train: " : "run: ") + r.label, value: r.report.per_gpu_bytes, text: fmtGiB(r.report.per_gpu_bytes), color: r.group === "fine-tuning" ? "var(--bar2)" : "var(--bar1)" }));
      const chart = barChart(bars, { width: w, markers, picked, onPick: (i) => pick(i) });
      chart.setAttribute("aria-label", "peak memory per setting");
      chart.dataset.chart = "memory";
      chartBox.append(chart);
    };
    const pick = (i) => {
      picked = i;
      draw();
      const r = rows[i];
      detail.replaceChildren(h("h3", { text: "Breakdown: " + r.label }));
      const parts = Object.entries(r.report.breakdown).filter(([, v]) => v > 0).map(([k, v], j) => ({ label: k, value: v, color: PART_COLORS[j % PART_COLORS.length] }));
      detail.append(stackedBar(parts, chartWidth(detail) - 32));
      detail.append(h("p", null, h("code", { text: r.command })));
      const facts = [["per GPU", `${fmtGiB(r.report.per_gpu_bytes)} (${fmtInt(r.report.per_gpu_bytes)} bytes)`], ["phase", r.report.phase], ["weights", r.report.setting.weights]];
      if (r.report.host_bytes) facts.push(["host memory", fmtGiB(r.report.host_bytes)]);
      detail.append(kvTable(facts));
      if (r.report.notes && r.report.notes.length) detail.append(h("ul", { class: "warnings" }, r.report.notes.map((n) => h("li", { class: "muted", text: n }))));
    };
    state.redraw.push(() => pick(picked));
    // which GPUs hold each setting
    const gpus = Object.keys(rows[0].report.fits);
    const t = h("table", { class: "plain fitgrid", id: "tf-fits" });
    t.append(h("thead", null, h("tr", null, h("th", { class: "gpu", text: "GPU" }), rows.map((r) => h("th", { title: r.label, text: shortLabel(r) })))));
    const body = h("tbody");
    for (const g of gpus) {
      const tr = h("tr", null, h("th", { class: "gpu", scope: "row", text: `${g}` }));
      for (const r of rows) {
        const f = r.report.fits[g];
        const text = f.fits ? "✓" : f.gpus_needed ? `×${f.gpus_needed}` : "✗";
        tr.append(h("td", { class: f.fits ? "yes" : "no", title: f.fits ? `fits, ${fmtGiB(f.headroom_bytes)} free` : f.gpus_needed ? `needs ${f.gpus_needed} of them` : "does not fit even on 64", text }));
      }
      body.append(tr);
    }
    t.append(body);
    panel.append(card("Which GPUs hold it (✓ one is enough, ×N: N of them, sharded)", h("div", { class: "scroll-x" }, t)));
    if (doc.quick && doc.quick.length) {
      const q = h("table", { class: "plain" }, h("tr", null, ["setting", "seed's rule", "rule gives", "our estimate", "for"].map((x) => h("th", { text: x }))));
      for (const r of doc.quick) {
        const rule = r.low === r.high ? fmtGiB(r.low) : `${fmtGiB(r.low)} – ${fmtGiB(r.high)}`;
        q.append(h("tr", null, h("td", { text: r.setting }), h("td", { text: r.rule }), h("td", { class: "num", text: rule }), h("td", { class: "num", text: r.detailed === null ? "—" : fmtGiB(r.detailed) }), h("td", { class: "muted", text: r.detailed_setting })));
      }
      panel.append(card("The seed's rules of thumb, beside the estimate", h("div", { class: "scroll-x" }, q)));
    }
    if (failed.length) panel.append(card("Not estimated", h("ul", { class: "warnings" }, failed.map((r) => h("li", null, `${r.label}: `, h("span", { class: "error", text: r.error }))))));
  }
  const shortLabel = (r) => (r.group === "fine-tuning" ? r.label.split(" ")[0] : r.label.replace(/ \(.*\)$/, "").replace("as stored", "stored").replace("GGUF ", ""));

  // ---------------------------------------------------------------- scan
  function renderScan(panel, doc) {
    if (doc.error) {
      panel.append(card("Security", errorNote(doc, "The scan")));
      return;
    }
    const sev = doc.summary.findings_by_severity;
    const verdicts = doc.summary.verdicts;
    const verdict = verdicts.unsafe ? "unsafe" : verdicts.error ? "error" : verdicts.incomplete ? "incomplete" : "clean";
    const verdictBox = stat("Verdict", verdict, `fail on ${doc.summary.fail_on} and above`);
    verdictBox.querySelector("dd").classList.add(verdict === "clean" ? "ok" : "bad");
    verdictBox.querySelector("dd").id = "tf-scan-verdict";
    panel.append(
      h("dl", { class: "stats" },
        verdictBox,
        ...Object.entries(sev).map(([k, v]) => stat(k, fmtInt(v), "findings"))),
    );
    for (const f of doc.files) {
      const box = card(null, h("h2", null, h("code", { text: f.path }), " ", h("span", { class: "badge " + (f.verdict === "clean" ? "ok" : "bad"), text: f.verdict }), f.format ? h("span", { class: "muted", text: " " + f.format }) : null));
      if (f.error) box.append(h("p", { class: "error", text: f.error }));
      if (!f.findings.length && !f.error) box.append(h("p", { class: "ok", text: "Nothing found that loading this file could run." }));
      for (const x of f.findings) {
        box.append(
          h("div", { class: "finding " + x.severity, "data-severity": x.severity },
            h("p", null, h("span", { class: "badge sev-" + x.severity, text: x.severity }), " ", h("b", { text: x.message }), " ", h("span", { class: "muted", text: x.rule })),
            x.evidence ? h("p", null, "Evidence: ", h("code", { text: x.evidence })) : null,
            x.location ? h("p", { class: "muted" }, "Where: ", x.location) : null,
            x.advice ? h("p", { class: "safer" }, "Safer: ", x.advice) : null),
        );
      }
      if (f.scanned && f.scanned.length > 1) box.append(h("p", { class: "muted", text: `Looked at: ${f.scanned.slice(0, 20).join(", ")}${f.scanned.length > 20 ? ", …" : ""}` }));
      panel.append(box);
    }
  }

  // ---------------------------------------------------------------- metadata
  const isArraySummary = (v) => v && typeof v === "object" && typeof v.type === "string" && v.type.startsWith("array[") && "length" in v;
  function valueView(key, v) {
    if (isArraySummary(v)) {
      const head = (v.head || []).slice(0, 12).map((x) => JSON.stringify(x)).join(", ");
      return h("span", null, h("span", { class: "badge", text: `${v.type} × ${fmtInt(v.length)}` }), " ", h("code", { text: head + (v.length > (v.head || []).length ? ", …" : "") }));
    }
    if (typeof v === "string") return v.length > 160 || v.includes("\n") ? h("pre", { text: v }) : h("code", { text: v });
    if (Array.isArray(v)) {
      if (v.length > 8 && v.every((x) => x === null || typeof x !== "object")) {
        const head = v.slice(0, 6).map((x) => (typeof x === "string" ? x : JSON.stringify(x))).join(", ");
        return h("span", { title: v.join("\n") }, h("span", { class: "badge", text: `${fmtInt(v.length)} items` }), " ", h("code", { text: head + ", …" }));
      }
      if (v.every((x) => x === null || typeof x !== "object")) return h("code", { text: JSON.stringify(v) });
      return h("pre", { text: JSON.stringify(v, null, 2) });
    }
    if (v && typeof v === "object") return kvTable(Object.entries(v).map(([k, x]) => [k, valueView(k, x)]));
    return h("code", { text: String(v) });
  }
  function ioTable(title, items) {
    const t = h("table", { class: "plain" }, h("tr", null, ["name", "dtype", "shape"].map((x) => h("th", { text: x }))));
    for (const io of items) t.append(h("tr", null, h("td", null, h("code", { text: io.name })), h("td", { text: io.dtype ?? "—" }), h("td", { text: io.shape ? shapeText(io.shape) : "—" })));
    return card(title, h("div", { class: "scroll-x" }, t));
  }
  function renderMetadata(panel, doc) {
    const md = doc.metadata || {};
    const keys = Object.keys(md);
    if (doc.format === "onnx" || Array.isArray(md.inputs)) {
      if (Array.isArray(md.inputs)) panel.append(ioTable("Inputs", md.inputs));
      if (Array.isArray(md.outputs)) panel.append(ioTable("Outputs", md.outputs));
      if (md.opset_import) panel.append(card("Opsets", kvTable(Object.entries(md.opset_import).map(([k, v]) => [k, String(v)]))));
    }
    const template = md["tokenizer.chat_template"];
    if (typeof template === "string") panel.append(card("Chat template", h("pre", { id: "tf-chat-template", text: template })));
    const special = new Set(["tokenizer.chat_template", "inputs", "outputs", "opset_import"]);
    const rest = keys.filter((k) => !special.has(k));
    if (rest.length) {
      const search = searchBox("tf-meta-search", "Filter keys");
      const table = h("table", { class: "kv", id: "tf-metadata" });
      const rowsFor = rest.map((k) => {
        const tr = h("tr", null, h("th", { scope: "row" }, h("code", { text: k })), h("td", null, valueView(k, md[k])));
        tr.dataset.key = k.toLowerCase();
        return tr;
      });
      table.append(...rowsFor);
      search.addEventListener("input", () => {
        const q = search.value.trim().toLowerCase();
        for (const tr of rowsFor) tr.hidden = q !== "" && !tr.dataset.key.includes(q);
      });
      panel.append(card(doc.format === "safetensors" ? "__metadata__" : "Metadata", rest.length > 12 ? h("div", { class: "toolbar" }, search) : null, h("div", { class: "scroll-x" }, table)));
    }
    if (!keys.length && !panel.childElementCount) panel.append(card("Metadata", h("p", { class: "empty", text: "This file keeps no metadata." })));
  }

  // ---------------------------------------------------------------- diff
  const DIFF_STATUSES = ["different", "shape", "missing", "extra", "close", "identical"];
  function renderDiff(panel, doc, a, b) {
    if (doc.error) {
      panel.append(card("Diff", errorNote(doc, "The comparison")));
    }
    const side = (title, d) =>
      card(title, d ? kvTable([["path", h("code", { text: d.path })], ["format", d.format], ["tensors", fmtInt(d.tensor_count)], ["parameters", fmtInt(d.parameter_count)], ["tensor types", d.tensor_types || "—"], ["bytes", fmtBytes(d.total_bytes)]]) : h("p", { class: "empty", text: "—" }));
    panel.append(h("div", { class: "grid" }, side("A", a), side("B", b)));
    if (doc.error) return;
    const sum = doc.summary;
    panel.append(
      h("dl", { class: "stats", id: "tf-diff-summary" },
        stat("Result", doc.equal ? "equal" : "different", doc.atol || doc.rtol ? `atol ${doc.atol}, rtol ${doc.rtol}` : "exact comparison"),
        ...DIFF_STATUSES.map((k) => h("div", { class: "stat" }, h("dt", { text: k }), h("dd", { "data-diff": k, text: fmtInt(sum[k]) }))),
        stat("dtype changed", fmtInt(sum.dtype_changed))),
    );
    const rows = doc.tensors.map((t, i) => Object.assign({ _i: i }, t));
    const filter = h("select", { id: "tf-diff-status", "aria-label": "Show" }, h("option", { value: "changed", text: "changed, missing and extra" }), h("option", { value: "", text: "all tensors" }), DIFF_STATUSES.map((x) => h("option", { value: x, text: x })));
    const search = searchBox("tf-diff-search", "Search names");
    const count = h("span", { class: "count", id: "tf-diff-count" });
    panel.append(h("div", { class: "toolbar" }, search, filter, count));
    const arrow = (x, y) => (x === y ? String(x ?? "—") : `${x ?? "—"} → ${y ?? "—"}`);
    const table = new VTable(
      [
        { key: "name", label: "name", name: true, width: "minmax(220px, 4fr)", narrow: "minmax(110px, 3fr)", text: (t) => t.name },
        { key: "status", label: "status", width: "minmax(80px, .8fr)", narrow: "minmax(62px, .8fr)", text: (t) => t.status },
        { key: "dtype", label: "dtype A → B", width: "minmax(100px, 1fr)", narrow: "minmax(70px, 1fr)", text: (t) => arrow(t.dtype_a, t.dtype_b) },
        { key: "shape", label: "shape A → B", width: "minmax(140px, 1.4fr)", opt: true, text: (t) => arrow(t.shape_a && shapeText(t.shape_a), t.shape_b && shapeText(t.shape_b)) },
        { key: "max_abs", label: "max |a−b|", num: true, width: "minmax(90px, .8fr)", narrow: "minmax(60px, .8fr)", get: (t) => t.max_abs, text: (t) => (t.max_abs === null ? "—" : t.max_abs.toPrecision(3)) },
        { key: "max_rel", label: "max rel", num: true, width: "minmax(80px, .8fr)", opt: true, get: (t) => t.max_rel, text: (t) => (t.max_rel === null ? "—" : t.max_rel.toPrecision(3)) },
        { key: "mismatched", label: "mismatched", num: true, width: "minmax(90px, .8fr)", opt: true, get: (t) => t.mismatched, text: (t) => fmtInt(t.mismatched) },
      ],
      { label: "Diff" },
    );
    table.onChange = (view) => {
      count.textContent = `${fmtInt(view.length)} of ${fmtInt(rows.length)} names`;
      count.dataset.shown = String(view.length);
    };
    panel.append(table.el);
    const update = () => {
      const st = filter.value;
      const byName = nameFilter(search.value);
      table.setFilter((t) => (st === "" || (st === "changed" ? t.status !== "identical" && t.status !== "close" : t.status === st)) && (!byName || byName(t.name)));
    };
    filter.addEventListener("change", update);
    search.addEventListener("input", debounce(update, 60));
    table.rows = rows;
    update();
    state.tables.diff = table;
  }

  // ---------------------------------------------------------------- tabs, keys, theme
  function addTab(id, label, render) {
    const tab = h("button", { type: "button", role: "tab", id: "tab-" + id, "aria-controls": "panel-" + id, "aria-selected": "false", tabindex: "-1", text: label });
    const panel = h("section", { role: "tabpanel", id: "panel-" + id, "aria-labelledby": "tab-" + id, hidden: true, tabindex: "0" });
    panel.dataset.pending = "1";
    tab.addEventListener("click", () => selectTab(id, true));
    $("#tf-tabs").append(tab);
    $("#main").append(panel);
    state.tabs.push(id);
    state.panels[id] = { tab, panel, render };
    return panel;
  }
  /** Panels are built when first shown (or when their document arrives while shown). */
  function ensure(id) {
    const p = state.panels[id];
    if (!p.panel.dataset.pending || !p.render()) return;
    delete p.panel.dataset.pending;
    p.panel.replaceChildren();
    state.redraw = state.redrawBy[id] = [];
    try {
      p.render()(p.panel);
      for (const f of state.redraw) f(); // charts once the layout is final (their width is the card's)
    } catch (err) {
      p.panel.append(h("p", { class: "error", text: "This section could not be drawn: " + err.message }));
      throw err;
    }
  }
  function selectTab(id, focus) {
    if (!state.panels[id]) return;
    for (const t of state.tabs) {
      const p = state.panels[t];
      const on = t === id;
      p.tab.setAttribute("aria-selected", on ? "true" : "false");
      p.tab.tabIndex = on ? 0 : -1;
      p.panel.hidden = !on;
    }
    state.current = id;
    ensure(id);
    if (focus) state.panels[id].tab.focus();
    if (location.hash !== "#" + id) history.replaceState(null, "", "#" + id);
    for (const t of Object.values(state.tables)) t.render(true);
  }
  function onTabKeys(e) {
    const i = state.tabs.indexOf(state.current);
    let next = null;
    if (e.key === "ArrowRight") next = (i + 1) % state.tabs.length;
    else if (e.key === "ArrowLeft") next = (i - 1 + state.tabs.length) % state.tabs.length;
    else if (e.key === "Home") next = 0;
    else if (e.key === "End") next = state.tabs.length - 1;
    if (next !== null) {
      e.preventDefault();
      selectTab(state.tabs[next], true);
    }
  }
  function onKeys(e) {
    const target = e.target;
    const typing = target && (target.tagName === "INPUT" || target.tagName === "SELECT" || target.tagName === "TEXTAREA");
    if (e.key === "Escape" && typing && target.type === "search") {
      target.value = "";
      target.dispatchEvent(new Event("input"));
      target.blur();
      return;
    }
    if (typing || e.ctrlKey || e.metaKey || e.altKey) return;
    const table = state.tables[state.current === "diff" ? "diff" : "tensors"];
    if (e.key === "/") {
      e.preventDefault();
      if (state.current !== "diff" && state.current !== "tensors") selectTab("tensors");
      const box = state.current === "diff" ? $("#tf-diff-search") : $("#tf-search");
      if (box) box.focus();
    } else if ((e.key === "j" || e.key === "k") && table && (state.current === "tensors" || state.current === "diff")) {
      e.preventDefault();
      table.move(e.key === "j" ? 1 : -1);
    } else if (e.key === "c" && table && (state.current === "tensors" || state.current === "diff")) table.copySelected();
    else if (e.key === "t") toggleTheme();
    else if (e.key === "?") $("#tf-help").showModal();
    else if (/^[1-9]$/.test(e.key) && state.tabs[Number(e.key) - 1]) selectTab(state.tabs[Number(e.key) - 1], true);
  }
  function storedTheme() {
    try {
      return localStorage.getItem("tensorfile-theme");
    } catch (_) {
      return null;
    }
  }
  function toggleTheme() {
    const dark = document.documentElement.dataset.theme ? document.documentElement.dataset.theme === "dark" : window.matchMedia("(prefers-color-scheme: dark)").matches;
    const next = dark ? "light" : "dark";
    document.documentElement.dataset.theme = next;
    try {
      localStorage.setItem("tensorfile-theme", next);
    } catch (_) {
      /* file:// pages may have no storage */
    }
    for (const fns of Object.values(state.redrawBy)) for (const f of fns) f();
  }

  // ---------------------------------------------------------------- start
  async function load() {
    const embedded = document.getElementById("tf-data");
    if (embedded) {
      const docs = JSON.parse(embedded.textContent);
      return Object.fromEntries(Object.entries(docs).map(([k, v]) => [k, Promise.resolve(v)]));
    }
    const names = JSON.parse(document.getElementById("tf-manifest").textContent);
    return Object.fromEntries(
      names.map((n) => [
        n,
        fetch("doc/" + encodeURIComponent(n) + ".json", { credentials: "same-origin" }).then((r) => {
          if (!r.ok) throw new Error(`doc/${n}.json: HTTP ${r.status}`);
          return r.json();
        }),
      ]),
    );
  }

  async function main() {
    state.redrawBy = {};
    const theme = storedTheme();
    if (theme === "light" || theme === "dark") document.documentElement.dataset.theme = theme;
    $("#tf-theme").addEventListener("click", toggleTheme);
    $("#tf-help-btn").addEventListener("click", () => $("#tf-help").showModal());
    $("#tf-help-close").addEventListener("click", () => $("#tf-help").close());
    document.addEventListener("keydown", onKeys);
    $("#tf-tabs").addEventListener("keydown", onTabKeys);
    const pending = await load();
    const docs = state.docs;
    const inspect = await pending.inspect;
    docs.inspect = inspect;
    const two = "inspect_b" in pending;
    $("#tf-title").textContent = two ? `${inspect.path}  ⇄  …` : inspect.path;
    document.title = `${inspect.path.split("/").pop()} — tensorfile view`;
    const at = (name, fn) => () => (docs[name] ? (panel) => fn(panel, docs[name]) : null);
    addTab("summary", "Summary", at("inspect", renderSummary));
    addTab("tensors", `Tensors ${fmtInt(inspect.tensor_count)}`, at("inspect", renderTensors));
    addTab("layers", "Layers", at("inspect", renderTree));
    addTab("memory", "Memory", at("estimate", renderMemory));
    addTab("security", "Security", at("scan", renderScan));
    addTab("metadata", "Metadata", at("inspect", renderMetadata));
    if (two) addTab("diff", "Diff", () => (docs.diff && docs.inspect_b ? (panel) => renderDiff(panel, docs.diff, docs.inspect, docs.inspect_b) : null));
    const first = (location.hash || "").slice(1);
    selectTab(state.panels[first] ? first : "summary");
    document.documentElement.dataset.painted = String(Math.round(performance.now()));
    const rest = Object.entries(pending).filter(([k]) => k !== "inspect");
    await Promise.all(
      rest.map(([name, p]) =>
        p.then(
          (doc) => {
            docs[name] = doc;
            if (name === "inspect_b") $("#tf-title").textContent = `${inspect.path}  ⇄  ${doc.path}`;
            if (name === "scan") showVerdict(doc);
            if (name === "scan" && !doc.error) {
              const worst = ["critical", "high", "medium", "low"].find((k) => doc.summary.findings_by_severity[k]);
              if (worst) state.panels.security.tab.append(h("span", { class: "badge sev-" + worst, text: String(doc.summary.findings_by_severity[worst]) }));
            }
            if (state.current && !state.panels[state.current].panel.hidden) ensure(state.current);
          },
          (err) => {
            docs[name] = { error: err.message };
          },
        ),
      ),
    );
    for (const id of state.tabs) if (id === state.current) ensure(id);
    let resizeT = 0;
    window.addEventListener("resize", () => {
      clearTimeout(resizeT);
      resizeT = setTimeout(() => {
        for (const fns of Object.values(state.redrawBy)) for (const f of fns) f();
      }, 150);
    });
    document.documentElement.dataset.ready = "1";
  }
  main().catch((err) => {
    const m = $("#main");
    m.append(h("p", { class: "error", text: "The page could not load its data: " + err.message }));
    document.documentElement.dataset.ready = "error";
  });
})();
