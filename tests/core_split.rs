//! The sans-IO core handles frames the same however the bytes are split
//! into reads: in place from the read, or reassembled in the decoder.

use std::time::Instant;

use chat::testing::Core;
use proptest::prelude::*;

fn frame(json: &str) -> Vec<u8> {
    let mut v = (json.len() as u32).to_be_bytes().to_vec();
    v.extend_from_slice(json.as_bytes());
    v
}

/// Feeds `stream` to a sender in the given pieces and returns what a
/// listener received.
fn run(stream: &[u8], cuts: &[usize]) -> Vec<u8> {
    let cfg = chat::Config::default();
    let mut core = Core::new(&cfg);
    let now = Instant::now();
    let peer = "127.0.0.1:9".parse().unwrap();
    let listener = core.connect(peer, now);
    core.receive(listener, &frame(r#"{"type":"hello","nick":"listener"}"#), now);
    let sender = core.connect(peer, now);
    let mut start = 0;
    for &cut in cuts.iter().chain(std::iter::once(&stream.len())) {
        core.receive(sender, &stream[start..cut], now);
        start = cut;
    }
    let mut out = Vec::new();
    core.take_output(listener, &mut out);
    out
}

proptest! {
    #[test]
    fn any_split_gives_the_same_deliveries(
        texts in prop::collection::vec("[a-z\u{e9}\u{1F600}\\\\\"]{0,40}", 1..12),
        raw_cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..20),
    ) {
        let mut stream = frame(r#"{"type":"hello","nick":"sender"}"#);
        for t in &texts {
            stream.extend(frame(&serde_json::json!({"type": "all", "text": t}).to_string()));
        }
        let mut cuts: Vec<usize> = raw_cuts.iter().map(|i| i.index(stream.len() + 1)).collect();
        cuts.sort_unstable();
        let whole = run(&stream, &[]);
        prop_assert_eq!(run(&stream, &cuts), whole.clone());
        // And what arrived is every text, in order.
        let mut got = Vec::new();
        let mut rest = &whole[..];
        while let Ok(Some((payload, used))) = chat::frame::split_frame(rest, 1 << 20) {
            let v: serde_json::Value = serde_json::from_slice(payload).unwrap();
            if v["type"] == "all" {
                got.push(v["text"].as_str().unwrap().to_string());
            }
            rest = &rest[used..];
        }
        prop_assert_eq!(got, texts);
    }
}
