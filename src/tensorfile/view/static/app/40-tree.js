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

