//! Which successful requests get an access line on a route with `access_sample` below 1: a
//! hash of the request id against the ratio, so one request is in or out everywhere it is
//! logged (replicas, retries of the same id), with no random number drawn per request.
//! Errors, refusals and slow requests are always logged; that decision is `proxy::finish`'s.

/// Whether the request `id` falls in the sampled fraction `ratio` (0 to 1).
pub fn sampled(id: &str, ratio: f64) -> bool {
    if ratio >= 1.0 {
        return true;
    }
    // FNV-1a, then a SplitMix64 finaliser so short ids spread over the whole range.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in id.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^= h >> 31;
    // The top 53 bits as a fraction in [0, 1).
    ((h >> 11) as f64) * (1.0 / (1u64 << 53) as f64) < ratio
}

#[cfg(test)]
mod tests {
    use super::sampled;

    #[test]
    fn sampling_is_deterministic_and_keeps_about_the_ratio() {
        let ids: Vec<String> = (0..20_000).map(|i| format!("{i:032x}")).collect();
        let kept = ids.iter().filter(|id| sampled(id, 0.1)).count();
        assert!((1_700..2_300).contains(&kept), "about 10% kept: {kept}");
        assert!(ids.iter().all(|id| sampled(id, 0.1) == sampled(id, 0.1)), "same id, same answer");
        assert!(ids.iter().all(|id| sampled(id, 1.0) && !sampled(id, 0.0)));
        // A request in at 10% is in at every higher ratio.
        assert!(ids.iter().filter(|id| sampled(id, 0.1)).all(|id| sampled(id, 0.5)));
    }
}
