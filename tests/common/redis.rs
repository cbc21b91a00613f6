//! A real `redis-server` on a free loopback port, with no persistence, killed when dropped.
//! `scripts/deps.sh` (run by `make test`) installs it; a missing server fails the test.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

use super::{free_port, wait_until, Proc};

pub struct Redis {
    pub port: u16,
    proc: Proc,
}

impl Redis {
    pub fn start() -> Redis {
        Redis::start_on(free_port())
    }

    /// Starts on `port` (to restart a stopped server where clients expect it).
    pub fn start_on(port: u16) -> Redis {
        let proc = Proc::spawn(
            "redis-server",
            Command::new("redis-server")
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
                .stdout(Stdio::null()),
        );
        let redis = Redis { port, proc };
        wait_until("redis-server PONG", Duration::from_secs(10), || redis.ping());
        redis
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    pub fn ping(&self) -> bool {
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) else { return false };
        let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
        let mut buf = [0u8; 7];
        s.write_all(b"PING\r\n").is_ok() && s.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n"
    }

    /// Stops the server (SIGKILL: as abrupt as a crashed or partitioned Redis).
    pub fn stop(mut self) -> u16 {
        let _ = self.proc.child.kill();
        let _ = self.proc.child.wait();
        self.port
    }
}
