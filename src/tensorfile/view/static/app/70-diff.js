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

