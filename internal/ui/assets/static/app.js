// phoenix status page. Plain JavaScript, no framework, no build step.
//
// The server pushes the whole guest table as server-sent events whenever a
// status record changes; this script recolours the graph's nodes and
// updates the table in place (so focus and selection survive), fetches the
// picture again only when the graph's shape changed, and fetches the
// selected guest's details again when its record changed.
'use strict';

(() => {
  const convergeOn = document.body.dataset.converge === 'on';
  const tokenPath = document.body.dataset.tokenPath || 'the state dir';
  const state = {
    shape: null,
    loadingShape: null,
    guests: new Map(), // id -> summary
    phases: new Map(), // id -> phase last drawn
    selected: null,
    selectedRev: null,
    pending: null, // {id, token}: a converge asked for from this page
  };
  // Phase changes as the page saw them, with the time it saw them: the
  // browser test reads this to measure how fast the page follows.
  window.phoenixUpdates = [];

  const $ = (sel, root = document) => root.querySelector(sel);

  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null) continue;
      if (k === 'class') e.className = v;
      else if (k === 'text') e.textContent = v;
      else e.setAttribute(k, v);
    }
    for (const c of children) {
      if (c !== null && c !== undefined) e.append(c);
    }
    return e;
  }

  const pad = (n) => String(n).padStart(2, '0');
  function fmtTime(iso) {
    if (!iso) return '';
    const d = new Date(iso);
    if (isNaN(d)) return iso;
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  }
  function fmtDuration(ms) {
    if (ms < 1000) return `${ms} ms`;
    if (ms < 60000) return `${(ms / 1000).toFixed(1)} s`;
    return `${Math.floor(ms / 60000)} min ${Math.round((ms % 60000) / 1000)} s`;
  }
  function badge(phase) {
    return el('span', { class: `badge phase-${phase}`, text: phase });
  }

  // --- the graph ---------------------------------------------------------

  async function loadGraph(shape) {
    state.loadingShape = shape;
    try {
      const r = await fetch('graph.svg?embed=1', { cache: 'no-store' });
      if (!r.ok) throw new Error(`graph.svg: ${r.status}`);
      // The SVG is our own server's, with every name escaped.
      $('#graph').innerHTML = await r.text();
      state.shape = shape;
      state.phases.clear();
      for (const node of document.querySelectorAll('#graph g.node')) {
        node.addEventListener('click', () => select(node.dataset.id));
        node.addEventListener('keydown', (e) => {
          if (e.key === 'Enter' || e.key === ' ') {
            e.preventDefault();
            select(node.dataset.id);
          }
        });
        state.phases.set(node.dataset.id, node.dataset.phase);
      }
      paintGraph();
    } catch (err) {
      $('#graph').textContent = `Cannot load the graph: ${err.message}`;
    } finally {
      state.loadingShape = null;
    }
  }

  function subtitle(node, phase) {
    const parts = [node.dataset.kind.toUpperCase()];
    if (node.dataset.template === 'true') parts.push('template');
    parts.push(phase);
    return parts;
  }

  function paintGraph() {
    for (const [id, g] of state.guests) {
      const node = document.getElementById(`guest-${id}`);
      if (!node) continue;
      node.classList.toggle('selected', id === state.selected);
      if (node.dataset.phase === g.phase) continue;
      node.classList.remove(`phase-${node.dataset.phase}`);
      node.classList.add(`phase-${g.phase}`);
      node.dataset.phase = g.phase;
      const sub = subtitle(node, g.phase);
      const label = node.querySelector('text.label').textContent;
      node.querySelector('text.sub').textContent = sub.join(' · ');
      node.querySelector('title').textContent = `${label} — ${sub.join(' · ')}`;
      node.setAttribute('aria-label', `${label}, ${sub.join(', ')}`);
    }
    for (const [id, g] of state.guests) {
      if (state.phases.get(id) !== g.phase) {
        state.phases.set(id, g.phase);
        window.phoenixUpdates.push({ id, phase: g.phase, at: Date.now() });
      }
    }
  }

  // --- the table ---------------------------------------------------------

  function tokenCell(g) {
    const td = el('td', { class: 'clip token' });
    if (g.lastHandledConvergeAt) {
      td.append(el('code', { text: g.lastHandledConvergeAt }));
      td.title = `last handled converge: ${g.lastHandledConvergeAt}`;
    }
    if (g.requestedConvergeAt && g.requestedConvergeAt !== g.lastHandledConvergeAt) {
      td.append(el('span', { class: 'muted', text: `${g.lastHandledConvergeAt ? ' ' : ''}requested ${g.requestedConvergeAt}` }));
      td.title = `converge requested ${g.requestedConvergeAt}, not handled yet`;
    }
    td.dataset.token = g.lastHandledConvergeAt || '';
    return td;
  }

  function row(g) {
    const tr = el('tr', { tabindex: '0', 'data-id': g.id });
    tr.addEventListener('click', () => select(g.id));
    tr.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' || e.key === ' ') {
        e.preventDefault();
        select(g.id);
      }
    });
    return tr;
  }

  function fillRow(tr, g) {
    const name = g.name || '(not in the files)';
    const error = el('td', { class: 'clip error', text: g.lastError || '' });
    if (g.lastError) error.title = g.lastError;
    tr.replaceChildren(
      el('th', { scope: 'row', class: 'num', text: g.id }),
      el('td', {}, name, g.template ? el('span', { class: 'tag', text: 'template' }) : null),
      el('td', { text: g.kind.toUpperCase() }),
      el('td', {}, badge(g.phase)),
      el('td', { class: 'when', text: fmtTime(g.lastAppliedAt) }),
      error,
      tokenCell(g),
    );
    tr.dataset.phase = g.phase;
    tr.dataset.rev = g.rev;
    tr.classList.toggle('selected', g.id === state.selected);
  }

  function renderTable() {
    const body = $('#guests tbody');
    const rows = new Map([...body.rows].map((r) => [r.dataset.id, r]));
    let prev = null;
    for (const g of state.guests.values()) {
      let tr = rows.get(g.id);
      if (!tr) tr = row(g);
      rows.delete(g.id);
      if (tr.dataset.rev !== g.rev || tr.classList.contains('selected') !== (g.id === state.selected)) fillRow(tr, g);
      // Keep the order of the stream without moving rows that are in
      // place (moving a focused row would lose its focus).
      const want = prev ? prev.nextSibling : body.firstChild;
      if (want !== tr) body.insertBefore(tr, want);
      prev = tr;
    }
    for (const tr of rows.values()) tr.remove();
  }

  function renderCounts() {
    const counts = {};
    for (const g of state.guests.values()) counts[g.phase] = (counts[g.phase] || 0) + 1;
    const order = ['Ready', 'Provisioning', 'Pending', 'Failed', 'Orphaned'];
    const parts = order.filter((p) => counts[p]).map((p) => `${counts[p]} ${p}`);
    $('#counts').textContent = `${state.guests.size} guests` + (parts.length ? `: ${parts.join(', ')}` : '');
  }

  // --- details -----------------------------------------------------------

  function select(id) {
    if (state.selected !== id) {
      const msg = $('#converge-msg');
      if (msg) msg.textContent = '';
    }
    state.selected = id;
    state.selectedRev = null;
    history.replaceState(null, '', `#guest-${id}`);
    renderTable();
    paintGraph();
    loadDetail();
  }

  async function loadDetail() {
    const id = state.selected;
    if (!id) return;
    const g = state.guests.get(id);
    state.selectedRev = g ? g.rev : null;
    let d;
    try {
      const r = await fetch(`api/v1/guests/${encodeURIComponent(id)}`, { cache: 'no-store' });
      d = await r.json();
      if (!r.ok) throw new Error(d.error || r.statusText);
    } catch (err) {
      $('#detail-body').replaceChildren(el('p', { class: 'error', text: `Cannot load guest ${id}: ${err.message}` }));
      return;
    }
    if (state.selected !== id) return;
    renderDetail(d);
  }

  function facts(pairs) {
    const dl = el('dl', { class: 'facts' });
    for (const [k, v] of pairs) {
      if (v === '' || v === undefined || v === null) continue;
      dl.append(el('dt', { text: k }), el('dd', {}, v));
    }
    return dl;
  }

  function table(caption, heads, rows) {
    return el('table', {},
      el('caption', { class: 'visually-hidden', text: caption }),
      el('thead', {}, el('tr', {}, ...heads.map((h) => el('th', { scope: 'col', text: h })))),
      el('tbody', {}, ...rows.map((cells) => el('tr', {}, ...cells.map((c) => (c instanceof Node
        ? el('td', {}, c)
        // Long messages (paths) may break anywhere, short words never.
        : el('td', { class: String(c).length > 40 ? 'long' : null, text: String(c) })))))));
  }

  function renderDetail(d) {
    const body = $('#detail-body');
    const title = `${d.id} ${d.name || ''}`.trim();
    $('#detail-heading').textContent = `Details: ${title}`;
    const edges = (list) => list.map((e) => `${e.id} (${e.kind === 'build' ? 'clone' : 'dependency'})`).join(', ');
    const parts = [
      facts([
        ['Kind', `${d.kind.toUpperCase()}${d.template ? ', template' : ''}`],
        ['Phase', badge(d.phase)],
        ['On the host', d.exists ? d.state : 'absent'],
        ['Last applied', fmtTime(d.lastAppliedAt) || 'never'],
        ['Last error', d.lastError ? el('span', { class: 'error', text: d.lastError }) : ''],
        ['Converge token', d.lastHandledConvergeAt ? el('code', { class: 'handled-token', text: d.lastHandledConvergeAt }) : 'none handled'],
        ['Converge requested', d.requestedConvergeAt && d.requestedConvergeAt !== d.lastHandledConvergeAt ? el('code', { text: d.requestedConvergeAt }) : ''],
        ['Needs', edges(d.needs)],
        ['Needed by', edges(d.neededBy)],
        ['Spec hash', d.observedSpecHash ? el('code', { text: d.observedSpecHash }) : ''],
        ['File', d.file ? el('code', { text: d.file }) : 'not in the files'],
      ]),
    ];
    const conds = d.conditions || [];
    parts.push(el('h3', { text: 'Conditions' }));
    parts.push(conds.length
      ? table('Conditions', ['Type', 'Status', 'Reason', 'Message', 'Since'], conds.map((c) => [c.type, c.status, c.reason, c.message || '', fmtTime(c.lastTransitionTime)]))
      : el('p', { class: 'muted', text: 'None recorded.' }));
    const steps = d.lastSteps || [];
    const total = steps.reduce((s, x) => s + (x.duration_ms || 0), 0);
    parts.push(el('h3', { text: steps.length ? `Last workflow: ${steps.length} steps, ${fmtDuration(total)}` : 'Last workflow' }));
    parts.push(steps.length
      ? el('div', { class: 'steps' }, table('Steps of the last workflow', ['Step', 'Result', 'Duration', 'Error'], steps.map((s) => [s.name, s.result, fmtDuration(s.duration_ms || 0), s.error ? el('span', { class: 'error', text: s.error }) : ''])))
      : el('p', { class: 'muted', text: 'No workflow recorded.' }));
    if (d.spec) {
      parts.push(el('h3', { text: 'Effective spec' }));
      parts.push(el('pre', { class: 'spec', tabindex: '0', text: JSON.stringify(d.spec, null, 2) }));
    }
    body.replaceChildren(...parts);
    body.dataset.id = d.id;
    const conv = $('#converge');
    conv.hidden = false;
    const button = $('#converge-button');
    if (button) {
      button.textContent = `Converge ${d.id}`;
      button.disabled = !d.file;
    }
  }

  // --- converge ----------------------------------------------------------

  async function converge() {
    const id = state.selected;
    const input = $('#token');
    const msg = $('#converge-msg');
    const token = input.value.trim();
    if (!token) {
      msg.textContent = `Enter the token from ${tokenPath}.`;
      input.focus();
      return;
    }
    sessionStorage.setItem('phoenix-token', token);
    const button = $('#converge-button');
    button.disabled = true;
    msg.textContent = `Asking for a converge of ${id}…`;
    try {
      const r = await fetch(`api/v1/guests/${encodeURIComponent(id)}/converge`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${token}` },
        cache: 'no-store',
      });
      const body = await r.json().catch(() => ({}));
      if (r.status === 401) throw new Error(`the token was refused (${body.error || 'unauthorized'})`);
      if (!r.ok) throw new Error(body.error || r.statusText);
      state.pending = { id, token: body.token };
      msg.textContent = `Converge of ${id} requested (token ${body.token}); waiting for the controller…`;
      checkPending();
    } catch (err) {
      msg.textContent = `Converge refused: ${err.message}`;
    } finally {
      button.disabled = false;
    }
  }

  function checkPending() {
    const p = state.pending;
    if (!p) return;
    const g = state.guests.get(p.id);
    // Tokens are RFC 3339 times: a later one handled covers ours too.
    const covered = g && g.lastHandledConvergeAt &&
      (g.lastHandledConvergeAt === p.token || new Date(g.lastHandledConvergeAt) >= new Date(p.token));
    if (!covered) return;
    if (g.phase === 'Provisioning') return;
    state.pending = null;
    const msg = $('#converge-msg');
    if (msg && state.selected === p.id) {
      msg.textContent = `Converge of ${p.id} handled (token ${g.lastHandledConvergeAt}): ${g.phase}.`;
    }
  }

  // --- the stream --------------------------------------------------------

  async function onSnapshot(snap) {
    const conn = $('#conn');
    if (snap.error) {
      conn.textContent = `error: ${snap.error}`;
      conn.className = 'conn down';
    }
    if (!snap.loaded) {
      $('#graph').textContent = 'The controller has not loaded a valid desired state yet.';
    }
    state.guests = new Map(snap.guests.map((g) => [g.id, g]));
    renderTable();
    renderCounts();
    if (snap.loaded && snap.shape !== state.shape && snap.shape !== state.loadingShape) {
      await loadGraph(snap.shape);
    }
    paintGraph();
    checkPending();
    if (!state.selected) {
      const m = /^#guest-(\d+)$/.exec(location.hash);
      if (m && state.guests.has(m[1])) select(m[1]);
    } else {
      const g = state.guests.get(state.selected);
      if (g && g.rev !== state.selectedRev) loadDetail();
    }
  }

  function connect() {
    const conn = $('#conn');
    const es = new EventSource('api/v1/events');
    es.addEventListener('open', () => {
      conn.textContent = 'live';
      conn.className = 'conn live';
    });
    es.addEventListener('error', () => {
      conn.textContent = 'reconnecting…';
      conn.className = 'conn down';
    });
    es.addEventListener('guests', (e) => {
      onSnapshot(JSON.parse(e.data));
    });
  }

  if (convergeOn) {
    const input = $('#token');
    input.value = sessionStorage.getItem('phoenix-token') || '';
    $('#converge-button').addEventListener('click', converge);
    input.addEventListener('keydown', (e) => {
      if (e.key === 'Enter') converge();
    });
  }
  connect();
})();
