//! An HTTP proxy in front of a real server, so a test can stop the server at an exact point of a
//! client's work (after a given request) rather than at a guessed moment.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;

use super::http::{Request, Response};

/// Sends `request` to `port` on 127.0.0.1 as it came (the Host header too, so signatures
/// still verify) and returns the answer; `None` when nothing listens there.
pub fn forward(request: &Request, port: u16) -> Option<Response> {
    let mut upstream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    let mut head = format!("{} {} HTTP/1.1\r\n", request.method, request.target);
    for (name, value) in &request.headers {
        if !matches!(
            name.to_ascii_lowercase().as_str(),
            "connection" | "transfer-encoding" | "content-length"
        ) {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
    }
    head.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        request.body.len()
    ));
    upstream.write_all(head.as_bytes()).ok()?;
    upstream.write_all(&request.body).ok()?;
    let mut reader = BufReader::new(upstream);
    let mut status_line = String::new();
    reader.read_line(&mut status_line).ok()?;
    let status = status_line.split_whitespace().nth(1)?.parse().ok()?;
    let mut response = Response::new(status, Vec::new());
    let mut chunked = false;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).ok()?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(':')?;
        let (name, value) = (name.trim(), value.trim());
        match name.to_ascii_lowercase().as_str() {
            "transfer-encoding" => chunked = value.eq_ignore_ascii_case("chunked"),
            "content-length" | "connection" => {}
            _ => response = response.header(name, value),
        }
    }
    let mut body = Vec::new();
    if chunked {
        loop {
            let mut size = String::new();
            reader.read_line(&mut size).ok()?;
            let size = usize::from_str_radix(size.trim().split(';').next()?, 16).ok()?;
            let mut chunk = vec![0; size + 2];
            reader.read_exact(&mut chunk).ok()?;
            if size == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..size]);
        }
    } else {
        reader.read_to_end(&mut body).ok()?;
    }
    response.body = body;
    Some(response)
}
