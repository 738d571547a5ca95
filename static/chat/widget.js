/*
 * Embeddable chat widget. A shop adds one tag to its pages:
 *
 *   <script src="https://support.example.com/static/chat/widget.js" data-site="SITE-KEY" async></script>
 *
 * and gets a launcher button that opens the chat as a panel (full screen on phones). Everything lives in
 * the open shadow root of one custom element, <lumen-chat>: no other global name, no style that leaks in
 * or out, nothing from a third party. The chat itself is chat.js, the same client as the full page at /,
 * loaded from this host with its hand-off (handoff.js), handed to this element (LumenChat.adopt, .extend).
 */
'use strict';

(() => {
  const script = document.currentScript;
  if (!script || !window.customElements || window.customElements.get('lumen-chat')) return;
  const base = new URL(script.src, window.location.href).origin;
  const site = script.dataset.site || '';
  const asset = (name) => new URL(name, script.src).href;
  const TOKEN_KEY = 'chat:conversation:/ws/chat/:' + site;
  const TEXT = {
    en: { open: 'Chat with us', close: 'Close chat', unavailable: 'Chat is unavailable on this site.', unread: 'new messages' },
    zh: { open: '在线客服', close: '关闭对话', unavailable: '本网站暂不提供在线客服。', unread: '条新消息' },
  };
  const lang = () => ((document.documentElement.lang || '').toLowerCase().startsWith('zh') ? 'zh' : 'en');
  const text = (key) => TEXT[lang()][key];

  let mountChat = null;
  const extensions = [];
  let loading = null; // one load of the chat's scripts, whatever opens first

  class LumenChat extends HTMLElement {
    /** chat.js calls this with its mount function once it has loaded. */
    static adopt(mount) {
      mountChat = mount;
    }

    /** handoff.js calls this with what it adds to a mounted chat (attach(api, root)). */
    static extend(attach) {
      extensions.push(attach);
    }

    connectedCallback() {
      if (!this.shadowRoot) build(this);
    }
  }
  window.customElements.define('lumen-chat', LumenChat);

  function el(tag, className, parent) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (parent) parent.appendChild(node);
    return node;
  }

  function stylesheet(root, href) {
    const link = el('link', '', root);
    link.rel = 'stylesheet';
    link.href = href;
    return new Promise((resolve) => { link.onload = resolve; link.onerror = resolve; });
  }

  /** The chat's scripts from the product's host, run in order (chat.js, then what extends it). */
  function scriptsLoad(urls) {
    if (!loading) {
      loading = Promise.all(urls.map((url) => new Promise((resolve, reject) => {
        const tag = document.createElement('script');
        tag.src = new URL(url, base).href;
        tag.async = false;
        tag.onload = resolve;
        tag.onerror = reject;
        document.head.appendChild(tag);
      })));
      loading.catch(() => { loading = null; }); // a failed load is tried again on the next open
    }
    return loading;
  }

  function chatIcon() {
    const ns = 'http://www.w3.org/2000/svg';
    const svg = document.createElementNS(ns, 'svg');
    svg.setAttribute('viewBox', '0 0 24 24');
    svg.setAttribute('aria-hidden', 'true');
    svg.setAttribute('class', 'lw-icon');
    const path = document.createElementNS(ns, 'path');
    path.setAttribute('d', 'M21 12a8 8 0 0 1-11.6 7.1L4 20.5l1.4-4.8A8 8 0 1 1 21 12Z');
    svg.appendChild(path);
    return svg;
  }

  function build(host) {
    const shadow = host.attachShadow({ mode: 'open' });
    const ready = stylesheet(shadow, asset('widget.css'));
    const wrap = el('div', 'lw', shadow);
    wrap.dataset.state = 'loading';
    const panel = el('div', 'lw-panel', wrap);
    panel.hidden = true;
    panel.setAttribute('role', 'dialog');
    const launcher = el('button', 'lw-launcher', wrap);
    launcher.type = 'button';
    launcher.appendChild(chatIcon());
    const badge = el('span', 'lw-badge', launcher);
    badge.hidden = true;
    const state = { unread: 0, chat: null, config: null };

    const label = () => {
      const open = !panel.hidden;
      launcher.setAttribute('aria-expanded', String(open));
      launcher.setAttribute('aria-label', wrap.dataset.state === 'unavailable' ? text('unavailable') : text(open ? 'close' : 'open'));
      panel.setAttribute('aria-label', state.config ? state.config.name : text('open'));
      badge.textContent = state.unread ? String(state.unread) : '';
      badge.title = state.unread ? `${state.unread} ${text('unread')}` : '';
      badge.hidden = !state.unread;
    };
    const onAnswer = () => {
      if (panel.hidden) state.unread += 1;
      label();
    };
    const startChat = () => {
      if (state.chat || !state.config) return;
      state.chat = 'starting';
      scriptsLoad(state.config.scripts).then(() => {
        state.chat = mountChat(panel.querySelector('.chat'), {
          base, site, embedded: true, lang: lang(), greeting: state.config.greeting, onAnswer, extensions,
        });
        if (!panel.hidden) state.chat.focus();
      }, () => { state.chat = null; });
    };
    const toggle = (open) => {
      panel.hidden = !open;
      wrap.classList.toggle('is-open', open);
      if (open) {
        state.unread = 0;
        startChat();
        if (state.chat && state.chat.focus) state.chat.focus();
      } else {
        launcher.focus();
      }
      label();
    };
    launcher.addEventListener('click', () => toggle(panel.hidden));
    panel.addEventListener('click', (event) => {
      if (event.target.closest && event.target.closest('[data-action="close-panel"]')) toggle(false);
    });
    panel.addEventListener('keydown', (event) => { if (event.key === 'Escape') toggle(false); });

    const unavailable = () => {
      wrap.dataset.state = 'unavailable';
      const note = el('p', 'lw-unavailable', panel);
      note.setAttribute('role', 'status');
      note.textContent = text('unavailable');
      label();
    };
    label();
    fetch(`${base}/widget/${encodeURIComponent(site)}/config`, { credentials: 'omit', mode: 'cors' })
      .then((response) => (response.ok ? response.json() : Promise.reject(new Error(String(response.status)))))
      .then((config) => Promise.all([ready, ...config.styles.map((href) => stylesheet(panel, new URL(href, base).href))]).then(() => config))
      .then((config) => {
        state.config = config;
        if (/^#[0-9a-f]{6}$/i.test(config.colour || '')) wrap.style.setProperty('--accent', config.colour);
        const markup = document.createRange().createContextualFragment(config.markup);
        markup.querySelectorAll('script').forEach((node) => node.remove());
        panel.appendChild(markup);
        wrap.dataset.state = 'ready';
        host.dataset.readyAt = String(Math.round(performance.now()));
        label();
        let resumed = null;
        try { resumed = window.localStorage.getItem(TOKEN_KEY); } catch (_) { /* storage blocked */ }
        if (resumed) startChat(); // a returning customer: answers that came while away show on the badge
      })
      .catch(() => ready.then(unavailable));
  }

  const mountPoint = () => document.body.appendChild(document.createElement('lumen-chat'));
  if (document.body) mountPoint();
  else document.addEventListener('DOMContentLoaded', mountPoint);
})();
