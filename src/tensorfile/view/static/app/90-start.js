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
