//! Unit tests for live target statistics: decay (injected instants and tokio's paused
//! clock), quantiles, rates, throughput, the size bound and concurrent observers.

use super::*;
use std::sync::Arc;

const H: Duration = Duration::from_secs(60);

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn ok(at: Instant, total_ms: u64) -> Observation {
    Observation::success(at, Some(ms(total_ms / 10)), ms(total_ms), Some(100))
}

fn near(got: Option<f64>, want: f64, rel: f64) -> bool {
    got.is_some_and(|g| (g - want).abs() <= rel * want.abs().max(1e-9))
}

#[test]
fn rates_count_every_failure_and_429s_apart() {
    let s = TargetStats::new(16, H);
    let t0 = Instant::now();
    for i in 0..6 {
        s.observe("openai", "gpt", ok(t0, 100 + i));
    }
    s.observe("openai", "gpt", Observation::failure(t0, Some(503)));
    s.observe("openai", "gpt", Observation::failure(t0, None));
    s.observe("openai", "gpt", Observation::failure(t0, Some(429)));
    s.observe("openai", "gpt", Observation::failure(t0, Some(429)));
    let snap = s.snapshot_at("openai", "gpt", t0).expect("observed");
    assert_eq!(
        (snap.samples, snap.successes, snap.errors, snap.rate_limited),
        (10, 6, 4, 2)
    );
    assert!(near(Some(snap.error_rate), 0.4, 1e-9), "{snap:?}");
    assert!(near(Some(snap.rate_429), 0.2, 1e-9), "{snap:?}");
    // Failures carry no timings.
    assert!(near(snap.total_ms.avg, 102.5, 1e-9), "{snap:?}");
    assert!(s.snapshot("openai", "other").is_none());
    assert!(s.snapshot("nobody", "gpt").is_none());
}

#[test]
fn old_samples_fade_with_the_half_life() {
    let s = TargetStats::new(16, H);
    let t0 = Instant::now();
    for _ in 0..10 {
        s.observe("p", "m", Observation::failure(t0, Some(500)));
    }
    // One half-life later, 10 successes: they weigh twice as much as the failures.
    for _ in 0..10 {
        s.observe("p", "m", ok(t0 + H, 1000));
    }
    let snap = s.snapshot_at("p", "m", t0 + H).expect("observed");
    assert!(near(Some(snap.error_rate), 1.0 / 3.0, 1e-9), "{snap:?}");
    // Ten half-lives later still: the failures count 1/1024 as much as the newest samples.
    for _ in 0..10 {
        s.observe("p", "m", ok(t0 + 11 * H, 1000));
    }
    let snap = s.snapshot_at("p", "m", t0 + 11 * H).expect("observed");
    let w_fail = 10.0;
    let (w_mid, w_new) = (10.0 * 2f64, 10.0 * 2f64.powi(11));
    assert!(
        near(
            Some(snap.error_rate),
            w_fail / (w_fail + w_mid + w_new),
            1e-9
        ),
        "{snap:?}"
    );
    assert_eq!(snap.samples, 30);
}

#[test]
fn quantiles_follow_recent_traffic() {
    let s = TargetStats::new(16, H);
    let t0 = Instant::now();
    for i in 1..=1000u64 {
        s.observe("p", "m", ok(t0, i));
    }
    let snap = s.snapshot_at("p", "m", t0).expect("observed");
    assert!(near(snap.total_ms.p50, 500.0, 0.1), "{snap:?}");
    assert!(near(snap.total_ms.p90, 900.0, 0.1), "{snap:?}");
    assert!(near(snap.ttft_ms.p50, 50.0, 0.1), "{snap:?}");
    assert!(near(snap.total_ms.avg, 500.5, 1e-9), "{snap:?}");
    // The target slows down: after five half-lives, 100 slow answers outweigh the old 1000.
    for _ in 0..100 {
        s.observe("p", "m", ok(t0 + 5 * H, 8000));
    }
    let snap = s.snapshot_at("p", "m", t0 + 5 * H).expect("observed");
    assert!(near(snap.total_ms.p50, 8000.0, 0.1), "{snap:?}");
    assert!(near(snap.total_ms.p90, 8000.0, 0.1), "{snap:?}");
}

#[test]
fn throughput_is_output_tokens_over_total_time() {
    let s = TargetStats::new(16, H);
    let t0 = Instant::now();
    s.observe(
        "p",
        "m",
        Observation::success(t0, None, Duration::from_secs(2), Some(100)),
    );
    s.observe(
        "p",
        "m",
        Observation::success(t0, None, Duration::from_secs(1), Some(100)),
    );
    // No tokens (an embedding, a cache-less error body): no throughput sample, no ttft.
    s.observe("p", "m", Observation::success(t0, None, ms(10), Some(0)));
    let snap = s.snapshot_at("p", "m", t0).expect("observed");
    assert!(near(snap.tokens_per_sec.avg, 75.0, 1e-9), "{snap:?}");
    assert!(near(snap.tokens_per_sec.p90, 100.0, 0.1), "{snap:?}");
    assert_eq!(snap.ttft_ms, Summary::default());
}

#[test]
fn weights_are_rescaled_over_long_runs_without_losing_the_figures() {
    let s = TargetStats::new(16, H);
    let t0 = Instant::now();
    // 2000 half-lives (f64 weights would overflow past ~1000 without rescaling).
    for i in 0..2000u32 {
        s.observe("p", "m", ok(t0 + H * i, 100));
        s.observe("p", "m", Observation::failure(t0 + H * i, Some(429)));
    }
    let snap = s.snapshot_at("p", "m", t0 + H * 2000).expect("observed");
    assert!(near(Some(snap.error_rate), 0.5, 1e-9), "{snap:?}");
    assert!(near(Some(snap.rate_429), 0.5, 1e-9), "{snap:?}");
    assert!(near(snap.total_ms.avg, 100.0, 1e-9), "{snap:?}");
    assert!(near(snap.total_ms.p50, 100.0, 0.1), "{snap:?}");
    assert_eq!(snap.idle, H);
}

#[test]
fn at_capacity_the_least_recently_seen_target_goes() {
    let s = TargetStats::new(3, H);
    let t0 = Instant::now();
    s.observe("a", "1", ok(t0, 10));
    s.observe("b", "1", ok(t0 + ms(1), 10));
    s.observe("c", "1", ok(t0 + ms(2), 10));
    s.observe("a", "1", ok(t0 + ms(3), 10)); // a is recent again
    s.observe("d", "1", ok(t0 + ms(4), 10));
    assert_eq!(s.len(), 3);
    assert!(s.snapshot("b", "1").is_none(), "b was seen longest ago");
    let kept: Vec<String> = s
        .all()
        .into_iter()
        .map(|(p, m, _)| format!("{p}/{m}"))
        .collect();
    assert_eq!(kept, ["a/1", "c/1", "d/1"]);

    // A flood of made-up model names stays within the bound; a target in use survives it.
    let s = TargetStats::new(64, H);
    for i in 0..10_000u32 {
        let at = t0 + ms(u64::from(i));
        s.observe("openai", &format!("made-up-{i}"), ok(at, 10));
        if i % 8 == 0 {
            s.observe("openai", "gpt-4o-mini", ok(at, 10));
        }
        assert!(s.len() <= 64);
    }
    assert_eq!(s.len(), 64);
    assert_eq!(s.all().len(), 64);
    assert!(s.snapshot("openai", "gpt-4o-mini").is_some());
}

#[tokio::test(start_paused = true)]
async fn on_the_paused_clock_idle_time_grows_and_figures_hold_still() {
    let s = TargetStats::default();
    s.observe("p", "m", Observation::failure(Instant::now(), Some(429)));
    tokio::time::advance(H).await;
    s.observe("p", "m", ok(Instant::now(), 200));
    let before = s.snapshot("p", "m").expect("observed");
    assert!(near(Some(before.error_rate), 1.0 / 3.0, 1e-9), "{before:?}");
    assert_eq!(before.idle, Duration::ZERO);
    tokio::time::advance(Duration::from_secs(3600)).await;
    let after = s.snapshot("p", "m").expect("observed");
    assert_eq!(after.idle, Duration::from_secs(3600));
    // Nothing observed meanwhile: the averages are what they were.
    assert_eq!(after.error_rate, before.error_rate);
    assert_eq!(after.total_ms, before.total_ms);
}

#[test]
fn concurrent_observers_lose_nothing() {
    let s = Arc::new(TargetStats::new(8, H));
    let t0 = Instant::now();
    let threads: Vec<_> = (0..4)
        .map(|n| {
            let s = Arc::clone(&s);
            std::thread::spawn(move || {
                for i in 0..5_000u64 {
                    let model = if i % 2 == 0 { "shared" } else { "own" };
                    let provider = if model == "shared" {
                        "p"
                    } else {
                        ["a", "b", "c", "d"][n]
                    };
                    s.observe(provider, model, ok(t0 + ms(i), 10));
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("thread");
    }
    assert_eq!(s.snapshot("p", "shared").map(|x| x.samples), Some(10_000));
    for p in ["a", "b", "c", "d"] {
        assert_eq!(s.snapshot(p, "own").map(|x| x.samples), Some(2_500));
    }
}

#[test]
fn p99_sees_a_slow_tail_that_p90_does_not() {
    let s = TargetStats::new(16, H);
    let t0 = Instant::now();
    // 97 fast first tokens and 3 slow ones: p90 is fast, p99 is the tail.
    for i in 0..100u64 {
        let ttft = if i % 33 == 32 { 5000 } else { 50 };
        let obs = Observation::success(t0, Some(ms(ttft)), ms(ttft + 10), Some(10));
        s.observe("p", "m", obs);
    }
    let snap = s.snapshot_at("p", "m", t0).expect("observed");
    assert!(near(snap.ttft_ms.p90, 50.0, 0.1), "{snap:?}");
    assert!(near(snap.ttft_ms.p99, 5000.0, 0.1), "{snap:?}");
}

#[test]
fn the_output_token_mean_decays_and_ignores_answers_without_tokens() {
    let s = TargetStats::new(16, H);
    let t0 = Instant::now();
    assert_eq!(s.output_tokens_mean("p", "m"), None);
    let answer = |at, n| Observation::success(at, None, ms(100), n);
    s.observe("p", "m", answer(t0, Some(100)));
    s.observe("p", "m", answer(t0, Some(300)));
    s.observe("p", "m", answer(t0, Some(0)));
    s.observe("p", "m", answer(t0, None));
    s.observe("p", "m", Observation::failure(t0, Some(500)));
    assert!(near(s.output_tokens_mean("p", "m"), 200.0, 1e-9));
    // One half-life later a sample weighs twice as much as the old ones.
    s.observe("p", "m", answer(t0 + H, Some(50)));
    let want = (100.0 + 300.0 + 2.0 * 50.0) / 4.0;
    assert!(near(s.output_tokens_mean("p", "m"), want, 1e-9));
    let snap = s.snapshot_at("p", "m", t0 + H).expect("observed");
    assert!(near(snap.output_tokens, want, 1e-9), "{snap:?}");
    assert_eq!(s.output_tokens_mean("p", "other"), None);
}
