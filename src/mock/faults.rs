//! Fault specifications: what can go wrong with a mock response, parsed from short strings.
//!
//! Syntax: `[p=P,]KIND[:OPT=VAL[,OPT=VAL...]]`, case-insensitive, where KIND is
//!
//! | KIND | effect |
//! | --- | --- |
//! | `NNN` (400-599) | error response with that status, in the endpoint's dialect; options `retry-after=S`, `retry-after-ms=MS` add those headers (`429`, `500`, `503`, `529`, ...) |
//! | `hang` | read the request, never answer; the socket stays open until the client leaves |
//! | `reset` | close the connection with a TCP RST before writing anything |
//! | `cut` | send the head and `after=N` (default 2) stream events, or half of a non-stream body, then RST |
//! | `malformed` | 200 with a body that is not valid JSON / SSE, correctly framed |
//! | `slow` | answer normally after `ms=N` (overrides the time to first byte) |
//! | `none` | no fault (a per-request header can switch a default fault off) |
//!
//! `p=0.3,503` applies the fault to 30% of the requests it is considered for.

use std::fmt;
use std::str::FromStr;

/// What happens to a faulted request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FaultKind {
    /// No fault.
    None,
    /// An error response with this status code.
    Status {
        code: u16,
        /// Adds `retry-after: S`.
        retry_after: Option<u64>,
        /// Adds `retry-after-ms: MS` (honoured by the OpenAI SDKs).
        retry_after_ms: Option<u64>,
    },
    /// Never answer; keep the socket open until the client closes it.
    Hang,
    /// Close with a TCP RST (SO_LINGER 0) before writing anything.
    Reset,
    /// Send the response head and `after` events (non-stream: half the body), then RST.
    Cut { after: usize },
    /// 200 with a correctly framed but unparseable body.
    Malformed,
    /// Normal answer after `ms` milliseconds before the first byte.
    Slow { ms: u64 },
}

/// A fault and the probability that it applies to a given request.
#[derive(Clone, Debug, PartialEq)]
pub struct FaultSpec {
    /// In `[0, 1]`; 1 unless a `p=` prefix was given.
    pub probability: f64,
    pub kind: FaultKind,
}

impl FaultSpec {
    /// A fault that always applies.
    pub fn always(kind: FaultKind) -> Self {
        Self {
            probability: 1.0,
            kind,
        }
    }

    /// Whether the fault applies, given a uniform random number in `[0, 1)`.
    pub fn fires(&self, uniform: f64) -> bool {
        self.probability >= 1.0 || uniform < self.probability
    }
}

const SYNTAX: &str = "expected [p=P,]KIND[:OPT=VAL,...] where KIND is a status code 400-599 \
(options retry-after=S, retry-after-ms=MS), hang, reset, cut (option after=N), malformed, \
slow (option ms=N) or none";

impl FromStr for FaultSpec {
    type Err = String;

    fn from_str(input: &str) -> Result<Self, String> {
        let err = |why: String| format!("invalid fault {input:?}: {why}; {SYNTAX}");
        let s = input.trim();
        let (probability, rest) = match strip_prefix_ci(s, "p=") {
            Some(after) => {
                let (p, rest) = after
                    .split_once(',')
                    .ok_or_else(|| err("a p= prefix must be followed by ',' and a fault".into()))?;
                let p: f64 = p
                    .trim()
                    .parse()
                    .map_err(|_| err(format!("probability {:?} is not a number", p.trim())))?;
                if !(0.0..=1.0).contains(&p) {
                    return Err(err(format!("probability {p} is not within 0..=1")));
                }
                (p, rest.trim())
            }
            None => (1.0, s),
        };
        let (name, opts) = match rest.split_once(':') {
            Some((n, o)) => (n.trim(), Some(o)),
            None => (rest, None),
        };
        let mut options: Vec<(String, String)> = Vec::new();
        if let Some(opts) = opts {
            for opt in opts.split(',').map(str::trim).filter(|o| !o.is_empty()) {
                let (k, v) = opt
                    .split_once('=')
                    .ok_or_else(|| err(format!("option {opt:?} is not NAME=VALUE")))?;
                options.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
            }
        }
        let number = |key: &str, value: &str| -> Result<u64, String> {
            value
                .parse::<u64>()
                .map_err(|_| err(format!("option {key}={value:?} is not a whole number")))
        };
        let lower = name.to_ascii_lowercase();
        let allowed: &[&str] = match lower.as_str() {
            "cut" => &["after"],
            "slow" => &["ms"],
            "hang" | "reset" | "malformed" | "none" | "off" => &[],
            _ => &["retry-after", "retry-after-ms"],
        };
        for (k, _) in &options {
            if !allowed.contains(&k.as_str()) {
                return Err(err(format!("option {k:?} does not apply to {name:?}")));
            }
        }
        let opt = |key: &str| {
            options
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.as_str())
        };
        let kind = match lower.as_str() {
            "none" | "off" => FaultKind::None,
            "hang" => FaultKind::Hang,
            "reset" => FaultKind::Reset,
            "malformed" => FaultKind::Malformed,
            "cut" => FaultKind::Cut {
                after: match opt("after") {
                    Some(v) => number("after", v)? as usize,
                    None => 2,
                },
            },
            "slow" => FaultKind::Slow {
                ms: number(
                    "ms",
                    opt("ms").ok_or_else(|| err("slow needs ms=N".into()))?,
                )?,
            },
            code if !code.is_empty() && code.bytes().all(|b| b.is_ascii_digit()) => {
                let code: u16 = code
                    .parse()
                    .map_err(|_| err(format!("status {code} is out of range")))?;
                if !(400..=599).contains(&code) {
                    return Err(err(format!(
                        "status {code} is not an error status (400-599)"
                    )));
                }
                FaultKind::Status {
                    code,
                    retry_after: opt("retry-after")
                        .map(|v| number("retry-after", v))
                        .transpose()?,
                    retry_after_ms: opt("retry-after-ms")
                        .map(|v| number("retry-after-ms", v))
                        .transpose()?,
                }
            }
            "" => return Err(err("no fault kind given".into())),
            other => return Err(err(format!("unknown fault kind {other:?}"))),
        };
        Ok(FaultSpec { probability, kind })
    }
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FaultKind::None => write!(f, "none"),
            FaultKind::Hang => write!(f, "hang"),
            FaultKind::Reset => write!(f, "reset"),
            FaultKind::Malformed => write!(f, "malformed"),
            FaultKind::Cut { after } => write!(f, "cut:after={after}"),
            FaultKind::Slow { ms } => write!(f, "slow:ms={ms}"),
            FaultKind::Status {
                code,
                retry_after,
                retry_after_ms,
            } => {
                write!(f, "{code}")?;
                let mut sep = ':';
                if let Some(s) = retry_after {
                    write!(f, "{sep}retry-after={s}")?;
                    sep = ',';
                }
                if let Some(ms) = retry_after_ms {
                    write!(f, "{sep}retry-after-ms={ms}")?;
                }
                Ok(())
            }
        }
    }
}

impl fmt::Display for FaultSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.probability < 1.0 {
            write!(f, "p={},", self.probability)?;
        }
        write!(f, "{}", self.kind)
    }
}

/// SplitMix64: a tiny deterministic generator; `state` is a counter the caller advances.
pub fn splitmix64(state: u64) -> u64 {
    let mut z = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Maps a counter value to a deterministic uniform number in `[0, 1)`.
pub fn uniform(counter: u64) -> f64 {
    (splitmix64(counter) >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> FaultSpec {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn parses_every_kind() {
        assert_eq!(
            parse("429").kind,
            FaultKind::Status {
                code: 429,
                retry_after: None,
                retry_after_ms: None
            }
        );
        assert_eq!(
            parse("429:retry-after=2").kind,
            FaultKind::Status {
                code: 429,
                retry_after: Some(2),
                retry_after_ms: None
            }
        );
        assert_eq!(
            parse(" 503:Retry-After=1, retry-after-ms=250 ").kind,
            FaultKind::Status {
                code: 503,
                retry_after: Some(1),
                retry_after_ms: Some(250)
            }
        );
        assert_eq!(parse("HANG").kind, FaultKind::Hang);
        assert_eq!(parse("reset").kind, FaultKind::Reset);
        assert_eq!(parse("cut").kind, FaultKind::Cut { after: 2 });
        assert_eq!(parse("cut:after=5").kind, FaultKind::Cut { after: 5 });
        assert_eq!(parse("malformed").kind, FaultKind::Malformed);
        assert_eq!(parse("slow:ms=40").kind, FaultKind::Slow { ms: 40 });
        assert_eq!(parse("none").kind, FaultKind::None);
        let p = parse("p=0.3,503");
        assert_eq!(p.probability, 0.3);
        assert_eq!(p.kind.to_string(), "503");
        assert_eq!(parse("P=1, cut:after=1").kind, FaultKind::Cut { after: 1 });
    }

    #[test]
    fn display_round_trips() {
        for s in [
            "429:retry-after=2",
            "p=0.25,cut:after=3",
            "hang",
            "503:retry-after=1,retry-after-ms=5",
            "slow:ms=7",
        ] {
            assert_eq!(parse(s).to_string(), s);
            assert_eq!(parse(&parse(s).to_string()), parse(s));
        }
    }

    #[test]
    fn rejects_bad_specs_with_a_clear_message() {
        for (input, why) in [
            ("", "no fault kind"),
            ("teapot", "unknown fault kind \"teapot\""),
            ("200", "not an error status"),
            ("99999", "out of range"),
            ("p=1.5,503", "not within 0..=1"),
            ("p=x,503", "not a number"),
            ("p=0.5", "must be followed by ','"),
            ("cut:after=x", "not a whole number"),
            ("cut:ms=3", "does not apply"),
            ("slow", "slow needs ms=N"),
            ("429:retry-after", "not NAME=VALUE"),
        ] {
            let e = input.parse::<FaultSpec>().expect_err(input);
            assert!(e.contains(why), "{input:?}: {e}");
            assert!(e.contains("expected [p=P,]KIND"), "{e}");
        }
    }

    #[test]
    fn probability_is_deterministic_and_roughly_right() {
        let spec = parse("p=0.3,503");
        let hits = (0..10_000).filter(|i| spec.fires(uniform(*i))).count();
        assert!((2_700..3_300).contains(&hits), "{hits}");
        let again = (0..10_000).filter(|i| spec.fires(uniform(*i))).count();
        assert_eq!(hits, again);
        assert!(!parse("p=0,503").fires(0.0));
        assert!(parse("503").fires(0.999));
    }
}
