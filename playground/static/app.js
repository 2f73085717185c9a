// The Gridhorn playground page (SPEC §17): people side by side as phones, live from the demo's
// event stream. No build step: Preact + HTM from vendor/. The page inserts as HTML only a
// message's `html`, which the server made with render_html; every other text is a text node.
import {
  html, render, useState, useEffect, useLayoutEffect, useRef,
} from './vendor/htm-preact-standalone.module.js';

const EVENT_TYPES = ['message', 'chat', 'answer', 'call', 'tour', 'clock', 'reset'];
const SPEEDS = [0.5, 1, 2, 4];
const LANG_KEYS = {
  'zh-Hans': 'playground.lang_zh_hans',
  'zh-Hant': 'playground.lang_zh_hant',
  en: 'playground.lang_en',
};
const LOG_LIMIT = 500;
const TOAST_MS = 2600;

// ---------------------------------------------------------------- state
const S = {
  ready: false,
  lang: null,
  langs: [],
  strings: {},
  bot: { id: 0, name: 'Gridhorn', username: '' },
  people: [],
  chats: new Map(),        // chat id → CHAT
  messages: new Map(),     // "chat:message" → MESSAGE
  baseline: new Map(),     // chat id → the highest message id when the world was loaded
  lastEventId: 0,
  tour: { playing: false, step: 0, steps: 0, speed: 1, caption: null },
  clock: '',
  log: new Map(),          // call id → call
  columns: [],
  inspector: { open: false, tab: 'message', target: null, calls: null, error: null },
  connected: true,
  replay: null,            // {running} | result of POST /api/replay | {error}
  notice: null,            // a page-wide error line
  es: null,
  loading: null,
  again: null,
};
let nextColumnId = 1;
let repaint = () => {};
const changed = () => repaint();

function t(key, values) {
  let text = S.strings[key];
  if (typeof text !== 'string') text = key;
  if (values) {
    text = text.replace(/\{(\w+)\}/g, (all, name) => (name in values ? String(values[name]) : all));
  }
  return text;
}

const mkey = (chatId, messageId) => `${chatId}:${messageId}`;
const person = (id) => S.people.find((p) => p.id === id);

function newColumn(personId) {
  return {
    uid: nextColumnId++, person: personId, chat: null, topic: undefined, replyTo: null,
    draft: '', seen: new Map(), toasts: [], alert: null, pending: null,
  };
}

// ---------------------------------------------------------------- server
async function api(method, url, body, raw) {
  const init = { method, headers: {} };
  if (body !== undefined) {
    init.body = raw ? body : JSON.stringify(body);
    init.headers['Content-Type'] = raw ? 'application/x-ndjson' : 'application/json';
  }
  const response = await fetch(url, init);
  let data = null;
  try { data = await response.json(); } catch (_) { data = null; }
  if (!response.ok) {
    const reason = data && (data.error || data.message);
    throw new Error(reason ? String(reason) : `HTTP ${response.status}`);
  }
  return data;
}

function notify(error) {
  S.notice = t('playground.error', { error: error && error.message ? error.message : error });
  changed();
  setTimeout(() => { S.notice = null; changed(); }, 6000);
}

function loadWorld(lang) {
  if (S.loading) {            // a reset or a language switch while loading: load once more after
    S.again = { lang: lang ?? S.lang };
    return S.loading;
  }
  S.loading = (async () => {
    if (S.es) { S.es.close(); S.es = null; }
    const query = lang ? `?lang=${encodeURIComponent(lang)}` : '';
    const world = await api('GET', `/api/world${query}`);
    S.log = new Map();
    S.lang = world.lang;
    S.langs = world.langs || [];
    S.strings = world.strings || {};
    S.bot = world.bot || S.bot;
    S.people = world.people || [];
    S.chats = new Map((world.chats || []).map((c) => [c.id, c]));
    S.messages = new Map();
    S.baseline = new Map();
    for (const m of world.messages || []) {
      S.messages.set(mkey(m.chat_id, m.message_id), m);
      S.baseline.set(m.chat_id, Math.max(S.baseline.get(m.chat_id) || 0, m.message_id));
    }
    S.lastEventId = world.last_event_id || 0;
    S.tour = { caption: null, ...(world.tour || {}) };
    S.clock = world.clock || '';
    const ids = new Set(S.people.map((p) => p.id));
    if (!S.columns.length) {
      S.columns = (world.columns || []).filter((id) => ids.has(id)).map(newColumn);
    }
    for (const col of S.columns) {
      if (!ids.has(col.person)) col.person = S.people[0] && S.people[0].id;
      if (col.chat !== null && !S.chats.has(col.chat)) { col.chat = null; col.topic = undefined; }
      col.seen = new Map();
      col.replyTo = null;
      col.alert = null;
    }
    document.documentElement.lang = S.lang || 'en';
    document.title = t('playground.title');
    S.ready = true;
    connect();
    changed();
    try {
      const log = await api('GET', '/api/log');
      for (const call of (log && log.calls) || []) S.log.set(call.id, call);
      trimLog();
      changed();
    } catch (_) { /* the log fills from the stream */ }
  })();
  const loading = S.loading;
  loading.catch(notify).finally(() => {
    S.loading = null;
    const again = S.again;
    S.again = null;
    if (again) loadWorld(again.lang);
  });
  return loading;
}

function connect() {
  const es = new EventSource(`/api/events?after=${S.lastEventId}`);
  S.es = es;
  for (const type of EVENT_TYPES) {
    es.addEventListener(type, (event) => {
      if (es !== S.es) return;
      const id = Number(event.lastEventId);
      if (Number.isFinite(id) && event.lastEventId !== '') {
        if (id <= S.lastEventId) return;      // seen already (a resumed stream replays)
        S.lastEventId = id;
      }
      let data;
      try { data = JSON.parse(event.data); } catch (_) { return; }
      apply(type, data);
      changed();
    });
  }
  es.onopen = () => { if (es === S.es && !S.connected) { S.connected = true; changed(); } };
  es.onerror = () => {
    if (es !== S.es) return;
    S.connected = false;
    changed();
    if (es.readyState === EventSource.CLOSED) {   // the browser gave up: start again
      setTimeout(() => { if (es === S.es) connect(); }, 2000);
    }
  };
}

function apply(type, data) {
  switch (type) {
    case 'message':
      S.messages.set(mkey(data.chat_id, data.message_id), data);
      break;
    case 'chat':
      S.chats.set(data.id, data);
      break;
    case 'answer':
      for (const col of S.columns) {
        if (col.person !== data.user_id) continue;
        if (col.pending && col.pending.chat === data.chat_id
            && col.pending.message === data.message_id) col.pending = null;
        if (!data.text) continue;
        if (data.alert) col.alert = data.text;
        else toast(col, data.text);
      }
      break;
    case 'call':
      S.log.set(data.id, data);
      trimLog();
      break;
    case 'tour':
      S.tour = { ...S.tour, ...data };
      break;
    case 'clock':
      S.clock = data.clock;
      break;
    case 'reset':
      loadWorld(S.lang);
      break;
    default:
      break;
  }
}

function trimLog() {
  while (S.log.size > LOG_LIMIT) S.log.delete(S.log.keys().next().value);
}

function toast(col, text) {
  const item = { id: Math.random(), text };
  col.toasts = [...col.toasts, item];
  setTimeout(() => { col.toasts = col.toasts.filter((x) => x !== item); changed(); }, TOAST_MS);
}

// ---------------------------------------------------------------- derived views
function chatsOf(personId) {
  const mine = [...S.chats.values()].filter((c) => (c.members || []).includes(personId));
  const rank = (c) => (c.type === 'private' ? 0 : c.forum ? 2 : 1);
  return mine.sort((a, b) => rank(a) - rank(b));
}

function messagesOf(chatId, topic) {
  const chat = S.chats.get(chatId);
  const out = [];
  for (const m of S.messages.values()) {
    if (m.chat_id !== chatId || m.deleted) continue;
    if (chat && chat.forum && topic !== undefined && (m.thread_id ?? null) !== topic) continue;
    out.push(m);
  }
  return out.sort((a, b) => a.message_id - b.message_id);
}

function seenKey(chatId, topic) { return `${chatId}:${topic ?? 'general'}`; }

function unread(col, chatId, topic) {
  const chat = S.chats.get(chatId);
  const base = S.baseline.get(chatId) || 0;
  let n = 0;
  for (const m of messagesOf(chatId, topic)) {
    if (m.kind === 'service' || (m.from && m.from.id === col.person)) continue;
    const thread = chat && chat.forum ? (m.thread_id ?? null) : undefined;
    const seen = col.seen.get(seenKey(chatId, thread));
    if (m.message_id > (seen ?? base)) n += 1;
  }
  return n;
}

function markSeen(col, chatId, topic, list) {
  if (!list.length) return;
  const chat = S.chats.get(chatId);
  const key = seenKey(chatId, chat && chat.forum ? topic : undefined);
  const top = list[list.length - 1].message_id;
  if ((col.seen.get(key) ?? -1) < top) col.seen.set(key, top);
}

function preview(m) {
  if (!m) return '';
  if (m.kind === 'service') return m.service || m.text || '';
  const chat = S.chats.get(m.chat_id);
  const who = chat && chat.type === 'private' ? '' : senderName(m);
  let body = m.text || '';
  if (!body && m.kind === 'photo') body = t('playground.photo');
  if (!body && m.kind === 'document') body = (m.document && m.document.name) || t('playground.document');
  return who ? `${who}: ${body}` : body;
}

const PALETTE = ['#e17076', '#7bc862', '#65aadd', '#a695e7', '#ee7aae', '#6ec9cb', '#faa774'];
const tint = (id) => PALETTE[Math.abs(Number(id) || 0) % PALETTE.length];
const initial = (name) => (name ? Array.from(name.trim())[0] || '?' : '?').toUpperCase();

// a link or image address from the server: its own paths and http(s) only
const safeUrl = (url) => (typeof url === 'string' && /^(\/(?!\/)|https?:\/\/)/i.test(url) ? url : null);

function chatTitle(chat) {
  return chat.type === 'private' ? (chat.title || S.bot.name) : chat.title;
}

function senderName(m) {
  if (!m.from) return '';
  return m.from.bot ? S.bot.name : m.from.name;
}

// ---------------------------------------------------------------- actions
function columnContext(col) {
  const body = { user_id: col.person, chat_id: col.chat };
  const chat = S.chats.get(col.chat);
  if (chat && chat.forum && col.topic !== undefined && col.topic !== null) {
    body.thread_id = col.topic;
  }
  return body;
}

async function send(col, replyTo) {
  const text = col.draft.trim();
  if (!text || col.chat === null) return;
  const body = { ...columnContext(col), text };
  if (replyTo) body.reply_to = replyTo;
  col.draft = '';
  col.replyTo = null;
  changed();
  try {
    await api('POST', '/api/send', body);
  } catch (error) {
    col.draft = text;
    toast(col, t('playground.error', { error: error.message }));
    changed();
  }
}

async function sendPhoto(col, replyTo) {
  if (col.chat === null) return;
  const body = columnContext(col);
  const caption = col.draft.trim();
  if (caption) body.caption = caption;
  if (replyTo) body.reply_to = replyTo;
  col.draft = '';
  col.replyTo = null;
  changed();
  try {
    await api('POST', '/api/photo', body);
  } catch (error) {
    toast(col, t('playground.error', { error: error.message }));
    changed();
  }
}

async function press(col, m, button) {
  if (button.url) {
    if (/^https?:\/\//i.test(button.url)) window.open(button.url, '_blank', 'noopener,noreferrer');
    return;
  }
  if (button.data === null || button.data === undefined) return;
  col.pending = { chat: m.chat_id, message: m.message_id, data: button.data };
  changed();
  setTimeout(() => {
    if (col.pending && col.pending.data === button.data) { col.pending = null; changed(); }
  }, 5000);
  try {
    await api('POST', '/api/press', {
      user_id: col.person, chat_id: m.chat_id, message_id: m.message_id, data: button.data,
    });
  } catch (error) {
    col.pending = null;
    toast(col, t('playground.error', { error: error.message }));
    changed();
  }
}

async function inspect(m) {
  const target = { chat: m.chat_id, message: m.message_id };
  S.inspector = { ...S.inspector, open: true, tab: 'message', target, calls: null, error: null };
  changed();
  try {
    const data = await api('GET',
      `/api/inspect?chat_id=${encodeURIComponent(m.chat_id)}&message_id=${encodeURIComponent(m.message_id)}`);
    if (S.inspector.target !== target) return;
    S.inspector.calls = (data && data.calls) || [];
  } catch (error) {
    if (S.inspector.target !== target) return;
    S.inspector.error = error.message;
  }
  changed();
}

async function tourAction(action, speed) {
  const body = { action };
  if (speed !== undefined) body.speed = speed;
  try {
    const state = await api('POST', `/api/tour?lang=${encodeURIComponent(S.lang || '')}`, body);
    if (state) S.tour = { ...S.tour, ...state };
    changed();
  } catch (error) { notify(error); }
}

async function resetWorld() {
  try {
    await api('POST', '/api/reset', {});
    await loadWorld(S.lang);
  } catch (error) { notify(error); }
}

async function replayFile(file) {
  S.replay = { running: true };
  changed();
  try {
    const text = await file.text();
    S.replay = await api('POST', '/api/replay', text, true);
  } catch (error) {
    S.replay = { error: error.message };
  }
  changed();
}

function switchLanguage(lang) {
  const url = new URL(window.location.href);
  url.searchParams.set('lang', lang);
  window.history.replaceState(null, '', url);
  loadWorld(lang);
}

const PHOTO_MISSING = '/static/photo-missing.svg';
function photoMissing(event) {
  const img = event.target;
  if (!img.src.endsWith(PHOTO_MISSING)) img.src = PHOTO_MISSING;   // the bytes are not an image
}

// links and spoilers inside a message's server-rendered html
function onMessageClick(event) {
  const spoiler = event.target.closest('.tg-spoiler, tg-spoiler, span.spoiler');
  if (spoiler && !spoiler.classList.contains('revealed')) {
    spoiler.classList.add('revealed');
    event.preventDefault();
    return;
  }
  const link = event.target.closest('a[href]');
  if (!link) return;
  event.preventDefault();
  const href = link.getAttribute('href') || '';
  if (/^https?:\/\//i.test(href)) window.open(href, '_blank', 'noopener,noreferrer');
}

// ---------------------------------------------------------------- components
function Avatar({ id, name, small }) {
  const ref = useRef(null);
  useLayoutEffect(() => { if (ref.current) ref.current.style.background = tint(id); }, [id]);
  return html`<span class=${small ? 'avatar small' : 'avatar'} ref=${ref} aria-hidden="true">
    ${initial(name)}</span>`;
}

function TopBar() {
  const tour = S.tour;
  const fileRef = useRef(null);
  return html`<header class="topbar">
    <div class="brand"><span class="logo" aria-hidden="true">📯</span>
      <h1>${t('playground.title')}</h1></div>
    <div class="controls tour-controls">
      <button class="primary tour-play" onClick=${() => tourAction(tour.playing ? 'pause' : 'play', tour.speed)}>
        ${tour.playing ? `⏸ ${t('playground.tour_pause')}` : `▶ ${t('playground.tour_play')}`}</button>
      <button class="tour-step" onClick=${() => tourAction('step')}>⏭ ${t('playground.tour_step')}</button>
      <label class="field">${t('playground.speed')}
        <select class="speed" value=${String(tour.speed)}
          onChange=${(e) => tourAction(tour.playing ? 'play' : 'pause', Number(e.target.value))}>
          ${SPEEDS.map((s) => html`<option value=${String(s)}>${s}×</option>`)}
        </select></label>
      <button class="reset" onClick=${resetWorld}>↺ ${t('playground.reset')}</button>
    </div>
    <div class="controls">
      <a class="button save-transcript" href="/api/transcript" download="gridhorn-transcript.jsonl">
        ⤓ ${t('playground.transcript_save')}</a>
      <button class="replay-transcript" onClick=${() => fileRef.current && fileRef.current.click()}>
        ⟲ ${t('playground.transcript_replay')}</button>
      <input type="file" class="replay-file" accept=".jsonl,.json,.txt,application/json" ref=${fileRef}
        onChange=${(e) => { const f = e.target.files[0]; e.target.value = ''; if (f) replayFile(f); }} />
      <span class=${S.connected ? 'clock' : 'clock offline'} title=${t('playground.clock')}>
        🕘 ${S.clock}</span>
      <label class="field">${t('playground.language')}
        <select class="lang" value=${S.lang} onChange=${(e) => switchLanguage(e.target.value)}>
          ${S.langs.map((l) => html`<option value=${l}>${LANG_KEYS[l] ? t(LANG_KEYS[l]) : l}</option>`)}
        </select></label>
      <button class=${S.inspector.open ? 'inspector-toggle on' : 'inspector-toggle'}
        aria-pressed=${S.inspector.open ? 'true' : 'false'}
        onClick=${() => { S.inspector.open = !S.inspector.open; changed(); }}>
        ⓘ ${t('playground.inspector')}</button>
    </div>
  </header>`;
}

function Progress({ step, steps }) {
  const ref = useRef(null);
  useLayoutEffect(() => {
    if (ref.current) ref.current.style.width = `${steps ? Math.min(100, (100 * step) / steps) : 0}%`;
  }, [step, steps]);
  return html`<div class="progress"><div class="progress-fill" ref=${ref}></div></div>`;
}

function CaptionBar() {
  const tour = S.tour;
  const caption = (tour.captions && tour.captions[S.lang]) || tour.caption;
  const replay = S.replay;
  let result = null;
  if (replay) {
    let text;
    let cls = 'replay-result';
    if (replay.running) text = t('playground.replay_running');
    else if (replay.error) { text = t('playground.replay_error', { error: replay.error }); cls += ' bad'; }
    else if (replay.ok) { text = t('playground.replay_ok', { steps: replay.steps }); cls += ' good'; }
    else {
      text = t('playground.replay_failed', { step: replay.failed_step ?? '?' });
      cls += ' bad';
    }
    result = html`<div class=${cls}>
      <span>${text}</span>
      ${replay.difference ? html`<pre class="difference">${replay.difference}</pre>` : null}
      ${replay.running ? null : html`<button class="link" onClick=${() => { S.replay = null; changed(); }}>
        ${t('playground.close')}</button>`}
    </div>`;
  }
  return html`<section class="caption-bar">
    <div class=${caption ? 'caption' : 'caption idle'}>${caption || t('playground.tour_idle')}</div>
    ${tour.steps ? html`<div class="tour-progress">
      <span class="steps">${t('playground.tour_progress', { step: tour.step, steps: tour.steps })}</span>
      <${Progress} step=${tour.step} steps=${tour.steps} /></div>` : null}
    ${result}
    ${tour.error ? html`<div class="notice tour-error">${t('playground.error', { error: tour.error })}</div>` : null}
    ${S.notice ? html`<div class="notice">${S.notice}</div>` : null}
    ${S.connected ? null : html`<div class="notice">${t('playground.disconnected')}</div>`}
  </section>`;
}

function ChatList({ col }) {
  const chats = chatsOf(col.person);
  if (!chats.length) return html`<div class="empty">${t('playground.no_chats')}</div>`;
  return html`<ul class="chat-list">
    ${chats.map((chat) => {
      const list = messagesOf(chat.id);
      const last = list[list.length - 1];
      const count = unread(col, chat.id);
      return html`<li key=${chat.id}>
        <button class="chat-entry" data-chat=${String(chat.id)}
          onClick=${() => { col.chat = chat.id; col.topic = chat.forum ? undefined : null; col.replyTo = null; changed(); }}>
          <${Avatar} id=${chat.id} name=${chatTitle(chat)} />
          <${EntryBody} title=${(chat.forum ? '# ' : '') + chatTitle(chat)} last=${last} count=${count} />
        </button></li>`;
    })}
  </ul>`;
}

// A chat's or a topic's entry: its title, the last message and the unread count.
function EntryBody({ title, last, count }) {
  return html`<span class="chat-main">
      <span class="chat-title">${title}</span>
      <span class="chat-preview">${preview(last)}</span>
    </span>
    <span class="chat-side">
      <span class="chat-time">${last ? last.date : ''}</span>
      ${count ? html`<span class="badge">${count}</span>` : null}
    </span>`;
}

function TopicList({ col, chat }) {
  const topics = [{ thread_id: null, name: t('playground.topic_general') }, ...(chat.topics || [])];
  return html`<ul class="topic-list">
    ${topics.map((topic) => {
      const list = messagesOf(chat.id, topic.thread_id);
      const last = list[list.length - 1];
      const count = unread(col, chat.id, topic.thread_id);
      return html`<li key=${String(topic.thread_id)}>
        <button class="topic-entry" data-topic=${topic.thread_id === null ? 'general' : String(topic.thread_id)}
          onClick=${() => { col.topic = topic.thread_id; col.replyTo = null; changed(); }}>
          <span class="topic-icon" aria-hidden="true">#</span>
          <${EntryBody} title=${topic.name} last=${last} count=${count} />
        </button></li>`;
    })}
  </ul>`;
}

function Keyboard({ col, m }) {
  if (!m.buttons || !m.buttons.length) return null;
  return html`<div class="keyboard">
    ${m.buttons.map((row, r) => html`<div class="kb-row" key=${r}>
      ${row.map((b, i) => {
        const busy = col.pending && col.pending.chat === m.chat_id
          && col.pending.message === m.message_id && col.pending.data === b.data;
        const cls = `kb-button${b.url ? ' kb-url' : ''}${busy ? ' busy' : ''}`;
        return html`<button class=${cls} key=${i} title=${b.url || ''}
          onClick=${() => press(col, m, b)}>${b.text}</button>`;
      })}
    </div>`)}
  </div>`;
}

function Bubble({ col, m, group }) {
  const id = mkey(m.chat_id, m.message_id);
  const nameRef = useRef(null);
  useLayoutEffect(() => {
    if (nameRef.current) nameRef.current.style.color = tint(m.from ? m.from.id : 0);
  });
  if (m.kind === 'service') {
    return html`<div class="row service-row">
      <div class="bubble service" data-message=${id}>${m.service || m.text || ''}</div></div>`;
  }
  const own = m.from && m.from.id === col.person;
  const bot = m.from && m.from.bot;
  const showName = !own && (group || bot);
  const cls = `bubble${own ? ' own' : ' other'}${bot ? ' from-bot' : ''}${m.pinned ? ' is-pinned' : ''}`;
  return html`<div class=${own ? 'row own-row' : 'row other-row'}>
    ${!own && group ? html`<${Avatar} id=${m.from ? m.from.id : 0} name=${senderName(m)} small />` : null}
    <div class="stack">
      <div class=${cls} data-message=${id} data-edited=${m.edited ? '1' : undefined}>
        ${showName ? html`<div class="sender" ref=${nameRef}>${senderName(m)}
          ${bot ? html`<span class="bot-tag">${t('playground.bot_label')}</span>` : null}</div>` : null}
        ${m.reply_to ? html`<div class="quote">
          <span class="quote-name">${m.reply_to.from_name}</span>
          <span class="quote-text">${m.reply_to.text}</span></div>` : null}
        ${safeUrl(m.photo) ? html`<img class="photo" src=${safeUrl(m.photo)} alt=${t('playground.photo')}
          onLoad=${(e) => e.target.dispatchEvent(new CustomEvent('media-loaded', { bubbles: true }))}
          onError=${photoMissing} />` : null}
        ${m.document ? html`<a class="document" href=${safeUrl(m.document.url)} download=${m.document.name}>
          <span class="doc-icon" aria-hidden="true">📄</span><span>${m.document.name || t('playground.document')}</span></a>` : null}
        ${m.html ? html`<div class="text" onClick=${onMessageClick}
          dangerouslySetInnerHTML=${{ __html: m.html }}></div>`
          : m.text ? html`<div class="text">${m.text}</div>` : null}
        <div class="meta">
          ${m.edited ? html`<span class="edited">${t('playground.edited')}</span>` : null}
          <span class="time">${m.date}</span>
        </div>
        <div class="actions">
          <button class="act reply" title=${t('playground.reply')} aria-label=${t('playground.reply')}
            onClick=${() => { col.replyTo = { message_id: m.message_id, from_name: senderName(m), text: m.text || preview(m) }; changed(); }}>↩</button>
          ${bot ? html`<button class="act inspect" title=${t('playground.inspect')} aria-label=${t('playground.inspect')}
            onClick=${() => inspect(m)}>ⓘ</button>` : null}
        </div>
      </div>
      <${Keyboard} col=${col} m=${m} />
    </div>
  </div>`;
}

function MessageList({ col, chat, list }) {
  const ref = useRef(null);
  const atBottom = useRef(true);
  const view = `${chat.id}:${col.topic}`;
  const lastView = useRef(null);
  const last = list.length ? list[list.length - 1] : null;
  const signature = last ? `${last.message_id}:${list.length}:${last.edited}:${(last.buttons || []).length}` : '';
  useLayoutEffect(() => {
    const el = ref.current;
    if (!el) return;
    if (lastView.current !== view || atBottom.current) el.scrollTop = el.scrollHeight;
    lastView.current = view;
  }, [view, signature]);
  useEffect(() => {
    const el = ref.current;
    if (!el) return undefined;
    const onMedia = () => { if (atBottom.current) el.scrollTop = el.scrollHeight; };
    el.addEventListener('media-loaded', onMedia);
    return () => el.removeEventListener('media-loaded', onMedia);
  }, []);
  const group = chat.type !== 'private';
  return html`<div class="messages" ref=${ref}
    onScroll=${(e) => { const el = e.currentTarget; atBottom.current = el.scrollHeight - el.scrollTop - el.clientHeight < 40; }}>
    ${list.map((m) => html`<${Bubble} key=${mkey(m.chat_id, m.message_id)} col=${col} m=${m} group=${group} />`)}
  </div>`;
}

function PinnedBar({ col, chat }) {
  if (!chat.pinned) return null;
  const jump = (e) => {
    const phone = e.currentTarget.closest('.column');
    const el = phone && phone.querySelector(`[data-message="${mkey(chat.id, chat.pinned.message_id)}"]`);
    if (el) {
      el.scrollIntoView({ block: 'center', behavior: 'smooth' });
      el.classList.add('flash');
      setTimeout(() => el.classList.remove('flash'), 1200);
    }
  };
  return html`<button class="pinned-bar" onClick=${jump} data-pinned=${String(chat.pinned.message_id)}>
    <span class="pin-line" aria-hidden="true"></span>
    <span class="pin-body"><span class="pin-title">${t('playground.pinned')}</span>
      <span class="pin-text">${chat.pinned.text}</span></span></button>`;
}

function Composer({ col, list }) {
  const area = useRef(null);
  // ForceReply: the last bot message here asks for a reply and the person has not answered yet
  let force = null;
  for (let i = list.length - 1; i >= 0; i -= 1) {
    const m = list[i];
    if (m.from && m.from.id === col.person) break;
    if (m.from && m.from.bot) { if (m.force_reply) force = m; break; }
  }
  const target = col.replyTo || (force ? {
    message_id: force.message_id, from_name: S.bot.name, text: force.text || '',
  } : null);
  const placeholder = force && !col.replyTo
    ? (force.force_reply.placeholder || t('playground.force_reply_placeholder'))
    : t('playground.composer_placeholder');
  const replyTo = target ? target.message_id : undefined;
  const onKey = (e) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing && e.keyCode !== 229) {
      e.preventDefault();
      send(col, replyTo);
    }
  };
  return html`<div class="composer-wrap">
    ${target ? html`<div class=${force && !col.replyTo ? 'reply-bar forced' : 'reply-bar'}>
      <span class="reply-icon" aria-hidden="true">↩</span>
      <span class="reply-body">
        <span class="reply-name">${t('playground.replying_to', { name: target.from_name })}</span>
        <span class="reply-text">${target.text}</span></span>
      ${col.replyTo ? html`<button class="act reply-cancel" aria-label=${t('playground.close')}
        title=${t('playground.close')} onClick=${() => { col.replyTo = null; changed(); }}>×</button>` : null}
    </div>` : null}
    <div class="composer-row">
      <button class="photo-button" title=${t('playground.send_photo')} aria-label=${t('playground.send_photo')}
        onClick=${() => sendPhoto(col, replyTo)}>📷</button>
      <textarea class="composer" rows="1" ref=${area} placeholder=${placeholder} value=${col.draft}
        aria-label=${placeholder}
        data-reply-to=${replyTo === undefined ? undefined : String(replyTo)}
        onInput=${(e) => { col.draft = e.target.value; changed(); }} onKeyDown=${onKey}></textarea>
      <button class="send" disabled=${!col.draft.trim()} title=${t('playground.send')}
        aria-label=${t('playground.send')} onClick=${() => send(col, replyTo)}>➤</button>
    </div>
  </div>`;
}

function OpenChat({ col, chat }) {
  const back = () => {
    if (chat.forum && col.topic !== undefined) col.topic = undefined;
    else { col.chat = null; col.topic = undefined; }
    col.replyTo = null;
    changed();
  };
  const topicList = chat.forum && col.topic === undefined;
  const topic = chat.forum && !topicList
    ? (col.topic === null ? { name: t('playground.topic_general') }
      : (chat.topics || []).find((x) => x.thread_id === col.topic) || { name: `#${col.topic}` })
    : null;
  const list = topicList ? [] : messagesOf(chat.id, chat.forum ? col.topic : undefined);
  if (!topicList) markSeen(col, chat.id, col.topic, list);
  const subtitle = chat.type === 'private'
    ? t('playground.bot_label')
    : topic ? chatTitle(chat)
      : topicList ? t('playground.topics')
        : t('playground.members', { n: (chat.members || []).length });
  return html`<div class="open-chat">
    <div class="chat-header">
      <button class="back" title=${t('playground.back')} aria-label=${t('playground.back')} onClick=${back}>‹</button>
      <${Avatar} id=${chat.id} name=${topic ? topic.name.replace(/^#\S*\s*/, '') || '#' : chatTitle(chat)} small />
      <div class="chat-head-text">
        <div class="chat-head-title">${topic ? topic.name : chatTitle(chat)}</div>
        <div class="chat-head-sub">${subtitle}</div>
      </div>
    </div>
    <${PinnedBar} col=${col} chat=${chat} />
    ${topicList ? html`<${TopicList} col=${col} chat=${chat} />` : html`
      <${MessageList} col=${col} chat=${chat} list=${list} />
      <${Composer} col=${col} list=${list} />`}
  </div>`;
}

function Column({ col, canClose }) {
  const me = person(col.person);
  const chat = col.chat !== null ? S.chats.get(col.chat) : null;
  const pick = (e) => {
    col.person = Number(e.target.value);
    col.chat = null; col.topic = undefined; col.replyTo = null; col.draft = '';
    col.seen = new Map(); col.alert = null; col.toasts = []; col.pending = null;
    changed();
  };
  return html`<section class="column" data-person=${String(col.person)}>
    <div class="column-head">
      ${me ? html`<${Avatar} id=${me.id} name=${me.name} small />` : null}
      <select class="person-picker" value=${String(col.person)} onChange=${pick}
        aria-label=${t('playground.person')} title=${t('playground.person')}>
        ${S.people.map((p) => html`<option value=${String(p.id)}>${p.name} · ${p.role}</option>`)}
      </select>
      <button class="act close-column" disabled=${!canClose} title=${t('playground.remove_column')}
        aria-label=${t('playground.remove_column')}
        onClick=${() => { S.columns = S.columns.filter((c) => c !== col); changed(); }}>×</button>
    </div>
    <div class="phone">
      <div class="screen">
        ${chat ? html`<${OpenChat} col=${col} chat=${chat} />` : html`<${ChatList} col=${col} />`}
        <div class="toasts">
          ${col.toasts.map((x) => html`<div class="toast" key=${x.id} role="status">${x.text}</div>`)}
        </div>
        ${col.alert ? html`<div class="alert-backdrop">
          <div class="alert" role="alertdialog">
            <div class="alert-title">${S.bot.name}</div>
            <div class="alert-text">${col.alert}</div>
            <button class="alert-ok" onClick=${() => { col.alert = null; changed(); }}>${t('playground.ok')}</button>
          </div></div>` : null}
      </div>
    </div>
  </section>`;
}

function pretty(value) {
  try { return JSON.stringify(value, null, 2); } catch (_) { return String(value); }
}

const isBad = (call) => Boolean(call.error) || Number(call.status) >= 400;

function Inspector() {
  const ins = S.inspector;
  if (!ins.open) return null;
  const tab = (name, label) => html`<button class=${ins.tab === name ? 'tab on' : 'tab'}
    onClick=${() => { ins.tab = name; changed(); }}>${label}</button>`;
  let body;
  if (ins.tab === 'log') {
    const calls = [...S.log.values()].reverse();
    body = calls.length ? html`<ol class="log">
      ${calls.map((c) => html`<li key=${c.id} class=${`log-entry${isBad(c) ? ' bad' : ''}${Number(c.status) === 429 ? ' rate' : ''}`}>
        <span class="log-at">${c.at}</span>
        <span class="log-method">${c.method}</span>
        <span class="log-chat">${c.chat_id ?? ''}</span>
        <span class="log-status">${c.status}</span>
        ${c.error ? html`<span class="log-error">${c.error}</span>` : null}
      </li>`)}</ol>` : html`<p class="hint">${t('playground.log_empty')}</p>`;
  } else if (!ins.target) {
    body = html`<p class="hint">${t('playground.inspector_hint')}</p>`;
  } else if (ins.error) {
    body = html`<p class="hint bad">${t('playground.error', { error: ins.error })}</p>`;
  } else if (!ins.calls) {
    body = html`<p class="hint">${t('playground.loading')}</p>`;
  } else if (!ins.calls.length) {
    body = html`<p class="hint">${t('playground.inspector_no_calls')}</p>`;
  } else {
    body = html`<div class="calls">${ins.calls.map((c) => html`<article class=${isBad(c) ? 'call bad' : 'call'} key=${c.id}>
      <header><span class="call-method">${c.method}</span>
        <span class="call-status">${c.status}</span><span class="call-at">${c.at}</span></header>
      ${c.error ? html`<div class="call-error">${c.error}</div>` : null}
      <h4>${t('playground.inspector_params')}</h4>
      <pre class="json">${pretty(c.params)}</pre>
      <h4>${t('playground.inspector_update')}</h4>
      ${c.update ? html`<pre class="json">${pretty(c.update)}</pre>`
        : html`<p class="hint">${t('playground.inspector_no_update')}</p>`}
    </article>`)}</div>`;
  }
  return html`<aside class="inspector">
    <div class="inspector-head">
      <strong>${t('playground.inspector')}</strong>
      ${ins.target && ins.tab === 'message' ? html`<code class="target">${mkey(ins.target.chat, ins.target.message)}</code>` : null}
      <button class="act" title=${t('playground.close')} aria-label=${t('playground.close')}
        onClick=${() => { ins.open = false; changed(); }}>×</button>
    </div>
    <div class="tabs">${tab('message', t('playground.inspector_message'))}${tab('log', t('playground.inspector_log'))}</div>
    <div class="inspector-body">${body}</div>
  </aside>`;
}

function App() {
  const [, setTick] = useState(0);
  useEffect(() => {
    repaint = () => setTick((n) => n + 1);
    loadWorld(new URLSearchParams(window.location.search).get('lang'));
  }, []);
  if (!S.ready) {
    return html`<div class="boot">${S.notice || 'Gridhorn…'}</div>`;
  }
  return html`<div class=${S.inspector.open ? 'layout with-inspector' : 'layout'}>
    <${TopBar} />
    <${CaptionBar} />
    <main class="stage">
      <div class="columns">
        ${S.columns.map((col) => html`<${Column} key=${col.uid} col=${col} canClose=${S.columns.length > 2} />`)}
        ${S.columns.length < 4 ? html`<button class="add-column"
          onClick=${() => {
            const used = new Set(S.columns.map((c) => c.person));
            const next = S.people.find((p) => !used.has(p.id)) || S.people[0];
            if (next) { S.columns = [...S.columns, newColumn(next.id)]; changed(); }
          }}>＋ ${t('playground.add_column')}</button>` : null}
      </div>
      <${Inspector} />
    </main>
  </div>`;
}

const root = document.getElementById('app');
root.textContent = '';
render(html`<${App} />`, root);
