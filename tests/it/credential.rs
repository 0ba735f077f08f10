//! `gitkit credential`: against real git, `git http-backend`, and awscli's own output.

use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::support::git_http::{Auth, Expected, GitHttp};
use crate::support::http::{Response, Server};
use crate::support::{ACCESS_KEY, Env, SECRET_KEY, gitkit_bin, stderr, stdout};

const SESSION_TOKEN: &str = "IQoJb3JpZ2luX2VjEXAMPLE+session/token==";

fn request(host: &str, path: &str) -> String {
    format!("protocol=https\nhost={host}\npath={path}\n\n")
}

/// A request for the usual test repository.
fn demo_request() -> String {
    request("git-codecommit.us-east-1.amazonaws.com", "v1/repos/demo")
}

/// Lines of a helper answer that start with `key=`.
fn field(output: &str, key: &str) -> Option<String> {
    output
        .lines()
        .find_map(|line| line.strip_prefix(&format!("{key}=")).map(str::to_string))
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
}

/// Sets up `env` so that git asks gitkit for the loopback server's credentials.
fn use_gitkit_for(env: &Env, server: &GitHttp) {
    let home = env.home();
    let helper = format!("{} credential", gitkit_bin());
    for (key, value) in [
        ("credential.helper", helper.as_str()),
        ("credential.useHttpPath", "true"),
        (
            "gitkit.codecommit.allowHost",
            &format!("http://127.0.0.1:{}", server.port()),
        ),
        ("gitkit.codecommit.region", "eu-west-1"),
    ] {
        env.git(&home, ["config", "--global", key, value]).success();
    }
}

#[test]
fn clone_and_push_through_git_http_backend_with_signed_passwords() {
    let mut env = Env::new();
    env.set_aws_keys();
    env.set("AWS_SESSION_TOKEN", SESSION_TOKEN);
    let served = env.served_repository("demo.git");
    let server = GitHttp::start(
        &served,
        Expected {
            access_key: ACCESS_KEY.into(),
            secret: SECRET_KEY.into(),
            session_token: Some(SESSION_TOKEN.into()),
            region: "eu-west-1".into(),
        },
    );
    use_gitkit_for(&env, &server);

    let work = env.dir("work");
    env.git(&work, ["clone", "-q", &server.url("demo.git"), "clone"])
        .success();
    let clone = work.join("clone");
    assert_eq!(
        std::fs::read_to_string(clone.join("README.md")).expect("cloned"),
        "hello\n"
    );

    std::fs::write(clone.join("notes.txt"), "pushed through gitkit\n").expect("write");
    env.git(&clone, ["add", "notes.txt"]).success();
    env.git(&clone, ["commit", "-q", "-m", "second"]).success();
    env.git(&clone, ["push", "-q", "origin", "main"]).success();

    let pushed = env
        .git(&served.join("demo.git"), ["show", "main:notes.txt"])
        .success();
    assert_eq!(stdout(&pushed), "pushed through gitkit\n");
    let outcomes = server.outcomes();
    assert!(outcomes.contains(&Auth::Accepted), "{outcomes:?}");
    assert!(
        !outcomes.iter().any(|o| matches!(o, Auth::Rejected(_))),
        "{outcomes:?}"
    );
}

#[test]
fn wrong_secret_key_gets_403_and_the_clone_fails() {
    let mut env = Env::new();
    env.set("AWS_ACCESS_KEY_ID", ACCESS_KEY);
    env.set("AWS_SECRET_ACCESS_KEY", "not-the-secret-the-server-knows");
    let served = env.served_repository("demo.git");
    let expected = Expected {
        access_key: ACCESS_KEY.into(),
        secret: SECRET_KEY.into(),
        session_token: None,
        region: "eu-west-1".into(),
    };
    let server = GitHttp::start(&served, expected);
    use_gitkit_for(&env, &server);

    let work = env.dir("work");
    env.git(&work, ["clone", "-q", &server.url("demo.git"), "clone"])
        .failure();
    assert!(
        server
            .outcomes()
            .contains(&Auth::Rejected("signature mismatch".into())),
        "{:?}",
        server.outcomes()
    );
    assert!(!work.join("clone").join("README.md").exists());
}

/// Runs awscli and gitkit on the same input until both sign in the same second, then returns
/// both outputs.
fn awscli_and_gitkit(env: &Env, input: &str) -> (String, String) {
    for _ in 0..10 {
        let aws = env
            .command("aws")
            .args(["codecommit", "credential-helper", "get"])
            .stdin(input)
            .output();
        assert!(
            aws.status.success(),
            "awscli is needed for this test (pip install awscli): {}",
            stderr(&aws)
        );
        let ours = env.gitkit(["credential", "get"]).stdin(input).success();
        let (aws, ours) = (stdout(&aws), stdout(&ours));
        let second = |text: &str| field(text, "password").map(|p| p[..15].to_string());
        if second(&aws) == second(&ours) {
            return (aws, ours);
        }
    }
    panic!("awscli and gitkit never signed within the same second");
}

#[test]
fn username_and_password_are_byte_identical_to_awscli() {
    let mut env = Env::new();
    env.set_aws_keys();
    let hosts = [
        ("git-codecommit.us-east-1.amazonaws.com", "v1/repos/demo"),
        (
            "git-codecommit-fips.us-gov-west-1.amazonaws.com",
            "v1/repos/my repo",
        ),
        (
            "git-codecommit.cn-north-1.amazonaws.com.cn",
            "v1/repos/china",
        ),
        (
            "vpce-0123456789abcdef0-abcdefgh.git-codecommit.eu-west-1.vpce.amazonaws.com",
            "v1/repos/private",
        ),
        (
            "git-codecommit.ap-southeast-2.amazonaws.com:443",
            "v1/repos/with-port",
        ),
    ];
    for (with_token, (host, path)) in [false, true]
        .into_iter()
        .zip(hosts.iter().cycle())
        .chain(hosts.iter().map(|h| (false, h)))
    {
        if with_token {
            env.set("AWS_SESSION_TOKEN", SESSION_TOKEN);
        } else {
            env.remove("AWS_SESSION_TOKEN");
        }
        let input = request(host, path);
        let (aws, ours) = awscli_and_gitkit(&env, &input);
        assert!(!aws.is_empty(), "awscli answered nothing for {host}");
        assert!(
            ours.starts_with(&aws),
            "for {host}:\nawscli:\n{aws}\ngitkit:\n{ours}"
        );
        let expiry: u64 = field(&ours, "password_expiry_utc")
            .expect("expiry")
            .parse()
            .expect("number");
        let now = unix_now();
        assert!(
            expiry > now && expiry <= now + 15 * 60,
            "expiry {expiry}, now {now}"
        );
    }
}

#[test]
fn look_alike_and_plain_http_hosts_get_nothing() {
    let mut env = Env::new();
    env.set_aws_keys();
    for input in [
        request(
            "git-codecommit.us-east-1.amazonaws.com.evil.example",
            "v1/repos/x",
        ),
        request("evil.example", "git-codecommit.us-east-1.amazonaws.com"),
        request("github.com", "owner/repo.git"),
        "protocol=http\nhost=git-codecommit.us-east-1.amazonaws.com\npath=v1/repos/x\n\n".into(),
        "url=https://git-codecommit.us-east-1.amazonaws.com@evil.example/v1/repos/x\n\n".into(),
    ] {
        let output = env
            .gitkit(["credential", "get"])
            .stdin(input.clone())
            .success();
        assert_eq!(stdout(&output), "", "for {input:?}");
        assert_eq!(stderr(&output), "", "for {input:?}");
    }
}

#[test]
fn url_form_is_accepted() {
    let mut env = Env::new();
    env.set_aws_keys();
    let output = env
        .gitkit(["credential", "get"])
        .stdin("capability[]=authtype\ncapability[]=state\nurl=https://git-codecommit.us-east-1.amazonaws.com/v1/repos/demo\nwwwauth[]=Basic realm=\"x\"\nfuture=1\n\n")
        .success();
    assert_eq!(
        field(&stdout(&output), "username").as_deref(),
        Some(ACCESS_KEY)
    );
    assert!(field(&stdout(&output), "password").is_some());
}

#[test]
fn missing_path_says_to_set_use_http_path() {
    let mut env = Env::new();
    env.set_aws_keys();
    let output = env
        .gitkit(["credential", "get"])
        .stdin("protocol=https\nhost=git-codecommit.us-east-1.amazonaws.com\n\n")
        .success();
    assert_eq!(stdout(&output), "");
    let message = stderr(&output);
    assert_eq!(message.lines().count(), 1, "{message}");
    assert!(
        message
            .contains("credential.https://git-codecommit.us-east-1.amazonaws.com.useHttpPath true"),
        "{message}"
    );
}

#[test]
fn bad_input_is_refused_and_answers_nothing() {
    let mut env = Env::new();
    env.set_aws_keys();
    for input in [
        "protocol=https\nhost=git-codecommit.us-east-1.amazonaws.com\npath=v1/repos/a\0b\n\n",
        "protocol=https\r\nhost=git-codecommit.us-east-1.amazonaws.com\npath=v1/repos/a\n\n",
        "protocol=https\nnot a key value line\n\n",
    ] {
        let output = env.gitkit(["credential", "get"]).stdin(input).failure();
        assert_eq!(stdout(&output), "", "for {input:?}");
        assert!(
            stderr(&output).starts_with("gitkit: "),
            "{}",
            stderr(&output)
        );
    }
}

#[test]
fn store_and_erase_do_nothing() {
    let mut env = Env::new();
    env.set_aws_keys();
    for operation in ["store", "erase"] {
        let output = env
            .gitkit(["credential", operation])
            .stdin("protocol=https\nhost=git-codecommit.us-east-1.amazonaws.com\nusername=u\npassword=p\n\n")
            .success();
        assert_eq!(stdout(&output), "");
        assert_eq!(stderr(&output), "");
    }
    assert_eq!(
        std::fs::read_dir(env.home()).expect("home").count(),
        1,
        "only .gitconfig"
    );
}

#[test]
fn no_credentials_gives_one_line_with_a_hint_without_waiting_on_metadata() {
    let mut env = Env::new();
    // Instance metadata that accepts connections and never answers: the worst case.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    env.remove("AWS_EC2_METADATA_DISABLED");
    env.set(
        "AWS_EC2_METADATA_SERVICE_ENDPOINT",
        format!("http://{}", silent.local_addr().expect("addr")),
    );
    // A chain deadline far below the bound asserted: a loaded machine cannot close the gap.
    env.set("GITKIT_TEST_CHAIN_DEADLINE_MS", "1500");
    let started = Instant::now();
    let output = env
        .gitkit(["credential", "get"])
        .stdin(demo_request())
        .success();
    let waited = started.elapsed();
    assert_eq!(stdout(&output), "");
    let message = stderr(&output);
    assert_eq!(message.lines().count(), 1, "{message}");
    assert!(message.contains("no AWS credentials found"), "{message}");
    assert!(message.contains("hint: "), "{message}");
    assert!(
        waited < Duration::from_secs(8),
        "waited {waited:?} for instance metadata: the deadline was 1.5 s"
    );
}

#[test]
fn secrets_never_reach_the_log() {
    let mut env = Env::new();
    env.set_aws_keys();
    env.set("AWS_SESSION_TOKEN", SESSION_TOKEN);
    env.set("GITKIT_LOG", "trace");
    let output = env
        .gitkit(["credential", "get"])
        .stdin(demo_request())
        .success();
    let log = stderr(&output);
    assert!(log.contains("signing"), "the log says what happened: {log}");
    let password = field(&stdout(&output), "password").expect("password");
    let signature = &password[16..];
    for secret in [SECRET_KEY, SESSION_TOKEN, signature] {
        assert!(!log.contains(secret), "{secret} leaked into:\n{log}");
    }
}

#[test]
fn profile_from_the_shared_credentials_file() {
    let env = Env::new();
    let aws_dir = env.home().join(".aws");
    std::fs::create_dir_all(&aws_dir).expect("mkdir");
    std::fs::write(
        aws_dir.join("credentials"),
        "[default]\naws_access_key_id = AKIADEFAULT\naws_secret_access_key = s1\n\n\
         [work]\naws_access_key_id = AKIAWORK\naws_secret_access_key = s2\n",
    )
    .expect("write");
    let input = demo_request();
    let username =
        |cmd: crate::support::Cmd| field(&stdout(&cmd.stdin(input.clone()).success()), "username");
    assert_eq!(
        username(env.gitkit(["credential", "get"])).as_deref(),
        Some("AKIADEFAULT")
    );
    assert_eq!(
        username(env.gitkit(["credential", "get"]).env("AWS_PROFILE", "work")).as_deref(),
        Some("AKIAWORK")
    );
    assert_eq!(
        username(env.gitkit(["credential", "--profile", "work", "get"])).as_deref(),
        Some("AKIAWORK")
    );
}

#[test]
fn credential_process_profile() {
    let env = Env::new();
    let aws_dir = env.home().join(".aws");
    std::fs::create_dir_all(&aws_dir).expect("mkdir");
    let script = aws_dir.join("creds.sh");
    std::fs::write(
        &script,
        "#!/bin/sh\necho '{\"Version\": 1, \"AccessKeyId\": \"AKIAPROCESS\", \"SecretAccessKey\": \"s\", \"SessionToken\": \"tok\", \"Expiration\": \"2999-01-01T00:00:00Z\"}'\n",
    )
    .expect("write");
    Command::new("chmod")
        .arg("+x")
        .arg(&script)
        .status()
        .expect("chmod");
    std::fs::write(
        aws_dir.join("config"),
        format!(
            "[profile proc]\ncredential_process = {}\n",
            script.display()
        ),
    )
    .expect("write");
    let output = env
        .gitkit(["credential", "--profile", "proc", "get"])
        .stdin(demo_request())
        .success();
    assert_eq!(
        field(&stdout(&output), "username").as_deref(),
        Some("AKIAPROCESS%tok")
    );
}

/// SageMaker Studio and ECS hand out credentials from a container endpoint.
#[test]
fn container_credentials_endpoint() {
    let mut env = Env::new();
    let server = Server::start(|request| {
        if request.header("Authorization") != Some("container-auth-token") {
            return Response::new(401, "unauthorized");
        }
        Response::json(
            200,
            r#"{"AccessKeyId":"ASIACONTAINER","SecretAccessKey":"s","Token":"ctok","Expiration":"2999-01-01T00:00:00Z"}"#,
        )
    });
    env.set(
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        format!("{}/creds", server.url()),
    );
    env.set("AWS_CONTAINER_AUTHORIZATION_TOKEN", "container-auth-token");
    let output = env
        .gitkit(["credential", "get"])
        .stdin(demo_request())
        .success();
    assert_eq!(
        field(&stdout(&output), "username").as_deref(),
        Some("ASIACONTAINER%ctok")
    );
}

/// Notebook instances get credentials from IMDSv2: a token first, then the role's keys.
#[test]
fn instance_metadata_v2() {
    let mut env = Env::new();
    let server = Server::start(|request| match (request.method.as_str(), request.path()) {
        ("PUT", "/latest/api/token") => {
            if request
                .header("x-aws-ec2-metadata-token-ttl-seconds")
                .is_none()
            {
                return Response::new(400, "missing ttl");
            }
            Response::new(200, "imds-token").header("x-aws-ec2-metadata-token-ttl-seconds", "21600")
        }
        (_, _) if request.header("x-aws-ec2-metadata-token") != Some("imds-token") => {
            Response::new(401, "")
        }
        ("GET", "/latest/meta-data/iam/security-credentials/") => {
            Response::new(200, "notebook-role")
        }
        ("GET", "/latest/meta-data/iam/security-credentials/notebook-role") => Response::json(
            200,
            r#"{"Code":"Success","Type":"AWS-HMAC","AccessKeyId":"ASIAINSTANCE","SecretAccessKey":"s","Token":"itok","Expiration":"2999-01-01T00:00:00Z","LastUpdated":"2026-01-01T00:00:00Z"}"#,
        ),
        _ => Response::new(404, ""),
    });
    env.remove("AWS_EC2_METADATA_DISABLED");
    env.set("AWS_EC2_METADATA_SERVICE_ENDPOINT", server.url());
    let output = env
        .gitkit(["credential", "get"])
        .stdin(demo_request())
        .success();
    assert_eq!(
        field(&stdout(&output), "username").as_deref(),
        Some("ASIAINSTANCE%itok"),
        "{}",
        stderr(&output)
    );
}

/// Guards signing over a name CodeCommit does not sign: awscli answers nothing for an
/// upper-case CodeCommit host, and neither does gitkit, which says how to fix the remote.
#[test]
fn upper_case_hosts_get_what_awscli_gives_and_a_hint() {
    let mut env = Env::new();
    env.set_aws_keys();
    for host in [
        "GIT-CODECOMMIT.US-EAST-1.AMAZONAWS.COM",
        "GIT-CODECOMMIT.EU-WEST-1.AMAZONAWS.COM:443",
    ] {
        let input = request(host, "v1/repos/demo");
        let aws = env
            .command("aws")
            .args(["codecommit", "credential-helper", "get"])
            .stdin(input.clone())
            .output();
        assert!(aws.status.success(), "{}", stderr(&aws));
        let ours = env.gitkit(["credential", "get"]).stdin(input).success();
        assert_eq!(stdout(&ours), stdout(&aws), "for {host}");
        let said = stderr(&ours);
        assert_eq!(said.lines().count(), 1, "{said}");
        assert!(
            said.contains(&host.split(':').next().unwrap_or(host).to_ascii_lowercase()),
            "names the lower-case host: {said}"
        );
    }
}
