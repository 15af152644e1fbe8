// What the five transports need to know about the log they read.
//
// The server has three ordered logs — the chat's messages, the shared
// document's operations, and the document's presence (carets) — and every
// transport reads each of them the same way: a cursor, "give me what is
// newer", in order. So the transport files are written once, and a page
// hands each one the description of its log (`log: DOC`, …): where its
// four endpoints are, and the few names that differ on the wire. Compare
// them with the server's `Topic` (src/transports/mod.rs): the same idea,
// on the other side of the wire.
//
//                     chat                 document              presence
//   polling answer    {messages, last_id}  {ops, last_rev}       {carets, last_seq}
//   an entry's place  id                   rev                   seq
//   WebSocket frame   {type:"message",     {type:"op", …op}      {type:"presence", …caret}
//                      message:{…}}
//   SSE event name    message              op                    presence

/**
 * @typedef {object} LogSpec
 * @property {string} name     for log lines: 'chat', 'document', 'presence'
 * @property {string} poll     GET now (polling), e.g. /api/messages
 * @property {string} longpoll GET held until there is news
 * @property {string} ws       the WebSocket
 * @property {string} events   the Server-Sent Events stream
 * @property {string} entries  the array's name in a polling answer
 * @property {string} last     the newest position's name (polling answer, welcome frame)
 * @property {string} event    the SSE event name, and the WebSocket frame type of an entry
 * @property {(entry: object) => number} position  an entry's place in the log
 * @property {(frame: object) => object} unwrap    the entry inside a WebSocket frame
 * @property {(position: number) => string} label  an entry's place, for people: #42, rev 7
 */

/** The chat room: messages, by id. */
export const CHAT = Object.freeze({
  name: 'chat',
  poll: '/api/messages',
  longpoll: '/api/longpoll',
  ws: '/api/ws',
  events: '/api/events',
  entries: 'messages',
  last: 'last_id',
  event: 'message',
  position: (message) => message.id,
  // The chat's frame wraps the message: {"type":"message","message":{…}}.
  unwrap: (frame) => frame.message,
  label: (id) => `#${id}`,
});

/** The shared document: operations, by revision. */
export const DOC = Object.freeze({
  name: 'document',
  poll: '/api/doc/ops',
  longpoll: '/api/doc/longpoll',
  ws: '/api/doc/ws',
  events: '/api/doc/events',
  entries: 'ops',
  last: 'last_rev',
  event: 'op',
  position: (op) => op.rev,
  // The document's frame IS the stored op, with "type":"op" in front.
  unwrap: (frame) => frame,
  label: (rev) => `rev ${rev}`,
});

/** Presence: every editor's caret, by position in an in-memory log. */
export const PRESENCE = Object.freeze({
  name: 'presence',
  poll: '/api/doc/presence',
  longpoll: '/api/doc/presence/longpoll',
  ws: '/api/doc/presence/ws',
  events: '/api/doc/presence/events',
  entries: 'carets',
  last: 'last_seq',
  event: 'presence',
  position: (caret) => caret.seq,
  unwrap: (frame) => frame,
  label: (seq) => `#${seq}`,
});
