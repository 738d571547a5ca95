/*
 * Operator console: the live queue, claimed conversations, tickets, over the WebSocket at /ws/console/
 * (staff session cookie). Plain ES2020, no framework; every text goes through textContent, so nothing a
 * customer writes can run here. Protocol: README, "The operator console's WebSocket".
 */
'use strict';

(() => {
  const root = document.getElementById('console');
  if (!root) return;
  const maxLength = parseInt(root.dataset.maxLength, 10) || 2000;
  const ui = {
    conn: document.getElementById('conn'),
    me: document.getElementById('me'),
    list: document.getElementById('list'),
    thread: document.getElementById('thread'),
    side: document.getElementById('side'),
    toasts: document.getElementById('toasts'),
    alerts: document.getElementById('alerts'),
  };
  const REASONS = { asked: 'asked', button: 'asked (button)', unsure: 'not-sure streak', thumbs_down: 'thumbs-down' };
  const state = {
    me: null, status: 'away', queue: [], mine: new Map(), tickets: [], operators: [],
    tab: 'queue', open: null, viewing: null, unread: new Set(), typing: new Map(), canned: [],
  };
  let ws = null;
  let attempt = 0;
  let seq = 0;

  // ------------------------------------------------------------------ helpers
  function el(tag, className, text) {
    const e = document.createElement(tag);
    if (className) e.className = className;
    if (text != null) e.textContent = String(text);
    return e;
  }
  function button(label, className, onClick) {
    const b = el('button', className, label);
    b.type = 'button';
    b.addEventListener('click', onClick);
    return b;
  }
  function ago(iso) {
    const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
    return s < 60 ? `${s}s` : s < 3600 ? `${Math.floor(s / 60)}m ${s % 60}s` : `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
  }
  function clock(iso) {
    const d = new Date(iso);
    return Number.isNaN(d.getTime()) ? '' : d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  }
  function toast(text) {
    const t = el('div', 'toast', text);
    ui.toasts.append(t);
    window.setTimeout(() => t.remove(), 6000);
  }
  function send(frame) {
    if (!ws || ws.readyState !== WebSocket.OPEN) { toast('Not connected; try again in a moment.'); return null; }
    seq += 1;
    const id = 'c' + seq;
    ws.send(JSON.stringify({ ...frame, id }));
    return id;
  }

  // ------------------------------------------------------------------- alerts
  let audio = null;
  function beep() {
    try {
      audio = audio || new (window.AudioContext || window.webkitAudioContext)();
      const osc = audio.createOscillator();
      const gain = audio.createGain();
      osc.frequency.value = 880;
      gain.gain.setValueAtTime(0.15, audio.currentTime);
      gain.gain.exponentialRampToValueAtTime(0.001, audio.currentTime + 0.35);
      osc.connect(gain).connect(audio.destination);
      osc.start();
      osc.stop(audio.currentTime + 0.35);
    } catch (_) { /* no audio: the list still updates */ }
  }
  function alertNew(title, body) {
    beep();
    if ('Notification' in window && Notification.permission === 'granted' && document.visibilityState !== 'visible') {
      try { new Notification(title, { body: body.slice(0, 140), tag: 'console' }); } catch (_) { /* ignore */ }
    }
  }
  ui.alerts.addEventListener('click', () => {
    beep(); // a click lets the page play sound from now on
    if ('Notification' in window && Notification.permission === 'default') Notification.requestPermission();
    ui.alerts.textContent = 'Alerts on';
    ui.alerts.disabled = true;
  });

  // --------------------------------------------------------------- connection
  function connect() {
    const proto = window.location.protocol === 'https:' ? 'wss:' : 'ws:';
    ws = new WebSocket(`${proto}//${window.location.host}${root.dataset.wsPath}`);
    const socket = ws;
    ui.conn.dataset.state = 'connecting';
    ui.conn.textContent = 'Connecting…';
    socket.addEventListener('message', (ev) => {
      let f;
      try { f = JSON.parse(ev.data); } catch (_) { return; }
      if (f && typeof f === 'object' && HANDLERS[f.type]) HANDLERS[f.type](f);
    });
    socket.addEventListener('close', () => {
      if (socket !== ws) return;
      ui.conn.dataset.state = 'offline';
      attempt += 1;
      const wait = Math.min(30000, 1000 * 2 ** Math.min(attempt, 5));
      ui.conn.textContent = `Offline · retrying in ${Math.round(wait / 1000)}s`;
      window.setTimeout(connect, wait);
    });
  }

  // ------------------------------------------------------------------- frames
  const HANDLERS = {
    hello(f) {
      attempt = 0;
      state.me = f.operator;
      state.status = f.status;
      state.mine = new Map((f.mine || []).map((c) => [c.conversation, c]));
      state.tickets = f.tickets || [];
      state.operators = f.operators || [];
      state.queue = f.queue || [];
      ui.conn.dataset.state = 'online';
      ui.conn.textContent = 'Online';
      ui.me.textContent = f.operator.name;
      if (state.open && !state.mine.has(state.open)) state.open = null;
      renderStatus();
      render();
    },
    queue(f) {
      const before = new Set(state.queue.map((q) => q.conversation));
      state.queue = f.conversations || [];
      const fresh = state.queue.filter((q) => !before.has(q.conversation));
      if (fresh.length && state.status === 'available') {
        const last = fresh[0].last.filter((m) => m.role === 'customer').pop();
        alertNew('A customer is waiting', last ? last.text : `Conversation #${fresh[0].conversation}`);
      }
      render();
    },
    conversation(f) {
      const mine = f.owner === 'operator' && state.me && f.operator === state.me.id;
      if (mine) {
        const isNew = !state.mine.has(f.conversation);
        state.mine.set(f.conversation, f);
        if (isNew) { state.open = f.conversation; state.viewing = null; state.tab = 'mine'; }
      } else {
        state.viewing = f;
        state.open = null;
      }
      render();
    },
    customer_message(f) {
      const c = state.mine.get(f.conversation);
      if (!c) return;
      c.transcript.push(f.message);
      state.typing.delete(f.conversation);
      if (state.open !== f.conversation) state.unread.add(f.conversation);
      alertNew('New message', f.message.text);
      render();
    },
    agent_message(f) {
      const c = state.mine.get(f.conversation);
      if (c && !c.transcript.some((m) => m.id === f.message.id)) c.transcript.push(f.message);
      render();
    },
    typing(f) {
      if (f.typing) state.typing.set(f.conversation, Date.now()); else state.typing.delete(f.conversation);
      renderTyping();
    },
    ended(f) { drop(f.conversation, f.to === 'closed' ? 'closed' : 'handed back to the bot'); },
    transferred(f) {
      const to = state.operators.find((o) => o.id === f.to);
      drop(f.conversation, `transferred to ${to ? to.name : 'another operator'}`);
    },
    released(f) { drop(f.conversation, 'back in the queue (your console was away too long)'); },
    ticket(f) {
      const i = state.tickets.findIndex((t) => t.id === f.ticket.id);
      if (i >= 0) state.tickets[i] = f.ticket;
      else { state.tickets.unshift(f.ticket); alertNew('A customer left a message', f.ticket.text); }
      render();
    },
    tickets(f) { state.tickets = f.tickets || []; render(); },
    note(f) {
      const c = state.mine.get(f.conversation) || (state.viewing && state.viewing.conversation === f.conversation ? state.viewing : null);
      if (c && !c.notes.some((n) => n.id === f.note.id)) c.notes.push(f.note);
      render();
    },
    operators(f) { state.operators = f.operators || []; render(); },
    canned(f) { state.canned = f.results || []; renderCanned(); },
    status(f) { state.status = f.status; renderStatus(); },
    claimed() {},
    sent() {},
    error(f) { toast(f.detail || 'Not done.'); },
  };

  function drop(id, why) {
    state.mine.delete(id);
    state.unread.delete(id);
    if (state.open === id) state.open = null;
    toast(`Conversation #${id}: ${why}.`);
    render();
  }

  // ------------------------------------------------------------------ status
  function renderStatus() {
    root.querySelectorAll('.status-toggle button').forEach((b) => {
      b.setAttribute('aria-pressed', String(b.dataset.status === state.status));
    });
    root.dataset.status = state.status;
  }
  root.querySelectorAll('.status-toggle button').forEach((b) => {
    b.addEventListener('click', () => send({ type: 'status', status: b.dataset.status }));
  });
  root.querySelectorAll('.tabs button').forEach((b) => {
    b.addEventListener('click', () => {
      state.tab = b.dataset.tab;
      if (state.tab === 'tickets') send({ type: 'tickets' });
      render();
    });
  });

  // ------------------------------------------------------------------- render
  function render() {
    document.getElementById('count-queue').textContent = String(state.queue.length);
    document.getElementById('count-mine').textContent = String(state.mine.size);
    document.getElementById('count-tickets').textContent = String(state.tickets.filter((t) => t.status === 'open').length);
    root.querySelectorAll('.tabs button').forEach((b) => b.setAttribute('aria-selected', String(b.dataset.tab === state.tab)));
    renderList();
    renderThread();
  }

  function renderList() {
    ui.list.replaceChildren();
    if (state.tab === 'queue') {
      if (!state.queue.length) ui.list.append(el('p', 'empty', 'Nobody is waiting.'));
      for (const q of state.queue) ui.list.append(queueCard(q));
    } else if (state.tab === 'mine') {
      if (!state.mine.size) ui.list.append(el('p', 'empty', 'You hold no conversation.'));
      for (const c of state.mine.values()) ui.list.append(mineCard(c));
    } else {
      if (!state.tickets.length) ui.list.append(el('p', 'empty', 'No tickets.'));
      for (const t of state.tickets) ui.list.append(ticketCard(t));
    }
  }

  function queueCard(q) {
    const card = el('article', 'card queue-card');
    card.dataset.conversation = String(q.conversation);
    const head = el('div', 'card-head');
    head.append(
      el('span', 'pos', `#${q.position}`),
      el('span', 'lang', (q.language || '?').toUpperCase()),
      el('span', 'reason', REASONS[q.reason] || q.reason),
      el('span', 'wait', `waiting ${ago(q.requested_at)}`),
    );
    head.lastChild.dataset.since = q.requested_at;
    const preview = el('ol', 'preview');
    for (const m of q.last) preview.append(el('li', `role-${m.role}`, m.text));
    card.append(head, preview, button('Claim', 'primary claim', () => send({ type: 'claim', conversation: q.conversation })));
    return card;
  }

  function mineCard(c) {
    const card = el('article', 'card mine-card');
    card.dataset.conversation = String(c.conversation);
    if (state.open === c.conversation) card.classList.add('selected');
    if (state.unread.has(c.conversation)) card.classList.add('unread');
    const last = c.transcript[c.transcript.length - 1];
    card.append(
      el('div', 'card-head', `#${c.conversation} · ${(c.language || '?').toUpperCase()}`),
      el('p', 'preview-line', last ? last.text : ''),
    );
    card.tabIndex = 0;
    card.addEventListener('click', () => { state.open = c.conversation; state.viewing = null; state.unread.delete(c.conversation); render(); });
    return card;
  }

  function ticketCard(t) {
    const card = el('article', `card ticket-card status-${t.status}`);
    card.dataset.ticket = String(t.id);
    card.append(
      el('div', 'card-head', `Ticket ${t.id} · ${t.status} · ${clock(t.at)}`),
      el('p', 'contact', t.contact),
      el('p', 'ticket-text', t.text),
    );
    const actions = el('div', 'card-actions');
    actions.append(button('Transcript', 'ghost', () => send({ type: 'open', conversation: t.conversation })));
    if (t.status === 'open') actions.append(button('Mark done', 'primary', () => send({ type: 'ticket_done', ticket: t.id })));
    card.append(actions);
    return card;
  }

  function messageRow(m) {
    const row = el('div', `line role-${m.role}`);
    const who = m.role === 'customer' ? 'Customer' : m.role === 'bot' ? 'Bot' : `${m.agent || 'Operator'} (person)`;
    const meta = el('div', 'line-meta');
    meta.append(el('span', 'who', who), el('span', 'at', clock(m.at)));
    if (m.role === 'bot' && typeof m.confidence === 'number') {
      const conf = el('span', 'confidence', `confidence ${m.confidence.toFixed(2)}`);
      if (m.confidence < 0.5) conf.classList.add('low');
      meta.append(conf);
    }
    if (m.role === 'bot' && m.outcome && m.outcome !== 'answer') meta.append(el('span', 'outcome', m.outcome));
    if (m.role === 'bot' && m.helpful === false) meta.append(el('span', 'outcome', 'thumbs down'));
    row.append(meta, el('div', 'line-text', m.text));
    return row;
  }

  function renderThread() {
    const c = state.open ? state.mine.get(state.open) : state.viewing;
    if (!c) {
      delete ui.thread.dataset.conversation;
      ui.thread.replaceChildren(el('p', 'empty', 'Claim a conversation from the queue, or open one of yours.'));
      ui.side.replaceChildren();
      return;
    }
    const mine = state.mine.has(c.conversation);
    const key = `${c.conversation}:${mine}`;
    if (ui.thread.dataset.conversation !== key) {
      // A different conversation: build it; otherwise only its lines change, and the reply box keeps focus.
      ui.thread.dataset.conversation = key;
      const head = el('div', 'thread-head');
      head.append(el('h2', null, `Conversation #${c.conversation}`), el('span', 'lang', (c.language || '?').toUpperCase()));
      if (c.reason) head.append(el('span', 'reason', REASONS[c.reason] || c.reason));
      if (!mine) head.append(el('span', 'readonly', 'read only'), button('Close', 'ghost', () => { state.viewing = null; render(); }));
      const lines = el('div', 'transcript');
      lines.id = 'transcript';
      const typing = el('p', 'customer-typing');
      typing.id = 'customer-typing';
      ui.thread.replaceChildren(head, lines, typing);
      if (mine) ui.thread.append(replyBox(c), el('div', 'thread-actions'));
    }
    const lines = document.getElementById('transcript');
    lines.replaceChildren(...c.transcript.map(messageRow));
    lines.scrollTop = lines.scrollHeight;
    const bar = ui.thread.querySelector('.thread-actions');
    if (bar) bar.replaceWith(actionsBar(c));
    ui.side.replaceChildren(notesPanel(c));
    renderTyping();
  }

  function renderTyping() {
    const t = document.getElementById('customer-typing');
    if (!t) return;
    const since = state.open ? state.typing.get(state.open) : null;
    t.textContent = since && Date.now() - since < 8000 ? 'The customer is typing…' : '';
  }

  // ----------------------------------------------------------------- replying
  let draft = new Map(); // conversation -> text being written
  let typingSent = 0;
  let idle = 0;
  function replyBox(c) {
    const form = el('form', 'reply');
    const search = el('input', 'canned-search');
    Object.assign(search, { type: 'search', placeholder: 'Search answers (English or 中文)…' });
    search.setAttribute('aria-label', 'Search the knowledge base for an answer');
    let timer = 0;
    search.addEventListener('input', () => {
      window.clearTimeout(timer);
      timer = window.setTimeout(() => {
        if (search.value.trim()) send({ type: 'search', q: search.value.trim() });
        else { state.canned = []; renderCanned(); }
      }, 250);
    });
    const results = el('ul', 'canned-results');
    results.id = 'canned-results';
    const text = el('textarea', 'reply-text');
    text.id = 'reply-text';
    text.rows = 3;
    text.maxLength = maxLength;
    text.placeholder = 'Write to the customer…';
    text.setAttribute('aria-label', 'Reply');
    text.value = draft.get(c.conversation) || '';
    text.addEventListener('input', () => {
      draft.set(c.conversation, text.value);
      const now = Date.now();
      if (now - typingSent > 3000) { typingSent = now; send({ type: 'typing', conversation: c.conversation, typing: true }); }
      window.clearTimeout(idle);
      idle = window.setTimeout(() => { typingSent = 0; send({ type: 'typing', conversation: c.conversation, typing: false }); }, 4000);
    });
    text.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) { e.preventDefault(); form.requestSubmit(); }
    });
    const sendBtn = el('button', 'primary', 'Send');
    sendBtn.type = 'submit';
    form.append(search, results, text, sendBtn);
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      const value = text.value.trim();
      if (!value) return;
      if (send({ type: 'reply', conversation: c.conversation, text: value })) {
        draft.delete(c.conversation);
        text.value = '';
        window.clearTimeout(idle);
        typingSent = 0;
      }
    });
    window.setTimeout(() => { renderCanned(); }, 0);
    return form;
  }

  function renderCanned() {
    const list = document.getElementById('canned-results');
    if (!list) return;
    list.replaceChildren();
    for (const r of state.canned) {
      const item = el('li', 'canned');
      const pick = button('', 'canned-pick', () => {
        const text = document.getElementById('reply-text');
        text.value = r.answer;
        text.focus();
        text.dispatchEvent(new Event('input'));
        state.canned = [];
        renderCanned();
      });
      pick.append(el('span', 'lang', r.language.toUpperCase()), el('strong', null, r.question), el('span', 'canned-answer', r.answer));
      item.append(pick);
      list.append(item);
    }
  }

  function actionsBar(c) {
    const bar = el('div', 'thread-actions');
    bar.append(
      button('Hand back to the bot', 'ghost end-bot', () => send({ type: 'end', conversation: c.conversation, to: 'bot' })),
      button('Close conversation', 'ghost end-closed', () => send({ type: 'end', conversation: c.conversation, to: 'closed' })),
    );
    const others = state.operators.filter((o) => state.me && o.id !== state.me.id && o.status === 'available');
    const select = el('select', 'transfer-to');
    select.setAttribute('aria-label', 'Transfer to');
    select.append(el('option', null, others.length ? 'Transfer to…' : 'Nobody else available'));
    for (const o of others) {
      const opt = el('option', null, o.name);
      opt.value = String(o.id);
      select.append(opt);
    }
    select.disabled = !others.length;
    select.addEventListener('change', () => {
      if (select.value) send({ type: 'transfer', conversation: c.conversation, to: Number(select.value) });
    });
    bar.append(select);
    return bar;
  }

  function notesPanel(c) {
    const panel = el('section', 'notes');
    panel.append(el('h3', null, 'Notes (staff only)'));
    const list = el('ul', 'note-list');
    for (const n of c.notes) {
      const li = el('li');
      li.append(el('span', 'note-meta', `${n.author} · ${clock(n.at)}`), el('p', 'note-text', n.text));
      list.append(li);
    }
    const form = el('form', 'note-form');
    const text = el('textarea');
    text.rows = 2;
    text.placeholder = 'Add a note for the team…';
    text.setAttribute('aria-label', 'Note');
    const add = el('button', 'ghost', 'Add note');
    add.type = 'submit';
    form.append(text, add);
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      if (text.value.trim() && send({ type: 'note', conversation: c.conversation, text: text.value.trim() })) text.value = '';
    });
    panel.append(list, form);
    return panel;
  }

  // Wait times tick without a frame.
  window.setInterval(() => {
    root.querySelectorAll('.wait[data-since]').forEach((w) => { w.textContent = `waiting ${ago(w.dataset.since)}`; });
    renderTyping();
  }, 1000);

  connect();
})();
