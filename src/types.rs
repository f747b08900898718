//! Small value types shared by every stage of the pipeline.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A capture timestamp: seconds and nanoseconds since the Unix epoch (UTC).
/// In records it is an RFC 3339 string ([`Timestamp::rfc3339`]); this type's
/// serde form is that string, so no record keeps a timestamp as text.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp {
    /// Whole seconds since the epoch (negative before 1970).
    pub secs: i64,
    /// Nanoseconds within the second, 0..1_000_000_000.
    pub nanos: u32,
}

impl Timestamp {
    /// `secs` seconds and `nanos` nanoseconds since the epoch; `nanos` should be below 1_000_000_000.
    pub const fn new(secs: i64, nanos: u32) -> Self {
        Timestamp { secs, nanos }
    }

    /// Nanoseconds since the epoch, saturating.
    pub fn as_nanos(&self) -> i128 {
        self.secs as i128 * 1_000_000_000 + self.nanos as i128
    }

    /// From nanoseconds since the epoch (negative before 1970), saturating at the range of `secs`.
    pub fn from_nanos(n: i128) -> Self {
        let secs = n.div_euclid(1_000_000_000);
        let nanos = n.rem_euclid(1_000_000_000) as u32;
        Timestamp {
            secs: secs.clamp(i64::MIN as i128, i64::MAX as i128) as i64,
            nanos,
        }
    }

    /// Seconds (with fraction) from `earlier` to `self`; negative if `self` is earlier.
    pub fn secs_since(&self, earlier: Timestamp) -> f64 {
        (self.as_nanos() - earlier.as_nanos()) as f64 / 1e9
    }

    /// RFC 3339 in UTC with nanosecond precision, e.g. `2024-05-01T12:00:00.123456789Z`.
    pub fn rfc3339(&self) -> String {
        let (y, mo, d, h, mi, s) = civil(self.secs);
        format!(
            "{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{:09}Z",
            self.nanos
        )
    }

    /// `HH:MM:SS.micro` in UTC, for the transcript.
    pub fn clock(&self) -> String {
        let (_, _, _, h, mi, s) = civil(self.secs);
        format!("{h:02}:{mi:02}:{s:02}.{:06}", self.nanos / 1000)
    }

    /// `YYYY-MM-DD HH:MM:SS.micro` in UTC, for the transcript's dated form.
    pub fn date_clock(&self) -> String {
        let (y, mo, d, h, mi, s) = civil(self.secs);
        format!(
            "{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}.{:06}",
            self.nanos / 1000
        )
    }

    /// Parses the form [`Timestamp::rfc3339`] writes,
    /// `YYYY-MM-DDTHH:MM:SS[.fraction]Z` (1 to 9 fraction digits): the one
    /// parser of wssniff's own timestamps. User input with zones and
    /// relative times goes through `sink::filter::parse_time`, built on it.
    pub fn parse_rfc3339(s: &str) -> Option<Timestamp> {
        let num = |a: usize, b: usize| -> Option<i64> {
            let part = s.get(a..b)?;
            if !part.bytes().all(|c| c.is_ascii_digit()) {
                return None;
            }
            part.parse().ok()
        };
        let sep = |i: usize, c: u8| s.as_bytes().get(i) == Some(&c);
        if !(sep(4, b'-') && sep(7, b'-') && sep(10, b'T') && sep(13, b':') && sep(16, b':')) {
            return None;
        }
        let (y, mo, d) = (num(0, 4)?, num(5, 7)?, num(8, 10)?);
        let (h, mi, sec) = (num(11, 13)?, num(14, 16)?, num(17, 19)?);
        let rest = s.get(19..)?;
        let frac = rest.strip_suffix('Z')?;
        let nanos = match frac.strip_prefix('.') {
            None if frac.is_empty() => 0,
            Some(digits) if (1..=9).contains(&digits.len()) => {
                if !digits.bytes().all(|c| c.is_ascii_digit()) {
                    return None;
                }
                let n: u32 = digits.parse().ok()?;
                n * 10u32.pow(9 - digits.len() as u32)
            }
            _ => return None,
        };
        Timestamp::from_civil(y, mo, d, h, mi, sec, nanos)
    }

    /// A UTC civil date and time, checked (leap second 60 allowed).
    pub fn from_civil(
        y: i64,
        mo: i64,
        d: i64,
        h: i64,
        mi: i64,
        sec: i64,
        nanos: u32,
    ) -> Option<Timestamp> {
        if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
            return None;
        }
        if nanos >= 1_000_000_000 {
            return None;
        }
        let secs = days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + sec;
        Some(Timestamp::new(secs, nanos))
    }
}

impl Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.rfc3339())
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Timestamp::parse_rfc3339(&s).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "bad timestamp {s:?}: expected YYYY-MM-DDTHH:MM:SS[.fraction]Z"
            ))
        })
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.rfc3339())
    }
}

/// Civil date and time (UTC) from Unix seconds, after Howard Hinnant's algorithm.
fn civil(secs: i64) -> (i64, u32, u32, u32, u32, u32) {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = if m <= 2 { y + 1 } else { y };
    (
        y,
        m,
        d,
        (rem / 3600) as u32,
        ((rem % 3600) / 60) as u32,
        (rem % 60) as u32,
    )
}

/// Direction of a WebSocket byte stream.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Dir {
    /// Client to server.
    #[default]
    C2s,
    /// Server to client.
    S2c,
}

impl Dir {
    /// The JSON name: `c2s` or `s2c`.
    pub fn as_str(self) -> &'static str {
        match self {
            Dir::C2s => "c2s",
            Dir::S2c => "s2c",
        }
    }
    /// 0 for client to server, 1 for server to client: an index into per-direction arrays.
    pub fn index(self) -> usize {
        self as usize
    }
    /// The opposite direction.
    pub fn other(self) -> Dir {
        match self {
            Dir::C2s => Dir::S2c,
            Dir::S2c => Dir::C2s,
        }
    }
    /// The transcript's arrow.
    pub fn arrow(self) -> &'static str {
        match self {
            Dir::C2s => "->",
            Dir::S2c => "<-",
        }
    }
}

/// A WebSocket opcode (RFC 6455 section 5.2). In records it is its name:
/// `text`, `binary`, `ping`, `pong`, `close`, `continuation`, `reserved-N`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Opcode(u8);

impl Opcode {
    /// Opcode 0: a further frame of a fragmented message.
    pub const CONTINUATION: Opcode = Opcode(0);
    /// Opcode 1: a text (UTF-8) message.
    pub const TEXT: Opcode = Opcode(1);
    /// Opcode 2: a binary message.
    pub const BINARY: Opcode = Opcode(2);
    /// Opcode 8: a close frame.
    pub const CLOSE: Opcode = Opcode(8);
    /// Opcode 9: a ping.
    pub const PING: Opcode = Opcode(9);
    /// Opcode 10: a pong.
    pub const PONG: Opcode = Opcode(10);

    /// The opcode of a frame header's low four bits.
    pub const fn new(op: u8) -> Opcode {
        Opcode(op & 0x0f)
    }

    /// The opcode as a number, 0..=15.
    pub const fn as_u8(self) -> u8 {
        self.0
    }

    /// Close, ping, pong and the reserved control opcodes.
    pub const fn is_control(self) -> bool {
        self.0 & 0x08 != 0
    }

    /// Its name in records.
    pub fn name(self) -> &'static str {
        const NAMES: [&str; 16] = [
            "continuation",
            "text",
            "binary",
            "reserved-3",
            "reserved-4",
            "reserved-5",
            "reserved-6",
            "reserved-7",
            "close",
            "ping",
            "pong",
            "reserved-11",
            "reserved-12",
            "reserved-13",
            "reserved-14",
            "reserved-15",
        ];
        NAMES
            .get(usize::from(self.0))
            .copied()
            .unwrap_or("reserved")
    }

    /// Inverse of [`Opcode::name`].
    pub fn from_name(name: &str) -> Option<Opcode> {
        (0u8..16).map(Opcode).find(|op| op.name() == name)
    }
}

impl fmt::Display for Opcode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Serialize for Opcode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for Opcode {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Opcode::from_name(&s)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown opcode {s:?}")))
    }
}

/// A 1-based packet ordinal across all inputs of one run, in reading order.
/// Sinks map it back to (file, packet number in that file); with one input the
/// two are equal, and match Wireshark's frame numbers.
pub type PacketNo = u64;

/// A named protocol anomaly ("weird", in Zeek's words): data, never an error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Anomaly {
    /// Stable identifier, listed in `docs/anomalies.md`.
    pub name: &'static str,
    /// Human-readable detail: offsets, values, what was done about it.
    pub detail: String,
    /// Packet that revealed it (0 when not tied to a packet, e.g. at end of input).
    pub packet: PacketNo,
    /// Time of the packet that revealed it (or the time reached, when not tied to a packet).
    pub ts: Timestamp,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_known_values() {
        assert_eq!(
            Timestamp::new(0, 0).rfc3339(),
            "1970-01-01T00:00:00.000000000Z"
        );
        assert_eq!(
            Timestamp::new(1_700_000_000, 123_456_789).rfc3339(),
            "2023-11-14T22:13:20.123456789Z"
        );
        assert_eq!(
            Timestamp::new(951_782_400, 0).rfc3339(),
            "2000-02-29T00:00:00.000000000Z"
        );
        assert_eq!(
            Timestamp::new(-1, 0).rfc3339(),
            "1969-12-31T23:59:59.000000000Z"
        );
    }

    #[test]
    fn rfc3339_parses_what_it_writes_and_nothing_else() {
        for t in [
            Timestamp::new(0, 0),
            Timestamp::new(1_700_000_000, 123_456_789),
            Timestamp::new(951_782_400, 1),
            Timestamp::new(-1, 999_999_999),
        ] {
            assert_eq!(Timestamp::parse_rfc3339(&t.rfc3339()), Some(t));
        }
        assert_eq!(
            Timestamp::parse_rfc3339("2023-11-14T22:13:20.5Z"),
            Some(Timestamp::new(1_700_000_000, 500_000_000))
        );
        assert_eq!(
            Timestamp::parse_rfc3339("2023-11-14T22:13:20Z"),
            Some(Timestamp::new(1_700_000_000, 0))
        );
        for bad in [
            "",
            "2023-11-14T22:13:20",
            "2023-11-14 22:13:20Z",
            "2023-13-14T22:13:20Z",
            "2023-11-14T22:13:20.Z",
            "2023-11-14T22:13:20.1234567890Z",
            "2023-11-14T22:13:20.+1Z",
        ] {
            assert_eq!(Timestamp::parse_rfc3339(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn serde_forms_are_names_and_strings() {
        let t = Timestamp::new(1_700_000_000, 5);
        let j = serde_json::to_string(&t).unwrap();
        assert_eq!(j, "\"2023-11-14T22:13:20.000000005Z\"");
        assert_eq!(serde_json::from_str::<Timestamp>(&j).unwrap(), t);
        assert!(serde_json::from_str::<Timestamp>("\"yesterday\"").is_err());
        for op in 0u8..16 {
            let o = Opcode::new(op);
            assert_eq!(Opcode::from_name(o.name()), Some(o));
            let j = serde_json::to_string(&o).unwrap();
            assert_eq!(serde_json::from_str::<Opcode>(&j).unwrap(), o);
        }
        assert_eq!(Opcode::TEXT.name(), "text");
        assert_eq!(Opcode::from_name("nonsense"), None);
        assert_eq!(serde_json::to_string(&Dir::S2c).unwrap(), "\"s2c\"");
    }

    #[test]
    fn nanos_round_trip() {
        for n in [
            -1_500_000_000i128,
            0,
            1,
            999_999_999,
            1_000_000_000,
            1_700_000_000_123_456_789,
        ] {
            assert_eq!(Timestamp::from_nanos(n).as_nanos(), n);
        }
    }
}
