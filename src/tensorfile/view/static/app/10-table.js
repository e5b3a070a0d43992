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

