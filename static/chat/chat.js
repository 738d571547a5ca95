/*
 * Customer chat page: WebSocket client.
 * Plain ES2020, no framework, no build step. Loaded with `defer` from
 * templates/chat/index.html; everything is configured through data
 * attributes on <main id="chat">. Safe under a strict CSP (no inline code,
 * no style attributes; only the server-sanitised answer HTML goes through
 * innerHTML, everything else is textContent).
 *
 * Protocol (JSON text frames):
 *   client -> server  {type:"message", id, text[, suggestion]}
 *                     {type:"feedback", message_id, helpful}
 *   server -> client  {type:"welcome", conversation, resumed, max_length, history}
 *                     {type:"answer", reply_to, message_id, text, html, confidence,
 *                      suggestions, followups, handoff, outcome}
 *                     {type:"error", code, detail, reply_to}
 */
'use strict';

/* One chat client, two shells: the full page mounts it on <main id="chat">; the embedded widget
 * (widget.js) defines the <lumen-chat> element first and is handed mount(), so that the shop's page
 * gets no global name from this file. */
((mount) => {
  const Widget = window.customElements && window.customElements.get('lumen-chat');
  if (Widget && typeof Widget.adopt === 'function') Widget.adopt(mount);
  const page = document.getElementById('chat');
  if (page && !page.dataset.mounted) mount(page, {});
})(function mountChat(root, opts = {}) {
  root.dataset.mounted = 'true';

  // ------------------------------------------------------------------ i18n
  const I18N = {
    en: {
      pageTitle: '{shop} · Customer support',
      subtitle: 'Usually answers instantly',
      skipToInput: 'Skip to message box',
      language: 'Language',
      conversation: 'Conversation',
      composer: 'Send a message',
      connecting: 'Connecting…',
      online: 'Online',
      offline: 'Offline',
      offlineRetry: 'Offline · retrying in {s}s',
      retryNow: 'Retry now',
      announceOnline: 'Connected.',
      announceOffline: 'Connection lost. Trying to reconnect.',
      newConversation: 'New conversation',
      newConversationStarted: 'New conversation started.',
      inputLabel: 'Your message',
      placeholder: 'Type your question…',
      placeholderOffline: 'You’re offline: we’ll send it later…',
      send: 'Send',
      hint: 'Enter to send · Shift + Enter for a new line',
      charsLeft: '{n} characters left',
      charsOver: '{n} characters over the limit',
      tooLongLocal: 'Your message is too long. Please keep it under {max} characters.',
      typing: '{shop} is typing',
      you: 'You',
      botName: '{shop}',
      greeting: 'Hi there! Welcome to {shop}. Ask me anything about orders, shipping, returns or our products.',
      helpful: 'Helpful',
      notHelpful: 'Not helpful',
      feedbackQuestion: 'Was this answer helpful?',
      feedbackThanks: 'Thanks for the feedback!',
      didYouMean: 'Suggested questions',
      related: 'Related questions',
      noneOfThese: 'None of these',
      noneNote: 'Thanks, a person can help: describe your question in your own words and our team will follow up here.',
      queued: 'Waiting for connection…',
      retry: 'Try again',
      dismiss: 'Dismiss',
      expired: 'Your previous conversation has ended, so a new one has started.',
      err_too_long: 'This message is too long (max {max} characters). Please shorten it and try again.',
      err_rate_limited: 'You are sending messages a little too fast. Please wait a moment and try again.',
      err_bad_request: 'Sorry, we could not process that message. Please rephrase it and try again.',
      err_unavailable: 'Our assistant is temporarily unavailable. Please try again in a moment.',
      err_invalid: 'Please check what you entered and try again.',
      err_idle: 'The chat paused after a long silence. Send a message to carry on.',
      err_unknown: 'Something went wrong. Please try again.',
    },
    zh: {
      pageTitle: '{shop} · 在线客服',
      subtitle: '通常即时回复',
      skipToInput: '跳到输入框',
      language: '语言',
      conversation: '对话',
      composer: '发送消息',
      connecting: '连接中…',
      online: '在线',
      offline: '离线',
      offlineRetry: '离线 · {s} 秒后重试',
      retryNow: '立即重试',
      announceOnline: '已连接。',
      announceOffline: '连接已断开，正在尝试重新连接。',
      newConversation: '新对话',
      newConversationStarted: '已开始新对话。',
      inputLabel: '您的消息',
      placeholder: '请输入您的问题…',
      placeholderOffline: '当前离线，消息将在恢复连接后发送…',
      send: '发送',
      hint: '按 Enter 发送 · Shift + Enter 换行',
      charsLeft: '还可输入 {n} 个字',
      charsOver: '已超出 {n} 个字',
      tooLongLocal: '消息过长，请控制在 {max} 个字以内。',
      typing: '{shop} 正在输入',
      you: '您',
      botName: '{shop}',
      greeting: '您好！欢迎来到 {shop}。关于订单、配送、退换货或商品的任何问题，都可以问我。',
      helpful: '有帮助',
      notHelpful: '没有帮助',
      feedbackQuestion: '这个回答对您有帮助吗？',
      feedbackThanks: '感谢您的反馈！',
      didYouMean: '推荐问题',
      related: '相关问题',
      noneOfThese: '都不是',
      noneNote: '感谢告知，人工客服可以帮您：请用您自己的话描述问题，我们的团队会在这里跟进。',
      queued: '等待连接…',
      retry: '重试',
      dismiss: '关闭',
      expired: '之前的对话已结束，已为您开始新的对话。',
      err_too_long: '消息过长（最多 {max} 个字），请缩短后重试。',
      err_rate_limited: '您发送消息的速度有点快，请稍等片刻再试。',
      err_bad_request: '抱歉，无法处理这条消息，请换个说法再试。',
      err_unavailable: '智能助手暂时无法使用，请稍后再试。',
      err_invalid: '请检查您填写的内容后重试。',
      err_idle: '长时间未发消息，对话已暂停。发送消息即可继续。',
      err_unknown: '出了点问题，请重试。',
    },
  };
  // Every error code the server sends (chatbot/conversations/protocol.py) has an err_<code> text above.
  const ERROR_CODES = Object.keys(I18N.en).filter((k) => k.startsWith('err_') && k !== 'err_unknown').map((k) => k.slice(4));
  const RETRYABLE = new Set(['rate_limited', 'unavailable']);

  // --------------------------------------------------------------- storage
  const store = {
    get(k) { try { return window.localStorage.getItem(k); } catch (_) { return null; } },
    set(k, v) { try { window.localStorage.setItem(k, v); } catch (_) { /* private mode */ } },
    remove(k) { try { window.localStorage.removeItem(k); } catch (_) { /* ignore */ } },
  };

  // ---------------------------------------------------------------- config
  const cfg = {
    wsPath: root.dataset.wsPath || '/ws/chat/',
    shopName: root.dataset.shopName || '',
    // embedded: the product's address (the page is the shop's) and the site's key
    base: opts.base || '',
    site: opts.site || '',
  };
  let maxLength = parseInt(root.dataset.maxLength, 10);
  if (!(maxLength > 0)) maxLength = 2000;

  const LANG_KEY = 'chat:lang';
  const TOKEN_KEY = 'chat:conversation:' + cfg.wsPath + (cfg.site ? ':' + cfg.site : '');
  const BACKOFF_MIN = 1000;
  const BACKOFF_MAX = 30000;
  const WELCOME_TIMEOUT = 10000;
  const TYPING_TIMEOUT = 45000; // stop the dots if an answer never comes

  function initialLang() {
    const saved = store.get(LANG_KEY);
    if (saved === 'en' || saved === 'zh') return saved;
    if (opts.lang === 'en' || opts.lang === 'zh') return opts.lang; // the shop page's <html lang>
    const prefs = (navigator.languages && navigator.languages.length) ? navigator.languages : [navigator.language || 'en'];
    return String(prefs[0] || 'en').toLowerCase().startsWith('zh') ? 'zh' : 'en';
  }
  let lang = initialLang();

  const fmtCache = {};
  function timeFormat() {
    if (!fmtCache[lang]) {
      try {
        fmtCache[lang] = new Intl.DateTimeFormat(lang === 'zh' ? 'zh-CN' : 'en', { hour: 'numeric', minute: '2-digit' });
      } catch (_) {
        fmtCache[lang] = { format: (d) => d.toTimeString().slice(0, 5) };
      }
    }
    return fmtCache[lang];
  }
  const fmtTime = (ms) => timeFormat().format(new Date(ms));
  const fmtNum = (n) => { try { return n.toLocaleString(lang === 'zh' ? 'zh-CN' : 'en'); } catch (_) { return String(n); } };

  function t(key, args) {
    const table = I18N[lang] || I18N.en;
    const custom = key === 'greeting' && opts.greeting && opts.greeting[lang];
    const s = custom || (table[key] ?? I18N.en[key] ?? key);
    const vars = { shop: cfg.shopName, max: fmtNum(maxLength), ...(args || {}) };
    return s.replace(/\{(\w+)\}/g, (m, k) => (vars[k] !== undefined ? String(vars[k]) : m));
  }

  // Localised text/attributes are bound by key so a language switch can
  // re-render every string already on screen.
  function bindText(el, key, args) {
    el.dataset.i18n = key;
    if (args) el.dataset.i18nArgs = JSON.stringify(args);
    else delete el.dataset.i18nArgs;
    el.textContent = t(key, args);
    return el;
  }
  const I18N_ATTRS = ['aria-label', 'placeholder', 'title'];
  function bindAttr(el, attr, key) {
    el.setAttribute('data-i18n-' + attr, key);
    el.setAttribute(attr, t(key));
    return el;
  }
  function applyI18n() {
    if (!opts.embedded) { // the shop's page keeps its own language and title
      document.documentElement.lang = lang === 'zh' ? 'zh-CN' : 'en';
      document.title = t('pageTitle');
    }
    root.lang = lang === 'zh' ? 'zh-CN' : 'en';
    root.querySelectorAll('[data-i18n]').forEach((el) => {
      const args = el.dataset.i18nArgs ? JSON.parse(el.dataset.i18nArgs) : undefined;
      el.textContent = t(el.dataset.i18n, args);
    });
    if (!opts.embedded) document.querySelectorAll('.skip-link[data-i18n]').forEach((el) => { el.textContent = t(el.dataset.i18n); });
    for (const attr of I18N_ATTRS) {
      root.querySelectorAll('[data-i18n-' + attr + ']').forEach((el) => {
        el.setAttribute(attr, t(el.getAttribute('data-i18n-' + attr)));
      });
    }
    root.querySelectorAll('time[data-ts]').forEach((el) => { el.textContent = fmtTime(Number(el.dataset.ts)); });
    root.querySelectorAll('.lang-btn').forEach((b) => b.setAttribute('aria-pressed', String(b.dataset.lang === lang)));
    renderConn();
    updateComposer();
  }

  // ------------------------------------------------------------------- DOM
  const $ = (sel) => root.querySelector(sel);
  const ui = {
    list: $('#chat-messages'),
    scroller: $('#chat-scroll'),
    form: $('#chat-form'),
    input: $('#chat-input'),
    send: $('#chat-send'),
    counter: $('#chat-counter'),
    conn: $('#conn-state'),
    connText: $('#conn-state .conn-text'),
    retry: $('#conn-retry'),
    newConv: $('#new-conversation'),
    toasts: $('#chat-toasts'),
    announcer: $('#chat-announcer'),
    icons: $('#chat-icons'),
  };

  function h(tag, className, text) {
    const el = document.createElement(tag);
    if (className) el.className = className;
    if (text !== undefined) el.textContent = text;
    return el;
  }
  function icon(name) {
    const src = ui.icons && ui.icons.content.querySelector('[data-icon="' + name + '"]');
    return src ? src.cloneNode(true) : h('span');
  }
  function timeEl(ms) {
    const el = h('time', 'msg-time', fmtTime(ms));
    el.dataset.ts = String(ms);
    el.dateTime = new Date(ms).toISOString();
    return el;
  }
  function announce(text) {
    ui.announcer.textContent = '';
    // A fresh text node in a later task makes screen readers re-announce.
    window.setTimeout(() => { ui.announcer.textContent = text; }, 50);
  }
  const reducedMotion = () => window.matchMedia && window.matchMedia('(prefers-reduced-motion: reduce)').matches;

  function isNearBottom() {
    const s = ui.scroller;
    return s.scrollHeight - s.scrollTop - s.clientHeight < 120;
  }
  function scrollToBottom(force, wasNear) {
    if (!force && !wasNear) return;
    const s = ui.scroller;
    window.requestAnimationFrame(() => {
      s.scrollTo({ top: s.scrollHeight, behavior: reducedMotion() ? 'auto' : 'smooth' });
    });
  }

  function newId() {
    if (window.crypto && typeof window.crypto.randomUUID === 'function') return window.crypto.randomUUID();
    const b = new Uint8Array(16);
    window.crypto.getRandomValues(b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    const hex = Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
    return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
  }
  const charCount = (s) => Array.from(s).length; // code points, like the server's len()

  // ----------------------------------------------------------------- state
  let token = store.get(TOKEN_KEY) || null;
  let ws = null;
  let generation = 0;          // bumps on every new socket; stale events are ignored
  let welcomed = false;        // current socket has received its welcome frame
  let connState = 'connecting';
  let attempt = 0;
  let retryAt = 0;
  let retryTimer = 0;
  let tickTimer = 0;
  let welcomeTimer = 0;
  let historyRendered = false; // first welcome of this page/conversation renders history
  let tokenUsed = null;        // token the current socket connected with

  /** clientId -> {id, text, suggestion, state, el, at}
   *  state: queued (not sent on this connection), pending (sent, awaiting answer),
   *         answered, done (from history), failed (error frame) */
  const customers = new Map();
  const seenAnswers = new Set();     // message_id (as string) of rendered answers
  const bots = new Map();            // message_id (string) -> {el, feedback}
  const feedbackOutbox = new Map();  // message_id (string) -> {id, helpful}

  // ------------------------------------------------------------ connection
  function wsUrl() {
    const where = cfg.base ? new URL(cfg.base) : window.location;
    const proto = where.protocol === 'https:' ? 'wss:' : 'ws:';
    let path = cfg.wsPath;
    if (/^wss?:\/\//i.test(path)) path = path.replace(/^wss?:\/\/[^/]+/i, '');
    let url = `${proto}//${where.host}${path}`;
    if (cfg.site) url += (url.includes('?') ? '&' : '?') + 'site=' + encodeURIComponent(cfg.site);
    if (token) url += (url.includes('?') ? '&' : '?') + 'conversation=' + encodeURIComponent(token);
    return url;
  }

  function setConn(state) {
    const prev = connState;
    connState = state;
    renderConn();
    if (prev !== state) {
      if (state === 'online') announce(t('announceOnline'));
      else if (state === 'offline' && prev === 'online') announce(t('announceOffline'));
    }
    updateTyping();
    updateComposer();
    refreshStatuses();
  }

  function renderConn() {
    ui.conn.dataset.state = connState;
    let text;
    if (connState === 'online') text = t('online');
    else if (connState === 'connecting') text = t('connecting');
    else if (retryAt) text = t('offlineRetry', { s: Math.max(1, Math.ceil((retryAt - Date.now()) / 1000)) });
    else text = t('offline');
    ui.connText.textContent = text;
    ui.retry.hidden = connState !== 'offline';
  }

  function clearTimers() {
    window.clearTimeout(retryTimer);
    window.clearInterval(tickTimer);
    window.clearTimeout(welcomeTimer);
    retryTimer = tickTimer = welcomeTimer = 0;
    retryAt = 0;
  }

  function connect() {
    clearTimers();
    if (ws && (ws.readyState === WebSocket.CONNECTING || ws.readyState === WebSocket.OPEN)) return;
    const gen = ++generation;
    welcomed = false;
    tokenUsed = token;
    setConn('connecting');
    let sock;
    try {
      sock = new WebSocket(wsUrl());
    } catch (_) {
      ws = null;
      scheduleReconnect();
      return;
    }
    ws = sock;
    welcomeTimer = window.setTimeout(() => {
      if (gen === generation && !welcomed) { try { sock.close(); } catch (_) { /* ignore */ } }
    }, WELCOME_TIMEOUT);
    sock.addEventListener('message', (ev) => {
      if (gen !== generation) return;
      let frame;
      try { frame = JSON.parse(ev.data); } catch (_) { return; }
      if (frame && typeof frame === 'object') handleFrame(frame);
    });
    sock.addEventListener('close', (ev) => {
      if (gen !== generation) return;
      const hadWelcome = welcomed;
      ws = null;
      welcomed = false;
      // An application close code before the welcome with a token most likely
      // means the token was refused: start a fresh conversation next time.
      if (!hadWelcome && tokenUsed && ev.code >= 4000 && ev.code < 5000) {
        token = null;
        store.remove(TOKEN_KEY);
      }
      // Closed for being idle (4408) or for too many connections (4429): reconnecting by itself would
      // defeat the point; the customer's next message, "Retry now" or coming back to the tab reconnects.
      if (ev.code === 4408 || ev.code === 4429) {
        clearTimers();
        retryAt = 0;
        setConn('offline');
        return;
      }
      scheduleReconnect();
    });
  }

  function scheduleReconnect() {
    clearTimers();
    const base = Math.min(BACKOFF_MAX, BACKOFF_MIN * 2 ** attempt);
    attempt += 1;
    // "Equal jitter": half fixed, half random, clamped to 1s..30s.
    const delay = Math.round(Math.min(BACKOFF_MAX, Math.max(BACKOFF_MIN, base / 2 + Math.random() * base / 2)));
    retryAt = Date.now() + delay;
    retryTimer = window.setTimeout(connect, delay);
    tickTimer = window.setInterval(renderConn, 1000);
    setConn('offline');
  }

  function retryNow() {
    if (connState !== 'offline') return;
    connect();
  }

  function sendFrame(obj) {
    if (!ws || ws.readyState !== WebSocket.OPEN || !welcomed) return false;
    try {
      ws.send(JSON.stringify(obj));
      return true;
    } catch (_) {
      return false;
    }
  }

  /** Send everything waiting: queued messages (and, after a reconnect, messages
   *  that were sent but never answered; the server de-duplicates by id). */
  function flushOutbox(resendPending) {
    if (!welcomed) return;
    for (const m of customers.values()) {
      if (m.state === 'queued' || (resendPending && m.state === 'pending')) {
        const frame = { type: 'message', id: m.id, text: m.text };
        if (m.suggestion !== undefined && m.suggestion !== null) frame.suggestion = m.suggestion;
        if (!sendFrame(frame)) return;
        m.state = 'pending';
        m.sentAt = Date.now();
        renderCustomerState(m);
      }
    }
    for (const [key, fb] of feedbackOutbox) {
      if (!sendFrame({ type: 'feedback', message_id: fb.id, helpful: fb.helpful })) return;
      feedbackOutbox.delete(key);
    }
    updateTyping();
  }

  // --------------------------------------------------------------- frames
  function handleFrame(f) {
    switch (f.type) {
      case 'welcome': onWelcome(f); break;
      case 'answer': onAnswer(f); break;
      case 'error': if (!(extension.frames.error && extension.frames.error(f))) onError(f); break;
      default: if (extension.frames[f.type]) extension.frames[f.type](f); break; // else ignored (forward compatible)
    }
  }

  function onWelcome(f) {
    window.clearTimeout(welcomeTimer);
    const expired = Boolean(tokenUsed) && f.resumed === false;
    if (typeof f.conversation === 'string' && f.conversation) {
      token = f.conversation;
      store.set(TOKEN_KEY, token);
    }
    if (Number.isInteger(f.max_length) && f.max_length > 0) maxLength = f.max_length;
    welcomed = true;
    attempt = 0;
    const history = Array.isArray(f.history) ? f.history : [];
    if (!historyRendered) {
      historyRendered = true;
      renderHistory(history);
    } else {
      if (expired) addNote('expired');
      reconcile(history);
    }
    setConn('online');
    flushOutbox(true);
  }

  function renderHistory(history) {
    // Insert above anything the customer typed before the first welcome.
    const anchor = ui.list.firstChild;
    if (!history.length) {
      ui.list.insertBefore(buildGreeting(), anchor);
    }
    let lastCustomer = null;
    for (const item of history) {
      if (!item || typeof item !== 'object') continue;
      if (item.role === 'customer') {
        const m = createCustomer(String(item.text ?? ''), item.id || newId(), 'done', item);
        lastCustomer = m;
        ui.list.insertBefore(m.el, anchor);
      } else if (item.role === 'bot') {
        const key = String(item.message_id);
        if (item.message_id != null && seenAnswers.has(key)) continue;
        if (item.message_id != null) seenAnswers.add(key);
        if (lastCustomer) lastCustomer.state = 'answered';
        ui.list.insertBefore(createBot(item, true), anchor);
      } else if (item.role === 'agent' && extension.agent) {
        if (lastCustomer) lastCustomer.state = 'answered';
        const el = extension.agent(item);
        if (el) ui.list.insertBefore(el, anchor);
      }
    }
    scrollToBottom(true);
  }

  function reconcile(history) {
    let lastCustomerId = null;
    for (const item of history) {
      if (!item || typeof item !== 'object') continue;
      if (item.role === 'customer') {
        lastCustomerId = item.id || null;
        if (item.id && !customers.has(item.id)) {
          // Sent from another tab/device while we were away.
          const m = createCustomer(String(item.text ?? ''), item.id, 'done', item);
          appendMessage(m.el, false);
        }
      } else if (item.role === 'bot') {
        onAnswer({ ...item, reply_to: lastCustomerId }, true);
      } else if (item.role === 'agent' && extension.agent) {
        const el = extension.agent(item);
        if (el) appendMessage(el, false);
      }
    }
  }

  function onAnswer(f, fromHistory) {
    const key = String(f.message_id);
    const m = f.reply_to != null ? customers.get(String(f.reply_to)) : null;
    if (m && m.state !== 'done') {
      m.state = 'answered';
      clearCustomerError(m);
      renderCustomerState(m);
    }
    if (f.message_id != null && seenAnswers.has(key)) { updateTyping(); return; }
    if (f.message_id != null) seenAnswers.add(key);
    appendMessage(createBot(f, Boolean(fromHistory)), false);
    if (!fromHistory && typeof opts.onAnswer === 'function') opts.onAnswer(); // the widget's unread badge
    updateTyping();
  }

  function onError(f) {
    const code = ERROR_CODES.includes(f.code) ? f.code : 'unknown';
    const m = f.reply_to != null ? customers.get(String(f.reply_to)) : null;
    if (m) {
      m.state = 'failed';
      showCustomerError(m, code, typeof f.detail === 'string' ? f.detail : '');
      renderCustomerState(m);
    } else {
      toast('err_' + code);
    }
    updateTyping();
  }

  // ------------------------------------------------------------- messages
  function appendMessage(el, forceScroll) {
    const near = isNearBottom();
    ui.list.appendChild(el);
    scrollToBottom(forceScroll, near);
  }

  function buildGreeting() {
    const wrap = h('div', 'msg greeting');
    wrap.appendChild(botAvatar());
    const body = h('div', 'msg-body');
    const who = bindText(h('span', 'sr-only'), 'botName');
    const bubble = h('div', 'msg-bubble');
    const text = bindText(h('div', 'msg-text'), 'greeting');
    bubble.append(who, text);
    const meta = h('div', 'msg-meta');
    meta.appendChild(timeEl(Date.now()));
    body.append(bubble, meta);
    wrap.appendChild(body);
    return wrap;
  }

  function botAvatar() {
    const a = h('div', 'msg-avatar', Array.from(cfg.shopName)[0] || '•');
    a.setAttribute('aria-hidden', 'true');
    return a;
  }

  function itemTime(item) {
    const raw = item && (item.at ?? item.created_at ?? item.timestamp ?? item.ts);
    if (raw == null) return null;
    const ms = typeof raw === 'number' ? (raw < 1e12 ? raw * 1000 : raw) : Date.parse(raw);
    return Number.isFinite(ms) ? ms : null;
  }

  function createCustomer(text, id, state, item) {
    const el = h('div', 'msg customer');
    el.dataset.id = id;
    const body = h('div', 'msg-body');
    const bubble = h('div', 'msg-bubble');
    bubble.append(bindText(h('span', 'sr-only'), 'you'), h('div', 'msg-text', text));
    const meta = h('div', 'msg-meta');
    const status = h('span', 'msg-status');
    meta.appendChild(status);
    const ms = item ? itemTime(item) : Date.now();
    if (ms != null) meta.appendChild(timeEl(ms));
    body.append(bubble, meta);
    el.appendChild(body);
    const m = { id, text, suggestion: undefined, state, el, status, errorEl: null };
    customers.set(id, m);
    renderCustomerState(m);
    return m;
  }

  function renderCustomerState(m) {
    m.el.dataset.state = m.state;
    const waiting = m.state === 'queued' && connState !== 'online';
    m.status.replaceChildren();
    if (waiting) {
      m.status.append(icon('clock'), bindText(h('span'), 'queued'));
    }
    m.status.hidden = !waiting;
  }
  function refreshStatuses() {
    for (const m of customers.values()) renderCustomerState(m);
  }

  function showCustomerError(m, code, detail) {
    clearCustomerError(m);
    const box = h('div', 'msg-error');
    box.setAttribute('role', 'alert');
    if (detail) box.title = detail;
    box.appendChild(icon('alert'));
    box.appendChild(bindText(h('span', 'msg-error-text'), 'err_' + code));
    if (RETRYABLE.has(code)) {
      const btn = bindText(h('button', 'msg-error-retry'), 'retry');
      btn.type = 'button';
      btn.addEventListener('click', () => retryMessage(m));
      box.appendChild(btn);
    }
    m.el.querySelector('.msg-body').appendChild(box);
    m.errorEl = box;
    scrollToBottom(false, isNearBottom());
  }
  function clearCustomerError(m) {
    if (m.errorEl) { m.errorEl.remove(); m.errorEl = null; }
  }
  function retryMessage(m) {
    clearCustomerError(m);
    // Fresh id: the failed one may be remembered by the server as refused.
    customers.delete(m.id);
    m.id = newId();
    m.el.dataset.id = m.id;
    m.state = 'queued';
    customers.set(m.id, m);
    renderCustomerState(m);
    flushOutbox(false);
    ui.input.focus();
  }

  function createBot(f, fromHistory) {
    const el = h('div', 'msg bot');
    const hasId = f.message_id !== undefined && f.message_id !== null;
    const key = String(f.message_id);
    if (hasId) el.dataset.messageId = key;
    if (f.outcome) el.dataset.outcome = String(f.outcome);
    if (typeof f.confidence === 'number') el.dataset.confidence = String(f.confidence);
    el.appendChild(botAvatar());
    const body = h('div', 'msg-body');

    const bubble = h('div', 'msg-bubble');
    const text = h('div', 'msg-text');
    if (typeof f.html === 'string' && f.html.trim()) {
      // The ONLY innerHTML in this file: the server sanitises `html` with nh3
      // (a, b, strong, i, em, br, p, ul, ol, li).
      text.innerHTML = f.html;
      // The server turns newlines into <br>; keep a (visually collapsed) newline
      // after each so textContent / copy-paste match the plain `text` field.
      text.querySelectorAll('br').forEach((br) => br.after(document.createTextNode('\n')));
      text.querySelectorAll('a[href]').forEach((a) => {
        a.target = '_blank';
        a.rel = 'noopener noreferrer nofollow';
      });
    } else {
      text.classList.add('plain');
      text.textContent = String(f.text ?? '');
    }
    bubble.append(bindText(h('span', 'sr-only'), 'botName'), text);
    body.appendChild(bubble);

    const feedback = f.feedback === true || f.feedback === false ? f.feedback : null;
    const record = { el, feedback, thumbs: null, chips: null, id: f.message_id };

    const buttons = (list) => (Array.isArray(list) ? list.filter((s) => s && s.question != null && s.id != null) : []);
    const unsure = f.outcome === 'unsure';
    // Not sure: the closest questions; after an answer: the pair's follow-up questions.
    const suggestions = unsure ? buttons(f.suggestions) : buttons(f.followups).concat(buttons(f.suggestions));
    if (suggestions.length || unsure) {
      record.chips = buildChips(record, suggestions, unsure, fromHistory);
      if (record.chips) body.appendChild(record.chips);
    }

    const meta = h('div', 'msg-meta');
    const ms = fromHistory ? itemTime(f) : Date.now();
    if (ms != null) meta.appendChild(timeEl(ms));
    if (hasId) meta.appendChild(buildThumbs(record));
    body.appendChild(meta);
    el.appendChild(body);
    if (hasId) bots.set(key, record);
    return el;
  }

  function buildChips(record, suggestions, unsure, fromHistory) {
    if (!suggestions.length && !unsure) return null;
    const wrap = h('div', 'chips-block');
    const labelId = 'chips-' + newId();
    const label = bindText(h('p', 'chips-label'), unsure ? 'didYouMean' : 'related');
    label.id = labelId;
    const group = h('div', 'chips');
    group.setAttribute('role', 'group');
    group.setAttribute('aria-labelledby', labelId);
    for (const s of suggestions) {
      const b = h('button', 'chip', String(s.question));
      b.type = 'button';
      b.dataset.suggestion = String(s.id);
      b.addEventListener('click', () => {
        if (group.dataset.used) return;
        const pairId = Number(s.id);
        const sent = sendMessage(String(s.question), Number.isFinite(pairId) ? pairId : s.id);
        if (sent) useChips(group, b);
      });
      group.appendChild(b);
    }
    if (unsure && record.id != null) {
      const none = bindText(h('button', 'chip-none'), 'noneOfThese');
      none.type = 'button';
      none.addEventListener('click', () => {
        if (group.dataset.used) return;
        useChips(group, none);
        setFeedback(record, false);
        const note = bindText(h('p', 'notice none-note'), 'noneNote');
        note.setAttribute('role', 'status');
        wrap.appendChild(note);
        scrollToBottom(false, isNearBottom());
        ui.input.focus();
      });
      group.appendChild(none);
      if (fromHistory && record.feedback === false) useChips(group, null);
    }
    wrap.append(label, group);
    return wrap;
  }

  function useChips(group, chosen) {
    group.dataset.used = 'true';
    group.querySelectorAll('button').forEach((b) => {
      b.disabled = true;
      if (b === chosen) b.classList.add('is-chosen');
    });
  }

  function buildThumbs(record) {
    const group = h('div', 'feedback');
    group.setAttribute('role', 'group');
    bindAttr(group, 'aria-label', 'feedbackQuestion');
    const up = h('button', 'thumb thumb-up');
    const down = h('button', 'thumb thumb-down');
    up.type = down.type = 'button';
    bindAttr(up, 'aria-label', 'helpful');
    bindAttr(up, 'title', 'helpful');
    bindAttr(down, 'aria-label', 'notHelpful');
    bindAttr(down, 'title', 'notHelpful');
    up.appendChild(icon('thumb-up'));
    down.appendChild(icon('thumb-down'));
    up.addEventListener('click', () => setFeedback(record, true));
    down.addEventListener('click', () => setFeedback(record, false));
    const thanks = bindText(h('span', 'feedback-thanks'), 'feedbackThanks');
    thanks.hidden = true;
    group.append(up, down, thanks);
    record.thumbs = { up, down, thanks };
    renderThumbs(record);
    return group;
  }

  function renderThumbs(record) {
    if (!record.thumbs) return;
    record.thumbs.up.setAttribute('aria-pressed', String(record.feedback === true));
    record.thumbs.down.setAttribute('aria-pressed', String(record.feedback === false));
  }

  function setFeedback(record, helpful) {
    if (record.id == null || record.feedback === helpful) return;
    record.feedback = helpful;
    renderThumbs(record);
    if (record.thumbs) {
      record.thumbs.thanks.hidden = false;
      announce(t('feedbackThanks'));
    }
    feedbackOutbox.set(String(record.id), { id: record.id, helpful });
    flushOutbox(false);
  }

  function addNote(key) {
    const n = bindText(h('p', 'system-note'), key);
    appendMessage(n, false);
  }

  // --------------------------------------------------------- typing state
  let typingEl = null;
  let typingTimer = 0;
  function updateTyping() {
    let waiting = false;
    let oldest = Infinity;
    if (connState === 'online') {
      const now = Date.now();
      for (const m of customers.values()) {
        if (m.state === 'pending' && now - (m.sentAt || 0) < TYPING_TIMEOUT) {
          waiting = true;
          oldest = Math.min(oldest, m.sentAt || now);
        }
      }
    }
    window.clearTimeout(typingTimer);
    if (waiting) typingTimer = window.setTimeout(updateTyping, oldest + TYPING_TIMEOUT - Date.now() + 50);
    if (waiting && !typingEl) {
      const near = isNearBottom();
      typingEl = h('div', 'typing');
      typingEl.setAttribute('role', 'status');
      bindAttr(typingEl, 'aria-label', 'typing');
      typingEl.appendChild(botAvatar());
      const bubble = h('div', 'typing-bubble');
      bubble.setAttribute('aria-hidden', 'true');
      for (let i = 0; i < 3; i += 1) bubble.appendChild(h('span', 'typing-dot'));
      typingEl.append(bubble, bindText(h('span', 'sr-only'), 'typing'));
      ui.scroller.appendChild(typingEl);
      scrollToBottom(false, near);
    } else if (!waiting && typingEl) {
      typingEl.remove();
      typingEl = null;
    }
  }

  // ----------------------------------------------------------------- toasts
  function toast(key) {
    const el = h('div', 'toast');
    el.setAttribute('role', 'alert');
    el.append(icon('alert'), bindText(h('span', 'toast-text'), key));
    const close = h('button', 'toast-close');
    close.type = 'button';
    bindAttr(close, 'aria-label', 'dismiss');
    close.appendChild(icon('close'));
    close.addEventListener('click', () => el.remove());
    el.appendChild(close);
    ui.toasts.appendChild(el);
    while (ui.toasts.children.length > 3) ui.toasts.firstElementChild.remove();
    window.setTimeout(() => el.remove(), 8000);
  }

  // --------------------------------------------------------------- composer
  function currentText() { return ui.input.value.trim(); }

  function updateComposer() {
    const text = currentText();
    const n = charCount(text);
    const threshold = Math.max(50, Math.floor(maxLength * 0.1));
    const over = n > maxLength;
    if (n >= maxLength - threshold) {
      ui.counter.hidden = false;
      ui.counter.classList.toggle('is-over', over);
      bindText(ui.counter, over ? 'charsOver' : 'charsLeft', { n: fmtNum(Math.abs(maxLength - n)) });
    } else {
      ui.counter.hidden = true;
    }
    ui.input.setAttribute('aria-invalid', String(over));
    ui.send.disabled = n === 0 || over;
    ui.input.setAttribute('data-i18n-placeholder', connState === 'offline' ? 'placeholderOffline' : 'placeholder');
    const ph = t(ui.input.getAttribute('data-i18n-placeholder'));
    if (ui.input.placeholder !== ph) {
      ui.input.placeholder = ph;
      autoGrow();
    }
  }

  function autoGrow() {
    const el = ui.input;
    // CSSOM writes are allowed under a strict CSP (only style attributes in markup are not).
    el.style.height = 'auto';
    el.style.height = Math.min(el.scrollHeight, 180) + 'px';
  }

  function sendMessage(text, suggestion) {
    const clean = text.trim();
    if (!clean) return false;
    if (charCount(clean) > maxLength) {
      toast('tooLongLocal');
      return false;
    }
    const m = createCustomer(clean, newId(), 'queued', null);
    if (suggestion !== undefined) m.suggestion = suggestion;
    appendMessage(m.el, true);
    flushOutbox(false);
    if (!ws && !retryTimer) retryNow();
    return true;
  }

  function submitFromInput() {
    const text = currentText();
    if (!text) return;
    if (charCount(text) > maxLength) {
      updateComposer();
      toast('tooLongLocal');
      return;
    }
    if (sendMessage(text)) {
      ui.input.value = '';
      autoGrow();
      updateComposer();
    }
    ui.input.focus();
  }

  // ---------------------------------------------------------------- actions
  function newConversation() {
    generation += 1; // ignore anything the old socket still says
    clearTimers();
    if (ws) { try { ws.close(1000); } catch (_) { /* ignore */ } }
    ws = null;
    welcomed = false;
    token = null;
    store.remove(TOKEN_KEY);
    customers.clear();
    seenAnswers.clear();
    bots.clear();
    feedbackOutbox.clear();
    if (typingEl) { typingEl.remove(); typingEl = null; }
    ui.list.replaceChildren();
    historyRendered = false;
    attempt = 0;
    announce(t('newConversationStarted'));
    connect();
    ui.input.focus();
  }

  function setLang(next) {
    if (next !== 'en' && next !== 'zh') return;
    lang = next;
    store.set(LANG_KEY, lang);
    applyI18n();
    extension.langListeners.forEach((fn) => fn(lang));
  }

  // ------------------------------------- extension point: the hand-off UI (static/chat/handoff.js)
  const extension = { frames: {}, agent: null, langListeners: [] };
  const api = {
    on(type, fn) { extension.frames[type] = fn; },
    renderAgent(fn) { extension.agent = fn; },
    onLang(fn) { extension.langListeners.push(fn); },
    lang: () => lang,
    send: sendFrame,
    append: appendMessage,
    announce,
    icon,
    timeEl,
    markAnswered(clientId) {
      const m = customers.get(String(clientId));
      if (m && m.state === 'pending') { m.state = 'answered'; renderCustomerState(m); }
      updateTyping();
    },
  };
  if (root.getRootNode() === document) window.LumenChat = api; // the full page only, never a shop's page
  // the widget hands its extensions in (a shop's page has no LumenChat): attached before the first frame
  (opts.extensions || []).forEach((attach) => attach(api, root));

  // ----------------------------------------------------------------- wiring
  ui.form.addEventListener('submit', (e) => { e.preventDefault(); submitFromInput(); });
  ui.input.addEventListener('keydown', (e) => {
    if (e.key !== 'Enter' || e.shiftKey || e.altKey || e.ctrlKey || e.metaKey) return;
    if (e.isComposing || e.keyCode === 229) return; // IME (e.g. pinyin) is confirming a candidate
    e.preventDefault();
    submitFromInput();
  });
  ui.input.addEventListener('input', () => { autoGrow(); updateComposer(); });
  ui.retry.addEventListener('click', retryNow);
  ui.newConv.addEventListener('click', newConversation);
  root.querySelectorAll('.lang-btn').forEach((b) => b.addEventListener('click', () => setLang(b.dataset.lang)));
  window.addEventListener('online', retryNow);
  document.addEventListener('visibilitychange', () => { if (document.visibilityState === 'visible') retryNow(); });

  applyI18n();
  autoGrow();
  connect();
  return { focus: () => ui.input.focus(), setLang };
});
