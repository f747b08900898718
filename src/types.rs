//! Small value types shared by every stage of the pipeline.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A capture timestamp: seconds and nanoseconds since the Unix epoch (UTC).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Timestamp {
    pub secs: i64,
    pub nanos: u32,
}

impl Timestamp {
    pub const fn new(secs: i64, nanos: u32) -> Self {
        Timestamp { secs, nanos }
    }

    /// Nanoseconds since the epoch, saturating.
    pub fn as_nanos(&self) -> i128 {
        self.secs as i128 * 1_000_000_000 + self.nanos as i128
    }

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
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Dir {
    /// Client to server.
    C2s,
    /// Server to client.
    S2c,
}

impl Dir {
    pub fn as_str(self) -> &'static str {
        match self {
            Dir::C2s => "c2s",
            Dir::S2c => "s2c",
        }
    }
    pub fn index(self) -> usize {
        self as usize
    }
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
