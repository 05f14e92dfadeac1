//! The per-attempt source of what the host hands a step besides its input: live values
//! (written to a tape, up to a byte cap) when the step runs, the tape's values when it is
//! replayed. Clock reads past the end of the tape carry on from its last value at the live
//! pace, so a step that reads the clock more often than it did still runs, and is reported.

use std::sync::{Arc, Mutex};

use serde_json::json;

use super::findings::{Findings, Nondeterminism};
use super::tape::{AttemptTape, HttpExchange, HttpRequestRecord, HttpResponseRecord, encode};

/// One attempt's tape deck, shared by its clocks, its random sources and its HTTP gate.
#[derive(Clone, Default)]
pub struct Deck(Arc<Mutex<Mode>>);

impl std::fmt::Debug for Deck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mode = self.with(|m| match m {
            Mode::Off | Mode::OffSeeded(_) => "off",
            Mode::Record(_) => "recording",
            Mode::Play(_) => "playing",
        });
        f.debug_tuple("Deck").field(&mode).finish()
    }
}

#[derive(Default)]
enum Mode {
    /// Nothing is kept (a one-off step outside a run), but the seed, which stays the same
    /// for the attempt once read.
    #[default]
    Off,
    OffSeeded(u128),
    Record(Recording),
    Play(Box<Playback>),
}

struct Recording {
    tape: AttemptTape,
    random: Vec<u8>,
    /// Response bodies, raw while they stream in, by exchange; encoded once at the end.
    bodies: Vec<Vec<u8>>,
    cap: u64,
}

struct Playback {
    tape: AttemptTape,
    random: Vec<u8>,
    wall_at: usize,
    monotonic_at: usize,
    random_at: usize,
    http_at: usize,
    /// Live clock values at the first read past the tape's end, per clock.
    wall_overrun: Option<u64>,
    monotonic_overrun: Option<u64>,
    findings: Findings,
    step: String,
    attempt: u32,
    /// A candidate's: requests match any unused exchange, and a miss follows this.
    candidate: Option<super::recorded::OnMiss>,
    /// Where a candidate's answered and missed requests are counted.
    tally: Arc<super::recorded::Tally>,
    /// Exchanges a candidate has been answered with.
    used: Vec<bool>,
}

/// What the HTTP gate does with a request.
pub enum HttpTurn {
    /// Send it; what comes back goes on tape at this index (when recording).
    Send(Option<usize>),
    /// Answer it from the tape.
    Answer(HttpExchange),
    /// Refuse it: the replay asked something the record does not hold.
    Refuse(String),
}

impl Deck {
    /// A deck that records up to `cap` bytes.
    pub fn record(cap: u64) -> Self {
        Self(Arc::new(Mutex::new(Mode::Record(Recording {
            tape: AttemptTape::default(),
            random: Vec::new(),
            bodies: Vec::new(),
            cap,
        }))))
    }

    /// A deck that plays `tape` back, reporting differences to `findings`.
    pub fn play(tape: AttemptTape, findings: Findings, step: &str, attempt: u32) -> Self {
        Self::playing_as(tape, findings, step, attempt, None)
    }

    /// A deck for a candidate: clocks and random bytes from `tape` in order (live past its
    /// end), HTTP answered by whichever recorded exchange asked the same, misses per `on_miss`.
    pub fn candidate(
        tape: AttemptTape,
        on_miss: super::recorded::OnMiss,
        tally: Arc<super::recorded::Tally>,
        step: &str,
        attempt: u32,
    ) -> Self {
        let deck = Self::playing_as(tape, Findings::default(), step, attempt, Some(on_miss));
        deck.with(|mode| {
            if let Mode::Play(p) = mode {
                p.tally = tally;
            }
        });
        deck
    }

    fn playing_as(
        tape: AttemptTape,
        findings: Findings,
        step: &str,
        attempt: u32,
        candidate: Option<super::recorded::OnMiss>,
    ) -> Self {
        let random = tape.random_bytes();
        let used = vec![false; tape.http.len()];
        Self(Arc::new(Mutex::new(Mode::Play(Box::new(Playback {
            tape,
            random,
            wall_at: 0,
            monotonic_at: 0,
            random_at: 0,
            http_at: 0,
            wall_overrun: None,
            monotonic_overrun: None,
            findings,
            step: step.to_string(),
            attempt,
            candidate,
            used,
            tally: Arc::default(),
        })))))
    }

    fn with<T>(&self, f: impl FnOnce(&mut Mode) -> T) -> T {
        f(&mut self.0.lock().expect("deck lock"))
    }

    /// Whether the deck answers from a tape.
    pub fn playing(&self) -> bool {
        self.with(|m| matches!(m, Mode::Play(_)))
    }

    /// A wall-clock read: `live` is the real clock.
    pub fn wall(&self, live: u64) -> u64 {
        self.with(|mode| match mode {
            Mode::Off | Mode::OffSeeded(_) => live,
            Mode::Record(r) => {
                if r.keep(8) {
                    r.tape.wall_ns.push(live);
                }
                live
            }
            Mode::Play(p) => {
                let at = p.wall_at;
                p.wall_at += 1;
                clock_value(&p.tape.wall_ns, at, live, &mut p.wall_overrun)
            }
        })
    }

    /// A monotonic clock read.
    pub fn monotonic(&self, live: u64) -> u64 {
        self.with(|mode| match mode {
            Mode::Off | Mode::OffSeeded(_) => live,
            Mode::Record(r) => {
                if r.keep(8) {
                    r.tape.monotonic_ns.push(live);
                }
                live
            }
            Mode::Play(p) => {
                let at = p.monotonic_at;
                p.monotonic_at += 1;
                clock_value(&p.tape.monotonic_ns, at, live, &mut p.monotonic_overrun)
            }
        })
    }

    /// Random bytes into `dst`: `live` fills them from the real source.
    pub fn random(&self, dst: &mut [u8], live: impl FnOnce(&mut [u8])) {
        self.with(|mode| match mode {
            Mode::Off | Mode::OffSeeded(_) => live(dst),
            Mode::Record(r) => {
                live(dst);
                if r.keep(dst.len() as u64) {
                    r.random.extend_from_slice(dst);
                }
            }
            Mode::Play(p) => {
                let from = p.random_at;
                let end = from + dst.len();
                p.random_at = end;
                if end <= p.random.len() {
                    dst.copy_from_slice(&p.random[from..end]);
                } else {
                    live(dst);
                    if from <= p.random.len() && p.candidate.is_none() {
                        // Once, where the replay first wants more than the record holds.
                        let finding = Nondeterminism::new(
                            &p.step,
                            p.attempt,
                            format!("random bytes {from}..{end}"),
                            json!({"recorded_bytes": p.random.len()}),
                            json!({"asked_up_to": end}),
                        );
                        p.findings.push(finding);
                    }
                }
            }
        });
    }

    /// The insecure-random seed: `live` on a recording, the recorded one on replay.
    pub fn seed(&self, live: u128) -> u128 {
        self.with(|mode| match mode {
            Mode::Off => {
                *mode = Mode::OffSeeded(live);
                live
            }
            Mode::OffSeeded(seed) => *seed,
            Mode::Record(r) => {
                // One seed per attempt: a second read gets the first's, as WASI's own does.
                if let Some(seed) = r.tape.seed.as_deref().and_then(|s| s.parse().ok()) {
                    return seed;
                }
                r.tape.seed = Some(live.to_string());
                live
            }
            Mode::Play(p) => p
                .tape
                .seed
                .as_deref()
                .and_then(|s| s.parse().ok())
                .unwrap_or(live),
        })
    }

    /// What to do with an outgoing request.
    pub fn http_request(&self, request: HttpRequestRecord) -> HttpTurn {
        self.with(|mode| match mode {
            Mode::Off | Mode::OffSeeded(_) => HttpTurn::Send(None),
            Mode::Record(r) => {
                let size = request.url.len() as u64 + 96;
                if !r.keep(size) {
                    return HttpTurn::Send(None);
                }
                r.tape.http.push(HttpExchange {
                    request,
                    ..HttpExchange::default()
                });
                r.bodies.push(Vec::new());
                HttpTurn::Send(Some(r.tape.http.len() - 1))
            }
            Mode::Play(p) if p.candidate.is_some() => p.candidate_request(request),
            Mode::Play(p) => {
                let at = p.http_at;
                p.http_at += 1;
                let position = format!("http request {}", at + 1);
                let expected = p.tape.http.get(at);
                match expected {
                    Some(exchange) if exchange.request == request => {
                        HttpTurn::Answer(exchange.clone())
                    }
                    _ => {
                        let expected = expected.map_or(serde_json::Value::Null, |e| {
                            serde_json::to_value(&e.request).unwrap_or_default()
                        });
                        let got = serde_json::to_value(&request).unwrap_or_default();
                        p.findings.push(Nondeterminism::new(
                            &p.step,
                            p.attempt,
                            position.clone(),
                            expected,
                            got,
                        ));
                        HttpTurn::Refuse(format!(
                            "replay: {position} differs from the record; nothing was sent"
                        ))
                    }
                }
            }
        })
    }

    /// The body of request `index` was sent whole: its digest and length.
    pub fn http_request_body(&self, index: usize, sha256: String, bytes: u64) {
        self.with(|mode| {
            if let Mode::Record(r) = mode {
                let request = &mut r.tape.http[index].request;
                request.body_sha256 = sha256;
                request.body_bytes = bytes;
            }
        });
    }

    /// The answer to request `index` arrived (its body follows in [`Deck::http_body`]).
    pub fn http_response(&self, index: usize, response: HttpResponseRecord) {
        self.with(|mode| {
            if let Mode::Record(r) = mode {
                let size: u64 = response
                    .headers
                    .iter()
                    .map(|(k, v)| (k.len() + v.len()) as u64)
                    .sum();
                if r.keep(size + 16) {
                    r.tape.http[index].response = Some(response);
                }
            }
        });
    }

    /// Request `index` failed without an answer.
    pub fn http_error(&self, index: usize, error: String) {
        self.with(|mode| {
            if let Mode::Record(r) = mode
                && r.keep(error.len() as u64)
            {
                r.tape.http[index].error = Some(error);
            }
        });
    }

    /// The step read `chunk` of the answer to request `index`; `end` when the body is over.
    pub fn http_body(&self, index: usize, chunk: &[u8], end: bool) {
        self.with(|mode| {
            let Mode::Record(r) = mode else { return };
            if !r.keep(chunk.len() as u64) {
                return;
            }
            if let Some(response) = r.tape.http[index].response.as_mut() {
                r.bodies[index].extend_from_slice(chunk);
                response.complete = end;
            }
        });
    }

    /// The tape of a recording (`None` when the deck was off, played, or read nothing).
    pub fn finish(&self) -> Option<AttemptTape> {
        self.with(|mode| match std::mem::take(mode) {
            Mode::Record(mut r) => {
                r.tape.random = encode(&r.random);
                for (exchange, body) in r.tape.http.iter_mut().zip(&r.bodies) {
                    if let Some(response) = exchange.response.as_mut() {
                        response.body = encode(body);
                    }
                }
                (!r.tape.is_empty()).then_some(r.tape)
            }
            Mode::Play(p) => {
                p.report_unread();
                None
            }
            Mode::Off | Mode::OffSeeded(_) => None,
        })
    }
}

impl Recording {
    /// Counts `bytes` against the cap: `false` (and the tape marked incomplete) past it.
    fn keep(&mut self, bytes: u64) -> bool {
        if self.tape.incomplete.is_some() {
            return false;
        }
        self.tape.bytes += bytes;
        if self.tape.bytes > self.cap {
            self.tape.incomplete = Some(format!(
                "the attempt read more from the host than the replay tape's cap of {} bytes",
                self.cap
            ));
            return false;
        }
        true
    }
}

impl Playback {
    /// A candidate's request: the first unused exchange that asked the same answers it.
    fn candidate_request(&mut self, request: HttpRequestRecord) -> HttpTurn {
        use super::recorded::{OnMiss, Tally};
        let found = (0..self.tape.http.len())
            .find(|&i| !self.used[i] && self.tape.http[i].request == request);
        if let Some(i) = found {
            self.used[i] = true;
            Tally::add(&self.tally.answered);
            return HttpTurn::Answer(self.tape.http[i].clone());
        }
        Tally::add(&self.tally.missed);
        match self.candidate {
            Some(OnMiss::Live) if request.method == "GET" => {
                Tally::add(&self.tally.live);
                HttpTurn::Send(None)
            }
            Some(OnMiss::Skip) => {
                self.tally
                    .skipped
                    .store(true, std::sync::atomic::Ordering::Relaxed);
                HttpTurn::Refuse(format!(
                    "evaluation: {} {} is not on record",
                    request.method, request.url
                ))
            }
            Some(OnMiss::Live) => HttpTurn::Refuse(format!(
                "evaluation: {} {} is not on record, and a candidate sends nothing but GET",
                request.method, request.url
            )),
            _ => HttpTurn::Refuse(format!(
                "evaluation: {} {} is not on record",
                request.method, request.url
            )),
        }
    }

    /// Requests the record holds that the replay never made.
    fn report_unread(&self) {
        if self.candidate.is_some() {
            return;
        }
        for (i, exchange) in self.tape.http.iter().enumerate().skip(self.http_at) {
            let expected = serde_json::to_value(&exchange.request).unwrap_or_default();
            self.findings.push(Nondeterminism::new(
                &self.step,
                self.attempt,
                format!("http request {}", i + 1),
                expected,
                serde_json::Value::Null,
            ));
        }
    }
}

/// The `at`-th read of a clock whose reads are `recorded`: the record's, or past its end
/// the last recorded value moved on by the live time since the first read past it.
fn clock_value(recorded: &[u64], at: usize, live: u64, overrun: &mut Option<u64>) -> u64 {
    if let Some(value) = recorded.get(at) {
        return *value;
    }
    let Some(last) = recorded.last() else {
        return live;
    };
    let start = *overrun.get_or_insert(live);
    last + live.saturating_sub(start)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recording_plays_back_in_order_and_carries_on_past_its_end() {
        let deck = Deck::record(1024);
        assert_eq!(deck.wall(100), 100);
        assert_eq!(deck.wall(200), 200);
        assert_eq!(deck.monotonic(5), 5);
        let mut bytes = [0u8; 4];
        deck.random(&mut bytes, |d| d.copy_from_slice(&[1, 2, 3, 4]));
        let tape = deck.finish().unwrap();
        assert_eq!(
            (tape.wall_ns.clone(), tape.monotonic_ns.clone()),
            (vec![100, 200], vec![5])
        );
        assert_eq!(tape.bytes, 8 + 8 + 8 + 4);

        let findings = Findings::default();
        let deck = Deck::play(tape, findings.clone(), "s", 1);
        assert_eq!((deck.wall(9000), deck.wall(9000)), (100, 200));
        // Past the end: the last value, moved on at the live pace from the first such read.
        assert_eq!((deck.wall(9000), deck.wall(9050)), (200, 250));
        let mut again = [0u8; 4];
        deck.random(&mut again, |_| panic!("the record holds these bytes"));
        assert_eq!(again, [1, 2, 3, 4]);
        assert!(findings.take().is_empty());
        // Random bytes past the record are live, and reported once.
        let mut more = [0u8; 2];
        deck.random(&mut more, |d| d.fill(7));
        deck.random(&mut more, |d| d.fill(7));
        let found = findings.take();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].position, "random bytes 4..6");
    }

    #[test]
    fn a_tape_past_its_cap_stops_and_says_why() {
        let deck = Deck::record(20);
        for t in 0..10 {
            assert_eq!(deck.wall(t), t, "the attempt itself is not affected");
        }
        let tape = deck.finish().unwrap();
        assert_eq!(tape.wall_ns, vec![0, 1]);
        assert!(tape.incomplete.unwrap().contains("cap of 20 bytes"));
    }

    #[test]
    fn a_request_that_differs_from_the_record_is_refused_and_reported() {
        let deck = Deck::record(1 << 20);
        let asked = |url: &str| HttpRequestRecord {
            method: "GET".into(),
            url: url.into(),
            ..HttpRequestRecord::default()
        };
        let HttpTurn::Send(Some(0)) = deck.http_request(asked("http://a/1")) else {
            panic!("a recording sends")
        };
        deck.http_response(
            0,
            HttpResponseRecord {
                status: 200,
                ..Default::default()
            },
        );
        deck.http_body(0, b"he", false);
        deck.http_body(0, b"llo", true);
        let tape = deck.finish().unwrap();
        let response = tape.http[0].response.clone().unwrap();
        assert_eq!(
            (response.body_bytes(), response.complete),
            (b"hello".to_vec(), true)
        );

        let findings = Findings::default();
        let deck = Deck::play(tape.clone(), findings.clone(), "s", 2);
        let HttpTurn::Refuse(why) = deck.http_request(asked("http://a/2")) else {
            panic!("another URL is refused")
        };
        assert!(why.contains("http request 1"), "{why}");
        let found = findings.take();
        assert_eq!(
            (found[0].attempt, found[0].position.as_str()),
            (2, "http request 1")
        );
        assert_eq!(found[0].diff[0]["path"], "/url");

        let deck = Deck::play(tape, findings.clone(), "s", 2);
        assert!(matches!(
            deck.http_request(asked("http://a/1")),
            HttpTurn::Answer(_)
        ));
        assert!(deck.finish().is_none());
        assert!(findings.take().is_empty());
    }
}
