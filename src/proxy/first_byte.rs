//! The time-to-first-byte timeout: how long a backend may take to start its response (the
//! header), separately from how long a started response (an SSE stream) may stay silent.
//!
//! Pingora 0.9 applies one `read_timeout` to every upstream read and offers no hook to change
//! it once the header is in, so the peer carries the long idle timeout and this timer cuts
//! the wait for the header short: when it fires first, it shuts the upstream socket down, the
//! pending read fails, and the proxy answers 504 (or retries a safe request elsewhere).
//!
//! The watch knows the connection by its descriptor number and the socket's cookie (Linux's
//! `SO_COOKIE`, unique for the kernel's lifetime): Pingora may close the connection and the
//! number may be reused before the watch fires, so firing duplicates the number, checks the
//! duplicate's cookie and shuts down only the socket it watched, through its own duplicate.
//! It is armed only when `first_byte` is shorter than `idle` (else Pingora's own read
//! timeout already is the first-byte timeout). The clock starts once the request is fully
//! sent (a slow upload is the client's time) and stops when the header arrives or the
//! request ends. Upstream connections are HTTP/1.1 (Pingora's default ALPN), so shutting one
//! down never touches another request's stream.
//!
//! The same watch cuts the wait when the client leaves: an HTTP/1 client's socket is
//! watched while its request waits for the header, and one that closes or resets meanwhile
//! has the upstream socket shut down at the next sweep, and the attempt ends as the client's
//! abort (no reply, no retry, nothing told the circuit breaker). Pingora notices a client
//! that leaves only while it reads the client, and it stops reading once bytes of a next
//! request arrive (pipelining): a client that sent one byte more and left held the backend's
//! connection until the header came (found by an attack). One `poll` per shard and sweep
//! asks every waiting client socket at once.

//!
//! Cost: a task and a tokio timer per request cost about 10 % of throughput in the shared
//! benchmark, so watches are plain entries in a few sharded lists instead, swept every
//! [`TICK`] by one thread: per request that is one small allocation and one uncontended lock
//! (holding a duplicate descriptor instead cost a `dup` and a `close`). The cookie is read
//! with `getsockopt` once per upstream connection and kept by descriptor number ([`COOKIES`]):
//! a pooled connection holds its number while it lives, so a reused one finds its own; a new
//! connection forgets what an earlier holder of the number left (read per request, the
//! system call cost 2 % of throughput). The price is resolution: a timeout fires up to one
//! tick late.

use std::net::{Shutdown, TcpStream};
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Once};
use std::time::{Duration, Instant};

/// How often the sweeper looks at the watches.
pub const TICK: Duration = Duration::from_millis(20);

const SHARDS: usize = 8;

/// A watch's phase, in one atomic: [`ARMED`] (connected, the request still going up: the clock
/// has not started), [`DONE`] (the header arrived, or the request ended), [`EXPIRED`] (fired:
/// the socket was shut down), or else the deadline for the header, in nanoseconds since
/// [`base`]; or [`LEFT`] (the client left: the socket was shut down). Changes are compare-and-swaps, so a header that arrived first can never have its
/// connection cut afterwards, and one that arrives after the cut is refused.
type Phase = AtomicU64;
const ARMED: u64 = u64::MAX;
const DONE: u64 = u64::MAX - 1;
const EXPIRED: u64 = u64::MAX - 2;
const LEFT: u64 = u64::MAX - 3;

/// The instant deadlines count from.
fn base() -> Instant {
    static BASE: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    *BASE.get_or_init(Instant::now)
}

fn nanos_since_base(t: Instant) -> u64 {
    u64::try_from(t.saturating_duration_since(base()).as_nanos()).unwrap_or(LEFT - 1).min(LEFT - 1)
}

struct Watch {
    phase: Arc<Phase>,
    fd: RawFd,
    cookie: u64,
    client: Option<Client>,
}

/// A client's socket: its descriptor number and its cookie.
#[derive(Debug, Clone, Copy)]
pub struct Client {
    pub fd: RawFd,
    pub cookie: u64,
}

static WATCHES: [Mutex<Vec<Watch>>; SHARDS] = [const { Mutex::new(Vec::new()) }; SHARDS];
static NEXT_SHARD: AtomicUsize = AtomicUsize::new(0);
static SWEEPER: Once = Once::new();
static SWEEPING: AtomicBool = AtomicBool::new(false);

/// Socket cookies by descriptor number (0: not known), for numbers below its length.
static COOKIES: [AtomicU64; 1 << 16] = [const { AtomicU64::new(0) }; 1 << 16];

thread_local! {
    /// Each worker thread registers in its own shard, so registrations do not contend.
    static SHARD: usize = NEXT_SHARD.fetch_add(1, Ordering::Relaxed) % SHARDS;
}

pub struct FirstByteTimer {
    phase: Arc<Phase>,
    after: Duration,
}

impl FirstByteTimer {
    /// Watches the upstream connection `fd` (and `client`, while the header is awaited); the
    /// clock starts with [`FirstByteTimer::start`]. None if the socket's cookie cannot be read
    /// or the sweeper thread could not start: the request then runs under the idle timeout
    /// alone.
    pub fn arm(fd: RawFd, after: Duration, client: Option<Client>) -> Option<FirstByteTimer> {
        SWEEPER.call_once(start_sweeper);
        if !SWEEPING.load(Ordering::Acquire) {
            return None;
        }
        // Pingora hands us the descriptor of the live connection it is about to use: the
        // cookie read now (or kept since it connected) is that connection's.
        let cookie = known_cookie(fd)?;
        let phase = Arc::new(Phase::new(ARMED));
        let watch = Watch { phase: Arc::clone(&phase), fd, cookie, client };
        let shard = SHARD.with(|s| *s);
        WATCHES.get(shard)?.lock().ok()?.push(watch);
        Some(FirstByteTimer { phase, after })
    }

    /// The request is fully sent: the backend's time starts now (a slow upload is the
    /// client's time, never counted against the backend).
    pub fn start(&self) {
        let due = nanos_since_base(Instant::now() + self.after);
        let _ = self.phase.compare_exchange(ARMED, due, Ordering::AcqRel, Ordering::Acquire);
    }

    /// The response header arrived: stop the clock. False if the timer fired first; the
    /// connection is then shut down and must not be used for this response or reused.
    pub fn arrived(&self) -> bool {
        let cut = |p| p == EXPIRED || p == LEFT;
        self.phase.fetch_update(Ordering::AcqRel, Ordering::Acquire, |p| (!cut(p)).then_some(DONE)).is_ok()
    }

    pub fn expired(&self) -> bool {
        self.phase.load(Ordering::Acquire) == EXPIRED
    }

    /// The client left while the header was awaited, and the upstream socket was shut down.
    pub fn client_left(&self) -> bool {
        self.phase.load(Ordering::Acquire) == LEFT
    }
}

impl Drop for FirstByteTimer {
    fn drop(&mut self) {
        self.arrived();
    }
}

fn start_sweeper() {
    let spawned = std::thread::Builder::new().name("first-byte".into()).spawn(|| {
        // Scratch for the client sockets each sweep asks about, kept for the thread's life.
        let mut asked = (Vec::new(), Vec::new());
        loop {
            std::thread::sleep(TICK);
            sweep(Instant::now(), &mut asked);
        }
    });
    match spawned {
        Ok(_) => SWEEPING.store(true, Ordering::Release),
        // Without the sweeper no watch could fire or be released: none are armed.
        Err(e) => tracing::error!(error = %e, "could not start the first-byte timer thread; first_byte_timeout is off"),
    }
}

/// Fires the watches past their deadline or whose client left, and drops the finished ones.
/// The shard is locked only to take and to give back its list, so the system calls never
/// hold up a request registering a watch.
fn sweep(now: Instant, asked: &mut (Vec<usize>, Vec<libc::pollfd>)) {
    for shard in &WATCHES {
        let Ok(taken) = shard.lock().map(|mut w| std::mem::take(&mut *w)) else { continue };
        let mut pending: Vec<Watch> = taken.into_iter().filter(|w| keep(w, now)).collect();
        cut_where_clients_left(&pending, asked);
        if let Ok(mut watches) = shard.lock() {
            watches.append(&mut pending);
        }
    }
}

/// Whether a watch is still waiting; fires it when due. The phase turns [`EXPIRED`] before
/// the shutdown, and only from the deadline it had: a header that `arrived` first (the phase
/// is [`DONE`]) keeps its connection.
fn keep(w: &Watch, now: Instant) -> bool {
    match w.phase.load(Ordering::Acquire) {
        ARMED => true,
        DONE | EXPIRED | LEFT => false,
        due if due > nanos_since_base(now) => true,
        due => {
            if w.phase.compare_exchange(due, EXPIRED, Ordering::AcqRel, Ordering::Acquire).is_ok() {
                cut(w.fd, w.cookie);
            }
            false
        }
    }
}

/// Whether the watch waits for the header (its request is fully sent).
fn waiting(phase: u64) -> bool {
    phase < LEFT
}

/// Shuts down the upstream socket of every waiting watch whose client closed, half-closed or
/// reset its connection: one `poll` (that waits for nothing) asks every such client socket.
/// `asked` is scratch space kept across shards and sweeps: the watches asked about, and the
/// sockets asked.
fn cut_where_clients_left(watches: &[Watch], asked: &mut (Vec<usize>, Vec<libc::pollfd>)) {
    let (which, fds) = asked;
    which.clear();
    fds.clear();
    for (i, w) in watches.iter().enumerate() {
        if let (Some(c), true) = (w.client, waiting(w.phase.load(Ordering::Acquire))) {
            which.push(i);
            fds.push(libc::pollfd { fd: c.fd, events: libc::POLLRDHUP, revents: 0 });
        }
    }
    if fds.is_empty() {
        return;
    }
    let Ok(n) = libc::nfds_t::try_from(fds.len()) else { return };
    // SAFETY: `fds` is a live array of `n` pollfd structures that poll may write `revents`
    // into; a timeout of 0 returns at once. A number closed since the watch was armed is
    // reported as POLLNVAL, and one given to another socket is told apart by its cookie.
    if unsafe { libc::poll(fds.as_mut_ptr(), n, 0) } <= 0 {
        return;
    }
    let gone = libc::POLLRDHUP | libc::POLLHUP | libc::POLLERR;
    for (i, answer) in which.iter().zip(fds.iter()) {
        let (Some(w), true) = (watches.get(*i), answer.revents & gone != 0) else { continue };
        let Some(client) = w.client else { continue };
        if pinned(client.fd, client.cookie).is_none() {
            continue;
        }
        let phase = w.phase.load(Ordering::Acquire);
        if waiting(phase) && w.phase.compare_exchange(phase, LEFT, Ordering::AcqRel, Ordering::Acquire).is_ok() {
            cut(w.fd, w.cookie);
        }
    }
}

/// A new upstream connection took descriptor number `fd`: a cookie kept for an earlier
/// holder of the number is no longer true.
pub fn connected(fd: RawFd) {
    if let Some(slot) = usize::try_from(fd).ok().and_then(|i| COOKIES.get(i)) {
        slot.store(0, Ordering::Relaxed);
    }
}

/// The cookie of the live connection on `fd`: kept since [`connected`] and the first read,
/// or read now.
fn known_cookie(fd: RawFd) -> Option<u64> {
    let slot = usize::try_from(fd).ok().and_then(|i| COOKIES.get(i));
    match slot.map(|s| s.load(Ordering::Relaxed)) {
        Some(cookie) if cookie != 0 => Some(cookie),
        _ => {
            let cookie = cookie_of(fd)?;
            if let Some(slot) = slot {
                slot.store(cookie, Ordering::Relaxed);
            }
            Some(cookie)
        }
    }
}

/// The socket cookie of `fd`: an id the kernel never reuses, unlike descriptor numbers.
pub fn cookie_of(fd: RawFd) -> Option<u64> {
    let mut cookie: u64 = 0;
    let mut len = std::mem::size_of::<u64>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `cookie`, a live u64 of that size;
    // on a descriptor that is not a socket (or not open) it fails and writes nothing.
    let rc = unsafe { libc::getsockopt(fd, libc::SOL_SOCKET, libc::SO_COOKIE, (&raw mut cookie).cast(), &raw mut len) };
    (rc == 0 && len as usize == std::mem::size_of::<u64>()).then_some(cookie)
}

/// Shuts down the socket with `cookie`, if `fd` still is it. The number may have been closed
/// and given to another file since the watch was armed: the duplicate taken here pins
/// whatever it now names, and its cookie tells whether that is the watched socket. Shutting
/// down fails only if the peer already closed it, which ends the read as well.
fn cut(fd: RawFd, cookie: u64) {
    if let Some(socket) = pinned(fd, cookie) {
        let _ = TcpStream::from(socket).shutdown(Shutdown::Both);
    }
}

/// A duplicate of `fd` if it still is the socket with `cookie` (the duplicate pins whatever
/// the number names now, so the answer stays true while it is held).
fn pinned(fd: RawFd, cookie: u64) -> Option<OwnedFd> {
    // SAFETY: fcntl(F_DUPFD_CLOEXEC) only reads the descriptor table; on a closed number it
    // fails with EBADF. A new descriptor it returns is ours alone, so `OwnedFd` may close it.
    let dup = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) };
    if dup < 0 {
        return None;
    }
    // SAFETY: see above: `dup` is a fresh descriptor nothing else owns.
    let dup = unsafe { OwnedFd::from_raw_fd(dup) };
    use std::os::fd::AsRawFd;
    (cookie_of(dup.as_raw_fd()) == Some(cookie)).then_some(dup)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::net::TcpListener;
    use std::os::fd::AsRawFd;

    /// Held by every test here: they open and close descriptors, and one of them needs the
    /// number it just closed back, which the others would take.
    static SOCKETS: Mutex<()> = Mutex::new(());

    /// A connected pair: (the proxy's end, the backend's end).
    fn pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let ours = TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
        let (theirs, _) = listener.accept().expect("accept");
        (ours, theirs)
    }

    fn sees_eof(theirs: &mut TcpStream) -> bool {
        theirs.set_read_timeout(Some(Duration::from_millis(200))).expect("timeout");
        matches!(theirs.read(&mut [0u8; 1]), Ok(0))
    }

    #[test]
    fn firing_shuts_down_the_watched_connection() {
        let _one_at_a_time = SOCKETS.lock().unwrap_or_else(|e| e.into_inner());
        let (ours, mut theirs) = pair();
        let cookie = cookie_of(ours.as_raw_fd()).expect("a socket has a cookie");
        cut(ours.as_raw_fd(), cookie);
        assert!(sees_eof(&mut theirs), "the backend sees the connection end");
    }

    #[test]
    fn firing_after_the_number_was_reused_leaves_the_new_connection_alone() {
        let _one_at_a_time = SOCKETS.lock().unwrap_or_else(|e| e.into_inner());
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let connect = || {
            let ours = TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
            (ours, listener.accept().expect("accept").0)
        };
        let (ours, _theirs) = connect();
        let (fd, cookie) = (ours.as_raw_fd(), cookie_of(ours.as_raw_fd()).expect("cookie"));
        drop(ours);
        // The lowest free number is the one just closed, and a connect is the next to take
        // one (tests in this binary run on other threads, so retry until this one gets it).
        let (other, mut other_peer) =
            (0..1000).map(|_| connect()).find(|(o, _)| o.as_raw_fd() == fd).expect("the descriptor number is reused");
        cut(fd, cookie);
        assert!(!sees_eof(&mut other_peer), "another connection on the same number must survive");
        drop(other);
    }

    #[test]
    fn a_kept_cookie_is_the_connections_own_until_a_new_connection_takes_the_number() {
        let _one_at_a_time = SOCKETS.lock().unwrap_or_else(|e| e.into_inner());
        let (ours, _theirs) = pair();
        let fd = ours.as_raw_fd();
        let real = cookie_of(fd).expect("cookie");
        // What an earlier connection on this number left behind is believed until the new
        // connection says it is new...
        COOKIES[fd as usize].store(real ^ 1, Ordering::Relaxed);
        assert_eq!(known_cookie(fd), Some(real ^ 1), "kept: nothing is read");
        connected(fd);
        assert_eq!(known_cookie(fd), Some(real), "a new connection on the number is read afresh");
        // ...and its own is kept for its reuses.
        assert_eq!(known_cookie(fd), Some(real));
    }

    #[test]
    fn a_client_that_sent_more_is_waited_for_and_one_that_left_lets_go_of_the_backend() {
        let _one_at_a_time = SOCKETS.lock().unwrap_or_else(|e| e.into_inner());
        let (upstream, mut backend) = pair();
        let (client_end, mut client) = pair();
        let client_of = |s: &TcpStream| Client { fd: s.as_raw_fd(), cookie: cookie_of(s.as_raw_fd()).expect("cookie") };
        let far = nanos_since_base(Instant::now() + Duration::from_secs(60));
        let watch = Watch {
            phase: Arc::new(Phase::new(far)),
            fd: upstream.as_raw_fd(),
            cookie: cookie_of(upstream.as_raw_fd()).expect("cookie"),
            client: Some(client_of(&client_end)),
        };
        let watches = [watch];
        let mut asked = (Vec::new(), Vec::new());
        // A pipelined request's first byte: the client is still there.
        std::io::Write::write_all(&mut client, b"X").expect("send");
        cut_where_clients_left(&watches, &mut asked);
        assert!(!sees_eof(&mut backend), "a client that sent more keeps its request");
        assert_eq!(watches[0].phase.load(Ordering::Acquire), far);
        // It leaves, its byte unread.
        client.shutdown(Shutdown::Both).expect("close");
        drop(client);
        cut_where_clients_left(&watches, &mut asked);
        assert!(sees_eof(&mut backend), "the backend sees the connection end");
        assert_eq!(watches[0].phase.load(Ordering::Acquire), LEFT);
        drop(client_end);
    }

    #[test]
    fn a_number_that_is_not_a_socket_has_no_cookie() {
        let _one_at_a_time = SOCKETS.lock().unwrap_or_else(|e| e.into_inner());
        let file = std::fs::File::open("/proc/self/stat").expect("open");
        assert_eq!(cookie_of(file.as_raw_fd()), None);
        assert_eq!(cookie_of(-1), None);
    }
}
