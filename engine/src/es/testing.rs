//! Test helpers: a scripted `_bulk` server on loopback.

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

/// A scripted `_bulk` server: answers the queued (status, body) in order (then
/// `{"errors":false}`), keeps the request bodies. At most 16 connections of 64 requests each.
pub fn bulk_server(script: Vec<(u16, String)>) -> (String, Arc<Mutex<Vec<String>>>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let script = Arc::new(Mutex::new(VecDeque::from(script)));
    let seen2 = seen.clone();
    std::thread::spawn(move || {
        for conn in l.incoming().take(16) {
            let Ok(mut c) = conn else { return };
            let (seen, script) = (seen2.clone(), script.clone());
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                let mut tmp = [0u8; 65536];
                for _ in 0..64 {
                    // one request: headers, then Content-Length bytes
                    let head_end = loop {
                        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            break p + 4;
                        }
                        match c.read(&mut tmp) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&tmp[..n]),
                        }
                    };
                    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
                    let len: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .map(|v| v.trim().parse().unwrap())
                        .unwrap_or(0);
                    while buf.len() < head_end + len {
                        match c.read(&mut tmp) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&tmp[..n]),
                        }
                    }
                    let body: Vec<u8> = buf.drain(..head_end + len).skip(head_end).collect();
                    seen.lock().unwrap().push(String::from_utf8(body).unwrap());
                    let (status, text) = script
                        .lock()
                        .unwrap()
                        .pop_front()
                        .unwrap_or((200, r#"{"errors":false}"#.to_string()));
                    let _ = write!(
                        c,
                        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{text}",
                        text.len()
                    );
                }
            });
        }
    });
    (url, seen)
}

/// One item of a bulk response: `status`, with an error object `e<status>` from 300 on.
pub fn item(status: u16) -> String {
    if status < 300 {
        format!(r#"{{"create":{{"status":{status}}}}}"#)
    } else {
        format!(
            r#"{{"create":{{"status":{status},"error":{{"type":"e{status}","reason":"r{status}"}}}}}}"#
        )
    }
}

/// A bulk response with `"errors":true` and one [`item`] per status.
pub fn items_response(statuses: &[u16]) -> String {
    let items: Vec<String> = statuses.iter().map(|&s| item(s)).collect();
    format!(r#"{{"errors":true,"items":[{}]}}"#, items.join(","))
}
