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

#[test]
fn host_payloads_nested_deeper_than_clients_can_parse_are_refused() {
    let server = ServerThread::default();
    let _a = TestClient::hello(server.addr, "alice");
    let ok = format!(r#"{{"type":"x","v":{}{}}}"#, "[".repeat(120), "]".repeat(120));
    let deep = format!(r#"{{"type":"x","v":{}{}}}"#, "[".repeat(200), "]".repeat(200));
    assert_eq!(server.with(move |s| s.broadcast(ok.as_bytes())).unwrap(), 1);
    let err = server.with(move |s| s.broadcast(deep.as_bytes())).unwrap_err();
    assert!(matches!(err, chat::Error::NotJsonObject(_)), "{err}");
}

#[test]
fn no_new_work_once_shutdown_began() {
    let mut server = chat::Server::new(loopback_config()).unwrap();
    assert!(
        server.shutdown(std::time::Duration::from_secs(1)),
        "nobody connected: drained at once"
    );
    assert!(matches!(
        server.broadcast(br#"{"type":"x"}"#),
        Err(chat::Error::ShuttingDown)
    ));
    assert!(matches!(
        server.send(1, br#"{"type":"x"}"#),
        Err(chat::Error::ShuttingDown)
    ));
    assert!(matches!(server.kick(1, None), Err(chat::Error::ShuttingDown)));
}
