/// The Rust three-state client (`weebsockets::ot::client`, the port of
/// `assets/js/doc/client.js` that tests and load generators use) against an
/// in-process server: one op in flight and the rest composed in a buffer;
/// its own op coming back in the log is the acknowledgement; a resend after
/// a reconnect carries the same seq, rev and op and is stored once; a
/// duplicate is ignored and a gap refused; and under random typing,
/// delivery delays, duplicated submissions, stale log pages and reconnects,
/// every client ends synchronized with the server's text.
mod common;

use common::traces::{InProcessServer, Rng, random_text};
use weebsockets::ot::Operation;
use weebsockets::ot::client::{Client, ClientError, Received, Submission};

fn insert_at(client: &Client, at: usize, text: &str) -> Operation {
    Operation::from_patch(client.doc().len_chars(), at, 0, text).unwrap()
}

#[test]
fn buffer_ack_and_resend() {
    let mut server = InProcessServer::new();
    let mut a = Client::new("tab-a", 0, "", 0);
    let mut b = Client::new("tab-b", 0, "", 0);

    let first = a
        .edit(insert_at(&a, 0, "h"))
        .unwrap()
        .expect("sent at once");
    assert_eq!((first.seq, first.rev), (0, 0));
    assert_eq!(a.state_name(), "awaiting_confirm");
    assert_eq!(a.edit(insert_at(&a, 1, "i")).unwrap(), None, "buffered");
    assert_eq!(a.edit(insert_at(&a, 2, "!")).unwrap(), None, "composed");
    assert_eq!(a.state_name(), "awaiting_with_buffer");

    // b types concurrently; its op is stored first.
    let from_b = b.edit(insert_at(&b, 0, "B")).unwrap().unwrap();
    server.receive(&from_b);
    // a's POST is stored, but its answer is lost; a reconnects and resends.
    server.receive(&first);
    let again = a.resend().unwrap();
    assert_eq!(again, first, "same seq, rev and op");
    assert_eq!(
        server.receive(&again),
        2,
        "recognised: the rev it got the first time"
    );
    assert_eq!(server.log().len(), 2, "stored once");

    // a reads the log: b's op (transformed past a's pending edits), then its
    // own — the acknowledgement, which sends the buffer.
    let log = server.log().to_vec();
    assert!(matches!(a.receive(&log[0]).unwrap(), Received::Applied(_)));
    let Received::Acknowledged { send: Some(buffer) } = a.receive(&log[1]).unwrap() else {
        panic!("expected the acknowledgement to send the buffer");
    };
    assert_eq!((buffer.seq, buffer.rev), (1, 2));
    assert_eq!(buffer.op.to_json(), serde_json::json!([2, "i!"]));
    server.receive(&buffer);
    for stored in &server.log()[2..] {
        a.receive(stored).unwrap();
    }
    for stored in server.log() {
        b.receive(stored).unwrap();
    }
    assert_eq!(
        server.text(),
        "Bhi!",
        "b's op was stored first, so it stays first"
    );
    assert_eq!(a.text(), server.text());
    assert_eq!(b.text(), server.text());
    assert_eq!(a.state_name(), "synchronized");

    // Old news is ignored; a skipped revision is refused.
    assert_eq!(a.receive(&server.log()[0]).unwrap(), Received::Duplicate);
    let mut late = server.log()[2].clone();
    late.rev = 9;
    assert_eq!(
        a.receive(&late).unwrap_err(),
        ClientError::Gap {
            expected: 4,
            got: 9
        }
    );
}

#[test]
fn random_schedules_converge() {
    for round in 0..300u64 {
        let mut rng = Rng::new(round);
        let mut server = InProcessServer::new();
        let mut clients: Vec<Client> = (0..3)
            .map(|i| Client::new(format!("tab-{i}"), 0, "", 0))
            .collect();
        // What each client has submitted that has not reached the server.
        let mut outboxes: Vec<Vec<Submission>> = vec![Vec::new(); clients.len()];
        for _ in 0..80 {
            let i = rng.below(clients.len());
            let client = &mut clients[i];
            match rng.below(6) {
                0 | 1 => {
                    let len = client.doc().len_chars();
                    let at = rng.below(len + 1);
                    let delete = rng.below(3).min(len - at);
                    let op =
                        Operation::from_patch(len, at, delete, &random_text(&mut rng, 1)).unwrap();
                    if let Some(sent) = client.edit(op).unwrap() {
                        outboxes[i].push(sent);
                    }
                }
                2 if !outboxes[i].is_empty() => {
                    let sent = outboxes[i].remove(0);
                    server.receive(&sent);
                    if rng.percent(25) {
                        server.receive(&sent); // a retry of the same request
                    }
                }
                3 => {
                    // A page of the log, sometimes starting one rev too early.
                    let from = client.rev().saturating_sub(rng.below(2) as u64) as usize;
                    let page: Vec<_> = server.log().iter().skip(from).take(3).cloned().collect();
                    for stored in page {
                        if let Received::Acknowledged { send: Some(s) } =
                            client.receive(&stored).unwrap()
                        {
                            outboxes[i].push(s);
                        }
                    }
                }
                4 => {
                    // Reconnect: what was on its way may be lost; resend.
                    outboxes[i].clear();
                    outboxes[i].extend(client.resend());
                }
                _ => {}
            }
        }
        // Settle: everything arrives, everyone reads everything.
        loop {
            let mut progress = false;
            for (i, client) in clients.iter_mut().enumerate() {
                for sent in outboxes[i].drain(..) {
                    server.receive(&sent);
                    progress = true;
                }
                let unread: Vec<_> = server.log()[client.rev() as usize..].to_vec();
                for stored in unread {
                    progress = true;
                    if let Received::Acknowledged { send: Some(s) } =
                        client.receive(&stored).unwrap()
                    {
                        outboxes[i].push(s);
                    }
                }
            }
            if !progress {
                break;
            }
        }
        let mut keys: Vec<_> = server.log().iter().map(|s| (&s.client, s.seq)).collect();
        let stored = keys.len();
        keys.sort();
        keys.dedup();
        assert_eq!(
            keys.len(),
            stored,
            "round {round}: one op per (client, seq)"
        );
        for client in &clients {
            assert_eq!(client.state_name(), "synchronized", "round {round}");
            assert_eq!(
                client.text(),
                server.text(),
                "round {round}: {}",
                client.id()
            );
        }
    }
}
