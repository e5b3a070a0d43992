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

