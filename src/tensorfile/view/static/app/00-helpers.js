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

