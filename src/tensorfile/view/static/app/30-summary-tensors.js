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

