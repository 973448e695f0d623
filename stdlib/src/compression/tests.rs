//! Tests of the novelty state as a whole: the score's range, stability under
//! the tokenizer's substitutions, bounds, snapshots, the burst policy and
//! evidence.

use proptest::prelude::*;

use super::*;

const SECOND: i64 = 1_000_000_000;

fn site(rule: &str) -> CallSiteId {
    CallSiteId { rule: rule.to_string(), clause: 0, ordinal: 0, digest: 7 }
}

/// A deterministic xorshift stream, for test data.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| (self.next() >> 32) as u8).collect()
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[(self.next() % items.len() as u64) as usize]
    }
}

fn log_line(rng: &mut Rng) -> String {
    let verb = rng.pick(&["GET", "POST", "PUT"]);
    let path = rng.pick(&["/api/orders", "/api/users", "/api/cart", "/health"]);
    format!(
        "{verb} {path}/{} status=200 user={:08x}-{:04x} took {}ms from 10.0.{}.{}",
        rng.next() % 100_000,
        rng.next() as u32,
        rng.next() as u16,
        rng.next() % 900,
        rng.next() % 256,
        rng.next() % 256
    )
}

struct Harness {
    state: NoveltyState,
    options: NoveltyOptions,
    site: CallSiteId,
    time: i64,
}

impl Harness {
    fn new(options: NoveltyOptions) -> Harness {
        Harness { state: NoveltyState::new(NoveltyConfig::default()), options, site: site("r"), time: 0 }
    }

    fn observe(&mut self, key: &str, value: Value) -> Option<f64> {
        self.time += SECOND;
        let key = Value::str(key);
        self.state.observe(&Call {
            site: &self.site,
            key: &key,
            value: &value,
            options: &self.options,
            time: self.time,
        })
    }
}

#[test]
fn warm_up_gives_nil_then_familiar_values_score_near_zero() {
    let mut h = Harness::new(NoveltyConfig::default().default_options());
    let mut rng = Rng(1);
    for _ in 0..31 {
        assert_eq!(h.observe("svc", Value::str(&log_line(&mut rng))), None);
    }
    assert!(h.observe("svc", Value::str(&log_line(&mut rng))).is_none(), "the 32nd sample completes warm-up");
    let scores: Vec<f64> = (0..200).map(|_| h.observe("svc", Value::str(&log_line(&mut rng))).unwrap()).collect();
    let mean = scores.iter().sum::<f64>() / scores.len() as f64;
    assert!(mean < 0.2, "familiar lines: mean {mean}");
    // Once a value is in the dictionary (learned, then folded in by a rebuild), it costs next to nothing.
    h.options.policy.learn_flagged = true;
    h.site = site("learning");
    let same = "POST /api/orders/<num> status=200 user=<hex> took <num>ms from <ip> ".repeat(4);
    let scores: Vec<f64> = (0..40).filter_map(|_| h.observe("svc", Value::str(&same))).collect();
    assert!(scores.iter().all(|&s| s < 0.05), "a value seen before: {scores:?}");
}

#[test]
fn unrelated_random_bytes_score_near_one() {
    let mut options = NoveltyConfig::default().default_options();
    options.bounds.warmup = 4;
    let mut h = Harness::new(options);
    let mut rng = Rng(2);
    for _ in 0..4 {
        h.observe("k", Value::Bytes(rng.bytes(300).into()));
    }
    for _ in 0..50 {
        let score = h.observe("k", Value::Bytes(rng.bytes(300).into())).unwrap();
        assert!((0.95..=1.05).contains(&score), "{score}");
    }
}

#[test]
fn keys_and_sites_are_separate() {
    let mut h = Harness::new(NoveltyConfig::default().default_options());
    let mut rng = Rng(3);
    for _ in 0..40 {
        h.observe("a", Value::str(&log_line(&mut rng)));
    }
    assert!(h.observe("a", Value::str(&log_line(&mut rng))).is_some());
    assert!(h.observe("b", Value::str(&log_line(&mut rng))).is_none(), "key b is cold");
    h.site = site("other");
    assert!(h.observe("a", Value::str(&log_line(&mut rng))).is_none(), "another site is cold");
    assert_eq!(h.state.metrics().call_sites, 2);
    assert_eq!(h.state.metrics().keys, 3);
    let nil = Value::Nil;
    let call = Call { site: &h.site, key: &nil, value: &Value::str("x"), options: &h.options, time: 0 };
    assert_eq!(h.state.observe(&call), None, "a nil key");
    h.state.retain_sites(|id| id.rule == "r");
    assert_eq!(h.state.metrics().call_sites, 1);
    let sites: Vec<_> = h.state.sites().collect();
    assert_eq!(sites.len(), 1);
    assert_eq!((sites[0].0.rule.as_str(), *sites[0].1), ("r", h.options), "a site keeps its first call's options");
}

#[test]
fn snapshot_and_restore_continue_identically() {
    let mut h = Harness::new(NoveltyConfig::default().default_options());
    let mut rng = Rng(4);
    for i in 0..300 {
        let key = if i % 3 == 0 { "x" } else { "y" };
        h.observe(key, Value::str(&log_line(&mut rng)));
    }
    let bytes = h.state.snapshot();
    let mut restored = NoveltyState::restore(*h.state.config(), &bytes).unwrap();
    assert_eq!(restored.snapshot(), bytes, "snapshots are canonical");
    assert_eq!(restored.metrics().keys, 2);
    for i in 0..200 {
        let key = Value::str(if i % 2 == 0 { "x" } else { "y" });
        let value = Value::str(&if i % 17 == 0 { format!("panic: worker {i} crashed") } else { log_line(&mut rng) });
        let call = Call { site: &h.site, key: &key, value: &value, options: &h.options, time: i * SECOND };
        assert_eq!(h.state.observe(&call), restored.observe(&call), "call {i}");
    }
    assert_eq!(
        NoveltyState::restore(NoveltyConfig::default(), b"nope").unwrap_err(),
        snapshot::SnapshotError::NotASnapshot
    );
    let mut other_version = bytes.clone();
    other_version[8] = 99;
    assert!(matches!(
        NoveltyState::restore(NoveltyConfig::default(), &other_version),
        Err(snapshot::SnapshotError::Version { found: 99, .. })
    ));
    assert!(matches!(
        NoveltyState::restore(NoveltyConfig::default(), &bytes[..bytes.len() / 2]),
        Err(snapshot::SnapshotError::Corrupt(_))
    ));
}

/// Scores of a burst of one anomaly among normal traffic (a quarter of 50
/// values, one a second: shorter than the default hold), under a policy.
fn burst_scores(learn_flagged: bool) -> Vec<f64> {
    let mut options = NoveltyConfig::default().default_options();
    options.policy.learn_flagged = learn_flagged;
    let mut h = Harness::new(options);
    let mut rng = Rng(5);
    for _ in 0..200 {
        h.observe("svc", Value::str(&log_line(&mut rng)));
    }
    let anomaly = "FATAL disk quota exceeded on volume /data/shard-7, refusing writes";
    let mut scores = Vec::new();
    for i in 0..50 {
        let value = if i % 4 == 0 { anomaly.to_string() } else { log_line(&mut rng) };
        let score = h.observe("svc", Value::str(&value)).unwrap();
        if i % 4 == 0 {
            scores.push(score);
        }
    }
    scores
}

#[test]
fn a_burst_stays_novel_under_the_default_policy() {
    let held = burst_scores(false);
    assert!(held.iter().all(|&s| s >= 0.5), "{held:?}");
    let naive = burst_scores(true);
    assert!(naive[0] >= 0.5);
    let familiar = naive.iter().filter(|&&s| s < 0.3).count();
    assert!(familiar * 2 >= naive.len(), "learned by the next rebuild: {naive:?}");
}

#[test]
fn a_lasting_change_is_learned_after_hold() {
    let options = NoveltyConfig::default().default_options();
    assert_eq!(options.policy.hold_ns, 60 * SECOND);
    let mut h = Harness::new(options);
    let mut rng = Rng(6);
    for _ in 0..100 {
        h.observe("svc", Value::str(&log_line(&mut rng)));
    }
    let shifted = |rng: &mut Rng| format!("v2 handler={} outcome=accepted shard={}", rng.next() % 7, rng.next() % 99);
    let scores: Vec<f64> = (0..120).map(|_| h.observe("svc", Value::str(&shifted(&mut rng))).unwrap()).collect();
    // One value a second: the first joins the baseline at 60 s, and the next
    // dictionary rebuild (a few more values) makes the new format familiar.
    assert!(scores[..60].iter().all(|&s| s >= 0.5), "{scores:?}");
    assert!(scores[90..].iter().all(|&s| s < 0.3), "{scores:?}");
    assert!(h.state.metrics().counters.released > 0);
}

#[test]
fn evidence_names_the_new_part_of_a_trace_shape() {
    let mut h = Harness::new(NoveltyConfig::default().default_options());
    let shape = |extra: &str| format!("api GET /checkout\n cart load\n  db SELECT cart\n{extra} pricing quote\n");
    for i in 0..60 {
        h.observe("checkout", Value::str(&shape(if i % 2 == 0 { " inventory reserve\n" } else { "" })));
    }
    let novel = Value::str(&shape(" fraud.score model-v9 evaluate\n"));
    let score = h.observe("checkout", novel.clone()).unwrap();
    let key = Value::str("checkout");
    let call = Call { site: &h.site, key: &key, value: &novel, options: &h.options, time: h.time };
    let evidence = h.state.explain(&call, score).unwrap();
    assert_eq!(evidence.score, score);
    assert_eq!(evidence.recent_scores, 60 - 32 + 1, "one score per call after warm-up");
    assert_eq!(evidence.p_value, 1.0 / evidence.recent_scores as f64, "the highest score");
    assert_eq!(evidence.worst[0].text, "fraud.score model-v<num> evaluate");
    assert!(evidence.tokenized && evidence.baseline_samples > 0 && evidence.baseline_bytes > 0);
}

#[test]
fn options_come_from_named_arguments_within_caps() {
    let config = NoveltyConfig::default();
    let (samples, bytes, warmup) = (Value::Int(1_000_000), Value::Int(10), Value::Int(50));
    let (off, flag, hold) = (Value::Bool(false), Value::Float(0.3), Value::Duration(5 * 60 * SECOND));
    let options = config.options([
        ("samples", &samples),
        ("bytes", &bytes),
        ("warmup", &warmup),
        ("tokenize", &off),
        ("learn_flagged", &Value::Bool(true)),
        ("flag", &flag),
        ("hold", &hold),
        ("by", &Value::str("k")),
        ("tokenize", &Value::Int(1)),
    ]);
    assert_eq!(options.bounds.samples, config.max_samples);
    assert_eq!(options.bounds.bytes, 64);
    assert_eq!(options.bounds.warmup, 50);
    assert!(!options.tokenize && options.policy.learn_flagged);
    assert_eq!(options.policy.flag, 0.3);
    assert_eq!(options.policy.hold_ns, 300 * SECOND);
    let small = config.options([("samples", &Value::Int(5))]);
    assert_eq!(small.bounds.warmup, 5, "warm-up never exceeds the sample bound");
}

fn fill(kind: u8, rng: &mut Rng) -> String {
    match kind % 8 {
        0 => format!(
            "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
            rng.next() as u32,
            rng.next() as u16,
            rng.next() as u16,
            rng.next() as u16,
            rng.next() & 0xffff_ffff_ffff
        ),
        1 => format!("{:016x}{:016x}", rng.next() | 1 << 60, rng.next()),
        2 => format!("{}", rng.next() % 1_000_000),
        3 => format!(
            "2024-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
            1 + rng.next() % 12,
            1 + rng.next() % 28,
            rng.next() % 24,
            rng.next() % 60,
            rng.next() % 60,
            rng.next() % 1000
        ),
        4 => format!("{}.{}.{}.{}", rng.next() % 256, rng.next() % 256, rng.next() % 256, rng.next() % 256),
        5 => format!("user{}@example{}.com", rng.next() % 1000, rng.next() % 9),
        6 => format!("https://api.example.com/v{}/items/{}?page={}", rng.next() % 3, rng.next() % 999, rng.next() % 9),
        _ => {
            let alphabet = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
            let mut id: String =
                (0..18).map(|_| alphabet[(rng.next() % alphabet.len() as u64) as usize] as char).collect();
            id.insert(3, char::from(b'0' + (rng.next() % 10) as u8));
            id
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Changing only the variable parts (ids, numbers, …) leaves the tokenized
    /// text, and so the score, unchanged.
    #[test]
    fn scores_are_stable_under_substitutions(
        words in prop::collection::vec("[a-z]{2,8}", 3..8),
        kinds in prop::collection::vec(any::<u8>(), 1..6),
        seed_a in 1u64..u64::MAX,
        seed_b in 1u64..u64::MAX,
    ) {
        let render = |seed: u64| {
            let mut rng = Rng(seed);
            let mut text = String::new();
            for (i, word) in words.iter().enumerate() {
                text.push_str(word);
                text.push(' ');
                if let Some(kind) = kinds.get(i) {
                    text.push_str(&fill(*kind, &mut rng));
                    text.push(' ');
                }
            }
            text
        };
        let (a, b) = (render(seed_a), render(seed_b));
        prop_assert_eq!(tokenize(&a), tokenize(&b));

        let mut h = Harness::new(NoveltyConfig::default().default_options());
        let mut rng = Rng(seed_a ^ seed_b | 1);
        for _ in 0..40 {
            h.observe("k", Value::str(&log_line(&mut rng)));
        }
        let snapshot = h.state.snapshot();
        let mut fork = NoveltyState::restore(*h.state.config(), &snapshot).unwrap();
        let key = Value::str("k");
        let (va, vb) = (Value::str(&a), Value::str(&b));
        let score_a = h.state.observe(&Call { site: &h.site, key: &key, value: &va, options: &h.options, time: 0 });
        let score_b = fork.observe(&Call { site: &h.site, key: &key, value: &vb, options: &h.options, time: 0 });
        prop_assert_eq!(score_a, score_b);
    }

    /// Whatever is observed, no site holds more than `max_keys` keys and no
    /// baseline more than its bounds (plus the pending share).
    #[test]
    fn state_never_exceeds_its_bounds(
        calls in prop::collection::vec((0u8..12, 0usize..400, any::<u64>()), 1..300),
    ) {
        let config = NoveltyConfig { max_keys: 5, ..NoveltyConfig::default() };
        let mut options = config.default_options();
        options.bounds = Bounds { samples: 6, bytes: 512, warmup: 2, level: 1 };
        let mut state = NoveltyState::new(config);
        let id = site("bounded");
        for (i, (key, len, seed)) in calls.into_iter().enumerate() {
            let mut rng = Rng(seed | 1);
            let value = Value::Bytes(rng.bytes(len).iter().map(|b| b % 4 + b'a').collect::<Vec<u8>>().into());
            let key = Value::Int(i64::from(key));
            state.observe(&Call { site: &id, key: &key, value: &value, options: &options, time: i as i64 * SECOND });
            let site = &state.sites[&id];
            prop_assert!(site.keys.len() <= 5);
            for (_, key_state) in site.keys.iter() {
                let b = &key_state.baseline;
                prop_assert!(b.samples() <= 6 + 6 / baseline::REFRESH + 1, "{} samples", b.samples());
                prop_assert!(b.bytes() <= 512 + 512 / baseline::REFRESH + 128, "{} bytes", b.bytes());
                prop_assert!(key_state.quarantine.memory_bytes() <= 128 + 64 * 8);
            }
        }
        let per_key_bound = 4 * (512 + 512 / baseline::REFRESH + 128) + 256 * 1024;
        prop_assert!(state.memory_bytes() <= 5 * per_key_bound + 4 * 1024 * 1024);
    }
}

/// Calls for the deferred-rebuild tests: log lines under two keys, small
/// bounds so that rebuilds come often.
fn deferred_calls() -> (NoveltyOptions, Vec<(Value, Value)>) {
    let mut options = NoveltyConfig::default().default_options();
    options.bounds = Bounds { samples: 16, bytes: 2048, warmup: 4, level: 1 };
    let mut rng = Rng(11);
    let calls =
        (0..400).map(|i| (Value::str(if i % 3 == 0 { "a" } else { "b" }), Value::str(&log_line(&mut rng)))).collect();
    (options, calls)
}

#[test]
fn rebuilds_prepared_by_the_caller_give_what_observe_gives() {
    let (options, calls) = deferred_calls();
    let id = site("deferred");
    let mut direct = NoveltyState::new(NoveltyConfig::default());
    let mut deferring = NoveltyState::new(NoveltyConfig::default());
    let mut rebuilds = 0;
    for (i, (key, value)) in calls.iter().enumerate() {
        let call = Call { site: &id, key, value, options: &options, time: i as i64 * SECOND };
        let expected = direct.observe(&call);
        let (score, rebuild) = deferring.observe_deferring(&call);
        if let Some(rebuild) = rebuild {
            rebuilds += 1;
            deferring.install(rebuild.prepare());
        }
        assert_eq!(score, expected, "call {i}");
    }
    assert!(rebuilds > 20, "{rebuilds} rebuilds");
    assert_eq!(deferring.metrics().counters, direct.metrics().counters);
    assert_eq!(deferring.snapshot(), direct.snapshot());
}

/// The VM prepares a call (tokenizing, encoding the key) before taking the
/// shared state's lock. A site keeps its first call's options, so calls
/// whose options differ (a rule reloaded with others) score as those did.
#[test]
fn prepared_calls_score_with_their_sites_first_options() {
    let (options, calls) = deferred_calls();
    let other = NoveltyOptions { tokenize: !options.tokenize, ..options };
    let id = site("prepared");
    let mut first_options_only = NoveltyState::new(NoveltyConfig::default());
    let mut mixed = NoveltyState::new(NoveltyConfig::default());
    for (i, (key, value)) in calls.iter().enumerate() {
        let time = i as i64 * SECOND;
        let expected = first_options_only.observe(&Call { site: &id, key, value, options: &options, time });
        let call = Call { site: &id, key, value, options: if i % 3 == 2 { &other } else { &options }, time };
        let ready = call.prepare().expect("a string value and key");
        let (score, rebuild) = mixed.observe_prepared(&call, &ready);
        if let Some(rebuild) = rebuild {
            mixed.install(rebuild.prepare());
        }
        assert_eq!(score, expected, "call {i}");
    }
    assert_eq!(mixed.snapshot(), first_options_only.snapshot());
}

#[test]
fn rebuilds_installed_late_or_superseded_leave_a_consistent_state() {
    let (options, calls) = deferred_calls();
    let id = site("deferred");
    let mut state = NoveltyState::new(NoveltyConfig::default());
    // Each rebuild is installed some calls after it was made due; meanwhile
    // its key scores against its previous dictionary, and a fold of the same
    // key before then (a whole dictionary's worth pending) makes it stale.
    let mut late = std::collections::VecDeque::new();
    let (mut scored_while_waiting, mut installed, mut stale) = (0, 0, 0);
    for (i, (key, value)) in calls.iter().enumerate() {
        let call = Call { site: &id, key, value, options: &options, time: i as i64 * SECOND };
        let (score, rebuild) = state.observe_deferring(&call);
        scored_while_waiting += usize::from(score.is_some() && !late.is_empty());
        if let Some(rebuild) = rebuild {
            late.push_back((i + 3 + i % 5 * 4, rebuild.prepare()));
        }
        while late.front().is_some_and(|(due, _)| *due <= i) {
            match state.install(late.pop_front().expect("checked").1) {
                true => installed += 1,
                false => stale += 1,
            }
        }
    }
    late.into_iter().for_each(|(_, prepared)| _ = state.install(prepared));
    assert!(scored_while_waiting > 50 && installed > 10 && stale > 0, "{scored_while_waiting} {installed} {stale}");
    for (_, key) in state.sites[&id].keys.iter() {
        assert!(key.baseline.is_warm());
        assert!(key.baseline.samples() <= 16 + 16 / baseline::REFRESH + 1);
    }
    let snapshot = state.snapshot();
    let restored = NoveltyState::restore(NoveltyConfig::default(), &snapshot).unwrap();
    assert_eq!(restored.snapshot(), snapshot);
}

#[test]
fn threads_share_a_state_and_prepare_rebuilds_outside_its_lock() {
    let (options, calls) = deferred_calls();
    let id = site("shared");
    let state = std::sync::Mutex::new(NoveltyState::new(NoveltyConfig::default()));
    std::thread::scope(|scope| {
        for thread in 0..4 {
            let (state, calls, id, options) = (&state, &calls, &id, &options);
            scope.spawn(move || {
                for (i, (key, value)) in calls.iter().enumerate().skip(thread).step_by(4) {
                    let call = Call { site: id, key, value, options, time: i as i64 * SECOND };
                    let (_, rebuild) = state.lock().unwrap().observe_deferring(&call);
                    if let Some(rebuild) = rebuild {
                        let prepared = rebuild.prepare();
                        state.lock().unwrap().install(prepared);
                    }
                }
            });
        }
    });
    let state = state.into_inner().unwrap();
    let counters = state.metrics().counters;
    assert_eq!(counters.scored + counters.warming, calls.len() as u64);
    assert!(counters.rebuilds > 20);
    for (_, key) in state.sites[&id].keys.iter() {
        assert!(key.baseline.is_warm(), "every rebuild ended up installed or superseded");
        assert!(key.baseline.samples() <= 16 + 16 / baseline::REFRESH + 1);
    }
}

/// A value longer than the prefix a baseline keeps of a sample (a large
/// trace's `trace:shape`) is judged by that prefix: seen again, it looks
/// familiar. Scored whole, its tail was in no dictionary, and every such
/// value scored as new.
#[test]
fn a_value_longer_than_a_sample_is_familiar_when_seen_again() {
    let options = NoveltyConfig::default().default_options();
    let max_sample = options.bounds.max_sample();
    let mut h = Harness::new(options);
    let mut rng = Rng(5);
    let mut long = String::new();
    while long.len() < 3 * max_sample {
        long.push_str(&log_line(&mut rng));
        long.push('\n');
    }
    let scores: Vec<Option<f64>> = (0..40).map(|_| h.observe("shape", Value::str(&long))).collect();
    let last = scores.last().copied().flatten().expect("warm after 40 values");
    assert!(last < 0.1, "the same long value scores {last} the 40th time");
    // Evidence is about the part judged.
    let call_key = Value::str("shape");
    let value = Value::str(&long);
    let call = Call { site: &h.site, key: &call_key, value: &value, options: &h.options, time: h.time };
    let evidence = h.state.explain(&call, last).expect("evidence for a warm key");
    let past = |segment: &&evidence::Segment| segment.offset + segment.text.len() > max_sample;
    assert!(!evidence.worst.iter().any(|segment| past(&segment)), "{:?}", evidence.worst);
}
