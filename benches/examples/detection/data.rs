//! Generated data sets with known, injected anomalies, from a seeded RNG:
//! trace shapes with changed call paths, templated log lines with rare new
//! templates, and LLM-style answers that switch topic. Shared by the detection
//! harness and the novelty bench.

/// One event of a stream: a value for a key, whether it was injected as an
/// anomaly, and its trace time (ns).
#[derive(Clone, Debug)]
pub struct Event {
    pub key: String,
    pub value: String,
    pub anomaly: bool,
    pub time: i64,
}

/// SplitMix64: small, seedable, good enough for test data.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    pub fn chance(&mut self, p: f64) -> bool {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    /// An index drawn with weight 1/(i+1) (a Zipf-like mix of common and rare).
    pub fn zipf(&mut self, n: usize) -> usize {
        let total: f64 = (1..=n).map(|i| 1.0 / i as f64).sum();
        let mut x = (self.next() >> 11) as f64 / (1u64 << 53) as f64 * total;
        for i in 0..n {
            x -= 1.0 / (i + 1) as f64;
            if x <= 0.0 {
                return i;
            }
        }
        n - 1
    }

    pub fn hex(&mut self, digits: usize) -> String {
        (0..digits).map(|_| char::from(b"0123456789abcdef"[self.below(16)])).collect()
    }
}

/// Events 100 ms apart.
const STEP_NS: i64 = 100_000_000;

/// Trace shapes (as `trace:shape` writes them: `service name` per span,
/// indented by depth), keyed by root operation. 1% of traces take a new call
/// path: a span of an unknown service, a known operation called from the
/// wrong place, or a runaway chain of nested calls.
pub fn trace_shapes(seed: u64, n: usize) -> Vec<Event> {
    let mut rng = Rng(seed);
    let roots = ["GET /checkout", "GET /search", "POST /login", "GET /product"];
    (0..n)
        .map(|i| {
            let root = *rng.pick(&roots);
            let mut lines: Vec<(usize, String)> = vec![(0, format!("frontend {root}"))];
            normal_shape(root, &mut rng, &mut lines);
            let anomaly = rng.chance(0.01);
            if anomaly {
                inject_shape_anomaly(&mut rng, &mut lines);
            }
            let mut value = String::new();
            for (depth, line) in lines {
                value.push_str(&" ".repeat(depth));
                value.push_str(&line);
                value.push('\n');
            }
            Event { key: root.to_string(), value, anomaly, time: i as i64 * STEP_NS }
        })
        .collect()
}

fn normal_shape(root: &str, rng: &mut Rng, lines: &mut Vec<(usize, String)>) {
    let mut push = |depth: usize, text: &str| lines.push((depth, text.to_string()));
    match root {
        "GET /checkout" => {
            push(1, "cart-service load_cart");
            push(2, "postgres SELECT carts");
            push(1, "pricing-service quote");
            if rng.chance(0.7) {
                push(2, "redis GET price");
            } else {
                push(2, "redis GET price");
                push(2, "postgres SELECT prices");
                push(2, "redis SET price");
            }
            for _ in 0..1 + rng.below(4) {
                push(1, "inventory-service reserve");
                push(2, "postgres UPDATE stock");
            }
            push(1, "payment-service authorize");
            if rng.chance(0.5) {
                push(2, "fraud-service score");
            }
            push(2, "stripe-client POST /v1/charges");
            if rng.chance(0.3) {
                push(1, "notification-service send_email");
            }
        }
        "GET /search" => {
            push(1, "search-service query");
            push(2, "elasticsearch POST /products/_search");
            if rng.chance(0.4) {
                push(2, "redis GET suggestions");
            }
            for _ in 0..rng.below(3) {
                push(1, "recommendation-service related");
            }
        }
        "POST /login" => {
            push(1, "auth-service authenticate");
            push(2, "postgres SELECT users");
            if rng.chance(0.2) {
                push(2, "auth-service verify_totp");
            }
            push(1, "session-service create");
            push(2, "redis SET session");
        }
        _ => {
            push(1, "catalog-service get_product");
            push(2, if rng.chance(0.8) { "redis GET product" } else { "postgres SELECT products" });
            push(1, "review-service list");
            push(2, "postgres SELECT reviews");
            if rng.chance(0.5) {
                push(1, "recommendation-service related");
            }
        }
    }
}

fn inject_shape_anomaly(rng: &mut Rng, lines: &mut Vec<(usize, String)>) {
    let at = 1 + rng.below(lines.len());
    match rng.below(3) {
        0 => {
            let intruder = rng.pick(&[
                "legacy-billing charge_v1",
                "debug-service dump_state",
                "shadow-proxy mirror",
                "ldap-adapter bind",
                "crypto-miner hash_batch",
            ]);
            lines.insert(at, (1, intruder.to_string()));
        }
        1 => {
            let misplaced =
                rng.pick(&["payment-service refund", "auth-service revoke_all", "postgres DROP TABLE sessions"]);
            lines.insert(at.min(lines.len()), (2, misplaced.to_string()));
        }
        _ => {
            for depth in 1..9 {
                lines.insert(at.min(lines.len()), (depth, "graph-service resolve_node".to_string()));
            }
        }
    }
}

const USERS: [&str; 12] =
    ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy", "mallory", "oscar"];

/// Log lines from templates, keyed by service. 1% are rare new templates
/// (each of a small pool can recur).
pub fn log_lines(seed: u64, n: usize) -> Vec<Event> {
    let mut rng = Rng(seed);
    let services = ["orders", "gateway", "billing"];
    (0..n)
        .map(|i| {
            let service = *rng.pick(&services);
            let anomaly = rng.chance(0.01);
            let value = if anomaly { rare_log(&mut rng) } else { normal_log(service, &mut rng) };
            Event { key: service.to_string(), value, anomaly, time: i as i64 * STEP_NS }
        })
        .collect()
}

fn fields(rng: &mut Rng) -> (String, String, u64, String, String) {
    let uuid = format!("{}-{}-4{}-a{}-{}", rng.hex(8), rng.hex(4), rng.hex(3), rng.hex(3), rng.hex(12));
    let ip = format!("10.{}.{}.{}", rng.below(256), rng.below(256), rng.below(256));
    let ms = 1 + rng.next() % 900;
    let user = rng.pick(&USERS).to_string();
    let ts = format!(
        "2025-03-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        1 + rng.below(28),
        rng.below(24),
        rng.below(60),
        rng.below(60),
        rng.below(1000)
    );
    (uuid, ip, ms, user, ts)
}

/// One of 20 templates per service, Zipf-weighted.
pub fn normal_log(service: &str, rng: &mut Rng) -> String {
    let (uuid, ip, ms, user, ts) = fields(rng);
    let t = rng.zipf(20);
    let body = match t {
        0 => {
            format!("request completed method=GET path=/api/{service}/{} status=200 duration_ms={ms}", rng.below(5000))
        }
        1 => format!("request completed method=POST path=/api/{service} status=201 duration_ms={ms} user={user}"),
        2 => format!("cache hit key={service}:{} ttl={}s", rng.below(100_000), rng.below(3600)),
        3 => format!("cache miss key={service}:{} loading from db", rng.below(100_000)),
        4 => format!("db query table={service} rows={} duration_ms={ms}", rng.below(500)),
        5 => format!("user {user} authenticated from {ip} session={uuid}"),
        6 => format!("request_id={uuid} upstream=inventory latency_ms={ms}"),
        7 => format!("health check ok uptime={}s goroutines={}", rng.below(1_000_000), rng.below(400)),
        8 => format!("retrying call to pricing attempt={} backoff_ms={}", 1 + rng.below(3), 100 * (1 + rng.below(5))),
        9 => {
            format!("request completed method=GET path=/api/{service}/{} status=404 duration_ms={ms}", rng.below(5000))
        }
        10 => format!("published event {service}.updated id={uuid} partition={}", rng.below(12)),
        11 => format!("consumed event inventory.changed offset={} lag={}", rng.next() % 10_000_000, rng.below(50)),
        12 => format!("rate limit remaining={} client={ip}", rng.below(1000)),
        13 => format!("token refreshed for {user} expires_at={ts}"),
        14 => format!("slow request path=/api/{service}/search duration_ms={} threshold_ms=500", 500 + ms),
        15 => format!("connection pool size={} idle={} waiting={}", 20 + rng.below(10), rng.below(20), rng.below(3)),
        16 => format!("feature flag new-checkout evaluated for {user} result={}", rng.chance(0.5)),
        17 => format!(
            "payment intent {} created amount={}.{:02} currency=EUR",
            rng.hex(24),
            rng.below(500),
            rng.below(100)
        ),
        18 => format!(
            "request completed method=DELETE path=/api/{service}/{} status=204 duration_ms={ms}",
            rng.below(5000)
        ),
        _ => format!("config reloaded version={} checksum={}", rng.below(90), rng.hex(40)),
    };
    format!("{ts} INFO [{service}] {body}")
}

fn rare_log(rng: &mut Rng) -> String {
    let (uuid, ip, ms, user, ts) = fields(rng);
    let body = match rng.below(8) {
        0 => format!("panic: runtime error: index out of range [{}] with length {}", rng.below(9), rng.below(9)),
        1 => format!("disk quota exceeded on /var/lib/data shard={} refusing writes", rng.below(16)),
        2 => format!("TLS handshake failed with {ip}: certificate has expired or is not yet valid"),
        3 => format!(
            "deadlock detected between transactions {} and {}; rolling back",
            rng.below(99_999),
            rng.below(99_999)
        ),
        4 => format!("user {user} escalated privileges to role=superadmin via legacy endpoint"),
        5 => format!("OOMKilled: container memory limit 512Mi exceeded, restarting (attempt {})", 1 + rng.below(5)),
        6 => format!("unexpected schema version {} for message {uuid}, dropping", rng.below(9)),
        _ => format!("clock skew of {ms}ms detected against ntp pool, leases may be unsafe"),
    };
    format!("{ts} ERROR [{}] {body}", rng.pick(&["orders", "gateway", "billing"]))
}

const SUPPORT: [&str; 24] = [
    "invoice",
    "billing cycle",
    "refund",
    "subscription",
    "payment method",
    "credit card",
    "account settings",
    "plan",
    "upgrade",
    "downgrade",
    "receipt",
    "tax",
    "VAT number",
    "charge",
    "trial",
    "discount code",
    "statement",
    "balance",
    "renewal",
    "cancellation",
    "proration",
    "bank transfer",
    "currency",
    "pricing page",
];
const SUPPORT_VERBS: [&str; 10] =
    ["update", "check", "download", "cancel", "change", "review", "confirm", "apply", "request", "view"];
const OFF_TOPIC: [[&str; 8]; 4] = [
    ["sourdough", "oven", "flour", "proofing basket", "crust", "hydration", "starter", "baking stone"],
    [
        "the Hanseatic League",
        "medieval trade",
        "Lübeck",
        "guild charters",
        "salted herring",
        "cog ships",
        "the Baltic",
        "merchants",
    ],
    ["the offside rule", "penalty area", "goalkeeper", "corner kick", "referee", "extra time", "midfield", "free kick"],
    [
        "quantum entanglement",
        "qubits",
        "superposition",
        "decoherence",
        "Bell inequality",
        "photons",
        "measurement",
        "spin states",
    ],
];

/// Support-bot answers keyed by model; 1.5% switch to an unrelated topic
/// (cooking, history, football, physics) in the same phrasing.
pub fn answers(seed: u64, n: usize) -> Vec<Event> {
    let mut rng = Rng(seed);
    let models = ["support-small", "support-large"];
    (0..n)
        .map(|i| {
            let model = *rng.pick(&models);
            let anomaly = rng.chance(0.015);
            let topic: &[&str] = if anomaly { &OFF_TOPIC[rng.below(OFF_TOPIC.len())] } else { &SUPPORT };
            Event { key: model.to_string(), value: answer(topic, &mut rng), anomaly, time: i as i64 * STEP_NS }
        })
        .collect()
}

fn answer(topic: &[&str], rng: &mut Rng) -> String {
    let openers =
        ["Thanks for reaching out!", "Happy to help with that.", "Good question.", "Sure, here is how it works."];
    let mut text = rng.pick(&openers).to_string();
    for _ in 0..3 + rng.below(3) {
        let (a, b) = (rng.pick(topic), rng.pick(topic));
        let verb = rng.pick(&SUPPORT_VERBS);
        let sentence = match rng.below(5) {
            0 => format!(" To {verb} your {a}, open the {b} section and follow the steps there."),
            1 => format!(" Your {a} is linked to the {b}, so changes may take up to {} hours.", 1 + rng.below(48)),
            2 => format!(" If the {a} looks wrong, you can {verb} the {b} at any time."),
            3 => format!(" Note that the {a} and the {b} are handled separately (ticket #{}).", rng.below(99_999)),
            _ => format!(" Most customers {verb} the {a} before the {b}."),
        };
        text.push_str(&sentence);
    }
    text.push_str(" Let me know if there is anything else I can do.");
    text
}
