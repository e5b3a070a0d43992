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

