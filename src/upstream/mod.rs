//! Upstream pools: membership, health-aware round robin (weighted), peers with the pool's
//! timeouts, and active health checks. Owns nothing about routing or sessions: callers say
//! which pool, and for a session which backend.

pub mod breaker;
pub mod client;
pub mod exchange;
pub mod health;
pub mod pool;
pub mod retry;
pub mod session_end;
pub mod token;

pub use pool::{Pool, PoolError};
