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

