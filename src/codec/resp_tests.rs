//! The RESP2 codec on hand-written streams (the oracle checks are in
//! `tests/resp_codec.rs`).

use super::*;

fn decode_all(bytes: &[u8], limits: Limits) -> Result<Vec<Reply>, DecodeError> {
    let mut dec = Decoder::new(limits);
    dec.push(bytes);
    let mut out = Vec::new();
    while let Some(r) = dec.next_reply()? {
        out.push(r);
    }
    Ok(out)
}

#[test]
fn decodes_every_kind() {
    let got = decode_all(
        b"+OK\r\n-ERR no\r\n:-42\r\n$3\r\na\r\n\r\n$-1\r\n*-1\r\n*0\r\n",
        Limits::default(),
    );
    assert_eq!(
        got.unwrap(),
        vec![
            Reply::Simple(b"OK".to_vec()),
            Reply::Error("ERR no".into()),
            Reply::Integer(-42),
            Reply::Bulk(b"a\r\n".to_vec()),
            Reply::Null,
            Reply::Null,
            Reply::Array(vec![]),
        ]
    );
}

#[test]
fn resumes_byte_by_byte_in_nested_arrays() {
    let stream = b"*2\r\n*2\r\n$5\r\nhello\r\n:1\r\n$-1\r\n+PONG\r\n";
    let mut dec = Decoder::new(Limits::default());
    let mut got = Vec::new();
    for b in stream {
        dec.push(std::slice::from_ref(b));
        while let Some(r) = dec.next_reply().unwrap() {
            got.push(r);
        }
    }
    let inner = Reply::Array(vec![Reply::Bulk(b"hello".to_vec()), Reply::Integer(1)]);
    assert_eq!(
        got,
        vec![
            Reply::Array(vec![inner, Reply::Null]),
            Reply::Simple(b"PONG".to_vec())
        ]
    );
    assert_eq!(dec.buffered(), 0);
    assert!(!dec.mid_reply());
}

#[test]
fn limits_are_checked_before_anything_is_reserved() {
    let small = Limits {
        max_bulk: 4,
        max_line: 32,
        max_depth: 2,
        max_elements: 3,
        max_reply_bytes: 64,
    };
    let e = |b: &[u8]| decode_all(b, small).unwrap_err();
    assert_eq!(e(b"$5\r\n"), DecodeError::TooLarge(Limit::Bulk));
    assert_eq!(e(b"$9999999999999\r\n"), DecodeError::TooLarge(Limit::Bulk));
    assert_eq!(e(b"*1\r\n*1\r\n*1\r\n"), DecodeError::TooLarge(Limit::Depth));
    assert_eq!(e(b"*2\r\n*2\r\n"), DecodeError::TooLarge(Limit::Elements));
    assert_eq!(e(&[b'+'; 40]), DecodeError::TooLarge(Limit::Line));
    let long = [
        &b"*3\r\n"[..],
        &[b"+".as_slice(), &[b'a'; 30], b"\r\n"].concat().repeat(3),
    ]
    .concat();
    assert_eq!(e(&long), DecodeError::TooLarge(Limit::ReplyBytes));
    // The element count starts again with each reply.
    assert_eq!(
        decode_all(b"*3\r\n:1\r\n:2\r\n:3\r\n*3\r\n:1\r\n:2\r\n:3\r\n", small)
            .unwrap()
            .len(),
        2
    );
}

#[test]
fn errors_are_sticky_and_free_the_buffer() {
    let mut dec = Decoder::new(Limits::default());
    dec.push(b"$3\r\nabcXY+OK\r\n");
    assert_eq!(dec.next_reply(), Err(DecodeError::BadTerminator));
    dec.push(b"+OK\r\n");
    assert_eq!(dec.next_reply(), Err(DecodeError::BadTerminator));
    assert_eq!(dec.buffered(), 0);
    assert_eq!(
        decode_all(b"?\r\n", Limits::default()),
        Err(DecodeError::BadType(b'?'))
    );
    assert_eq!(
        decode_all(b":x\r\n", Limits::default()),
        Err(DecodeError::BadNumber)
    );
    assert_eq!(
        decode_all(b"$-2\r\n", Limits::default()),
        Err(DecodeError::BadNumber)
    );
    assert_eq!(
        decode_all(b"-\xff\r\n", Limits::default()),
        Err(DecodeError::BadUtf8)
    );
}

#[test]
fn commands_are_arrays_of_bulk_strings() {
    let mut out = Vec::new();
    let args: [&[u8]; 3] = [b"SET", b"k", b""];
    write_command(&mut out, &args);
    assert_eq!(out, b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n");
    assert_eq!(command_len(&args), out.len());
    out.clear();
    write_array_len(&mut out, 2);
    write_bulk_int(&mut out, -1234567890123);
    write_bulk_int(&mut out, i64::MIN);
    assert_eq!(
        out,
        b"*2\r\n$14\r\n-1234567890123\r\n$20\r\n-9223372036854775808\r\n"
    );
}

#[test]
fn error_codes_are_the_first_word() {
    assert!(Reply::Error("NOSCRIPT No matching script".into()).is_error_code("NOSCRIPT"));
    assert!(!Reply::Error("NOSCRIPTX".into()).is_error_code("NOSCRIPT"));
    assert!(!Reply::Simple(b"NOSCRIPT".to_vec()).is_error_code("NOSCRIPT"));
}
