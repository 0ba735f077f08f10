//! A server that accepts connections and never answers: a store, an API or instance metadata
//! that "is up" and hangs every caller, the worst case for anything without timeouts.

use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub struct BlackHole {
    port: u16,
    /// Connections held open, unanswered; `None` once closed, when every newcomer is hung up on.
    held: Arc<Mutex<Option<Vec<TcpStream>>>>,
}

impl BlackHole {
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let held = Arc::new(Mutex::new(Some(Vec::new())));
        let keep = Arc::clone(&held);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                match keep.lock().expect("lock").as_mut() {
                    Some(held) => held.push(stream),
                    None => drop(stream.shutdown(std::net::Shutdown::Both)),
                }
            }
        });
        Self { port, held }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    #[track_caller]
    pub fn wait_for_a_caller(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while self
            .held
            .lock()
            .expect("lock")
            .as_ref()
            .is_some_and(Vec::is_empty)
        {
            assert!(Instant::now() < deadline, "nobody called the server");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Hangs up on everyone who connected, and on everyone who will.
    pub fn close(&self) {
        for stream in self.held.lock().expect("lock").take().unwrap_or_default() {
            let _ = stream.shutdown(std::net::Shutdown::Both);
        }
    }
}

impl Drop for BlackHole {
    fn drop(&mut self) {
        self.close();
    }
}
