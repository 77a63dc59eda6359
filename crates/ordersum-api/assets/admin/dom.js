// DOM helpers: elements built from props (never from HTML), children
// patched only when their signature changed, keyed table rows kept in place.

const SVG_NS = "http://www.w3.org/2000/svg";

/** An element: props are attributes, except class, text, on (listeners). */
export function el(tag, props, ...children) {
  const node = document.createElement(tag);
  setProps(node, props);
  append(node, children);
  return node;
}

export function svg(tag, attrs, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value != null) node.setAttribute(key, String(value));
  }
  append(node, children);
  return node;
}

function setProps(node, props) {
  for (const [key, value] of Object.entries(props || {})) {
    if (value == null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = String(value);
    else if (key === "on") {
      for (const [event, fn] of Object.entries(value)) node.addEventListener(event, fn);
    } else node.setAttribute(key, value === true ? "" : String(value));
  }
}

export function append(node, children) {
  for (const child of children.flat(Infinity)) {
    if (child == null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replaces `node`'s children by build()'s, only when `sig` changed (keeps focus). */
const sigs = new WeakMap();
export function patch(node, sig, build) {
  if (sigs.get(node) === sig) return;
  sigs.set(node, sig);
  const built = build();
  node.replaceChildren();
  append(node, [built]);
}

/**
 * Brings a tbody to `items`, keyed rows kept in place: a cell is rebuilt
 * only when its own signature changed, so a focused link survives.
 * columns: [{cls, sig?(item), render(item)}]; decorate(tr, item).
 */
export function syncRows(tbody, items, keyOf, columns, decorate) {
  const old = new Map();
  for (const tr of Array.from(tbody.rows)) old.set(tr.dataset.key, tr);
  const kept = new Set();
  items.forEach((item, index) => {
    const key = String(keyOf(item));
    let tr = old.get(key);
    if (!tr) {
      tr = document.createElement("tr");
      tr.dataset.key = key;
      for (const col of columns) tr.append(el("td", { class: col.cls }));
    }
    kept.add(key);
    decorate(tr, item);
    const whole = JSON.stringify(item);
    columns.forEach((col, i) => {
      const cell = tr.cells[i];
      if (col.label) cell.setAttribute("data-label", col.label);
      patch(cell, col.sig ? String(col.sig(item)) : whole, () => col.render(item));
    });
    const at = tbody.rows[index];
    if (at !== tr) tbody.insertBefore(tr, at || null);
  });
  for (const [key, tr] of old) if (!kept.has(key)) tr.remove();
}

export function table(testid, headers, caption) {
  const tbody = el("tbody");
  const node = el(
    "table",
    { class: "grid", "data-testid": testid },
    caption ? el("caption", { class: "visually-hidden", text: caption }) : null,
    el("thead", null, el("tr", null, headers.map((h) => el("th", { scope: "col", class: h.cls, text: h.label })))),
    tbody,
  );
  return { node, tbody };
}
