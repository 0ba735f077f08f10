//! A local server that answers as GitHub's REST API documents for the endpoints gitkit uses:
//! `GET /user/keys` (paginated with `Link`), `POST /user/keys` (201, 422), `GET /meta`, with
//! 401 for a bad token, 403 for a token without the scope, and 403 for a request without a
//! User-Agent.

use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use super::http::{Request, Response, Server};

pub const GOOD_TOKEN: &str = "ghp_goodtokenwithwritepublickey";
pub const READ_ONLY_TOKEN: &str = "ghp_tokenwithoutthescope";

#[derive(Default)]
pub struct Account {
    /// This account's keys: (id, title, key).
    pub keys: Vec<(u64, String, String)>,
    /// Keys of other accounts, and deploy keys: adding one is refused with 422.
    pub elsewhere: Vec<String>,
    /// Every request, as (method, path with query).
    pub requests: Vec<(String, String)>,
    /// Host keys `/meta` lists.
    pub host_keys: Vec<String>,
}

pub struct FakeGitHub {
    server: Server,
    pub account: Arc<Mutex<Account>>,
}

impl FakeGitHub {
    pub fn start(account: Account) -> Self {
        let account = Arc::new(Mutex::new(account));
        let state = Arc::clone(&account);
        let base: Arc<Mutex<String>> = Arc::new(Mutex::new(String::new()));
        let base_in = Arc::clone(&base);
        let server = Server::start(move |request| {
            let base = base_in.lock().expect("lock").clone();
            answer(request, &mut state.lock().expect("lock"), &base)
        });
        *base.lock().expect("lock") = format!("{}/api/v3", server.url());
        Self { server, account }
    }

    /// The API root, as a GitHub Enterprise Server's: `http://127.0.0.1:PORT/api/v3`.
    pub fn api_url(&self) -> String {
        format!("{}/api/v3", self.server.url())
    }

    pub fn posts(&self) -> usize {
        self.account
            .lock()
            .expect("lock")
            .requests
            .iter()
            .filter(|(m, _)| m == "POST")
            .count()
    }
}

fn error(status: u16, message: &str) -> Response {
    Response::json(
        status,
        json!({ "message": message, "documentation_url": "https://docs.github.com/rest" })
            .to_string(),
    )
}

fn answer(request: &Request, account: &mut Account, base: &str) -> Response {
    account
        .requests
        .push((request.method.clone(), request.target.clone()));
    if request.header("User-Agent").is_none_or(str::is_empty) {
        return error(
            403,
            "Request forbidden by administrative rules. Please make sure your request has a User-Agent header",
        );
    }
    if request.header("Accept") != Some("application/vnd.github+json")
        || request.header("X-GitHub-Api-Version") != Some("2022-11-28")
    {
        return error(
            400,
            "missing the documented Accept or X-GitHub-Api-Version header",
        );
    }
    let path = request.path().trim_start_matches("/api/v3");
    if path == "/meta" {
        return Response::json(200, json!({ "ssh_keys": account.host_keys }).to_string());
    }
    let token = request
        .header("Authorization")
        .and_then(|v| v.strip_prefix("Bearer "));
    let scopes = match token {
        Some(GOOD_TOKEN) => "write:public_key, repo",
        Some(READ_ONLY_TOKEN) => "repo",
        _ => return error(401, "Bad credentials"),
    };
    match (request.method.as_str(), path) {
        ("GET", "/user/keys") => {
            let query: Vec<(&str, &str)> = request
                .query()
                .split('&')
                .filter_map(|p| p.split_once('='))
                .collect();
            let param = |name| {
                query
                    .iter()
                    .find(|(k, _)| *k == name)
                    .and_then(|(_, v)| v.parse::<usize>().ok())
            };
            let per_page = param("per_page").unwrap_or(30).min(100);
            let page = param("page").unwrap_or(1);
            let pages = account.keys.len().div_ceil(per_page).max(1);
            let items: Vec<Value> = account
                .keys
                .iter()
                .skip((page - 1) * per_page)
                .take(per_page)
                .map(|(id, title, key)| json!({ "id": id, "title": title, "key": key, "verified": true, "read_only": false }))
                .collect();
            let mut links = Vec::new();
            if page < pages {
                links.push(format!(
                    "<{base}/user/keys?per_page={per_page}&page={}>; rel=\"next\"",
                    page + 1
                ));
                links.push(format!(
                    "<{base}/user/keys?per_page={per_page}&page={pages}>; rel=\"last\""
                ));
            }
            let mut response = Response::json(200, Value::Array(items).to_string())
                .header("X-OAuth-Scopes", scopes);
            if !links.is_empty() {
                response = response.header("Link", links.join(", "));
            }
            response
        }
        ("POST", "/user/keys") => {
            if scopes == "repo" {
                return error(404, "Not Found").header("X-OAuth-Scopes", scopes);
            }
            let body: Value = serde_json::from_slice(&request.body).unwrap_or_default();
            let key = body["key"].as_str().unwrap_or_default().to_string();
            let title = body["title"].as_str().unwrap_or_default().to_string();
            let material: String = key.split_whitespace().take(2).collect::<Vec<_>>().join(" ");
            let taken = account.keys.iter().any(|(_, _, k)| *k == material)
                || account.elsewhere.contains(&material);
            if taken {
                return Response::json(
                    422,
                    json!({
                        "message": "Validation Failed",
                        "errors": [{ "resource": "PublicKey", "code": "custom", "field": "key", "message": "key is already in use" }],
                        "documentation_url": "https://docs.github.com/rest/users/keys#create-a-public-ssh-key-for-the-authenticated-user"
                    })
                    .to_string(),
                );
            }
            let id = 1_000_000 + account.keys.len() as u64;
            account.keys.push((id, title.clone(), material.clone()));
            Response::json(201, json!({ "id": id, "title": title, "key": material, "verified": true, "read_only": false }).to_string())
        }
        _ => error(404, "Not Found"),
    }
}
