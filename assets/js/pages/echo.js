// /websocket/echo: the WebSocket API by hand, against an echo server.
// Every frame we send comes back unchanged: text as text, binary as binary.
// Leaving the page closes the socket (so the page can enter the
// back/forward cache); the log keeps the newest LOG_LINES lines.

import { CLOSE_MEANINGS } from '../transports/websocket.js';

/** Lines kept in the event log. */
const LOG_LINES = 200;

const $ = (id) => document.getElementById(id);
const log = $('echo-log');
const state = $('conn-state');
let socket = null;

function line(tag, text, tone = 'info') {
  const li = document.createElement('li');
  li.className = `log-line log-${tone}`;
  const time = document.createElement('time');
  time.textContent = new Date().toLocaleTimeString([], { hour12: false });
  const label = document.createElement('span');
  label.className = `log-tag log-tag-${tag}`;
  label.textContent = tag;
  const body = document.createElement('span');
  body.className = 'log-text';
  body.textContent = text;
  li.append(time, label, body);
  log.prepend(li);
  while (log.childElementCount > LOG_LINES) log.lastElementChild.remove();
}

function setState(text, tone, open) {
  state.textContent = text;
  state.dataset.tone = tone;
  $('echo-open').disabled = open;
  $('echo-close').disabled = !open;
  $('echo-send').disabled = !open;
}

function hex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join(' ');
}

$('echo-open').addEventListener('click', () => {
  const url = new URL('/api/echo', location.href);
  url.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
  socket = new WebSocket(url);
  // Binary frames arrive as ArrayBuffer instead of Blob: easier to show.
  socket.binaryType = 'arraybuffer';
  setState('connecting…', 'wait', true);
  line('open', `new WebSocket('${url}')`, 'event');

  socket.addEventListener('open', () => {
    setState('open', 'ok', true);
    line('open', 'open — 101 Switching Protocols', 'ok');
  });
  socket.addEventListener('message', (event) => {
    if (typeof event.data === 'string') {
      line('receive', `text frame (${new TextEncoder().encode(event.data).length} B): ${event.data}`, 'event');
    } else {
      const bytes = new Uint8Array(event.data);
      line('receive', `binary frame (${bytes.length} B): ${hex(bytes.slice(0, 48))}${bytes.length > 48 ? ' …' : ''}`, 'event');
    }
  });
  socket.addEventListener('error', () => line('error', 'error (the browser gives no details)', 'error'));
  let opened = false;
  socket.addEventListener('open', () => {
    opened = true;
  });
  socket.addEventListener('close', (event) => {
    setState('closed', 'idle', false);
    if (opened) {
      const meaning = CLOSE_MEANINGS[event.code] ? ` (${CLOSE_MEANINGS[event.code]})` : '';
      line('close', `close — code ${event.code}${meaning}${event.reason ? ` “${event.reason}”` : ''}, wasClean: ${event.wasClean}`, 'error');
    } else {
      line('close', `close — code ${event.code}, wasClean: ${event.wasClean}: the handshake was refused or the server unreachable (the browser never shows the HTTP status)`, 'error');
    }
  });
});

addEventListener('pagehide', () => {
  if (socket && socket.readyState <= WebSocket.OPEN) socket.close(1000, 'page left');
});

$('echo-close').addEventListener('click', () => socket?.close(1000, 'bye'));

$('echo-form').addEventListener('submit', (event) => {
  event.preventDefault();
  if (socket?.readyState !== WebSocket.OPEN) return;
  const text = $('echo-text').value;
  const kind = new FormData(event.target).get('kind');
  if (kind === 'binary') {
    const bytes = new TextEncoder().encode(text);
    socket.send(bytes);
    line('send', `binary frame (${bytes.length} B): ${hex(bytes.slice(0, 48))}${bytes.length > 48 ? ' …' : ''}`, 'event');
  } else {
    socket.send(text);
    line('send', `text frame: ${text}`, 'event');
  }
});
