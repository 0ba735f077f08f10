//! `git http-backend` served over smart HTTP on 127.0.0.1, behind a check of the
//! CodeCommit-style password: 401 without credentials, 403 with a wrong signature.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;

use super::http::{Request, Response, Server};
use super::sigv4;

/// The credentials the server accepts.
#[derive(Debug, Clone)]
pub struct Expected {
    pub access_key: String,
    pub secret: String,
    pub session_token: Option<String>,
    pub region: String,
}

/// What the server decided for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    Missing,
    Accepted,
    Rejected(String),
}

pub struct GitHttp {
    server: Server,
    outcomes: Arc<Mutex<Vec<Auth>>>,
}

impl GitHttp {
    /// Serves the bare repositories under `root`.
    pub fn start(root: &Path, expected: Expected) -> Self {
        let outcomes = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&outcomes);
        let root = root.to_path_buf();
        let server = Server::start(move |request| {
            let auth = check(request, &expected);
            log.lock().expect("lock").push(auth.clone());
            match auth {
                Auth::Missing => Response::new(401, "authentication required")
                    .header("WWW-Authenticate", "Basic realm=\"codecommit\""),
                Auth::Rejected(_) => Response::new(403, "signature mismatch"),
                Auth::Accepted => backend(&root, request),
            }
        });
        Self { server, outcomes }
    }

    pub fn url(&self, repo: &str) -> String {
        format!("{}/{repo}", self.server.url())
    }

    pub fn port(&self) -> u16 {
        self.server.port()
    }

    pub fn outcomes(&self) -> Vec<Auth> {
        self.outcomes.lock().expect("lock").clone()
    }
}

fn check(request: &Request, expected: &Expected) -> Auth {
    let Some(encoded) = request
        .header("Authorization")
        .and_then(|v| v.strip_prefix("Basic "))
    else {
        return Auth::Missing;
    };
    let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded) else {
        return Auth::Rejected("bad base64".into());
    };
    let decoded = String::from_utf8_lossy(&decoded).into_owned();
    let Some((username, password)) = decoded.split_once(':') else {
        return Auth::Rejected("no colon".into());
    };
    let expected_user = match &expected.session_token {
        Some(token) => format!("{}%{token}", expected.access_key),
        None => expected.access_key.clone(),
    };
    if username != expected_user {
        return Auth::Rejected("wrong username".into());
    }
    let Some(timestamp) = password.split('Z').next().filter(|t| t.len() == 15) else {
        return Auth::Rejected("no timestamp".into());
    };
    let age = unix_now().abs_diff(parse_timestamp(timestamp));
    if age > 15 * 60 {
        return Auth::Rejected(format!("timestamp {timestamp} is {age}s away"));
    }
    let host = request.header("Host").unwrap_or_default();
    let host = host.split(':').next().unwrap_or_default();
    let repo_path = repository_path(request.path());
    let wanted = sigv4::expected_password(
        &expected.secret,
        timestamp,
        host,
        &repo_path,
        &expected.region,
    );
    if password == wanted {
        Auth::Accepted
    } else {
        Auth::Rejected("signature mismatch".into())
    }
}

/// `/team/demo.git/info/refs` -> `/team/demo.git`: the repository URL's path, which is what
/// git sends as the credential `path` and so what is signed.
fn repository_path(path: &str) -> String {
    match path.find(".git/") {
        Some(end) => path[..end + 4].to_string(),
        None => path.to_string(),
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
}

/// `YYYYMMDDTHHMMSS` (UTC) to Unix seconds.
fn parse_timestamp(timestamp: &str) -> u64 {
    let number = |range: std::ops::Range<usize>| timestamp[range].parse::<i64>().unwrap_or(0);
    let (year, month, day) = (number(0..4), number(4..6), number(6..8));
    let seconds = number(9..11) * 3600 + number(11..13) * 60 + number(13..15);
    // Days from civil, Howard Hinnant's algorithm.
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(days * 86_400 + seconds).unwrap_or(0)
}

/// Runs `git http-backend` as a CGI program for one request.
fn backend(root: &PathBuf, request: &Request) -> Response {
    let mut command = Command::new("git");
    command
        .arg("http-backend")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HOME", root)
        .env("GIT_PROJECT_ROOT", root)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("REMOTE_USER", "codecommit-user")
        .env("REMOTE_ADDR", "127.0.0.1")
        .env("REQUEST_METHOD", &request.method)
        .env("PATH_INFO", request.path())
        .env("QUERY_STRING", request.query())
        .env("CONTENT_LENGTH", request.body.len().to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (header, variable) in [
        ("Content-Type", "CONTENT_TYPE"),
        ("Content-Encoding", "HTTP_CONTENT_ENCODING"),
        ("Git-Protocol", "GIT_PROTOCOL"),
    ] {
        if let Some(value) = request.header(header) {
            command.env(variable, value);
        }
    }
    let mut child = command.spawn().expect("spawn git http-backend");
    let mut stdin = child.stdin.take().expect("piped");
    let body = request.body.clone();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&body);
    });
    let output = child.wait_with_output().expect("git http-backend");
    let _ = writer.join();
    cgi_response(&output.stdout)
}

fn cgi_response(output: &[u8]) -> Response {
    let split = output
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|p| (p, 4))
        .or_else(|| output.windows(2).position(|w| w == b"\n\n").map(|p| (p, 2)));
    let Some((end, gap)) = split else {
        return Response::new(500, output.to_vec());
    };
    let head = String::from_utf8_lossy(&output[..end]);
    let mut response = Response::new(200, output[end + gap..].to_vec());
    for line in head.lines() {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("Status") {
            response.status = value
                .split_whitespace()
                .next()
                .and_then(|s| s.parse().ok())
                .unwrap_or(500);
        } else {
            response = response.header(name.trim(), value);
        }
    }
    response
}

#[test]
fn timestamps_parse_to_unix_time() {
    assert_eq!(parse_timestamp("20261128T093000"), 1_795_858_200);
    assert_eq!(parse_timestamp("20200229T235959"), 1_583_020_799);
}
