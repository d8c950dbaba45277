mod common;
use common::*;
use serde_json::json;

#[test]
fn two_clients_chat() {
    let server = ServerThread::default();
    let mut a = TestClient::hello(server.addr, "alice");
    let mut b = TestClient::hello(server.addr, "bob");
    assert_eq!(a.recv(), json!({"type":"presence","nick":"bob","state":"online"}));
    a.send(&json!({"type":"msg","to":"bob","text":"hi"}));
    assert_eq!(
        b.recv(),
        json!({"type":"msg","from":"alice","to":"bob","text":"hi"})
    );
    let id = server
        .event_until(|e| matches!(e.kind, chat::EventKind::Message(_)))
        .client;
    server.with(move |s| s.send(id, br#"{"type":"note"}"#).unwrap());
    assert_eq!(a.recv(), json!({"type":"note"}));
}
