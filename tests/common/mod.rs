//! Test harness: a real Tansu broker process, the real `reviewguard` binary,
//! and helpers that wait on conditions with deadlines (never fixed sleeps).
#![allow(dead_code)]

pub mod desk;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::OwnedMessage;
use rdkafka::producer::{FutureProducer, FutureRecord};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const TOPICS: [&str; 7] = [
    "reviews.food",
    "reviews.tourism",
    "inspection.food",
    "inspection.tourism",
    "reviewguard.dlq",
    "reviewguard.changelog",
    "inspection.outcomes",
];

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Poll `f` until it returns `Some`, or panic with `what` at the deadline.
pub fn wait_for<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Where the Tansu broker is: `TANSU_BIN`, `PATH` or `~/.cargo/bin`.
pub fn tansu_available() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("TANSU_BIN") {
        return Some(PathBuf::from(p));
    }
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    if let Some(home) = std::env::var_os("HOME") {
        dirs.push(PathBuf::from(home).join(".cargo/bin"));
    }
    dirs.into_iter()
        .map(|d| d.join("tansu"))
        .find(|p| p.is_file())
}

fn tansu_binary() -> PathBuf {
    tansu_available().unwrap_or_else(|| {
        panic!(
            "the integration tests need the Tansu broker: run scripts/test.sh (it installs tansu), or set TANSU_BIN"
        )
    })
}

/// A Tansu broker on a free loopback port, in-memory storage; killed on drop.
pub struct Broker {
    child: Child,
    pub addr: String,
    pub dir: tempfile::TempDir,
}

impl Broker {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn start() -> Broker {
        Broker::start_on(free_port())
    }

    /// A fresh broker (empty: in-memory storage) on `port`.
    pub fn start_on(port: u16) -> Broker {
        let addr = format!("127.0.0.1:{port}");
        let dir = tempfile::tempdir().unwrap();
        let log = std::fs::File::create(dir.path().join("tansu.log")).unwrap();
        let child = Command::new(tansu_binary())
            .args([
                "broker",
                "--storage-engine",
                "memory://tansu/",
                "--listener-url",
                &format!("tcp://{addr}"),
                "--advertised-listener-url",
                &format!("tcp://{addr}"),
            ])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("cannot start tansu");
        let b = Broker { child, addr, dir };
        wait_for(
            "tansu to accept connections",
            Duration::from_secs(30),
            || TcpStream::connect(&b.addr).ok(),
        );
        b
    }

    pub fn create_topics(&self, partitions: i32) {
        self.create_named_topics(&TOPICS, partitions);
    }

    pub fn create_named_topics(&self, names: &[&str], partitions: i32) {
        let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
            .set("bootstrap.servers", &self.addr)
            .create()
            .unwrap();
        let topics: Vec<NewTopic<'_>> = names
            .iter()
            .map(|t| NewTopic::new(t, partitions, TopicReplication::Fixed(1)))
            .collect();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let res = rt
            .block_on(admin.create_topics(
                topics.iter(),
                &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))),
            ))
            .unwrap();
        for r in res {
            r.unwrap();
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("tansu.log")).unwrap_or_default()
    }

    pub fn port(&self) -> u16 {
        self.addr.rsplit(':').next().unwrap().parse().unwrap()
    }

    /// SIGSTOP: the process stays, its sockets stay open, nothing answers.
    pub fn freeze(&self) {
        signal(self.child.id(), "-STOP");
    }

    /// SIGCONT after [`Broker::freeze`].
    pub fn thaw(&self) {
        signal(self.child.id(), "-CONT");
    }
}

fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill {sig} {pid} failed");
}

/// CPU time (user + system) a process has used, in seconds, from /proc.
pub fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line: 11 and 12 here.
    let ticks: u64 = f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap();
    // Asked once: a process per reading would cost more than the reading
    // (the stream bench reads three processes at a mark mid-stream).
    static HZ: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    let hz = HZ.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok()?.trim().parse::<f64>().ok())
            .unwrap_or(100.0)
    });
    ticks as f64 / hz
}

/// Resident set size of a process in KiB (VmRSS), from /proc.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Produce `(key, value)` pairs to `topic` and wait for every acknowledgement.
pub fn produce(brokers: &str, topic: &str, records: &[(String, Vec<u8>)]) {
    produce_with(brokers, topic, records, 10_000);
}

/// Like [`produce`], with at most `per_batch` messages in one record batch.
/// Tansu 0.6 cannot serve a fetch that starts inside a record batch (it skips
/// the rest of that batch), so tests that restart consumers mid-stream give
/// every message its own batch: then every committed offset starts a batch.
pub fn produce_with(brokers: &str, topic: &str, records: &[(String, Vec<u8>)], per_batch: usize) {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("enable.idempotence", "true")
        .set("linger.ms", "5")
        .set("batch.num.messages", per_batch.to_string())
        .create()
        .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut futures = std::collections::VecDeque::new();
        for (k, v) in records {
            let mut rec = FutureRecord::to(topic).key(k).payload(v);
            loop {
                match producer.send_result(rec) {
                    Ok(f) => {
                        futures.push_back(f);
                        break;
                    }
                    Err((
                        rdkafka::error::KafkaError::MessageProduction(
                            rdkafka::types::RDKafkaErrorCode::QueueFull,
                        ),
                        r,
                    )) => {
                        rec = r;
                        let f = futures.pop_front().expect("a full queue holds messages");
                        f.await.unwrap().map_err(|(e, _)| e).unwrap();
                    }
                    Err((e, _)) => panic!("cannot produce: {e}"),
                }
            }
        }
        for f in futures {
            f.await.unwrap().map_err(|(e, _)| e).unwrap();
        }
    });
}

/// Read every message of `topics` until `done(messages)` holds, or panic.
pub fn consume_until(
    brokers: &str,
    topics: &[&str],
    timeout: Duration,
    done: impl Fn(&[OwnedMessage]) -> bool,
) -> Vec<OwnedMessage> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", format!("test-reader-{}", free_port()))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    consumer.subscribe(topics).unwrap();
    let mut out = Vec::new();
    let deadline = Instant::now() + timeout;
    while !done(&out) {
        assert!(
            Instant::now() < deadline,
            "timed out reading {topics:?}: {} messages so far",
            out.len()
        );
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
            out.push(m.detach());
        }
    }
    out
}

/// One plain HTTP GET on loopback: (status, body).
pub fn http_get(addr: &str, path: &str) -> Option<(u16, String)> {
    http_request(addr, "GET", path, "", Duration::from_secs(5))
}

/// One HTTP/1.1 request on loopback with extra header lines (each ending in
/// CRLF): (status, body).
pub fn http_request(
    addr: &str,
    method: &str,
    path: &str,
    headers: &str,
    timeout: Duration,
) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(timeout)).ok()?;
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{headers}Content-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).ok()?;
    let status = buf.split_whitespace().nth(1)?.parse().ok()?;
    let body = buf
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Some((status, body))
}

/// Sum of a metric's samples whose labels contain every `label="value"` given.
pub fn metric(text: &str, name: &str, labels: &[&str]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .filter(|l| labels.iter().all(|x| l.contains(x)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// The `reviewguard run` process, configured through the environment.
pub struct Service {
    pub child: Child,
    pub metrics_addr: String,
    pub stderr_path: PathBuf,
}

impl Service {
    pub fn start(
        brokers: &str,
        group: &str,
        dir: &std::path::Path,
        extra_env: &[(&str, &str)],
    ) -> Service {
        Service::start_binary(
            env!("CARGO_BIN_EXE_reviewguard").as_ref(),
            brokers,
            group,
            dir,
            extra_env,
        )
    }

    /// [`Service::start`] with another build of reviewguard.
    pub fn start_binary(
        binary: &std::path::Path,
        brokers: &str,
        group: &str,
        dir: &std::path::Path,
        extra_env: &[(&str, &str)],
    ) -> Service {
        let metrics_addr = format!("127.0.0.1:{}", free_port());
        let stderr_path = dir.join(format!("service-{}.log", free_port()));
        let mut cmd = Command::new(binary);
        cmd.current_dir(env!("CARGO_MANIFEST_DIR"))
            .args(["run", "--config", "config/reviewguard.toml"])
            .env("REVIEWGUARD_KAFKA_BROKERS", brokers)
            .env("REVIEWGUARD_KAFKA_GROUP_ID", group)
            .env("REVIEWGUARD_METRICS_ADDR", &metrics_addr)
            .env(
                "REVIEWGUARD_PRIVACY_PSEUDONYM_KEY",
                "test-key-test-key-test-key",
            )
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr_path).unwrap());
        for (k, v) in extra_env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("cannot start reviewguard");
        Service {
            child,
            metrics_addr,
            stderr_path,
        }
    }

    pub fn metrics(&self) -> Option<String> {
        match http_get(&self.metrics_addr, "/metrics") {
            Some((200, body)) => Some(body),
            _ => None,
        }
    }

    pub fn wait_ready(&mut self, timeout: Duration) {
        let addr = self.metrics_addr.clone();
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("reviewguard exited early ({status}): {}", self.log());
            }
            let answer = http_get(&addr, "/readyz");
            if matches!(answer, Some((200, _))) {
                return;
            }
            if Instant::now() > deadline {
                let log = self.log();
                let tail: Vec<&str> = log.lines().rev().take(30).collect();
                panic!(
                    "timed out after {timeout:?} waiting for /readyz to say ready; it said {answer:?}; log tail (newest first):\n{}",
                    tail.join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Wait until `reviews_consumed_total` reaches `n`.
    pub fn wait_consumed(&mut self, n: u64, timeout: Duration) -> String {
        wait_for(&format!("{n} reviews consumed"), timeout, || {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("reviewguard exited early ({status}): {}", self.log());
            }
            let m = self.metrics()?;
            (metric(&m, "reviewguard_reviews_consumed_total", &[]) as u64 >= n).then_some(m)
        })
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// `/readyz`: Some(true) on 200, Some(false) on 503, None when it does not answer.
    pub fn ready(&self) -> Option<bool> {
        http_get(&self.metrics_addr, "/readyz").map(|(status, _)| status == 200)
    }

    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        let child = &mut self.child;
        wait_for(
            "reviewguard to exit after SIGTERM",
            Duration::from_secs(30),
            || child.try_wait().unwrap(),
        )
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sum over `topic`'s partitions of the offsets `group` has committed.
pub fn committed_total(brokers: &str, group: &str, topic: &str, partitions: i32) -> i64 {
    committed_offsets(brokers, group, topic, partitions).map_or(-1, |c| c.iter().sum())
}

/// The offset `group` has committed for each of `topic`'s first `partitions`
/// partitions (0 where none), or `None` when the broker does not answer.
pub fn committed_offsets(
    brokers: &str,
    group: &str,
    topic: &str,
    partitions: i32,
) -> Option<Vec<i64>> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", group)
        .create()
        .unwrap();
    let mut tpl = rdkafka::TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition(topic, p);
    }
    let c = consumer
        .committed_offsets(tpl, Duration::from_secs(5))
        .ok()?;
    Some(
        c.elements()
            .iter()
            .map(|e| match e.offset() {
                rdkafka::Offset::Offset(o) => o,
                _ => 0,
            })
            .collect(),
    )
}

/// Every message of `topic` from the beginning to its current end. The end
/// is found with a barrier record this writes to each partition (Tansu's
/// high watermarks can fall short of the last record); barriers are left out.
pub fn read_all(brokers: &str, topic: &str, partitions: i32) -> Vec<OwnedMessage> {
    const BARRIER: &[u8] = b"\0test-barrier";
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "test-read-all")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut out = Vec::new();
    for p in 0..partitions {
        let token = format!("{}-{p}-{}", topic, free_port());
        let rec = FutureRecord::to(topic)
            .key(BARRIER)
            .payload(token.as_bytes())
            .partition(p);
        rt.block_on(producer.send_result(rec).map_err(|(e, _)| e).unwrap())
            .unwrap()
            .map_err(|(e, _)| e)
            .unwrap();
        let mut tpl = rdkafka::TopicPartitionList::new();
        tpl.add_partition_offset(topic, p, rdkafka::Offset::Beginning)
            .unwrap();
        consumer.assign(&tpl).unwrap();
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            assert!(
                Instant::now() < deadline,
                "timed out reading {topic}[{p}] before its barrier"
            );
            let Some(m) = consumer.poll(Duration::from_millis(200)) else {
                continue;
            };
            let m = m.unwrap();
            if rdkafka::Message::partition(&m) != p {
                continue;
            }
            if rdkafka::Message::key(&m) == Some(BARRIER) {
                if rdkafka::Message::payload(&m) == Some(token.as_bytes()) {
                    break;
                }
                continue;
            }
            out.push(m.detach());
        }
    }
    out
}

/// A flag's JSON without the wall-clock field.
pub fn without_emitted_at(bytes: &[u8]) -> serde_json::Value {
    let mut v: serde_json::Value = serde_json::from_slice(bytes).unwrap();
    v.as_object_mut().unwrap().remove("emitted_at");
    v
}

/// Flags the library's replay gives for `reviews` in order (same core, same key).
pub fn reference(
    reviews: &[reviewguard::offline::simulate::SimReview],
) -> (Vec<serde_json::Value>, reviewguard::core::scorer::States) {
    let scorer = reviewguard::core::scorer::Scorer {
        extractor: std::sync::Arc::new(reviewguard::core::extract::Extractor::builtin().unwrap()),
        models: reviewguard::core::scorer::Models::builtin().unwrap(),
        pseudonyms: reviewguard::core::privacy::Pseudonymiser::new(b"test-key-test-key-test-key"),
        decide: Default::default(),
        outcomes: Default::default(),
    };
    let mut input = Vec::new();
    for r in reviews {
        input.extend(serde_json::to_vec(r).unwrap());
        input.push(b'\n');
    }
    let mut out = Vec::new();
    let (_, states) = reviewguard::offline::replay::replay(
        &scorer,
        &input[..],
        &mut out,
        1 << 20,
        String::new,
        |_| {},
    )
    .unwrap();
    let flags = out
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(without_emitted_at)
        .collect();
    (flags, states)
}

impl Service {
    /// SIGKILL: no drain, no commit, no goodbye to the group.
    pub fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// `reviews_consumed_total` of this process, if it answers.
    pub fn consumed(&self) -> Option<u64> {
        Some(metric(&self.metrics()?, "reviewguard_reviews_consumed_total", &[]) as u64)
    }
}

/// Produce a simulated world's reviews to their domain topics, key =
/// business_id, one message per record batch (see [`produce_with`]).
pub fn produce_reviews(brokers: &str, reviews: &[reviewguard::offline::simulate::SimReview]) {
    for d in reviewguard::types::Domain::ALL {
        let recs: Vec<(String, Vec<u8>)> = reviews
            .iter()
            .filter(|r| r.domain == d)
            .map(|r| (r.business_id.clone(), serde_json::to_vec(r).unwrap()))
            .collect();
        produce_with(brokers, &format!("reviews.{d}"), &recs, 1);
    }
}

/// Flags on both inspection topics, checked against the reference: the same
/// distinct flag_ids, and every copy identical to the reference apart from
/// `emitted_at`. Returns (messages read, distinct flags).
pub fn assert_flags_match(
    brokers: &str,
    partitions: i32,
    reference: &[serde_json::Value],
) -> (usize, usize) {
    use std::collections::BTreeMap;
    let want: BTreeMap<String, &serde_json::Value> = reference
        .iter()
        .map(|f| (f["flag_id"].as_str().unwrap().to_owned(), f))
        .collect();
    let mut got: BTreeMap<String, usize> = BTreeMap::new();
    let mut n = 0;
    for topic in ["inspection.food", "inspection.tourism"] {
        for m in read_all(brokers, topic, partitions) {
            let f = without_emitted_at(rdkafka::Message::payload(&m).unwrap());
            let id = f["flag_id"].as_str().unwrap().to_owned();
            let expected = want.get(&id).unwrap_or_else(|| {
                let same: Vec<String> = reference
                    .iter()
                    .filter(|r| r["business_id"] == f["business_id"] && r["domain"] == f["domain"])
                    .map(|r| format!("{} {} {} {}", r["event_time"], r["severity"], r["trigger"], r["risk_score"]))
                    .collect();
                panic!(
                    "a flag the reference does not have: {} {} {} {} {} (reviews_considered {})\nthe reference flags this business at: {same:#?}",
                    f["business_id"], f["event_time"], f["severity"], f["trigger"], f["risk_score"], f["reviews_considered"]
                )
            });
            if &&f != expected {
                let diff: Vec<String> = f
                    .as_object()
                    .unwrap()
                    .iter()
                    .filter(|(k, v)| expected.get(k.as_str()) != Some(v))
                    .map(|(k, v)| format!("{k}: got {v} want {}", expected[k.as_str()]))
                    .collect();
                panic!("flag {id} differs from the reference: {diff:#?}");
            }
            *got.entry(id).or_default() += 1;
            n += 1;
        }
    }
    let missing: Vec<_> = want.keys().filter(|k| !got.contains_key(*k)).collect();
    assert!(
        missing.is_empty(),
        "{} flags lost: {missing:?}",
        missing.len()
    );
    (n, got.len())
}

/// The newest changelog state of every business equals the reference's
/// (compared as states, not as JSON text: f32 values print differently when
/// widened to f64).
pub fn assert_states_match(
    brokers: &str,
    partitions: i32,
    reference: &reviewguard::core::scorer::States,
) {
    use reviewguard::core::features::BusinessState;
    use std::collections::BTreeMap;
    let mut latest: BTreeMap<(String, String), BusinessState> = BTreeMap::new();
    let all = read_all(brokers, "reviewguard.changelog", partitions);
    for m in all {
        let Some(p) = rdkafka::Message::payload(&m).filter(|p| p.starts_with(b"{")) else {
            continue;
        };
        let r: reviewguard::service::changelog::Record = serde_json::from_slice(p).unwrap();
        let key = (r.domain.as_str().to_owned(), r.business_id.clone());
        if latest
            .get(&key)
            .is_none_or(|s| s.source_offset <= r.source_offset)
        {
            latest.insert(key, r.state);
        }
    }
    let missing: Vec<String> = reference
        .iter()
        .filter(|(d, id, _)| !latest.contains_key(&(d.as_str().to_owned(), id.to_string())))
        .map(|(d, id, s)| format!("{d} {id} (last source offset {})", s.source_offset))
        .collect();
    assert!(
        missing.is_empty(),
        "{} businesses of the reference have no state in the changelog: {missing:?}",
        missing.len()
    );
    assert_eq!(
        latest.len(),
        reference.len(),
        "businesses in the changelog vs the reference"
    );
    for (domain, id, want) in reference.iter() {
        let mut got = latest
            .get(&(domain.as_str().to_owned(), id.to_owned()))
            .unwrap_or_else(|| panic!("no state for {id}"))
            .clone();
        got.source_offset = want.source_offset;
        assert_eq!(&got, want, "final state of {domain} {id}");
    }
}

/// librdkafka's in-process mock cluster, reachable over loopback by the
/// service processes. Lives on the creating thread (it is not `Send`).
pub struct MockBroker {
    _cluster: rdkafka::mocking::MockCluster<'static, rdkafka::producer::DefaultProducerContext>,
    pub addr: String,
}

impl MockBroker {
    pub fn start(partitions: i32) -> MockBroker {
        let cluster = rdkafka::mocking::MockCluster::new(1).unwrap();
        for t in TOPICS {
            cluster.create_topic(t, partitions, 1).unwrap();
        }
        let addr = cluster.bootstrap_servers();
        MockBroker {
            _cluster: cluster,
            addr,
        }
    }

    /// Two brokers: the changelog's partitions (and a topic `probe.slow` of
    /// one partition) led by broker 2, everything else (and `group`'s
    /// coordinator) by broker 1, so that [`MockBroker::delay_changelog`]
    /// slows the changelog's writes alone.
    pub fn start_with_changelog_apart(partitions: i32, group: &str) -> MockBroker {
        let cluster = rdkafka::mocking::MockCluster::new(2).unwrap();
        cluster.create_topic("probe.slow", 1, 1).unwrap();
        cluster.partition_leader("probe.slow", 0, Some(2)).unwrap();
        for t in TOPICS {
            cluster.create_topic(t, partitions, 1).unwrap();
            let leader = if t == "reviewguard.changelog" { 2 } else { 1 };
            for p in 0..partitions {
                cluster.partition_leader(t, p, Some(leader)).unwrap();
            }
        }
        cluster
            .coordinator(
                rdkafka::mocking::MockCoordinator::Group(group.to_owned()),
                1,
            )
            .unwrap();
        let addr = cluster.bootstrap_servers();
        MockBroker {
            _cluster: cluster,
            addr,
        }
    }

    /// Every request to broker 2 (the changelog's, with
    /// [`MockBroker::start_with_changelog_apart`]) takes `rtt` to answer.
    pub fn delay_changelog(&self, rtt: Duration) {
        self._cluster.broker_round_trip_time(2, rtt).unwrap();
    }

    /// The next `n` TxnOffsetCommit requests fail with ILLEGAL_GENERATION, as
    /// when a rebalance has fenced the member: librdkafka makes the
    /// transaction abortable.
    pub fn fail_txn_offset_commits(&self, n: usize) {
        self._cluster.request_errors(
            rdkafka::types::RDKafkaApiKey::TxnOffsetCommit,
            &vec![rdkafka::types::RDKafkaRespErr::RD_KAFKA_RESP_ERR_ILLEGAL_GENERATION; n],
        );
    }
}

/// Wait until `value()` is at least `min` and has not changed for `quiet`.
pub fn wait_settled(
    what: &str,
    timeout: Duration,
    quiet: Duration,
    min: u64,
    mut value: impl FnMut() -> Option<u64>,
) -> u64 {
    let mut last: Option<(u64, Instant)> = None;
    wait_for(what, timeout, || {
        let v = value()?;
        match last {
            Some((prev, since)) if prev == v && v >= min && since.elapsed() >= quiet => Some(v),
            Some((prev, _)) if prev == v => None,
            _ => {
                last = Some((v, Instant::now()));
                None
            }
        }
    })
}
