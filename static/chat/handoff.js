/*
 * Customer chat: people in the loop, in both shells. The full page loads it after chat.js (both
 * `defer`) and attaches it through window.LumenChat; the embedded widget (widget.js) loads it after
 * chat.js and is handed attachHandoff, so the shop's page gets no global name from this file. Its
 * elements are found through the chat's root (a shadow root's, in the widget), never through `document`.
 * Everything is built with textContent (no innerHTML).
 *
 *   client -> server  {type:"handoff_request"}  {type:"typing", typing}
 *                     {type:"leave_message", id, contact, text}  {type:"rating", id, score, comment}
 *   server -> client  {type:"handoff", status:"waiting"|"joined"|"ended"|"unavailable"|"bot", position, agent, ...}
 *                     {type:"agent_message", id, text, agent, at}  {type:"typing", typing, agent}
 *                     {type:"received", reply_to}  {type:"ticket", ...}  {type:"rating", ...}
 */
'use strict';

((attach) => {
  const Widget = window.customElements && window.customElements.get('lumen-chat');
  if (Widget && typeof Widget.extend === 'function') Widget.extend(attach);
  const page = document.getElementById('chat');
  if (window.LumenChat && page) attach(window.LumenChat, page);
})(function attachHandoff(chat, root) {

  const TEXT = {
    en: {
      talk: 'Talk to a person',
      waiting: 'Waiting for a person',
      position: 'You are number {n} in the queue.',
      joined: '{agent} from our team has joined the conversation.',
      person: 'person',
      ended: '{agent} has left the conversation. The assistant answers again.',
      endedClosed: '{agent} has closed this conversation. Write again to start a new one with the assistant.',
      agentLeft: 'The person helping you had to leave; you are back in the queue.',
      busy: 'Nobody from our team is available right now.',
      closed: 'Our team is away right now; people are back {when}.',
      closedNoTime: 'Our team is away right now.',
      offer: 'Leave us a message and we will get back to you.',
      waitLong: 'This is taking longer than usual. You can keep waiting, or leave us a message.',
      contact: 'Your e-mail or phone',
      message: 'Your message',
      sendMessage: 'Send message',
      contactBad: 'Please give a valid e-mail address or phone number.',
      textEmpty: 'Please write your message.',
      textLong: 'Please keep your message under {max} characters.',
      left: 'Thanks, your message has reached our team. We will contact you soon.',
      rateAsk: 'How did {agent} do? Rate this conversation.',
      rateStar: '{n} of 5',
      comment: 'Comment (optional)',
      rateSend: 'Send rating',
      rateThanks: 'Thank you for your rating!',
      typing: '{agent} is typing…',
    },
    zh: {
      talk: '转人工客服',
      waiting: '正在等待人工客服',
      position: '您前面还有 {m} 位，您排在第 {n} 位。',
      joined: '客服 {agent} 已加入对话。',
      person: '人工',
      ended: '{agent} 已离开对话，智能助手将继续为您服务。',
      endedClosed: '{agent} 已结束本次对话。如需帮助，请再次发送消息，将开始新的对话。',
      agentLeft: '为您服务的客服需要离开，您已重新排队。',
      busy: '目前没有客服人员在线。',
      closed: '我们的客服人员现在不在线，服务时间将于 {when} 恢复。',
      closedNoTime: '我们的客服人员现在不在线。',
      offer: '请留言，我们会尽快联系您。',
      waitLong: '等待时间比平时长。您可以继续等待，也可以留言。',
      contact: '您的邮箱或电话',
      message: '留言内容',
      sendMessage: '提交留言',
      contactBad: '请填写有效的邮箱地址或电话号码。',
      textEmpty: '请填写留言内容。',
      textLong: '留言请控制在 {max} 个字以内。',
      left: '谢谢，您的留言已送达，我们会尽快联系您。',
      rateAsk: '请为 {agent} 的服务打分。',
      rateStar: '{n} 分（满分 5 分）',
      comment: '评价（可选）',
      rateSend: '提交评分',
      rateThanks: '感谢您的评分！',
      typing: '{agent} 正在输入…',
    },
  };
  const maxLength = parseInt(root.dataset.maxLength, 10) || 2000;
  const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]{2,}$/;
  const PHONE = /^\+?[0-9][0-9 ().-]{4,22}$/;

  function t(key, args) {
    const table = TEXT[chat.lang()] || TEXT.en;
    let s = table[key] ?? TEXT.en[key] ?? key;
    for (const [k, v] of Object.entries(args || {})) s = s.split('{' + k + '}').join(String(v));
    return s;
  }
  function el(tag, className, text) {
    const e = document.createElement(tag);
    if (className) e.className = className;
    if (text != null) e.textContent = text;
    return e;
  }
  // Elements whose text follows the language switch: [element, key, args]
  const bound = [];
  function tx(e, key, args) { e.textContent = t(key, args); bound.push([e, key, args]); return e; }
  chat.onLang(() => { for (const [e, key, args] of bound) e.textContent = t(key, args); renderStatus(); });

  const button = root.querySelector('#talk-to-person');
  const bar = root.querySelector('#handoff-status');
  let status = { status: 'bot' };
  let agent = '';
  let formShown = null;
  const seenAgentMessages = new Set();

  // ------------------------------------------------------------- status bar
  function renderStatus() {
    bar.replaceChildren();
    const s = status.status;
    bar.dataset.status = s;
    bar.hidden = s === 'bot';
    if (button) button.disabled = s === 'waiting' || s === 'joined';
    if (s === 'waiting') {
      bar.append(el('strong', null, t('waiting')));
      if (Number.isInteger(status.position)) {
        bar.append(' ', el('span', 'handoff-position', t('position', { n: status.position, m: status.position - 1 })));
      }
    } else if (s === 'joined') {
      bar.append(el('span', 'person-badge', t('person')), ' ', el('span', null, t('joined', { agent })));
    } else if (s === 'unavailable') {
      bar.append(el('span', null, unavailableText()));
    } else if (s === 'ended') {
      bar.append(el('span', null, t(status.to === 'closed' ? 'endedClosed' : 'ended', { agent })));
    }
  }

  function unavailableText() {
    if (status.reason !== 'closed') return t('busy');
    const when = status.back_at ? new Date(status.back_at) : null;
    if (!when || Number.isNaN(when.getTime())) return t('closedNoTime');
    const locale = chat.lang() === 'zh' ? 'zh-CN' : 'en';
    const text = when.toLocaleString(locale, { weekday: 'short', hour: '2-digit', minute: '2-digit' });
    return t('closed', { when: text });
  }

  chat.on('handoff', (f) => {
    const previous = status.status;
    status = f;
    if (typeof f.agent === 'string' && f.agent) agent = f.agent;
    renderStatus();
    if (f.status === 'joined' && previous !== 'joined') note('joined', { agent });
    if (f.status === 'waiting' && f.agent_left) note('agentLeft');
    if (f.status === 'unavailable' || (f.status === 'waiting' && f.leave_message)) offerMessage(f.status === 'waiting');
    if (f.status === 'ended') { note(f.to === 'closed' ? 'endedClosed' : 'ended', { agent }); if (f.rate) offerRating(); }
    chat.announce(bar.textContent);
  });

  function note(key, args) {
    const n = tx(el('p', 'system-note handoff-note'), key, args);
    chat.append(n, false);
  }

  // ----------------------------------------------------------- agent messages
  function agentElement(item) {
    const key = String(item.id);
    if (item.id == null || seenAgentMessages.has(key)) return null;
    seenAgentMessages.add(key);
    if (typeof item.agent === 'string' && item.agent) agent = item.agent;
    const wrap = el('div', 'msg agent');
    wrap.dataset.messageId = key;
    const avatar = el('div', 'agent-avatar', (item.agent || '?').slice(0, 1).toUpperCase());
    avatar.setAttribute('aria-hidden', 'true');
    const body = el('div', 'msg-body');
    const who = el('div', 'agent-name');
    who.append(el('span', null, item.agent || ''), ' ', tx(el('span', 'person-badge'), 'person'));
    const bubble = el('div', 'msg-bubble');
    bubble.append(el('div', 'msg-text plain', String(item.text ?? '')));
    const meta = el('div', 'msg-meta');
    const ms = Date.parse(item.at);
    if (Number.isFinite(ms)) meta.append(chat.timeEl(ms));
    body.append(who, bubble, meta);
    wrap.append(avatar, body);
    return wrap;
  }
  chat.renderAgent(agentElement);
  chat.on('agent_message', (f) => {
    showTyping(false);
    const e = agentElement(f);
    if (e) chat.append(e, false);
  });
  chat.on('received', (f) => chat.markAnswered(f.reply_to));

  // ------------------------------------------------------------------ typing
  let typingEl = null;
  let typingTimer = 0;
  function showTyping(on, who) {
    window.clearTimeout(typingTimer);
    if (!on) { if (typingEl) typingEl.remove(); typingEl = null; return; }
    if (!typingEl) {
      typingEl = el('p', 'agent-typing');
      typingEl.setAttribute('role', 'status');
      chat.append(typingEl, false);
    }
    typingEl.textContent = t('typing', { agent: who || agent });
    typingTimer = window.setTimeout(() => showTyping(false), 8000); // a lost "stopped" frame
  }
  chat.on('typing', (f) => showTyping(f.typing === true, f.agent));

  const input = root.querySelector('#chat-input');
  let typingSentAt = 0;
  let idleTimer = 0;
  function sendTyping(on) {
    if (status.status !== 'joined') return;
    chat.send({ type: 'typing', typing: on });
  }
  input.addEventListener('input', () => {
    if (status.status !== 'joined') return;
    const now = Date.now();
    if (now - typingSentAt > 3000) { typingSentAt = now; sendTyping(true); }
    window.clearTimeout(idleTimer);
    idleTimer = window.setTimeout(() => { typingSentAt = 0; sendTyping(false); }, 4000);
  });
  root.querySelector('#chat-form').addEventListener('submit', () => {
    window.clearTimeout(idleTimer);
    if (typingSentAt) { typingSentAt = 0; sendTyping(false); }
  });

  // --------------------------------------------------------- leave a message
  let formSeq = 0;
  function offerMessage(fromQueue) {
    if (formShown && formShown.isConnected) return;
    const form = el('form', 'leave-message');
    form.noValidate = true;
    formSeq += 1;
    const ids = { contact: 'lm-contact-' + formSeq, text: 'lm-text-' + formSeq };
    const intro = tx(el('p', 'leave-intro'), fromQueue ? 'waitLong' : 'offer');
    const contactLabel = tx(el('label'), 'contact');
    contactLabel.htmlFor = ids.contact;
    const contact = el('input', 'lm-contact');
    Object.assign(contact, { id: ids.contact, type: 'text', autocomplete: 'email', maxLength: 254 });
    const contactError = el('p', 'field-error');
    contactError.setAttribute('role', 'alert');
    const textLabel = tx(el('label'), 'message');
    textLabel.htmlFor = ids.text;
    const text = el('textarea', 'lm-text');
    Object.assign(text, { id: ids.text, rows: 3 });
    const textError = el('p', 'field-error');
    textError.setAttribute('role', 'alert');
    const submit = tx(el('button', 'lm-submit'), 'sendMessage');
    submit.type = 'submit';
    form.append(intro, contactLabel, contact, contactError, textLabel, text, textError, submit);
    const errors = { contact: contactError, text: textError };
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      contactError.textContent = '';
      textError.textContent = '';
      const c = contact.value.trim();
      const m = text.value.trim();
      let ok = true;
      if (!EMAIL.test(c) && !PHONE.test(c)) { contactError.textContent = t('contactBad'); ok = false; }
      if (!m) { textError.textContent = t('textEmpty'); ok = false; }
      else if (Array.from(m).length > maxLength) { textError.textContent = t('textLong', { max: maxLength }); ok = false; }
      if (!ok) return;
      const id = 'lm-' + Date.now();
      pending.set(id, { form, errors, submit });
      submit.disabled = true;
      if (!chat.send({ type: 'leave_message', id, contact: c, text: m })) submit.disabled = false;
    });
    formShown = form;
    chat.append(form, true);
  }
  const pending = new Map(); // reply id -> {form, errors, submit}

  chat.on('ticket', (f) => {
    const p = pending.get(f.reply_to);
    if (!p) return;
    pending.delete(f.reply_to);
    p.form.replaceWith(tx(el('p', 'system-note leave-done'), 'left'));
  });

  // ----------------------------------------------------------------- rating
  function offerRating() {
    const box = el('form', 'rating');
    box.noValidate = true;
    box.append(tx(el('p', 'rating-ask'), 'rateAsk', { agent }));
    const stars = el('div', 'rating-stars');
    stars.setAttribute('role', 'radiogroup');
    let score = 0;
    for (let n = 1; n <= 5; n += 1) {
      const star = el('button', 'star', '★');
      star.type = 'button';
      star.dataset.score = String(n);
      star.setAttribute('aria-label', t('rateStar', { n }));
      star.setAttribute('aria-pressed', 'false');
      star.addEventListener('click', () => {
        score = n;
        stars.querySelectorAll('.star').forEach((s) => s.setAttribute('aria-pressed', String(Number(s.dataset.score) <= n)));
        send.disabled = false;
      });
      stars.append(star);
    }
    const comment = el('textarea', 'rating-comment');
    comment.rows = 2;
    comment.maxLength = 1000;
    comment.setAttribute('aria-label', t('comment'));
    comment.placeholder = t('comment');
    const send = tx(el('button', 'rating-send'), 'rateSend');
    send.type = 'submit';
    send.disabled = true;
    box.append(stars, comment, send);
    box.addEventListener('submit', (e) => {
      e.preventDefault();
      if (!score) return;
      const id = 'rate-' + Date.now();
      ratings.set(id, box);
      chat.send({ type: 'rating', id, score, comment: comment.value.trim() });
    });
    chat.append(box, true);
  }
  const ratings = new Map();
  chat.on('rating', (f) => {
    const box = ratings.get(f.reply_to);
    if (box) box.replaceWith(tx(el('p', 'system-note rating-done'), 'rateThanks'));
  });

  // Errors for our own frames (form fields) are shown where they belong; others go to chat.js.
  chat.on('error', (f) => {
    const form = pending.get(f.reply_to);
    if (form) {
      form.submit.disabled = false;
      const target = form.errors[f.field] || form.errors.text;
      target.textContent = f.detail || t('contactBad');
      return true;
    }
    return ratings.has(f.reply_to);
  });

  // ----------------------------------------------------------------- wiring
  if (button) {
    const label = button.querySelector('.btn-person-label');
    if (label) tx(label, 'talk');
    button.addEventListener('click', () => { chat.send({ type: 'handoff_request' }); });
  }
  root.querySelector('#new-conversation').addEventListener('click', () => {
    status = { status: 'bot' };
    agent = '';
    seenAgentMessages.clear();
    showTyping(false);
    renderStatus();
  });
  renderStatus();
});
