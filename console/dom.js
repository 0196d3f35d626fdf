// Building pages from data without ever parsing it as HTML: every value becomes a text node
// (textContent), so a name like <img src=x onerror=...> stays the characters it is.

/** h('p', {class: 'x', 'aria-live': 'polite', onclick: f}, 'text', childNode, ...) */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('on') && typeof value === 'function') {
      el.addEventListener(key.slice(2), value);
    } else if (key === 'class') {
      el.className = value;
    } else if (key === 'for') {
      el.htmlFor = value;
    } else if (key === 'value') {
      el.value = value;
    } else if (key === 'checked') {
      el.checked = Boolean(value);
    } else if (value === true) {
      el.setAttribute(key, '');
    } else {
      el.setAttribute(key, String(value));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === undefined || child === null || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else if (child instanceof Node) el.appendChild(child);
    else el.appendChild(document.createTextNode(String(child)));
  }
}

/** el.append() that leaves out null, undefined and false (as h() does). */
export function put(el, ...children) {
  append(el, children);
  return el;
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

let fieldCounter = 0;
/** A labelled form field: returns {wrap, input}. */
export function field(label, props = {}, hint) {
  const id = props.id || `f${++fieldCounter}`;
  const hintId = hint ? `${id}-hint` : undefined;
  const tag = props.tag || 'input';
  const inputProps = { ...props, id, 'aria-describedby': hintId };
  delete inputProps.tag;
  delete inputProps.options;
  const input = h(tag, inputProps);
  if (tag === 'select') {
    for (const [value, text] of props.options || []) input.appendChild(h('option', { value }, text));
    if (props.value !== undefined) input.value = props.value;
  }
  const wrap = h('div', { class: 'field' }, h('label', { for: id }, label), input, hint ? h('p', { class: 'hint', id: hintId }, hint) : null);
  return { wrap, input };
}

/** A table with a caption and column headers; rows are arrays of cells (text or nodes). */
export function table(caption, headers, rows, rowClass) {
  return h('div', { class: 'table-wrap' },
    h('table', {},
      h('caption', {}, caption),
      h('thead', {}, h('tr', {}, headers.map((text) => h('th', { scope: 'col' }, text)))),
      h('tbody', {}, rows.map((cells, i) => h('tr', { class: rowClass ? rowClass(i) : undefined },
        cells.map((cell) => h('td', {}, cell)))))));
}

export function pageHeading(text) {
  return h('h1', { id: 'page-heading', tabindex: '-1' }, text);
}

export function announce(message, kind = 'info') {
  const status = document.getElementById('status');
  clear(status);
  if (message) status.appendChild(h('p', { class: `status-${kind}` }, message));
}

export function errorBox(message) {
  return h('div', { class: 'error', role: 'alert' }, message);
}

export function badge(text, kind) {
  return h('span', { class: `badge badge-${kind}` }, text);
}
